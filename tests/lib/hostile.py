"""Hostile and well-behaved clients of the gateway, run INSIDE the test host.

Standard library only (the test host has python3, curl and nothing else we need):
every request can come from its own loopback source address (any 127.x.y.z, or an
fd00:: address the caller put on lo), which the gateway sees as a distinct client.
Traffic goes to the host's own nginx on loopback and nowhere else.

    python3 hostile.py CASE --tokens /root/iso-tokens.json

prints one JSON object with what was sent and what came back; the Molecule tests
(molecule/isolation/tests) and tests/lib/chaos.py decide what is acceptable.
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
import time

CA_FILE = "/etc/mcpsec/tls/fullchain.pem"
SERVER_NAME = "localhost"
PROTOCOL_VERSION = "2025-06-18"
LONG_TOOL = "trigger-long-running-operation"
# A victim call stuck behind a desynchronised connection waits for proxy_read_timeout (an
# hour) or gets a 400; a healthy one answers in milliseconds, seconds on a loaded host.
VICTIM_TIMEOUT_S = 8.0

_CTX = None


def context() -> ssl.SSLContext:
    global _CTX
    if _CTX is None:
        ctx = ssl.create_default_context(cafile=CA_FILE)
        ctx.set_alpn_protocols(["http/1.1"])
        _CTX = ctx
    return _CTX


class Conn(http.client.HTTPSConnection):
    """HTTPS to the gateway on loopback from a chosen source address (verified, SNI localhost)."""

    def __init__(self, source: str | None = None, dest: str | None = None, port: int = 443, timeout: float = 10.0):
        dest = dest or ("::1" if source and ":" in source else "127.0.0.1")
        super().__init__(dest, port, timeout=timeout, context=context(),
                         source_address=(source, 0) if source else None)

    def connect(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            if self.source_address:
                sock.bind(self.source_address)
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context().wrap_socket(sock, server_hostname=SERVER_NAME)


class Result:
    __slots__ = ("status", "headers", "body", "elapsed", "error")

    def __init__(self, status=0, headers=None, body=b"", elapsed=0.0, error=""):
        self.status, self.headers, self.body, self.elapsed, self.error = status, headers or {}, body, elapsed, error

    def messages(self) -> list:
        """The JSON body as a one-item list, or every JSON message of an SSE body."""
        text = self.body.decode("utf-8", "replace")
        try:
            return [json.loads(text)]
        except ValueError:
            pass
        out = []
        for line in text.split("\n"):
            if line.startswith("data:"):
                try:
                    out.append(json.loads(line[5:].strip()))
                except ValueError:
                    continue
        return out

    def json(self):
        """The JSON-RPC response (a server may send notifications first on the stream); None if none."""
        msgs = self.messages()
        for m in msgs:
            if isinstance(m, dict) and ("result" in m or "error" in m):
                return m
        return msgs[0] if msgs else None

    def reason(self) -> str:
        doc = self.json()
        try:
            message = doc["error"]["message"]
        except (TypeError, KeyError):
            return ""
        return message.split(": ", 1)[1] if ": " in message else message


def request(method: str, path: str, headers: dict | None = None, body: bytes | str | None = None,
            source: str | None = None, timeout: float = 10.0, conn: Conn | None = None) -> Result:
    """One request on a new connection (or on conn); never raises for network errors."""
    start = time.monotonic()
    own = conn is None
    c = conn or Conn(source, timeout=timeout)
    try:
        h = {"Host": SERVER_NAME}
        h.update(headers or {})
        c.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=h)
        r = c.getresponse()
        data = r.read()
        return Result(r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - start)
    except (OSError, http.client.HTTPException) as exc:
        return Result(0, elapsed=time.monotonic() - start, error=type(exc).__name__ + ": " + str(exc)[:120])
    finally:
        if own:
            c.close()


def raw_exchange(payload: bytes, source: str | None = None, timeout: float = 5.0) -> bytes:
    """Send bytes as they are over TLS (framing of our choosing) and return the first bytes back."""
    with socket.create_connection(("127.0.0.1", 443), timeout=timeout,
                                  source_address=(source, 0) if source else None) as sock:
        with context().wrap_socket(sock, server_hostname=SERVER_NAME) as tls:
            tls.sendall(payload)
            try:
                return tls.recv(4096)
            except OSError:
                return b""


# ---------------------------------------------------------------- MCP

def rpc_text(method: str, params: dict | None = None, id_: int | str | None = 1) -> str:
    # The body as JSON text (mcp_wire.rpc is the dict: one meaning per name across tests/lib).
    msg: dict = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        msg["id"] = id_
    if params is not None:
        msg["params"] = params
    return json.dumps(msg)


class Mcp:
    """One user's MCP session through the gateway (raw HTTP, like enforcement.py's)."""

    def __init__(self, token: str, source: str | None = None):
        self.token, self.source, self.sid = token, source, None

    def headers(self, sid: str | None = None) -> dict:
        h = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json",
             "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": PROTOCOL_VERSION}
        if sid:
            h["Mcp-Session-Id"] = sid
        return h

    def post(self, body: str, sid: str | None = None, source: str | None = None, timeout: float = 10.0) -> Result:
        return request("POST", "/mcp", self.headers(sid), body, source or self.source, timeout)

    def open(self, timeout: float = 30.0) -> Result:
        r = self.post(rpc_text("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                              "clientInfo": {"name": "mcpsec-isolation", "version": "1"}}),
                      timeout=timeout)
        if r.status == 200 and r.headers.get("mcp-session-id"):
            sid = r.headers["mcp-session-id"]
            n = self.post(rpc_text("notifications/initialized", id_=None), sid=sid, timeout=timeout)
            if n.status in (200, 202):
                self.sid = sid
            else:
                r = n
        return r

    def call(self, tool: str, arguments: dict | None = None, id_: int = 1, source: str | None = None,
             timeout: float = 10.0) -> Result:
        return self.post(rpc_text("tools/call", {"name": tool, "arguments": arguments or {}}, id_), sid=self.sid,
                         source=source, timeout=timeout)

    def close(self) -> Result:
        r = request("DELETE", "/mcp", self.headers(self.sid), None, self.source)
        self.sid = None
        return r


def echo_ok(r: Result, message: str) -> bool:
    doc = r.json()
    return r.status == 200 and isinstance(doc, dict) and "result" in doc and message in json.dumps(doc["result"])


# ---------------------------------------------------------------- hostile /health requests

def desync_h1(source: str, full_body: bool) -> str:
    """GET /health announcing a 5000-byte body (all of it, or 100 bytes of it)."""
    body = b"x" * (5000 if full_body else 100)
    head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n"
    first = raw_exchange(head + body, source)
    return first.split(b"\r\n", 1)[0].decode("latin-1")


def desync_chunked(source: str) -> str:
    """GET /health with a chunked body."""
    payload = (b"GET /health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"10\r\n" + b"y" * 16 + b"\r\n0\r\n\r\n")
    return raw_exchange(payload, source).split(b"\r\n", 1)[0].decode("latin-1")


def desync_h2(source: str, path: str = "/tmp/mcpsec-body-5000") -> str:
    """GET /health over HTTP/2 with Content-Length: 5000 and a 5000-byte body (curl)."""
    with open(path, "wb") as f:
        f.write(b"z" * 5000)
    out = subprocess.run(["curl", "-s", "--http2", "--cacert", CA_FILE, "--resolve", "localhost:443:127.0.0.1",
                          "--interface", source, "-o", "/dev/null", "-w", "%{http_code} HTTP/%{http_version}",
                          "-X", "GET", "-H", "Content-Length: 5000", "--data-binary", "@" + path,
                          "--max-time", "10", "https://localhost/health"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "curl rc=%d" % out.returncode


def source_v4(block: int, n: int) -> str:
    """The n-th distinct 127.<block>.x.y address (n < 65024)."""
    return "127.%d.%d.%d" % (block, 1 + n // 254, 1 + n % 254)


# ---------------------------------------------------------------- cases

def case_desync(tokens: dict, rounds: int = 24) -> dict:
    """Hostile /health requests (HTTP/1.1 full and short bodies, chunked, HTTP/2), each followed
    at once by another user's tools/call: every call must succeed, promptly."""
    victim = Mcp(tokens["alice"], "127.0.0.1")
    opened = victim.open()
    if victim.sid is None:
        return {"error": "alice could not open a session: %d %s" % (opened.status, opened.error)}
    hostile: dict[str, int] = {}
    calls, failures, slowest = 0, [], 0.0
    kinds = ("h1-full-body", "h1-short-body", "h1-chunked", "h2")
    for i in range(rounds):
        kind = kinds[i % len(kinds)]
        src = source_v4(60, i)
        line = {"h1-full-body": lambda: desync_h1(src, True), "h1-short-body": lambda: desync_h1(src, False),
                "h1-chunked": lambda: desync_chunked(src), "h2": lambda: desync_h2(src)}[kind]()
        key = "%s: %s" % (kind, line)
        hostile[key] = hostile.get(key, 0) + 1
        for j in range(2):   # both workers' keep-alive pools: the next calls take the freshest connection
            message = "victim-%d-%d" % (i, j)
            r = victim.call("echo", {"message": message}, id_=i * 10 + j, timeout=VICTIM_TIMEOUT_S)
            calls += 1
            slowest = max(slowest, r.elapsed)
            if not echo_ok(r, message):
                failures.append({"after": kind, "status": r.status, "error": r.error, "elapsed": round(r.elapsed, 3),
                                 "body": r.body[:160].decode("utf-8", "replace")})
    victim.close()
    return {"hostile": hostile, "victim_calls": calls, "victim_failures": failures,
            "victim_slowest_s": round(slowest, 3)}


