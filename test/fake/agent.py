#!/usr/bin/env python3
"""A fake fleet of agents' health endpoints for the pgext health poller's tests.

Many agents in one process: each agent is a loopback address (127.0.0.1 or
any 127.x.y.z; Linux routes all of 127/8 to lo) on the same port as the
control API, which lives on 127.0.0.1.  Every agent answers any path; what it
answers is set per (agent, path) by control calls: ok, fail, hang, flap,
reset, or refuse (the agent's listener is closed, so connections are
refused).  It counts requests and keeps the times of the last ones per
(agent, path).  Python 3 standard library only; see README.md.
"""
import argparse
import collections
import json
import os
import select
import socket
import sys
import threading
import time
from urllib.parse import urlsplit, parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakehttp import FakeHandler, Server, serve  # noqa: E402

MODES = ("ok", "fail", "hang", "flap", "reset", "refuse")
STEP_MODES = ("ok", "fail", "hang", "reset")
CONTROL_IP = "127.0.0.1"


class BadRequest(Exception):
    """A control call with a bad body (answered 400)."""


def check_ip(ip):
    """Validates a loopback IPv4 address; returns it."""
    parts = ip.split(".") if isinstance(ip, str) else []
    if len(parts) != 4 or parts[0] != "127" or \
            not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise BadRequest("ip must be a loopback IPv4 address 127.x.y.z: %r" % (ip,))
    return ".".join(str(int(p)) for p in parts)


def check_step(step, where):
    """Validates one mode object (or a bare mode name); returns the object."""
    if isinstance(step, str):
        step = {"mode": step}
    if not isinstance(step, dict) or step.get("mode") not in STEP_MODES:
        raise BadRequest("%s: mode must be one of %s" % (where, ", ".join(STEP_MODES)))
    return step


class AgentServer(Server):
    """A listener of the fake (the control one and each agent's)."""

    fake_quiet = False


class Agent:
    """One agent: its address, its listener (None while refused), its modes."""

    def __init__(self, ip):
        self.ip = ip
        self.server = None
        self.modes = {}          # path ("*" = any other path) -> mode object
        self.refused = False
        self.generation = 0      # bumped on every mode change: ends hangs


