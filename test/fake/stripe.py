#!/usr/bin/env python3
"""A stateful fake of the Stripe API endpoints the pgext worker uses.

Standard library only.  Binds 127.0.0.1; see test/fake/README.md for the
endpoints, the control API (/__fake/...) and the faults it can inject.

    python3 test/fake/stripe.py --port 0 --token T --port-file FILE

Logs one line per request to stderr, never the key or a query string.
"""

import argparse
import copy
import json
import os
import random
import re
import string
import sys
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from fakehttp import FakeHandler, serve

LIMIT_MAX = 100
LIMIT_DEFAULT = 10
EVENT_DAYS = 30
TYPES_MAX = 20
API_VERSION = "2025-03-31.basil"
MONTH = 30 * 86400
STATUSES = ("active", "past_due", "unpaid", "canceled", "incomplete",
            "incomplete_expired", "trialing", "paused")
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated",
                       "customer.subscription.deleted")
# Query parameters each list accepts (by name before any "[...]"); Stripe
# refuses any other with parameter_unknown.
LIST_PARAMS = {
    "subscriptions": {"automatic_tax", "collection_method", "created", "current_period_end",
                      "current_period_start", "customer", "ending_before", "expand", "limit",
                      "price", "starting_after", "status", "test_clock"},
    "events": {"created", "delivery_success", "ending_before", "expand", "limit",
               "starting_after", "type", "types"},
}
RANGE_OPS = ("gt", "gte", "lt", "lte")
# Fault kinds that answer with an error: (HTTP status, error type, code, message).
FAULT_ERRORS = {
    "rate_limit": (429, "rate_limit_error", "rate_limit",
                   "Request rate limit exceeded. Learn more about rate limits here "
                   "https://stripe.com/docs/rate-limits."),
    "server_error": (500, "api_error", None, "An unknown error occurred"),
    "api_error": (500, "api_error", None, "An unknown error occurred"),
    "bad_gateway": (502, "api_error", None, "Bad gateway"),
    "unavailable": (503, "api_error", None, "Service unavailable"),
    "timeout": (504, "api_error", None, "Gateway timeout"),
    "unauthorized": (401, "invalid_request_error", None, "Invalid API Key provided."),
    "permission_error": (403, "invalid_request_error", "secret_key_required",
                         "The provided key does not have the required permissions for "
                         "this endpoint."),
    "not_found": (404, "invalid_request_error", "resource_missing", "No such object"),
    "invalid_request": (400, "invalid_request_error", "parameter_invalid", "Invalid request"),
    "lock_timeout": (429, "invalid_request_error", "lock_timeout",
                     "This object cannot be accessed right now because another API request "
                     "or Stripe process is currently accessing it."),
    "idempotency_error": (400, "idempotency_error", None,
                          "Keys for idempotent requests can only be used with the same "
                          "parameters they were first used with."),
}
TYPE_BY_STATUS = {429: "rate_limit_error"}
ALNUM = string.ascii_letters + string.digits


class ApiError(Exception):
    """A Stripe error answered as {"error": {type, code, message, ...}}."""

    def __init__(self, status, etype, code, message, param=None):
        super().__init__(message)
        self.status = status
        self.type = etype
        self.code = code
        self.message = message
        self.param = param


def invalid(message, param=None, code="parameter_invalid", status=400):
    """An invalid_request_error about one parameter."""
    return ApiError(status, "invalid_request_error", code, message, param)


def missing(kind, oid, param="id", status=404):
    """Stripe's "No such <kind>" resource_missing error."""
    return ApiError(status, "invalid_request_error", "resource_missing",
                    "No such %s: '%s'" % (kind, oid), param)


def rand_id(prefix, n=24):
    """An id in Stripe's style (prefix_ and base62)."""
    return prefix + "_" + "".join(random.choice(ALNUM) for _ in range(n))


