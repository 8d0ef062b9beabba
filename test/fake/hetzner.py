#!/usr/bin/env python3
"""A stateful fake of the Hetzner Cloud API endpoints the pgext worker uses.

Standard library only.  Binds 127.0.0.1; see test/fake/README.md for the
endpoints, the control API (/__fake/...) and the faults it can inject.

    python3 test/fake/hetzner.py --port 0 --token T --port-file FILE

Logs one line per request to stderr, never the token.
"""

import argparse
import json
import math
import os
import re
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from fakehttp import FakeHandler, serve

USER_DATA_MAX = 32768
PER_PAGE_MAX = 50
LOCATIONS = {"fsn1": "fsn1-dc14", "nbg1": "nbg1-dc3", "hel1": "hel1-dc2",
             "ash": "ash-dc1", "hil": "hil-dc1", "sin": "sin-dc1"}
# HTTP status of each API error code (Hetzner's documented table).
ERROR_STATUS = {
    "invalid_input": 400, "json_error": 400, "unauthorized": 401,
    "forbidden": 403, "resource_limit_exceeded": 403, "not_found": 404,
    "conflict": 409, "uniqueness_error": 409, "resource_unavailable": 412,
    "placement_error": 412, "locked": 423, "rate_limit_exceeded": 429,
    "server_error": 500, "unavailable": 503, "maintenance": 503,
    "timeout": 504,
}
ERROR_MESSAGE = {
    "uniqueness_error": "one or more fields must be unique",
    "resource_unavailable": "error during placement",
    "placement_error": "error during placement",
    "server_error": "internal server error",
    "unavailable": "service unavailable",
    "rate_limit_exceeded": "limit of 3600 requests per hour reached",
    "unauthorized": "unable to authenticate",
    "timeout": "request timed out",
    "locked": "server is locked",
    "conflict": "conflict",
    "maintenance": "cannot perform operation due to maintenance",
}


def now_iso():
    """The current time as Hetzner prints it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


class ApiError(Exception):
    """An API error answered as {"error": {...}} with its HTTP status."""

    def __init__(self, code, message=None, details=None, status=None):
        super().__init__(code)
        self.code = code
        self.message = message or ERROR_MESSAGE.get(code, code)
        self.details = details if details is not None else {}
        self.status = status or ERROR_STATUS.get(code, 500)


def invalid_input(field, msg):
    """An invalid_input error naming one field."""
    return ApiError("invalid_input", "invalid input in field '%s'" % field,
                    {"fields": [{"name": field, "messages": [msg]}]})


def split_selector(sel):
    """Splits a label selector at the commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t.strip() for t in out if t.strip()]


SEL_IN = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)$")
SEL_NE = re.compile(r"^([^\s!=(),]+)\s*!=\s*(.*)$")
SEL_EQ = re.compile(r"^([^\s!=(),]+)\s*==?\s*(.*)$")
SEL_NOT = re.compile(r"^!\s*([^\s!=(),]+)$")
SEL_HAS = re.compile(r"^([^\s!=(),]+)$")


def parse_selector(sel):
    """A label selector as a list of predicates over a labels dict."""
    preds = []
    for term in split_selector(sel):
        m = SEL_IN.match(term)
        if m:
            k, op = m.group(1), m.group(2)
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                preds.append(lambda l, k=k, vals=vals: l.get(k) in vals)
            else:
                preds.append(lambda l, k=k, vals=vals: l.get(k) not in vals)
            continue
        m = SEL_NE.match(term)
        if m:
            k, v = m.group(1), m.group(2).strip()
            preds.append(lambda l, k=k, v=v: l.get(k) != v)
            continue
        m = SEL_EQ.match(term)
        if m:
            k, v = m.group(1), m.group(2).strip()
            preds.append(lambda l, k=k, v=v: l.get(k) == v)
            continue
        m = SEL_NOT.match(term)
        if m:
            preds.append(lambda l, k=m.group(1): k not in l)
            continue
        m = SEL_HAS.match(term)
        if m:
            preds.append(lambda l, k=m.group(1): k in l)
            continue
        raise ApiError("invalid_input", "label_selector is invalid",
                       {"fields": [{"name": "label_selector",
                                    "messages": ["invalid term: " + term]}]})
    return preds