def case_health_methods(tokens: dict) -> dict:
    out = {}
    for i, method in enumerate(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")):
        body = '{"a":1}' if method in ("POST", "PUT", "PATCH") else None
        r = request(method, "/health", {"Content-Type": "application/json"}, body, source_v4(61, i))
        doc = None
        try:
            doc = json.loads(r.body.decode()) if r.body else None
        except ValueError:
            pass
        out[method] = {"status": r.status, "allow": r.headers.get("allow", ""),
                       "content_type": r.headers.get("content-type", ""), "json": doc,
                       "html": b"<html" in r.body.lower() or b"<!doctype" in r.body.lower()}
    return out


def burst_health(source: str, n: int) -> list[int]:
    """n /health requests from one source on one keep-alive connection, as fast as possible."""
    conn = Conn(source)
    statuses = []
    try:
        for _i in range(n):
            statuses.append(request("GET", "/health", None, None, conn=conn).status)
    finally:
        conn.close()
    return statuses


def case_health_rate(tokens: dict) -> dict:
    """60 /health at once from one address, then 5 more right away on the same connection
    (10 r/s refills one every 100 ms: most of the 5 still meet the limit), then another address."""
    conn = Conn("127.0.62.1")
    try:
        got = [request("GET", "/health", None, None, conn=conn).status for _i in range(60)]
        more = [request("GET", "/health", None, None, conn=conn) for _i in range(5)]
    finally:
        conn.close()
    limited = [r for r in more if r.status == 429]
    after = request("GET", "/health", None, None, "127.0.62.2")
    return {"burst": {str(s): got.count(s) for s in sorted(set(got))},
            "same_address_after": {"statuses": [r.status for r in more],
                                   "retry_after": limited[0].headers.get("retry-after") if limited else None,
                                   "json": limited[0].json() if limited else None},
            "other_address_after": after.status}


def alternating_health(first: str, second: str, n: int) -> int:
    """n /health requests alternating between two sources as fast as possible; how many got 200."""
    conns = [Conn(first), Conn(second)]
    ok = 0
    try:
        for i in range(n):
            ok += request("GET", "/health", None, None, conn=conns[i % 2]).status == 200
    finally:
        for c in conns:
            c.close()
    return ok


def case_net64(tokens: dict) -> dict:
    """/health per-address limit (10 r/s, burst 20): two addresses of one IPv6 /64 share one
    allowance, two addresses in different /64s have one each; IPv4 keeps one per address."""
    same = alternating_health("fd00:1:2:3::a", "fd00:1:2:3::b", 80)
    diff = alternating_health("fd00:1:2:4::a", "fd00:1:2:7::a", 80)
    v4 = alternating_health("127.0.63.1", "127.0.63.2", 80)
    # the failed-authentication throttle (njs) keys IPv6 by /64 too
    bad = {"Authorization": "Bearer " + "0" * 48, "Content-Type": "application/json",
           "Accept": "application/json, text/event-stream"}
    # (windows are clock minutes: failures spread over two need up to twice 50 to meet it)
    fails = []
    for _i in range(110):
        fails.append(request("POST", "/mcp", bad, rpc_text("ping"), "fd00:1:2:5::a").status)
        if fails[-1] != 401:
            break
    same_net = Mcp(tokens["alice"], "fd00:1:2:5::b").open()
    other_net = Mcp(tokens["alice"], "fd00:1:2:6::a")
    other_open = other_net.open()
    if other_net.sid:
        other_net.close()
    return {"auth_failures_from_fd00:1:2:5::a": {str(s): fails.count(s) for s in sorted(set(fails))},
            "right_token_same_64_fd00:1:2:5::b": "%d %s" % (same_net.status, same_net.reason()),
            "right_token_other_64_fd00:1:2:6::a": "%d %s" % (other_open.status, other_open.reason()),
            "health_200_of_80_two_addresses_one_64": same, "health_200_of_80_two_64s": diff,
            "health_200_of_80_two_ipv4_addresses": v4}


def concurrent_calls(jobs: list[tuple[Mcp, str]], seconds: int = 3) -> list[tuple[str, int, str]]:
    """All jobs (session, source) at once, each a long-running tools/call; (user, status, reason)."""
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, mcp, src):
        barrier.wait()
        r = mcp.call(LONG_TOOL, {"duration": seconds, "steps": 1}, id_=i + 1, source=src, timeout=seconds + 10)
        results[i] = (mcp.token[:4], r.status, r.reason() or r.error)

    threads = [threading.Thread(target=run, args=(i, m, s)) for i, (m, s) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def case_conn_subject(tokens: dict) -> dict:
    """One subject's concurrent requests from two addresses: per_user.connections (4) admitted."""
    dave = Mcp(tokens["dave"], "127.0.64.1")
    dave.open()
    jobs = [(dave, "127.0.64.1")] * 3 + [(dave, "127.0.64.2")] * 3
    res = concurrent_calls(jobs)
    dave.close()
    return {"statuses": sorted(r[1] for r in res), "reasons": sorted({r[2] for r in res if r[1] != 200})}


def case_conn_address(tokens: dict) -> dict:
    """Three subjects, three calls each, from one address: per_ip.connections (8) admitted."""
    users = [Mcp(tokens[u], "127.0.65.1") for u in ("alice", "carol", "dave")]
    for u in users:
        u.open()
    jobs = [(u, "127.0.65.1") for u in users for _i in range(3)]
    res = concurrent_calls(jobs)
    other = users[0].call("echo", {"message": "other-address"}, source="127.0.65.2")
    for u in users:
        u.close()
    return {"statuses": sorted(r[1] for r in res), "reasons": sorted({r[2] for r in res if r[1] != 200}),
            "other_address_after": other.status}


def wait_healthy(limit_s: float = 60.0) -> float:
    """Seconds until the chain's /health answers 200 (from its own address)."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if request("GET", "/health", None, None, "127.0.66.99", timeout=2.0).status == 200:
            return time.monotonic() - start
        time.sleep(0.25)
    return -1.0


def instance_ports() -> list[int]:
    """The loopback port of every supergateway instance unit (template units mcpsec-supergateway@N)."""
    units = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "mcpsec-supergateway@*.service"],
                           capture_output=True, text=True, check=True).stdout.split()
    ports = []
    for unit in (u for u in units if u.startswith("mcpsec-supergateway@") and u.endswith(".service")):
        env = subprocess.run(["systemctl", "show", "-p", "Environment", "--value", unit],
                             capture_output=True, text=True, check=True).stdout.split()
        ports += [int(e.split("=", 1)[1]) for e in env if e.startswith("MCPSEC_INSTANCE_PORT=")]
    return sorted(ports)


def wait_instances(limit_s: float = 60.0) -> float:
    """Seconds until every supergateway instance answers its own health endpoint (the chain's
    /health is 200 as soon as one of them does)."""
    start = time.monotonic()
    ports = instance_ports()
    assert ports, "no supergateway instance unit found"
    while time.monotonic() - start < limit_s:
        up = 0
        for port in ports:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
                c.request("GET", "/healthz")
                up += c.getresponse().status == 200
                c.close()
            except OSError:
                pass
        if up == len(ports):
            return time.monotonic() - start
        time.sleep(0.25)
    return -1.0


def case_host_cap(tokens: dict) -> dict:
    """Fill the host's session cap (proxy_max_sessions_total), restart supergateway (it forgets
    every session): the next initialize must get in (the lost slots are reclaimed)."""
    opened, answers = [], []
    users = ["alice", "carol", "dave"]
    for i in range(12):
        m = Mcp(tokens[users[i % 3]], "127.0.66.%d" % (1 + i % 3))
        r = m.open(timeout=30.0)
        answers.append((users[i % 3], r.status, r.reason(), r.headers.get("retry-after")))
        if m.sid:
            opened.append(m)
        elif r.status == 503:
            break
    bob = Mcp(tokens["bob"], "127.0.66.4")
    full = bob.open(timeout=30.0)
    restart = subprocess.run(["systemctl", "restart", "mcpsec-supergateway@*.service"], capture_output=True, check=False)
    healthy = wait_healthy()
    after = bob.open(timeout=30.0)
    # every instance back (the stale session's own may start last): the session is unknown there
    every = wait_instances()
    healthy = -1.0 if every < 0 or healthy < 0 else round(healthy + every, 2)
    stale = opened[0].call("echo", {"message": "stale"}) if opened else None
    if bob.sid:
        bob.close()
    return {"opened": len(opened), "answers": answers,
            "full": {"status": full.status, "reason": full.reason(), "retry_after": full.headers.get("retry-after")},
            "restart_rc": restart.returncode, "healthy_after_s": round(healthy, 2),
            "after_restart": {"status": after.status, "reason": after.reason(), "error": after.error},
            "stale_session_call": stale.status if stale else None}


def race_open(clients: list[Mcp]) -> list[tuple[int, str, str]]:
    """Every client's initialize at the same instant (a barrier); (status, reason, retry-after)."""
    results: list = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def run(i, mcp):
        barrier.wait()
        r = mcp.open(timeout=30.0)
        results[i] = (r.status, r.reason() or r.error, r.headers.get("retry-after") or "")

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def case_session_race(tokens: dict) -> dict:
    """Issue 13 item 5 on the real chain: 3x the cap of concurrent initializes, each from its own
    address (both nginx workers take them), admit exactly the cap: one subject (max_per_user 3,
    9 at once), then the host (proxy_max_sessions_total 8, 24 at once from four subjects whose
    caps add up to 12). Every admitted session is closed again (DELETE frees its slots)."""
    out = {}
    races = (("user", ["dave"] * 9, "127.0.70."),
             ("host", ["alice", "bob", "carol", "dave"] * 6, "127.0.71."))
    for name, users, prefix in races:
        clients = [Mcp(tokens[u], prefix + str(1 + i)) for i, u in enumerate(users)]
        res = race_open(clients)
        admitted = [c for c in clients if c.sid]
        closed = [c.close().status for c in admitted]
        out[name] = {"n": len(clients), "admitted": len(admitted),
                     "answers": {"%d %s" % (st, re): sum(1 for x in res if x[0] == st and x[1] == re)
                                 for st, re in {(x[0], x[1]) for x in res}},
                     "refused_without_retry_after": sum(1 for x in res if x[0] != 200 and not x[2]),
                     "closed": closed}
    return out