def as_int(name, value):
    """A query parameter as an integer, or Stripe's parameter_invalid_integer."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid("Invalid integer: %s" % value, name, "parameter_invalid_integer")


class Fake:
    """All state of the fake, guarded by one lock."""

    def __init__(self, token, livemode):
        self.lock = threading.RLock()
        self.token = token
        self.defaults = {"livemode": livemode, "api_version": API_VERSION,
                         "period_on_subscription": True, "rate_limit": 0}
        self.reset()

    def reset(self):
        """Back to the start: nothing stored, no faults, the real clock."""
        with self.lock:
            self.config = dict(self.defaults)
            self.subscriptions = {}
            self.events = {}
            self.customers = {}
            self.seq = 0
            self.clock = None
            self.faults = []
            self.calls = []
            self.window = []
            self.counters = {"requests": 0, "by_status": {}, "by_endpoint": {}, "faults": {}}

    def now(self):
        """The fake's notion of now (unix seconds): the set clock, else real time."""
        return int(self.clock) if self.clock is not None else int(time.time())

    def next_seq(self):
        """An insertion counter: the tie-breaker among equal created times."""
        self.seq += 1
        return self.seq

    def over_rate(self):
        """True when the per-second rate limit (config rate_limit, 0 = off) is spent."""
        lim = self.config.get("rate_limit") or 0
        if lim <= 0:
            return False
        t = time.monotonic()
        self.window = [x for x in self.window if t - x < 1.0]
        if len(self.window) >= lim:
            return True
        self.window.append(t)
        return False

    # -- objects ----------------------------------------------------------
    def customer(self, spec):
        """Creates or replaces a customer from a control spec; returns it."""
        cid = spec.get("id") or rand_id("cus", 14)
        old = self.customers.get(cid)
        if spec.get("deleted"):
            c = {"id": cid, "object": "customer", "deleted": True}
        else:
            c = {"id": cid, "object": "customer", "address": None, "balance": 0,
                 "created": self.now(), "currency": "eur", "default_source": None,
                 "delinquent": False, "description": None, "discount": None,
                 "email": None, "invoice_prefix": cid[-7:].upper(),
                 "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                      "footer": None, "rendering_options": None},
                 "livemode": self.config["livemode"], "metadata": {}, "name": None,
                 "next_invoice_sequence": 1, "phone": None, "preferred_locales": [],
                 "shipping": None, "tax_exempt": "none", "test_clock": None}
            if old is not None and not old["obj"].get("deleted"):
                c.update({k: v for k, v in old["obj"].items() if k != "deleted"})
            for k in ("email", "name", "metadata", "created", "description", "currency",
                      "delinquent"):
                if k in spec:
                    c[k] = spec[k]
        self.customers[cid] = {"obj": c, "seq": old["seq"] if old else self.next_seq()}
        return c

    def subscription(self, spec):
        """Creates or replaces (merges into) a subscription from a control spec;
        records its event unless spec["event"] is false.  Returns (object, event)."""
        sid = spec.get("id") or rand_id("sub")
        old = self.subscriptions.get(sid)
        prev = copy.deepcopy(old["obj"]) if old else None
        if prev is None and not spec.get("customer"):
            raise invalid("a new subscription needs a customer", "customer")
        status = spec.get("status", prev["status"] if prev else "active")
        if status not in STATUSES:
            raise invalid("status must be one of " + ", ".join(STATUSES), "status")
        now = self.now()
        created = int(spec.get("created", prev["created"] if prev else now))
        customer = spec.get("customer", prev["customer"] if prev else None)
        if customer not in self.customers:
            self.customer({"id": customer})
        pend = spec.get("current_period_end")
        pstart = spec.get("current_period_start")
        if prev is not None:
            pend = prev["items"]["data"][0]["current_period_end"] if pend is None else pend
            pstart = prev["items"]["data"][0]["current_period_start"] if pstart is None else pstart
        if pend is None:
            pstart = now if pstart is None else pstart
            pend = int(pstart) + MONTH
        elif pstart is None:
            pstart = int(pend) - MONTH
        pstart, pend = int(pstart), int(pend)
        prices = spec.get("price", None)
        if prices is None:
            prices = [it["price"]["id"] for it in prev["items"]["data"]] if prev else ["price_fake"]
        elif not isinstance(prices, list):
            prices = [prices]
        cape = bool(spec.get("cancel_at_period_end",
                             prev["cancel_at_period_end"] if prev else False))
        if "cancel_at" in spec:
            cancel_at = spec["cancel_at"]
        elif cape:
            cancel_at = pend
        elif prev is not None and not prev["cancel_at_period_end"]:
            cancel_at = prev["cancel_at"]
        else:
            cancel_at = None
        ended = status in ("canceled", "incomplete_expired")
        was_ended = prev is not None and prev["status"] in ("canceled", "incomplete_expired")
        canceled_at = spec.get("canceled_at", (prev or {}).get("canceled_at"))
        ended_at = spec.get("ended_at", (prev or {}).get("ended_at"))
        if ended and not was_ended:
            canceled_at = now if canceled_at is None else canceled_at
            ended_at = now if ended_at is None else ended_at
        if not ended:
            ended_at = spec.get("ended_at")
        livemode = self.config["livemode"]
        items = []
        for i, p in enumerate(prices):
            olditem = prev["items"]["data"][i] if prev and i < len(prev["items"]["data"]) else None
            items.append({
                "id": olditem["id"] if olditem else rand_id("si", 14), "object": "subscription_item",
                "created": created, "current_period_start": pstart, "current_period_end": pend,
                "discounts": [], "metadata": {}, "quantity": int(spec.get("quantity", 1)),
                "subscription": sid, "tax_rates": [], "billing_thresholds": None,
                "price": {"id": p, "object": "price", "active": True,
                          "billing_scheme": "per_unit", "created": created, "currency": "eur",
                          "livemode": livemode, "lookup_key": None, "metadata": {},
                          "nickname": None, "product": "prod_" + p.split("_", 1)[-1],
                          "recurring": {"interval": "month", "interval_count": 1,
                                        "meter": None, "usage_type": "licensed",
                                        "trial_period_days": None},
                          "tax_behavior": "unspecified", "tiers_mode": None,
                          "transform_quantity": None, "type": "recurring",
                          "unit_amount": 1000, "unit_amount_decimal": "1000"}})
        s = {"id": sid, "object": "subscription", "application": None,
             "application_fee_percent": None,
             "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
             "billing_cycle_anchor": pstart, "billing_thresholds": None,
             "cancel_at": cancel_at, "cancel_at_period_end": cape, "canceled_at": canceled_at,
             "cancellation_details": {"comment": None, "feedback": None,
                                      "reason": "cancellation_requested" if ended else None},
             "collection_method": "charge_automatically", "created": created,
             "currency": "eur", "customer": customer, "days_until_due": None,
             "default_payment_method": None, "default_source": None, "default_tax_rates": [],
             "description": None, "discounts": [], "ended_at": ended_at,
             "items": {"object": "list", "data": items, "has_more": False,
                       "url": "/v1/subscription_items?subscription=" + sid},
             "latest_invoice": None, "livemode": livemode,
             "metadata": spec.get("metadata", prev["metadata"] if prev else {}),
             "next_pending_invoice_item_invoice": None, "on_behalf_of": None,
             "pause_collection": None, "payment_settings": None,
             "pending_invoice_item_interval": None, "pending_setup_intent": None,
             "pending_update": None, "schedule": None, "start_date": created,
             "status": status, "test_clock": None, "transfer_data": None,
             "trial_end": None, "trial_start": None}
        if self.config.get("period_on_subscription", True):
            s["current_period_start"] = pstart
            s["current_period_end"] = pend
        self.subscriptions[sid] = {"obj": s, "seq": old["seq"] if old else self.next_seq()}
        want = spec.get("event", True)
        if want is False:
            return s, None
        if isinstance(want, str):
            etype = want
        elif prev is None:
            etype = "customer.subscription.created"
        elif ended and not was_ended:
            etype = "customer.subscription.deleted"
        else:
            etype = "customer.subscription.updated"
        ev = {"type": etype, "data": {"object": copy.deepcopy(s)}}
        if prev is not None and etype == "customer.subscription.updated":
            ev["data"]["previous_attributes"] = {
                k: v for k, v in prev.items() if s.get(k) != v}
        return s, self.event(ev)

    def event(self, spec):
        """Stores an event; fields left out get Stripe's defaults.  Returns it."""
        e = {"id": rand_id("evt"), "object": "event", "api_version": self.config["api_version"],
             "created": self.now(), "data": {"object": {}}, "livemode": self.config["livemode"],
             "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None},
             "type": "unknown"}
        e.update(copy.deepcopy(spec))
        e["created"] = int(e["created"])
        old = self.events.get(e["id"])
        self.events[e["id"]] = {"obj": e, "seq": old["seq"] if old else self.next_seq()}
        return e