class Fake:
    """All state of the fake, guarded by one lock."""

    def __init__(self, token, limit, refill, action_polls):
        self.lock = threading.RLock()
        self.token = token
        self.defaults = {"rate_limit": limit, "refill_per_second": refill,
                         "action_polls": action_polls, "action_seconds": 3,
                         "ipv4_prefix": "10"}
        self.reset()

    def reset(self):
        """Back to the start: no servers, no faults, a full budget."""
        with self.lock:
            self.config = dict(self.defaults)
            self.servers = {}
            self.actions = {}
            self.next_server = 1000001
            self.next_action = 5000001
            self.faults = []
            self.calls = []
            self.counters = {"requests": 0, "by_status": {}, "by_endpoint": {},
                             "faults": {}}
            self.budget = float(self.config["rate_limit"])
            self.budget_at = time.monotonic()

    # -- rate limit -------------------------------------------------------
    def refill(self):
        """Adds what the refill rate earned since the last look."""
        t = time.monotonic()
        lim = self.config["rate_limit"]
        self.budget = min(float(lim), self.budget +
                          (t - self.budget_at) * self.config["refill_per_second"])
        self.budget_at = t

    def rate_headers(self):
        """RateLimit-* header values for the current budget."""
        self.refill()
        lim = self.config["rate_limit"]
        rem = max(0, int(self.budget))
        rate = self.config["refill_per_second"]
        secs = math.ceil((lim - self.budget) / rate) if rate > 0 else 3600
        return {"ratelimit-limit": str(lim), "ratelimit-remaining": str(rem),
                "ratelimit-reset": str(int(time.time()) + max(0, secs))}

    def spend(self):
        """Takes one request from the budget; the Retry-After seconds if empty."""
        self.refill()
        if self.budget < 1:
            rate = self.config["refill_per_second"]
            return max(1, math.ceil((1 - self.budget) / rate)) if rate > 0 else 3600
        self.budget -= 1
        return None

    # -- objects ----------------------------------------------------------
    def new_action(self, command, server_id, effect):
        """A running action on one server; effect runs when it completes."""
        aid = self.next_action
        self.next_action += 1
        a = {"id": aid, "command": command, "status": "running", "progress": 0,
             "started": now_iso(), "finished": None, "error": None,
             "resources": [{"id": server_id, "type": "server"}]}
        self.actions[aid] = {"action": a, "polls_left": self.config["action_polls"],
                             "effect": effect, "fail": None, "t0": time.monotonic()}
        if self.actions[aid]["polls_left"] <= 0:
            self.finish(aid)
        return a

    def finish(self, aid):
        """Completes an action (success, or error if a fault said so)."""
        rec = self.actions[aid]
        a = rec["action"]
        if a["status"] != "running":
            return
        a["finished"] = now_iso()
        if rec["fail"]:
            a["status"] = "error"
            a["error"] = {"code": rec["fail"], "message": "action failed"}
            return
        a["status"] = "success"
        a["progress"] = 100
        if rec["effect"]:
            rec["effect"]()

    def finish_due(self):
        """Like Hetzner, actions also finish on their own: after action_seconds
        (0 = only when polled), whoever asks."""
        secs = self.config.get("action_seconds") or 0
        if secs <= 0:
            return
        now = time.monotonic()
        for aid, rec in list(self.actions.items()):
            if rec["action"]["status"] == "running" and now - rec["t0"] >= secs:
                self.finish(aid)

    def poll(self, aid):
        """One GET of an action: counts down its polls; returns it."""
        rec = self.actions.get(aid)
        if rec is None:
            return None
        if rec["action"]["status"] == "running":
            rec["polls_left"] -= 1
            if rec["polls_left"] <= 0:
                self.finish(aid)
            else:
                left = rec["polls_left"]
                total = max(1, self.config["action_polls"])
                rec["action"]["progress"] = min(99, int(100 * (total - left) / total))
        return rec["action"]

    def ipv4(self, sid):
        """The IPv4 address of server sid: 10.a.b.c from its number by default;
        with another ipv4_prefix P (e.g. "127": agents of test/fake/agent.py on
        loopback) P.a.b.c with a from 1 to 128, never P.0.x.y (127.0.0.1 is the
        fakes' control address)."""
        n = sid - 1000000
        prefix = str(self.config.get("ipv4_prefix") or "10")
        if prefix == "10":
            return "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)
        return "%s.%d.%d.%d" % (prefix, 1 + ((n >> 16) & 127), (n >> 8) & 255, n & 255)

    def make_server(self, name, server_type="cx22", image="debian-12",
                    location="fsn1", labels=None, status="initializing"):
        """A server object (stored)."""
        sid = self.next_server
        self.next_server += 1
        s = {"id": sid, "name": name, "status": status, "created": now_iso(),
             "public_net": {"ipv4": {"ip": self.ipv4(sid),
                                     "blocked": False, "dns_ptr": "static.example"},
                            "ipv6": None, "floating_ips": [], "firewalls": []},
             "private_net": [],
             "server_type": {"name": server_type},
             "datacenter": {"name": LOCATIONS.get(location, location + "-dc1"),
                            "location": {"name": location}},
             "image": {"name": image}, "labels": dict(labels or {}),
             "locked": False, "protection": {"delete": False, "rebuild": False},
             "rescue_enabled": False, "volumes": [], "load_balancers": [],
             "placement_group": None, "primary_disk_size": 40,
             "included_traffic": 21990232555520, "ingoing_traffic": 0,
             "outgoing_traffic": 0, "backup_window": None, "iso": None}
        self.servers[sid] = s
        return s