def case_refusal_flood(tokens: dict) -> dict:
    """1,000 random session ids from one address, then an ordinary client elsewhere."""
    bob = Mcp(tokens["bob"], "127.0.67.1")
    conn = Conn("127.0.67.1")
    statuses = []
    try:
        for i in range(1000):
            statuses.append(request("POST", "/mcp", bob.headers("random-%d-%s" % (i, time.time())), rpc_text("ping", id_=i),
                                    conn=conn).status)
    finally:
        conn.close()
    alice = Mcp(tokens["alice"], "127.0.67.2")
    alice.open()
    ok = alice.call("echo", {"message": "ordinary"})
    mistakes = [alice.post(rpc_text("ping"), sid="typo-%d" % i).status for i in range(5)]
    ok2 = alice.call("echo", {"message": "still fine"})
    alice.close()
    return {"flood": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "other_address": ok.status, "a_few_mistakes": mistakes, "after_mistakes": ok2.status}


# ---------------------------------------------------------------- issue 19: processes and ids

def session_children() -> int:
    """MCP server processes: the direct children of every supergateway instance's main process
    (supergateway starts one per backend session, before its SDK has looked at the request)."""
    units = subprocess.run(["systemctl", "list-units", "--plain", "--no-legend", "--state=active",
                            "mcpsec-supergateway@*.service"], capture_output=True, text=True, check=True).stdout.split()
    mains = set()
    for unit in (u for u in units if u.startswith("mcpsec-supergateway@") and u.endswith(".service")):
        pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit],
                             capture_output=True, text=True, check=True).stdout.strip()
        if pid and pid != "0":
            mains.add(pid)
    table = subprocess.run(["ps", "-A", "-o", "ppid="], capture_output=True, text=True, check=True).stdout.split()
    return sum(1 for ppid in table if ppid in mains)