def newest_first(store):
    """The stored objects sorted as Stripe lists them: created descending
    (insertion order breaks ties, later first)."""
    recs = sorted(store.values(), key=lambda r: (r["obj"]["created"], r["seq"]), reverse=True)
    return [r["obj"] for r in recs]


def fault_matches(f, method, path, query):
    """Whether fault f applies to this request."""
    if f.get("method") and f["method"].upper() != method:
        return False
    if f.get("path") and not re.search(f["path"], path):
        return False
    if f.get("query") and not re.search(f["query"], query):
        return False
    return True


def endpoint_key(method, path):
    """METHOD and path with object ids replaced by {id}, for counters."""
    return method + " " + re.sub(r"^(/v1/[a-z_]+)/[^/]+", r"\1/{id}", path)


def group_params(pairs):
    """Query pairs as {name: {"": [plain values], "sub": [bracketed values]}}:
    created[gte]=1 → {"created": {"gte": ["1"]}}, types[]=a → {"types": {"[]": ["a"]}}."""
    out = {}
    for k, v in pairs:
        m = re.fullmatch(r"([A-Za-z_]+)(?:\[([^\]]*)\])?", k)
        if not m:
            raise invalid("Received unknown parameter: %s" % k, k, "parameter_unknown")
        name, sub = m.group(1), m.group(2)
        key = "" if sub is None else ("[]" if sub == "" or sub.isdigit() else sub)
        out.setdefault(name, {}).setdefault(key, []).append(v)
    return out