def fault_matches(f, method, path, body):
    """Whether fault f applies to this request."""
    if f.get("method") and f["method"].upper() != method:
        return False
    if f.get("path") and not re.search(f["path"], path):
        return False
    if f.get("location"):
        if not isinstance(body, dict) or body.get("location") != f["location"]:
            return False
    if f.get("server_type"):
        if not isinstance(body, dict) or body.get("server_type") != f["server_type"]:
            return False
    return True


def endpoint_key(method, path):
    """METHOD and path with ids replaced by {id}, for counters."""
    return method + " " + re.sub(r"/\d+", "/{id}", path)


class Handler(FakeHandler):
    """One HTTP request to the fake."""

    server_version = "fake-hetzner"

    def handle_one(self, method):
        """Reads the request, applies auth, budget and faults, answers."""
        fake = self.server.fake
        u = urlsplit(self.path)
        path, query = u.path, parse_qs(u.query, keep_blank_values=True)
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if path.startswith("/__fake/"):
            status = self.control(fake, method, path, query, raw)
            sys.stderr.write("fake-hetzner: %s %s -> %d\n" % (method, path, status))
            return
        corr = uuid.uuid4().hex
        applied = None
        with fake.lock:
            fake.finish_due()
            fake.counters["requests"] += 1
            key = endpoint_key(method, path)
            fake.counters["by_endpoint"][key] = fake.counters["by_endpoint"].get(key, 0) + 1
            call = {"method": method, "path": self.path, "at": time.time(),
                    "headers": {k.lower(): v for k, v in self.headers.items()
                                if k.lower() != "authorization"},
                    "correlation_id": corr}
            fake.calls.append(call)
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = ValueError
        call["body"] = body if body is not ValueError else raw.decode("utf-8", "replace")
        status, payload, extra = 500, None, {}
        fault = None
        try:
            with fake.lock:
                auth = self.headers.get("authorization", "")
                if auth != "Bearer " + fake.token:
                    raise ApiError("unauthorized")
                retry = fake.spend()
                if retry is not None:
                    extra["retry-after"] = str(retry)
                    raise ApiError("rate_limit_exceeded")
                for f in fake.faults:
                    if f.get("count", 1) != 0 and fault_matches(
                            f, method, path, body if body is not ValueError else None):
                        fault = f
                        if f.get("count") is not None:
                            f["count"] -= 1
                        break
                if fault is not None:
                    applied = fault["kind"]
                    fake.counters["faults"][applied] = fake.counters["faults"].get(applied, 0) + 1
            if fault is not None:
                kind = fault["kind"]
                if kind == "slow":
                    time.sleep(float(fault.get("seconds", 5)))
                elif kind == "reset" and not fault.get("commit"):
                    call["status"] = None
                    call["fault"] = kind
                    sys.stderr.write("fake-hetzner: %s %s -> reset\n" % (method, u.path))
                    self.reset_connection()
                    return
                elif kind == "malformed" and not fault.get("commit"):
                    raise _Malformed(int(fault.get("status", 200)))
                elif kind == "rate_limit":
                    extra["retry-after"] = str(fault.get("retry_after", 1))
                    raise ApiError("rate_limit_exceeded")
                elif kind == "action_error":
                    pass
                elif kind not in ("reset", "malformed"):
                    code = fault.get("code", kind)
                    raise ApiError(code, fault.get("message"), fault.get("details"),
                                   fault.get("status"))
            if body is ValueError:
                raise ApiError("json_error", "malformed JSON in request body")
            with fake.lock:
                status, payload = self.api(fake, method, path, query, body)
                if fault is not None and fault["kind"] == "action_error":
                    act = payload.get("action") if isinstance(payload, dict) else None
                    if act and act["id"] in fake.actions:
                        fake.actions[act["id"]]["fail"] = fault.get("code", "action_failed")
            if fault is not None and fault["kind"] == "reset":
                call["status"] = None
                call["fault"] = "reset"
                sys.stderr.write("fake-hetzner: %s %s -> reset (after commit)\n" % (method, u.path))
                self.reset_connection()
                return
            if fault is not None and fault["kind"] == "malformed":
                raise _Malformed(status)
            text = json.dumps(payload)
        except ApiError as e:
            status = e.status
            text = json.dumps({"error": {"code": e.code, "message": e.message,
                                         "details": e.details}})
        except _Malformed as m:
            status = m.status
            text = '{"server": {"id": 12, "name": "trunc'
        with fake.lock:
            headers = fake.rate_headers()
            if "retry-after" in extra:
                headers["ratelimit-remaining"] = "0"
            fake.counters["by_status"][str(status)] = fake.counters["by_status"].get(str(status), 0) + 1
        headers.update(extra)
        headers["x-correlation-id"] = corr
        call["status"] = status
        call["fault"] = applied
        sys.stderr.write("fake-hetzner: %s %s -> %d%s\n" % (
            method, u.path, status, " (fault %s)" % applied if applied else ""))
        self.send_raw(status, text, headers)

    # -- the API ------------------------------------------------------------
    def api(self, fake, method, path, query, body):
        """Dispatches an authorized API call; returns (status, payload)."""
        m = re.fullmatch(r"/v1/servers", path)
        if m and method == "POST":
            return self.create_server(fake, body)
        if m and method == "GET":
            # ids only grow and dicts keep insertion order: already sorted by id
            items = list(fake.servers.values())
            if "name" in query:
                items = [s for s in items if s["name"] == query["name"][0]]
            if "status" in query:
                sts = set(query["status"])
                items = [s for s in items if s["status"] in sts]
            if "label_selector" in query:
                preds = parse_selector(query["label_selector"][0])
                items = [s for s in items if all(p(s["labels"]) for p in preds)]
            return 200, self.paginate("servers", items, query)
        m = re.fullmatch(r"/v1/servers/(\d+)", path)
        if m:
            s = fake.servers.get(int(m.group(1)))
            if s is None:
                raise ApiError("not_found", "server with ID '%s' not found" % m.group(1))
            if method == "GET":
                return 200, {"server": s}
            if method == "DELETE":
                s["status"] = "deleting"
                sid = s["id"]
                a = fake.new_action("delete_server", sid,
                                    lambda: fake.servers.pop(sid, None))
                return 200, {"action": a}
        m = re.fullmatch(r"/v1/servers/(\d+)/actions/(\w+)", path)
        if m and method == "POST":
            s = fake.servers.get(int(m.group(1)))
            if s is None:
                raise ApiError("not_found", "server with ID '%s' not found" % m.group(1))
            verb = m.group(2)
            moves = {"poweron": ("starting", "running", "start_server"),
                     "poweroff": ("stopping", "off", "stop_server"),
                     "shutdown": ("stopping", "off", "shutdown_server"),
                     "reboot": ("running", "running", "reboot_server"),
                     "reset": ("running", "running", "reset_server")}
            if verb not in moves:
                raise ApiError("not_found", "action '%s' not found" % verb)
            during, after, command = moves[verb]
            s["status"] = during
            a = fake.new_action(command, s["id"],
                                lambda: s.__setitem__("status", after))
            return 201, {"action": a}
        m = re.fullmatch(r"/v1/actions/(\d+)", path)
        if m and method == "GET":
            a = fake.poll(int(m.group(1)))
            if a is None:
                raise ApiError("not_found", "action with ID '%s' not found" % m.group(1))
            return 200, {"action": a}
        if path == "/v1/actions" and method == "GET":
            ids = []
            for v in query.get("id", []):
                if not v.isdigit():
                    raise invalid_input("id", "must be an integer")
                ids.append(int(v))
            items = [fake.poll(i) for i in ids]
            items = [a for a in items if a is not None]
            items.sort(key=lambda a: a["id"])
            return 200, self.paginate("actions", items, query)
        raise ApiError("not_found", "not found")

    def paginate(self, key, items, query):
        """One page of items with meta.pagination."""
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", ["25"])[0])
        except ValueError:
            raise invalid_input("page", "must be an integer")
        if page < 1 or per_page < 1:
            raise invalid_input("page", "must be positive")
        per_page = min(per_page, PER_PAGE_MAX)
        total = len(items)
        last = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        return {key: chunk, "meta": {"pagination": {
            "page": page, "per_page": per_page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last, "total_entries": total}}}

    def create_server(self, fake, body):
        """POST /v1/servers."""
        if not isinstance(body, dict):
            raise ApiError("invalid_input", "invalid input: body must be a JSON object")
        if "datacenter" in body:
            raise invalid_input("datacenter", "datacenter is deprecated and no longer accepted")
        for f in ("name", "server_type", "image"):
            if not isinstance(body.get(f), str) or not body[f]:
                raise invalid_input(f, "Missing data for required field.")
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?", body["name"]):
            raise invalid_input("name", "invalid hostname")
        ud = body.get("user_data")
        if ud is not None and (not isinstance(ud, str) or len(ud.encode()) > USER_DATA_MAX):
            raise invalid_input("user_data", "Length must be at most %d." % USER_DATA_MAX)
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise invalid_input("labels", "labels must be an object of strings")
        loc = body.get("location", "fsn1")
        if loc not in LOCATIONS:
            raise invalid_input("location", "location '%s' not found" % loc)
        if any(s["name"] == body["name"] for s in fake.servers.values()):
            raise ApiError("uniqueness_error", "server name is already used",
                           {"fields": [{"name": "name"}]})
        s = fake.make_server(body["name"], body["server_type"], body["image"], loc, labels)
        snap = json.loads(json.dumps(s))  # as created, even if the action completes at once
        start = body.get("start_after_create", True)
        a = fake.new_action("create_server", s["id"],
                            lambda: s.__setitem__("status", "running" if start else "off"))
        return 201, {"server": snap, "action": a, "next_actions": [],
                     "root_password": None}

    # -- the control API -------------------------------------------------------
    def control(self, fake, method, path, query, raw):
        """The /__fake/ endpoints; returns the status sent."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.send_raw(400, '{"error":"bad json"}', {})
            return 400
        out = {"ok": True}
        with fake.lock:
            if path == "/__fake/reset" and method == "POST":
                fake.reset()
            elif path == "/__fake/config" and method == "POST":
                if "ipv4_prefix" in body and not re.fullmatch(r"\d{1,3}", str(body["ipv4_prefix"])):
                    self.send_raw(400, '{"error":"ipv4_prefix must be a first octet, e.g. 127"}', {})
                    return 400
                for k in ("rate_limit", "refill_per_second", "action_polls", "action_seconds",
                          "ipv4_prefix"):
                    if k in body:
                        fake.config[k] = body[k]
                if "rate_limit" in body or "budget" in body:
                    fake.budget = float(body.get("budget", fake.config["rate_limit"]))
                    fake.budget_at = time.monotonic()
                out["config"] = fake.config
            elif path == "/__fake/faults" and method == "POST":
                flist = body if isinstance(body, list) else [body]
                for f in flist:
                    if not isinstance(f, dict) or "kind" not in f:
                        self.send_raw(400, '{"error":"a fault needs a kind"}', {})
                        return 400
                    if f["kind"] in ("resource_unavailable", "placement_error") \
                            and "path" not in f:
                        f.setdefault("method", "POST")
                        f["path"] = r"^/v1/servers$"
                    fake.faults.append(f)
                out["faults"] = fake.faults
            elif path == "/__fake/faults" and method == "DELETE":
                fake.faults = []
            elif path == "/__fake/seed" and method == "POST":
                count = int(body.get("count", 1))
                prefix = body.get("name_prefix", "seed-")
                ids = []
                for i in range(count):
                    s = fake.make_server("%s%d" % (prefix, i), body.get("server_type", "cx22"),
                                         body.get("image", "debian-12"),
                                         body.get("location", "fsn1"),
                                         body.get("labels", {}),
                                         body.get("status", "running"))
                    ids.append(s["id"])
                out["ids"] = ids
            elif re.fullmatch(r"/__fake/servers/\d+", path):
                sid = int(path.rsplit("/", 1)[1])
                if sid not in fake.servers:
                    self.send_raw(404, '{"error":"no such server"}', {})
                    return 404
                if method == "DELETE":
                    del fake.servers[sid]
                else:
                    fake.servers[sid].update(body)
                    out["server"] = fake.servers[sid]
            elif path == "/__fake/state" and method == "GET":
                want = lambda k: query.get(k, ["1"])[0] != "0"
                fake.refill()
                out = {"config": fake.config, "counters": fake.counters,
                       "budget": int(fake.budget), "faults": fake.faults,
                       "server_count": len(fake.servers)}
                if want("servers"):
                    out["servers"] = list(fake.servers.values())
                if want("actions"):
                    out["actions"] = [r["action"] for r in fake.actions.values()]
                if want("calls"):
                    out["calls"] = fake.calls
            else:
                self.send_raw(404, '{"error":"no such control endpoint"}', {})
                return 404
            text = json.dumps(out)
        self.send_raw(200, text, {})
        return 200


class _Malformed(Exception):
    """Answer with a truncated JSON body and this status."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def main():
    """Parses arguments, binds 127.0.0.1, serves until SIGTERM."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default=os.environ.get("FAKE_HETZNER_TOKEN", "test-token"))
    p.add_argument("--port-file")
    p.add_argument("--rate-limit", type=int, default=3600)
    p.add_argument("--refill", type=float, default=1.0)
    p.add_argument("--action-polls", type=int, default=1)
    a = p.parse_args()
    serve("fake-hetzner", Fake(a.token, a.rate_limit, a.refill, a.action_polls), Handler, a.port, a.port_file)


if __name__ == "__main__":
    main()