class Sampler:
    """The largest session_children() seen while it runs (every 0.1 s, bounded by its stop)."""

    def __init__(self):
        self.peak, self.samples, self._stop = 0, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, session_children())
            self.samples += 1
            time.sleep(0.1)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)


def initialize_body(**params) -> str:
    p = {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "mcpsec-spawn", "version": "1"}}
    p.update(params)
    return rpc_text("initialize", p)


def spawn_variants(token: str, source: str) -> dict:
    """60 initializes the backend would refuse only after starting a server process: 20 without
    text/event-stream in Accept, 20 with a Content-Type other than JSON, 20 with malformed params."""
    base = {"Authorization": "Bearer " + token}
    variants = [({"Content-Type": "application/json", "Accept": "application/json"}, initialize_body())] * 20
    variants += [({"Content-Type": "text/plain", "Accept": "application/json, text/event-stream"}, initialize_body())] * 20
    bad = [{"protocolVersion": PROTOCOL_VERSION, "capabilities": {}},
           {"protocolVersion": 5, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
           {"protocolVersion": PROTOCOL_VERSION, "capabilities": [], "clientInfo": {"name": "x", "version": "1"}},
           {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "x"}}]
    variants += [({"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
                  rpc_text("initialize", bad[i % 4])) for i in range(20)]
    answers: dict = {}
    for headers, body in variants:
        h = dict(base)
        h.update(headers)
        r = request("POST", "/mcp", h, body, source)
        key = "%d %s" % (r.status, r.reason())
        answers[key] = answers.get(key, 0) + 1
    return answers


def spawn_variants_one(token: str, source: str, n: int) -> dict:
    """One of spawn_variants' kinds (n picks it): {"status reason": 1}."""
    headers = [({"Content-Type": "application/json", "Accept": "application/json"}, initialize_body()),
               ({"Content-Type": "text/plain", "Accept": "application/json, text/event-stream"}, initialize_body()),
               ({"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
                rpc_text("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}}))][n % 3]
    h = {"Authorization": "Bearer " + token}
    h.update(headers[0])
    r = request("POST", "/mcp", h, headers[1], source)
    return {"%d %s" % (r.status, r.reason()): 1}


def aborted_initializes(token: str, source: str, n: int) -> None:
    """n initializes whose client closes the connection after sending, before the answer.

    The close waits 0.1 s: closing at once races the request itself (TLS 1.3 session tickets
    the client never read turn its close into a RST, which can reach nginx before nginx read the
    request, and then no request exists at all). 0.1 s is long enough for nginx to read it and
    short of the time the backend takes to start a server process and answer."""
    body = initialize_body().encode()
    head = ("POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n" % (SERVER_NAME, token, len(body)))
    for _i in range(n):
        with socket.create_connection(("127.0.0.1", 443), timeout=5.0, source_address=(source, 0)) as sock:
            with context().wrap_socket(sock, server_hostname=SERVER_NAME) as tls:
                tls.sendall(head.encode() + body)
                time.sleep(0.1)


def case_spawn(tokens: dict) -> dict:
    """Issue 19 item 2: whatever clients send and whatever restarts happen, the MCP server
    processes never outnumber the host's session cap (proxy_max_sessions_total)."""
    before = session_children()
    with Sampler() as sampler:
        variants = spawn_variants(tokens["bob"], "127.0.72.1")
        time.sleep(1.0)
        after_variants = session_children()
        aborted_initializes(tokens["dave"], "127.0.72.2", 10)
        time.sleep(3.0)                  # the backend answers each; the gateway binds them (counted)
        after_aborted = session_children()
        dave = Mcp(tokens["dave"], "127.0.72.3")
        capped = dave.open(timeout=30.0)  # dave's cap (3) holds the sessions of the aborted ones
        restart = subprocess.run(["systemctl", "restart", "nginx"], capture_output=True, check=False).returncode
        time.sleep(1.0)
        after_restart = session_children()
        wait_healthy()
        wait_instances()
        # after the restart nobody holds a slot: a subject gets exactly its cap again
        reopened = [Mcp(tokens["dave"], "127.0.72.4") for _i in range(4)]
        statuses = [m.open(timeout=30.0).status for m in reopened]
        for m in reopened:
            if m.sid:
                m.close()
    return {"before": before, "variants": variants, "after_variants": after_variants,
            "after_aborted": after_aborted, "dave_after_aborted": "%d %s" % (capped.status, capped.reason()),
            "nginx_restart_rc": restart, "after_restart": after_restart, "dave_after_restart": statuses,
            "peak": sampler.peak, "samples": sampler.samples}


def list_names(r: Result) -> list:
    doc = r.json() or {}
    return [t.get("name") for t in ((doc.get("result") or {}).get("tools") or [])]


def case_id_race(tokens: dict, rounds: int = 50) -> dict:
    """Issue 19 item 4: tools/list and ping with one id in one session, at once, while the
    server child is kept busy by a large echo: a list answer only ever reaches its own request,
    filtered (bob's role lists echo and get-sum only)."""
    bob = Mcp(tokens["bob"], "127.0.73.1")
    bob.open(timeout=30.0)
    allowed = {"echo", "get-sum"}
    leaks, refused, answers = 0, 0, {}
    big = "x" * 60000

    def run(k, body, barrier, out):
        barrier.wait()
        out[k] = bob.post(body, sid=bob.sid, timeout=30.0)

    for i in range(rounds):
        rid = 9000 + i
        barrier = threading.Barrier(3)
        out: list = [None, None, None]
        jobs = [rpc_text("tools/call", {"name": "echo", "arguments": {"message": big}}, 8000 + i),
                rpc_text("tools/list", {}, rid), rpc_text("ping", None, rid)]
        threads = [threading.Thread(target=run, args=(k, b, barrier, out)) for k, b in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        for r in out[1:]:
            if r is None:
                continue
            names = set(list_names(r))
            if names - allowed:
                leaks += 1
            if r.status == 400 and "already in flight" in r.reason():
                refused += 1
            key = "%d %s" % (r.status, "list" if names else (r.reason() or "result"))
            answers[key] = answers.get(key, 0) + 1
    bob.close()
    return {"rounds": rounds, "unfiltered_lists": leaks, "refused_in_flight": refused, "answers": answers}


def case_uri(tokens: dict) -> dict:
    """Issue 19 item 1 on the real server: bob (resources demo://resource/static/document/*) reads an
    allowed document, then the same escapes out of the glob that server-everything would resolve."""
    bob = Mcp(tokens["bob"], "127.0.74.1")
    bob.open(timeout=30.0)
    listed = bob.post(rpc_text("resources/list", {}, 1), sid=bob.sid).json() or {}
    uris = [x.get("uri") for x in (listed.get("result") or {}).get("resources") or []]
    doc = uris[0] if uris else "demo://resource/static/document/none"
    out = {"listed": uris, "allowed": doc}
    r = bob.post(rpc_text("resources/read", {"uri": doc}, 2), sid=bob.sid)
    out["allowed_read"] = "%d %s" % (r.status, "contents" if (r.json() or {}).get("result", {}).get("contents") else r.reason())
    base = "demo://resource/static/document/"
    target = "dynamic/text/1"
    forms = {"outside the glob": "demo://resource/" + target,
             "../..": base + "../../" + target,
             "%2e%2e": base + "%2e%2e/%2e%2e/" + target,
             "%2E%2e": base + "%2E%2e/%2E%2e/" + target,
             ".%2E": base + ".%2E/.%2E/" + target,
             "a backslash": base + "..\\..\\" + target,
             "an encoded slash": base + "..%2F..%2F" + target}
    for i, (label, uri) in enumerate(forms.items()):
        for method in ("resources/read", "resources/subscribe"):
            r = bob.post(rpc_text(method, {"uri": uri}, 10 + i), sid=bob.sid)
            out["%s %s" % (method, label)] = "%d %s" % (r.status, r.reason()[:60])
    bob.close()
    return out


CASES = {"desync": case_desync, "health-methods": case_health_methods, "health-rate": case_health_rate,
         "net64": case_net64, "conn-subject": case_conn_subject, "conn-address": case_conn_address,
         "host-cap": case_host_cap, "refusal-flood": case_refusal_flood, "session-race": case_session_race,
         "spawn": case_spawn, "id-race": case_id_race, "uri": case_uri}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--tokens", required=True, help="JSON file {user: token} (0600)")
    args = ap.parse_args()
    with open(args.tokens, encoding="utf-8") as f:
        tokens = json.load(f)
    print(json.dumps(CASES[args.case](tokens)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