def plain(params, name):
    """The single plain value of a parameter, or None."""
    vals = params.get(name, {}).get("")
    return vals[-1] if vals else None


def created_filter(params, name="created"):
    """Predicates from created=N and created[gt|gte|lt|lte]=N."""
    preds = []
    p = params.get(name, {})
    for op, vals in p.items():
        if op == "":
            n = as_int(name, vals[-1])
            preds.append(lambda c, n=n: c == n)
        elif op in RANGE_OPS:
            n = as_int("%s[%s]" % (name, op), vals[-1])
            preds.append({"gt": lambda c, n=n: c > n, "gte": lambda c, n=n: c >= n,
                          "lt": lambda c, n=n: c < n, "lte": lambda c, n=n: c <= n}[op])
        else:
            raise invalid("Received unknown parameter: %s[%s]" % (name, op),
                          "%s[%s]" % (name, op), "parameter_unknown")
    return preds


def paginate(kind, ordered, keep, params, url):
    """One Stripe list page: positions starting_after / ending_before in the
    full ordered list, then filters with keep; {object, data, has_more, url}."""
    limit = plain(params, "limit")
    limit = LIMIT_DEFAULT if limit is None else as_int("limit", limit)
    if limit < 1 or limit > LIMIT_MAX:
        raise invalid("This value must be between 1 and %d." % LIMIT_MAX, "limit",
                      "parameter_invalid_integer")
    after, before = plain(params, "starting_after"), plain(params, "ending_before")
    if after is not None and before is not None:
        raise invalid("You may only specify one of these parameters: ending_before, "
                      "starting_after.", "starting_after")
    ids = [o["id"] for o in ordered]
    if after is not None:
        if after not in ids:
            raise missing(kind, after, "starting_after", 400)
        rest = [o for o in ordered[ids.index(after) + 1:] if keep(o)]
        page, more = rest[:limit], len(rest) > limit
    elif before is not None:
        if before not in ids:
            raise missing(kind, before, "ending_before", 400)
        rest = [o for o in ordered[:ids.index(before)] if keep(o)]
        page, more = rest[-limit:], len(rest) > limit
    else:
        rest = [o for o in ordered if keep(o)]
        page, more = rest[:limit], len(rest) > limit
    return {"object": "list", "data": page, "has_more": more, "url": url}


