"""Helpers to author webhook tests: signatures come from the openssl command
line (`openssl dgst -sha256 -hmac`), never from pgext, and are pasted into
sql/*.sql as literals.  Used only when (re)writing the tests."""
import base64
import json
import subprocess


def hmac_hex(secret, data, algo="sha256"):
    """HMAC of data (str) keyed by secret, lowercase hex, via openssl."""
    out = subprocess.run(["openssl", "dgst", "-" + algo, "-hmac", secret, "-r"],
                         input=data.encode(), capture_output=True, check=True).stdout
    return out.decode().split()[0]


def hmac_b64(secret, data, algo="sha256"):
    return base64.b64encode(bytes.fromhex(hmac_hex(secret, data, algo))).decode()


def stripe_header(secret, t, body, extra=""):
    return "t=%d,v1=%s%s" % (t, hmac_hex(secret, "%d.%s" % (t, body)), extra)


def event(evt_id, typ, created, obj, livemode=False):
    """A Stripe event envelope around obj, compact JSON (the exact signed bytes)."""
    return json.dumps({"id": evt_id, "object": "event", "api_version": "2025-03-31.basil",
                       "created": created, "livemode": livemode, "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None}, "type": typ,
                       "data": {"object": obj}}, separators=(",", ":"))


def q(s):
    """Dollar-quote a string for SQL."""
    assert "$b$" not in s
    return "$b$" + s + "$b$"


def ingest(secret, t, body, received=None, header=None, source="stripe"):
    """SQL calling webhook_ingest with a correctly signed delivery."""
    h = header if header is not None else stripe_header(secret, t, body)
    r = t if received is None else received
    return ("SELECT status, event_id FROM pgext.webhook_ingest('%s', %s, '%s', pg_catalog.to_timestamp(%d));"
            % (source, q(body), h, r))