class Fake:
    """All state of the fake, guarded by one lock."""

    def __init__(self, keep):
        self.lock = threading.RLock()
        self.port = None
        self.default_keep = keep
        self.agents = {}
        self.reset_state()

    def reset_state(self):
        """Counters and times cleared, config back to default (agents untouched)."""
        self.keep = self.default_keep
        self.counts = {}         # (ip, path) -> requests
        self.times = {}          # (ip, path) -> deque of unix times
        self.flap_pos = {}       # (ip, path) -> next index into the pattern
        self.by_mode = {}        # mode applied -> requests
        self.hanging = {}        # ip -> connections held now
        self.requests = 0

    # -- listeners -------------------------------------------------------------
    def agent(self, ip):
        """The agent at ip, created (and listening) if it is new."""
        ag = self.agents.get(ip)
        if ag is None:
            ag = Agent(ip)
            self.agents[ip] = ag
            self.open(ag)
        return ag

    def open(self, ag):
        """Starts the agent's listener (the control listener serves 127.0.0.1)."""
        ag.refused = False
        if ag.ip == CONTROL_IP or ag.server is not None:
            return
        srv = AgentServer((ag.ip, self.port), Handler)
        srv.fake = self
        ag.server = srv
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self, ag):
        """Closes the agent's listener: new connections are refused."""
        srv, ag.server = ag.server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()

    # -- modes -----------------------------------------------------------------
    def set_mode(self, spec):
        """Applies one mode object {ip, path?, mode, status?, seconds?, pattern?, body?}."""
        if not isinstance(spec, dict):
            raise BadRequest("a mode must be an object")
        ips = spec.get("ips") if "ips" in spec else [spec.get("ip")]
        if not isinstance(ips, list) or not ips:
            raise BadRequest("ips must be a list of addresses")
        ips = [check_ip(ip) for ip in ips]
        mode = spec.get("mode")
        if mode not in MODES:
            raise BadRequest("mode must be one of %s" % ", ".join(MODES))
        path = spec.get("path", "*")
        if not isinstance(path, str) or not (path == "*" or path.startswith("/")):
            raise BadRequest("path must be \"*\" or start with /")
        m = {k: v for k, v in spec.items() if k not in ("ip", "ips", "path")}
        if mode == "flap":
            pat = spec.get("pattern")
            if not isinstance(pat, list) or not pat:
                raise BadRequest("flap needs a pattern: a non-empty list of modes")
            m["pattern"] = [check_step(s, "pattern") for s in pat]
        if mode == "refuse" and CONTROL_IP in ips:
            raise BadRequest("127.0.0.1 carries the control API and cannot refuse")
        for ip in ips:
            ag = self.agent(ip)
            ag.generation += 1
            if mode == "refuse":
                ag.refused = True
                self.close(ag)
                continue
            if ag.refused:
                self.open(ag)
            ag.modes[path] = m
            self.flap_pos.pop((ip, path), None)
        return ips

    def step(self, ip, path):
        """Counts a request; returns (mode object, agent generation) to apply."""
        now = time.time()
        with self.lock:
            ag = self.agents.get(ip)
            if ag is None:          # 127.0.0.1 before any call, or a deleted agent
                ag = Agent(ip)
                if ip == CONTROL_IP:
                    self.agents[ip] = ag
            key = (ip, path)
            self.requests += 1
            self.counts[key] = self.counts.get(key, 0) + 1
            dq = self.times.get(key)
            if dq is None or dq.maxlen != self.keep:
                dq = collections.deque(dq or (), maxlen=self.keep)
                self.times[key] = dq
            dq.append(now)
            mpath = path if path in ag.modes else "*"
            m = ag.modes.get(mpath, {"mode": "ok"})
            if m["mode"] == "flap":
                i = self.flap_pos.get((ip, mpath), 0)
                self.flap_pos[(ip, mpath)] = i + 1
                m = m["pattern"][i % len(m["pattern"])]
            self.by_mode[m["mode"]] = self.by_mode.get(m["mode"], 0) + 1
            return m, ag.generation

    def state(self, only_ip, with_times):
        """The state as a JSON-able dict."""
        agents = {}
        for ip, ag in sorted(self.agents.items()):
            if only_ip and ip != only_ip:
                continue
            agents[ip] = {"listening": ip == CONTROL_IP or ag.server is not None,
                          "modes": ag.modes, "refused": ag.refused,
                          "hanging": self.hanging.get(ip, 0), "paths": {}}
        for (ip, path), n in sorted(self.counts.items()):
            if ip not in agents:
                continue
            p = {"count": n}
            if with_times:
                p["times"] = list(self.times.get((ip, path), ()))
            agents[ip]["paths"][path] = p
        return {"port": self.port, "keep": self.keep, "requests": self.requests,
                "by_mode": self.by_mode, "agents": agents}