def check_params(params, allowed):
    """Stripe refuses parameters an endpoint does not know."""
    for name in params:
        if name not in allowed:
            raise invalid("Received unknown parameter: %s" % name, name, "parameter_unknown")


class Handler(FakeHandler):
    """One HTTP request to the fake."""

    server_version = "fake-stripe"

    def auth_error(self, auth):
        """Stripe's 401 for a missing or wrong key (only its last 4 characters shown)."""
        if not auth:
            return ApiError(401, "invalid_request_error", None,
                            "You did not provide an API key. You need to provide your API key "
                            "in the Authorization header, using Bearer auth (e.g. "
                            "'Authorization: Bearer YOUR_SECRET_KEY').")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        shown = ("*" * max(0, len(key) - 4) + key[-4:]) if len(key) > 8 else "*" * len(key)
        return ApiError(401, "invalid_request_error", "api_key_invalid" if key else None,
                        "Invalid API Key provided: " + shown)

    def handle_one(self, method):
        """Reads the request, applies auth, rate limit and faults, answers."""
        fake = self.server.fake
        u = urlsplit(self.path)
        path = u.path
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if path.startswith("/__fake/"):
            status = self.control(fake, method, path, u.query, raw)
            sys.stderr.write("fake-stripe: %s %s -> %d\n" % (method, path, status))
            return
        rid = "req_" + "".join(random.choice(ALNUM) for _ in range(14))
        applied = None
        with fake.lock:
            fake.counters["requests"] += 1
            key = endpoint_key(method, path)
            fake.counters["by_endpoint"][key] = fake.counters["by_endpoint"].get(key, 0) + 1
            call = {"method": method, "path": path, "query": u.query, "at": time.time(),
                    "headers": {k.lower(): v for k, v in self.headers.items()
                                if k.lower() != "authorization"},
                    "request_id": rid, "status": None, "fault": None}
            fake.calls.append(call)
        status, extra = 500, {}
        fault = None
        try:
            with fake.lock:
                auth = self.headers.get("authorization", "")
                if auth != "Bearer " + fake.token:
                    raise self.auth_error(auth)
                if fake.over_rate():
                    extra["Retry-After"] = "1"
                    raise ApiError(*FAULT_ERRORS["rate_limit"][:3],
                                   FAULT_ERRORS["rate_limit"][3])
                for f in fake.faults:
                    if f.get("count", 1) != 0 and fault_matches(f, method, path, u.query):
                        fault = f
                        if f.get("count") is not None:
                            f["count"] -= 1
                        break
                if fault is not None:
                    applied = fault["kind"]
                    fake.counters["faults"][applied] = fake.counters["faults"].get(applied, 0) + 1
            if fault is not None:
                kind = fault["kind"]
                if fault.get("should_retry") is not None:
                    extra["Stripe-Should-Retry"] = "true" if fault["should_retry"] else "false"
                if kind == "slow":
                    time.sleep(float(fault.get("seconds", 5)))
                elif kind == "reset":
                    call["fault"] = kind
                    sys.stderr.write("fake-stripe: %s %s -> reset\n" % (method, path))
                    self.reset_connection()
                    return
                elif kind == "malformed":
                    raise _Malformed(int(fault.get("status", 200)))
                else:
                    st, et, code, msg = FAULT_ERRORS.get(kind, (500, None, kind, "Injected error"))
                    st = int(fault.get("status", st))
                    if et is None:
                        et = TYPE_BY_STATUS.get(st, "api_error" if st >= 500
                                                else "invalid_request_error")
                    if st == 429 and fault.get("retry_after", 1) is not None:
                        extra["Retry-After"] = str(fault.get("retry_after", 1))
                    raise ApiError(st, fault.get("type", et), fault.get("code", code),
                                   fault.get("message", msg), fault.get("param"))
            with fake.lock:
                status, payload = self.api(fake, method, path, u.query)
            text = json.dumps(payload)
        except ApiError as e:
            status = e.status
            err = {"type": e.type, "message": e.message}
            if e.code:
                err["code"] = e.code
                err["doc_url"] = "https://stripe.com/docs/error-codes/" + e.code.replace("_", "-")
            if e.param:
                err["param"] = e.param
            err["request_log_url"] = "https://dashboard.stripe.com/%slogs/%s" % (
                "" if fake.config["livemode"] else "test/", rid)
            text = json.dumps({"error": err})
        except _Malformed as m:
            status = m.status
            text = '{"object": "list", "data": [{"id": "sub_trunc'
        headers = {"Request-Id": rid,
                   "Stripe-Version": self.headers.get("stripe-version") or fake.config["api_version"]}
        headers.update(extra)
        with fake.lock:
            fake.counters["by_status"][str(status)] = fake.counters["by_status"].get(str(status), 0) + 1
            call["status"] = status
            call["fault"] = applied
        sys.stderr.write("fake-stripe: %s %s -> %d%s\n" % (
            method, path, status, " (fault %s)" % applied if applied else ""))
        self.send_raw(status, text, headers)

    # -- the API ------------------------------------------------------------
    def api(self, fake, method, path, query):
        """Dispatches an authorized API call; returns (status, payload)."""
        params = group_params(parse_qsl(query, keep_blank_values=True))
        if method == "GET" and path == "/v1/subscriptions":
            return 200, self.list_subscriptions(fake, params)
        if method == "GET" and path == "/v1/events":
            return 200, self.list_events(fake, params)
        m = re.fullmatch(r"/v1/(subscriptions|events|customers)/([^/]+)", path)
        if method == "GET" and m:
            check_params(params, {"expand"})
            kind, oid = m.group(1), m.group(2)
            store = {"subscriptions": fake.subscriptions, "events": fake.events,
                     "customers": fake.customers}[kind]
            rec = store.get(oid)
            obj = rec["obj"] if rec else None
            if kind == "events" and obj is not None and \
                    obj["created"] < fake.now() - EVENT_DAYS * 86400:
                obj = None
            if obj is None:
                raise missing({"subscriptions": "subscription", "events": "event",
                               "customers": "customer"}[kind], oid)
            return 200, obj
        raise ApiError(404, "invalid_request_error", None,
                       "Unrecognized request URL (%s: %s). Please see https://stripe.com/docs "
                       "or we can help at https://support.stripe.com/." % (method, path))

    def list_subscriptions(self, fake, params):
        """GET /v1/subscriptions: status (default: all but canceled), customer,
        price, created; newest first."""
        check_params(params, LIST_PARAMS["subscriptions"])
        status = plain(params, "status")
        if status is None:
            want = lambda s: s != "canceled"
        elif status == "all":
            want = lambda s: True
        elif status == "ended":
            want = lambda s: s in ("canceled", "incomplete_expired")
        elif status in STATUSES:
            want = lambda s: s == status
        else:
            raise invalid("Invalid status: must be one of active, past_due, unpaid, incomplete, "
                          "incomplete_expired, trialing, all, ended, canceled, or paused",
                          "status", "parameter_invalid_string")
        customer, price = plain(params, "customer"), plain(params, "price")
        preds = created_filter(params)

        def keep(s):
            """Whether one subscription passes the filters."""
            return (want(s["status"]) and (customer is None or s["customer"] == customer) and
                    (price is None or any(it["price"]["id"] == price
                                          for it in s["items"]["data"])) and
                    all(p(s["created"]) for p in preds))
        return paginate("subscription", newest_first(fake.subscriptions), keep, params,
                        "/v1/subscriptions")

    def list_events(self, fake, params):
        """GET /v1/events: type (a trailing * matches a prefix) or types[],
        created ranges; newest first; only the last 30 days."""
        check_params(params, LIST_PARAMS["events"])
        one = plain(params, "type")
        many = params.get("types", {}).get("[]", [])
        if params.get("types", {}).get("") is not None:
            raise invalid("Invalid array", "types", "parameter_invalid_array")
        if one is not None and many:
            raise invalid("You may only specify one of these parameters: type, types.", "type")
        if len(many) > TYPES_MAX:
            raise invalid("You may pass at most %d types." % TYPES_MAX, "types")
        pats = [one] if one is not None else many
        rx = [re.compile("^" + ".*".join(map(re.escape, p.split("*"))) + "$") for p in pats]
        preds = created_filter(params)
        oldest = fake.now() - EVENT_DAYS * 86400

        def keep(e):
            """Whether one event passes the filters."""
            return (e["created"] >= oldest and (not rx or any(r.match(e["type"]) for r in rx)) and
                    all(p(e["created"]) for p in preds))
        return paginate("event", newest_first(fake.events), keep, params, "/v1/events")

    # -- the control API -------------------------------------------------------
    def control(self, fake, method, path, query, raw):
        """The /__fake/ endpoints; returns the status sent."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.send_raw(400, '{"error":"bad json"}', {})
            return 400
        out = {"ok": True}
        headers = {}
        try:
            with fake.lock:
                if path == "/__fake/reset" and method == "POST":
                    fake.reset()
                elif path == "/__fake/config" and method == "POST":
                    for k in ("livemode", "api_version", "period_on_subscription", "rate_limit"):
                        if k in body:
                            fake.config[k] = body[k]
                    out["config"] = fake.config
                elif path == "/__fake/clock" and method == "POST":
                    if "now" in body:
                        fake.clock = None if body["now"] is None else int(body["now"])
                    if "advance" in body:
                        fake.clock = fake.now() + int(body["advance"])
                    out = {"now": fake.now(), "frozen": fake.clock is not None}
                elif path == "/__fake/subscriptions" and method == "POST":
                    specs = body if isinstance(body, list) else [body]
                    res = [fake.subscription(s) for s in specs]
                    evs = [e["id"] if e else "" for _, e in res]
                    headers["Fake-Event-Id"] = ",".join(evs)
                    out = [s for s, _ in res] if isinstance(body, list) else res[0][0]
                elif path == "/__fake/events" and method == "POST":
                    specs = body if isinstance(body, list) else [body]
                    res = [fake.event(e) for e in specs]
                    out = res if isinstance(body, list) else res[0]
                elif path == "/__fake/customers" and method == "POST":
                    specs = body if isinstance(body, list) else [body]
                    res = [fake.customer(c) for c in specs]
                    out = res if isinstance(body, list) else res[0]
                elif re.fullmatch(r"/__fake/(subscriptions|events|customers)/[^/]+", path) \
                        and method == "DELETE":
                    kind, oid = path.split("/")[2:4]
                    store = getattr(fake, kind)
                    if store.pop(oid, None) is None:
                        self.send_raw(404, '{"error":"no such object"}', {})
                        return 404
                elif path == "/__fake/faults" and method == "POST":
                    flist = body if isinstance(body, list) else [body]
                    for f in flist:
                        if not isinstance(f, dict) or "kind" not in f:
                            self.send_raw(400, '{"error":"a fault needs a kind"}', {})
                            return 400
                        fake.faults.append(f)
                    out["faults"] = fake.faults
                elif path == "/__fake/faults" and method == "DELETE":
                    fake.faults = []
                elif path == "/__fake/state" and method == "GET":
                    q = dict(parse_qsl(query))
                    want = lambda k: q.get(k, "1") != "0"
                    out = {"config": fake.config, "now": fake.now(),
                           "frozen": fake.clock is not None, "counters": fake.counters,
                           "faults": fake.faults}
                    for k in ("subscriptions", "events", "customers"):
                        if want(k):
                            out[k] = newest_first(getattr(fake, k))
                    if want("calls"):
                        out["calls"] = fake.calls
                else:
                    self.send_raw(404, '{"error":"no such control endpoint"}', {})
                    return 404
                text = json.dumps(out)
        except ApiError as e:
            self.send_raw(400, json.dumps({"error": e.message, "param": e.param}), {})
            return 400
        except (TypeError, ValueError, AttributeError) as e:
            self.send_raw(400, json.dumps({"error": "bad control request: %s" % e}), {})
            return 400
        self.send_raw(200, text, headers)
        return 200


class _Malformed(Exception):
    """Answer with a truncated JSON body and this status."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def main():
    """Parses arguments, binds 127.0.0.1, serves until SIGTERM or the parent dies."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default=os.environ.get("FAKE_STRIPE_TOKEN", "sk_test_fake"))
    p.add_argument("--port-file")
    p.add_argument("--livemode", action="store_true")
    a = p.parse_args()
    serve("fake-stripe", Fake(a.token, a.livemode), Handler, a.port, a.port_file)


if __name__ == "__main__":
    main()
