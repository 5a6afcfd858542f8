"""Chaos drill: nothing one client does degrades another (issue 13).

Runs INSIDE a converged test host, as root, for --duration seconds (120 by default):

- a well-behaved client (alice, 127.0.0.1) calls tools/call echo in a loop, paced
  within its limits, one new connection per call, and checks every answer;
- desync attempts on /health (HTTP/1.1 full and short bodies, chunked, HTTP/2, and
  methods other than GET) from 127.2.x.y;
- floods of bad bearer tokens, each from its own address among thousands of 127.1.x.y;
- session churn (carol: initialize, call, DELETE; every third session abandoned);
- denied calls and unknown or foreign session ids (bob);
- initializes the backend would refuse only after starting a server process (wrong Accept,
  Content-Type or params; issue 19), with the count of MCP server processes sampled
  throughout (never above the host's session cap);
- tools/list and ping racing with one JSON-RPC id in one session (no unfiltered list);
- a supergateway restart at 1/3 of the run and an nginx reload at 2/3.

It prints the well-behaved client's figures (success rate, p50/p99/max latency, the
restart window) and what the others got, and exits non-zero if any of the client's
calls outside the restart window failed (or it made too few calls to judge).
Loops are bounded by --duration; traffic stays on the host's loopback.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as h  # noqa: E402

# The restart window: from `systemctl restart` until the chain's /health answers 200
# again, plus this long for the client to notice (its call in flight, a 404, a new session).
RESTART_GRACE_S = 3.0
# How long the well-behaved client waits for an answer (MCP clients wait longer; the
# test hosts share two cores with every other test running).
CALL_TIMEOUT_S = 30.0
FLOOD_PER_THREAD_PER_S = 40


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def total(self) -> int:
        return sum(self.counts.values())


class Drill:
    def __init__(self, tokens: dict, duration: float):
        self.tokens = tokens
        self.duration = duration
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.events: dict[str, float] = {}
        self.calls: list[dict] = []          # the well-behaved client's calls
        self.desync = Counter()
        self.flood = Counter()
        self.churn = Counter()
        self.denied = Counter()
        self.spawn = Counter()
        self.id_race = Counter()
        self.peak_children = 0
        self.addresses: set[str] = set()
        self.current_sid = ""

    def now(self) -> float:
        return time.monotonic() - self.t0

    def running(self) -> bool:
        return not self.stop.is_set() and self.now() < self.duration

    # ------------------------------------------------------------ the well-behaved client
    def good_client(self, alice: h.Mcp) -> None:
        i = 0
        while self.running():
            started = self.now()
            entry = {"t": round(started, 3)}
            if alice.sid is None:
                r = alice.open(timeout=CALL_TIMEOUT_S)
                if alice.sid is None:
                    entry.update(ok=False, what="initialize", status=r.status, error=r.error or r.reason(),
                                 t_end=round(self.now(), 3))
                    self.calls.append(entry)
                    time.sleep(0.2)
                    continue
                self.current_sid = alice.sid
            i += 1
            message = "drill-%d" % i
            r = alice.call("echo", {"message": message}, id_=i, timeout=CALL_TIMEOUT_S)
            ok = h.echo_ok(r, message)
            entry.update(ok=ok, what="tools/call", status=r.status, ms=round(r.elapsed * 1000, 2))
            if not ok:
                entry["error"] = r.error or r.reason() or r.body[:120].decode("utf-8", "replace")
                if r.status == 404:
                    alice.sid = None    # the backend forgot the session: open a new one
            entry["t_end"] = round(self.now(), 3)
            self.calls.append(entry)
            # within alice's limits (per_user 10r/s): about 5 calls a second
            time.sleep(max(0.0, 0.2 - (self.now() - started)))

    # ------------------------------------------------------------ the others
    def desync_attacker(self) -> None:
        n = 0
        while self.running():
            src = h.source_v4(2, n % 5000)
            kind = n % 6
            if kind == 0:
                line = "h1-full: " + h.desync_h1(src, True)
            elif kind == 1:
                line = "h1-short: " + h.desync_h1(src, False)
            elif kind == 2:
                line = "h1-chunked: " + h.desync_chunked(src)
            elif kind == 3:
                line = "h2: " + h.desync_h2(src)
            else:
                method = "DELETE" if kind == 4 else "POST"
                r = h.request(method, "/health", {"Content-Type": "application/json"},
                              '{"x":1}' if method == "POST" else None, src, timeout=5.0)
                line = "%s /health: %s" % (method, r.status or r.error)
            self.desync.add(line)
            n += 1
            time.sleep(0.05)

    def token_flood(self, worker: int) -> None:
        n = worker
        body = h.rpc_text("tools/list")
        while self.running():
            src = h.source_v4(1, n % 60000)
            self.addresses.add(src)
            bad = uuid.uuid4().hex + uuid.uuid4().hex
            r = h.request("POST", "/mcp", {"Authorization": "Bearer " + bad, "Content-Type": "application/json",
                                           "Accept": "application/json, text/event-stream"}, body, src, timeout=5.0)
            self.flood.add(str(r.status or r.error.split(":")[0]))
            n += 2
            time.sleep(max(0.0, 1.0 / FLOOD_PER_THREAD_PER_S - r.elapsed))

    def session_churn(self) -> None:
        carol = h.Mcp(self.tokens["carol"])
        abandoned: list[str] = []
        n = 0
        while self.running():
            carol.source = h.source_v4(4, n % 200)
            r = carol.open()
            if carol.sid is None:
                self.churn.add("initialize %d %s" % (r.status, r.reason()))
                if r.status == 429 and abandoned:
                    carol.sid = abandoned.pop(0)     # at the cap: end the oldest abandoned one
                    self.churn.add("DELETE abandoned %d" % carol.close().status)
                time.sleep(0.1)
                n += 1
                continue
            self.churn.add("initialize 200")
            c = carol.call("echo", {"message": "churn"})
            self.churn.add("tools/call %d" % c.status)
            if n % 3 == 2:
                abandoned.append(carol.sid)
                carol.sid = None
                self.churn.add("abandoned")
            else:
                self.churn.add("DELETE %d" % carol.close().status)
            n += 1
            time.sleep(0.1)
        for sid in abandoned:
            carol.sid = sid
            carol.close()

    def denied_calls(self) -> None:
        bob = h.Mcp(self.tokens["bob"], "127.5.0.1")
        bob.open()
        n = 0
        while self.running():
            kind = n % 3
            if kind == 0:
                r = bob.call("get-env")
                self.denied.add("get-env as reader %d" % r.status)
            elif kind == 1:
                r = bob.post(h.rpc_text("tools/list"), sid=str(uuid.uuid4()))
                self.denied.add("unknown session id %d" % r.status)
            else:
                r = bob.post(h.rpc_text("tools/list"), sid=self.current_sid or str(uuid.uuid4()))
                self.denied.add("alice's session id %d" % r.status)
            n += 1
            time.sleep(0.15)
        if bob.sid:
            bob.close()

    def spawn_attacker(self) -> None:
        n = 0
        while self.running():
            for key in h.spawn_variants_one(self.tokens["dave"], h.source_v4(8, n % 200), n):
                self.spawn.add(key)
            n += 1
            time.sleep(0.2)

    def id_racer(self) -> None:
        bob = h.Mcp(self.tokens["bob"], "127.7.0.1")
        n = 0
        while self.running():
            if bob.sid is None:
                bob.open(timeout=CALL_TIMEOUT_S)
                time.sleep(0.2)
                continue
            out: list = [None, None]
            rid = 7000 + n
            bodies = [h.rpc_text("tools/list", {}, rid), h.rpc_text("ping", None, rid)]
            threads = [threading.Thread(target=self.post_into, args=(bob, bodies[k], out, k)) for k in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(CALL_TIMEOUT_S)
            for r in out:
                if r is not None and set(h.list_names(r)) - {"echo", "get-sum"}:
                    self.id_race.add("UNFILTERED LIST")
                elif r is not None:
                    self.id_race.add("%d %s" % (r.status, "in flight" if "already in flight" in r.reason() else ""))
                    if r.status == 404:
                        bob.sid = None
            n += 1
            time.sleep(0.1)
        if bob.sid:
            bob.close()

    @staticmethod
    def post_into(mcp: h.Mcp, body: str, out: list, k: int) -> None:
        out[k] = mcp.post(body, sid=mcp.sid)

    def process_sampler(self) -> None:
        while self.running():
            self.peak_children = max(self.peak_children, h.session_children())
            time.sleep(0.2)

    # ------------------------------------------------------------ events
    def operator(self) -> None:
        plan = [(self.duration / 3, "restart", ["systemctl", "restart", "mcpsec-supergateway@*.service"]),
                (2 * self.duration / 3, "reload", ["systemctl", "reload", "nginx"])]
        for at, name, cmd in plan:
            while self.running() and self.now() < at:
                time.sleep(0.1)
            if not self.running():
                return
            self.events[name + "_start"] = self.now()
            rc = subprocess.run(cmd, capture_output=True, check=False).returncode
            self.events[name + "_end"] = self.now()
            self.events[name + "_rc"] = rc
            if name == "restart":
                # systemctl returns once the new process runs; supergateway serves a little later
                # (its stop waits up to 5 s for the session children): poll the chain's /health.
                while self.running():
                    if h.request("GET", "/health", None, None, "127.6.0.1", timeout=2.0).status == 200:
                        self.events["restart_healthy"] = self.now()
                        break
                    time.sleep(0.25)

    # ------------------------------------------------------------ run and judge
    def run(self) -> dict:
        # The well-behaved client has its session before the others start.
        alice = h.Mcp(self.tokens["alice"], "127.0.0.1")
        r = alice.open(timeout=CALL_TIMEOUT_S)
        if alice.sid is None:
            raise SystemExit("CHAOS verdict: FAIL: alice could not open a session before the drill: %d %s"
                             % (r.status, r.error or r.reason()))
        self.current_sid = alice.sid
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.good_client, args=(alice,), name="good"),
                   threading.Thread(target=self.desync_attacker, name="desync"),
                   threading.Thread(target=self.token_flood, args=(0,), name="flood0"),
                   threading.Thread(target=self.token_flood, args=(1,), name="flood1"),
                   threading.Thread(target=self.session_churn, name="churn"),
                   threading.Thread(target=self.denied_calls, name="denied"),
                   threading.Thread(target=self.spawn_attacker, name="spawn"),
                   threading.Thread(target=self.id_racer, name="idrace"),
                   threading.Thread(target=self.process_sampler, name="processes"),
                   threading.Thread(target=self.operator, name="operator")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.duration + 60)
        self.stop.set()
        if alice.sid:
            alice.close()
        return self.figures()

    def figures(self) -> dict:
        start = self.events.get("restart_start")
        end = self.events.get("restart_healthy")
        window = (start, end + RESTART_GRACE_S) if start is not None and end is not None else None

        def inside(e):   # the call overlapped the window (one in flight at the restart counts)
            return window is not None and e["t"] <= window[1] and e["t_end"] >= window[0]

        calls = [e for e in self.calls if e["what"] == "tools/call"]
        ok = [e for e in calls if e["ok"]]
        lat = sorted(e["ms"] for e in ok)

        def pct(p):
            return lat[min(len(lat) - 1, int(round(p / 100.0 * (len(lat) - 1))))] if lat else None

        failed = [e for e in self.calls if not e["ok"]]
        outside = [e for e in failed if not inside(e)]
        after = [e for e in self.calls if end is not None and e["t"] > end and e["ok"]]
        return {
            "duration_s": round(self.now(), 1),
            "client": {"calls": len(calls), "ok": len(ok),
                       "success_rate": round(len(ok) / len(calls), 4) if calls else 0.0,
                       "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": lat[-1] if lat else None,
                       "failed_in_restart_window": len(failed) - len(outside),
                       "failed_outside_restart_window": outside[:20],
                       "first_ok_after_restart_s": round(after[0]["t"] - end, 2) if after else None},
            "events": {k: round(v, 2) if isinstance(v, float) else v for k, v in self.events.items()},
            "restart_window_s": [round(w, 2) for w in window] if window else None,
            "backend_down_s": round(end - start, 2) if window else None,
            "desync_attempts": self.desync.counts,
            "bad_token_flood": {"requests": self.flood.total(), "source_addresses": len(self.addresses),
                                "statuses": self.flood.counts},
            "session_churn": self.churn.counts,
            "denied": self.denied.counts,
            "spawn_attempts": self.spawn.counts,
            "id_race": self.id_race.counts,
            "peak_mcp_server_processes": self.peak_children,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description="two-minute chaos drill (issue 13)")
    ap.add_argument("--tokens", required=True, help="JSON file {user: token} (0600)")
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--host-cap", type=int, default=8, help="the host's session cap (proxy_max_sessions_total)")
    ap.add_argument("--min-calls", type=int, default=100,
                    help="fewer calls by the well-behaved client than this fails the drill")
    args = ap.parse_args()
    with open(args.tokens, encoding="utf-8") as f:
        tokens = json.load(f)
    random.seed(13)
    fig = Drill(tokens, args.duration).run()
    c = fig["client"]
    print("CHAOS " + json.dumps(fig, sort_keys=True))
    print("CHAOS well-behaved client: %d calls, success rate %.2f%%, p50 %s ms, p99 %s ms, max %s ms; "
          "%d failed inside the restart window %s (backend down %s s), %d outside; "
          "first success %s s after the backend was back"
          % (c["calls"], c["success_rate"] * 100, c["p50_ms"], c["p99_ms"], c["max_ms"],
             c["failed_in_restart_window"], fig["restart_window_s"], fig["backend_down_s"],
             len(c["failed_outside_restart_window"]),
             c["first_ok_after_restart_s"]))
    bad = []
    if c["failed_outside_restart_window"]:
        bad.append("calls failed outside the restart window")
    if c["calls"] < args.min_calls:
        bad.append("only %d calls (minimum %d)" % (c["calls"], args.min_calls))
    if "restart_healthy" not in fig["events"]:
        bad.append("the backend did not answer /health again after the restart")
    if fig["events"].get("restart_rc") != 0 or fig["events"].get("reload_rc") != 0:
        bad.append("restart or reload failed: %s" % fig["events"])
    print("CHAOS spawn attempts %s; peak MCP server processes %d (host session cap %d); id races %s"
          % (json.dumps(fig["spawn_attempts"], sort_keys=True), fig["peak_mcp_server_processes"], args.host_cap,
             json.dumps(fig["id_race"], sort_keys=True)))
    if fig["peak_mcp_server_processes"] > args.host_cap:
        bad.append("%d MCP server processes, above the host session cap %d" % (fig["peak_mcp_server_processes"], args.host_cap))
    if fig["id_race"].get("UNFILTERED LIST"):
        bad.append("an unfiltered tools list reached bob")
    if any(k.split()[0] not in ("400", "406", "415", "429") for k in fig["spawn_attempts"]):
        bad.append("a spawn attempt got past the gateway: %s" % fig["spawn_attempts"])
    print("CHAOS verdict: " + ("FAIL: " + "; ".join(bad) if bad else "PASS"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