class Handler(FakeHandler):
    """One request: to the control API (127.0.0.1, /__fake/...) or to an agent."""

    def handle_one(self, method):
        fake = self.server.fake
        u = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        ip = self.connection.getsockname()[0]
        if ip == CONTROL_IP and u.path.startswith("/__fake/"):
            status = self.control(fake, method, u.path, parse_qs(u.query), raw)
            self.log_line(ip, method, u.path, status, "control")
            return
        m, gen = fake.step(ip, u.path)
        self.agent_answer(fake, ip, method, u.path, m, gen)

    def log_line(self, ip, method, path, status, what):
        """One line per request to stderr (unless --quiet)."""
        if self.server.fake_quiet:
            return
        sys.stderr.write("fake-agent: %s %s %s -> %s (%s)\n" % (ip, method, path, status, what))
        sys.stderr.flush()

    def agent_answer(self, fake, ip, method, path, m, gen):
        """Answers as an agent in mode m."""
        mode = m["mode"]
        if mode == "reset":
            self.log_line(ip, method, path, "RST", mode)
            self.reset_connection()
            return
        if mode == "hang":
            if not self.hold(fake, ip, gen, m.get("seconds")):
                self.log_line(ip, method, path, "-", "hang, client left")
                self.close_connection = True
                return
            m = {"mode": "ok"}
        if mode == "fail":
            status = int(m.get("status", 503))
            body = m.get("body", {"status": "fail", "agent": ip, "path": path})
        else:
            status = int(m.get("status", 200)) if mode == "ok" else 200
            body = m.get("body", {"status": "ok", "agent": ip, "path": path})
        self.log_line(ip, method, path, status, mode)
        try:
            self.send_raw(status, json.dumps(body), {})
        except OSError:
            self.close_connection = True

    def hold(self, fake, ip, gen, seconds):
        """Holds the connection: True when `seconds` passed (then answer ok),
        False when the client left or the agent's modes changed."""
        conn = self.connection
        deadline = None if seconds is None else time.monotonic() + float(seconds)
        with fake.lock:
            fake.hanging[ip] = fake.hanging.get(ip, 0) + 1
        try:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    return True
                with fake.lock:
                    ag = fake.agents.get(ip)
                    if ag is None or ag.generation != gen:
                        return False
                r, _, _ = select.select([conn], [], [], 0.05)
                if r:
                    try:
                        data = conn.recv(1, socket.MSG_PEEK)
                    except OSError:
                        return False
                    if not data:
                        return False
                    time.sleep(0.05)   # a pipelined request: keep holding
        finally:
            with fake.lock:
                fake.hanging[ip] -= 1

    # -- the control API -------------------------------------------------------
    def control(self, fake, method, path, query, raw):
        """The /__fake/ endpoints; returns the status sent."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.send_raw(400, '{"error":"bad json"}', {})
            return 400
        out = {"ok": True}
        try:
            with fake.lock:
                if path == "/__fake/reset" and method == "POST":
                    for ag in list(fake.agents.values()):
                        ag.generation += 1
                        fake.close(ag)
                    fake.agents = {}
                    fake.reset_state()
                elif path == "/__fake/counts" and method == "DELETE":
                    keep = fake.keep
                    fake.reset_state()
                    fake.keep = keep
                elif path == "/__fake/config" and method == "POST":
                    if "keep" in body:
                        if not isinstance(body["keep"], int) or body["keep"] < 1:
                            raise BadRequest("keep must be a positive integer")
                        fake.keep = body["keep"]
                    out["config"] = {"keep": fake.keep}
                elif path == "/__fake/agents" and method == "POST":
                    ips = body.get("ips") if "ips" in body else [body.get("ip")]
                    if not isinstance(ips, list):
                        raise BadRequest("ips must be a list of addresses")
                    ips = [check_ip(ip) for ip in ips]
                    for ip in ips:
                        fake.agent(ip)
                    out["agents"] = ips
                elif path.startswith("/__fake/agents/") and method == "DELETE":
                    ip = check_ip(path.rsplit("/", 1)[1])
                    ag = fake.agents.pop(ip, None)
                    if ag is not None:
                        ag.generation += 1
                        fake.close(ag)
                    out["deleted"] = ag is not None
                elif path == "/__fake/mode" and method == "POST":
                    specs = body if isinstance(body, list) else [body]
                    out["agents"] = [ip for s in specs for ip in fake.set_mode(s)]
                elif path == "/__fake/state" and method == "GET":
                    only = query.get("ip", [None])[0]
                    with_times = query.get("times", ["1"])[0] != "0"
                    out = fake.state(only, with_times)
                else:
                    self.send_raw(404, '{"error":"no such control endpoint"}', {})
                    return 404
                text = json.dumps(out)
        except BadRequest as e:
            self.send_raw(400, json.dumps({"error": str(e)}), {})
            return 400
        except OSError as e:
            self.send_raw(409, json.dumps({"error": "cannot listen: %s" % e}), {})
            return 409
        self.send_raw(200, text, {})
        return 200


def main():
    """Parses arguments, binds 127.0.0.1, serves until SIGTERM or the parent's exit."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--token", help="accepted and ignored (the fakes share one launcher)")
    p.add_argument("--keep", type=int, default=1000,
                   help="request times kept per agent and path (default 1000)")
    p.add_argument("--quiet", action="store_true", help="no line per request on stderr")
    a = p.parse_args()
    fake = Fake(a.keep)

    AgentServer.fake_quiet = a.quiet

    class _Server(AgentServer):
        """The control listener: learns the port agents bind as soon as it is bound."""

        def server_bind(self):
            super().server_bind()
            fake.port = self.server_address[1]

    serve("fake-agent", fake, Handler, a.port, a.port_file, server_class=_Server)


if __name__ == "__main__":
    main()
