"""supergateway's CPU per tools/call, stock vs the bridge patch (docs/supergateway-patch.md).

Installs the pinned supergateway and the demo MCP server once into a scratch prefix, copies it,
applies the role's own patch data (roles/supergateway/vars/bridge-<version>.yml, through the
source_patch module's code) to the copy, starts both bridges on loopback and drives them in
interleaved rounds: each round sends the same calls to each, in alternating order. Prints the
supergateway process's CPU (user + system, from /proc) per call for every round, the medians and
their ratio, and the throughput. Needs node >= 20 and npm; traffic stays on 127.0.0.1.

    python3 bench/bridge.py [--rounds 7] [--calls 2000] [--sessions 4]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
from _source_patch import plan  # noqa: E402  (the module's own code, not a copy)

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-06-18"}


def install(prefix: Path, package: str) -> None:
    """One package in a prefix of its own, as the roles install them (a shared prefix would let
    npm hoist the server's SDK over the one supergateway pins)."""
    prefix.mkdir(parents=True)
    subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--ignore-scripts",
                    "--omit=optional", package], check=True, stdout=subprocess.DEVNULL)


def patch(prefix: Path, sg_version: str) -> None:
    data = yaml.safe_load((ROOT / "roles" / "supergateway" / "vars" / f"bridge-{sg_version}.yml")
                          .read_text(encoding="utf-8"))["__supergateway_bridge_patch"]
    for f in data["files"]:
        path = prefix / f["path"]
        new = plan(path.read_bytes(), str(path), f["stock_sha256"], f["patched_sha256"], f["edits"], "present")
        if new is not None:
            path.write_bytes(new)


def start(prefix: Path, server: Path, port: int) -> subprocess.Popen:
    cmd = ["node", str(prefix / "node_modules" / "supergateway" / "dist" / "index.js"),
           "--stdio", str(server / "node_modules" / ".bin" / "mcp-server-everything"),
           "--outputTransport", "streamableHttp", "--stateful", "--port", str(port), "--logLevel", "none",
           "--healthEndpoint", "/healthz"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"supergateway on {port} did not answer /healthz within 30 s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Session:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
        self.conn.request("POST", "/mcp", json.dumps(body), HEADERS)
        resp = self.conn.getresponse()
        resp.read()
        self.headers = {**HEADERS, "Mcp-Session-Id": resp.getheader("mcp-session-id")}
        self.conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                          self.headers)
        self.conn.getresponse().read()

    def calls(self, n: int) -> None:
        for i in range(n):
            body = {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"message": "bench"}}}
            self.conn.request("POST", "/mcp", json.dumps(body), self.headers)
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.status != 200 or b"Echo: bench" not in data:
                raise SystemExit(f"unexpected answer {resp.status}: {data[:200]!r}")


def round_of(proc: subprocess.Popen, sessions: list[Session], calls: int) -> tuple[float, float]:
    per = calls // len(sessions)
    before, t0 = cpu_seconds(proc.pid), time.monotonic()
    threads = [threading.Thread(target=s.calls, args=(per,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return (cpu_seconds(proc.pid) - before) / (per * len(sessions)) * 1e6, per * len(sessions) / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000, help="calls per bridge per round")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--supergateway", default="4.0.0")
    ap.add_argument("--server", default="@modelcontextprotocol/server-everything@2026.8.31")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mcpsec-bridge-bench."))
    procs: dict[str, subprocess.Popen] = {}
    try:
        install(scratch / "server", args.server)
        install(scratch / "stock", f"supergateway@{args.supergateway}")
        shutil.copytree(scratch / "stock", scratch / "patched", symlinks=True)
        patch(scratch / "patched", args.supergateway)
        procs = {k: start(scratch / k, scratch / "server", port) for k, port in (("stock", 18301), ("patched", 18302))}
        ports = {"stock": 18301, "patched": 18302}
        sessions = {k: [Session(ports[k]) for _session in range(args.sessions)] for k in procs}
        for k in procs:
            round_of(procs[k], sessions[k], 400)   # warm-up: the JIT, the children
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in procs}
        for r in range(args.rounds):
            for k in (("stock", "patched") if r % 2 == 0 else ("patched", "stock")):
                rows[k].append(round_of(procs[k], sessions[k], args.calls))
        print(f"supergateway {args.supergateway}, {args.server}, {args.sessions} sessions, "
              f"{args.calls} tools/call (echo) per bridge per round, {args.rounds} interleaved rounds")
        for k, v in rows.items():
            print(f"  {k:8} CPU per call (µs): {' '.join(f'{c:6.0f}' for c, _rate in v)}   median "
                  f"{statistics.median(c for c, _rate in v):6.0f}; req/s median {statistics.median(q for _cpu, q in v):6.0f}")
        ratios = [p[0] / s[0] for p, s in zip(rows["patched"], rows["stock"])]
        print(f"  patched / stock CPU per call, same-round ratios: {' '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}")
    finally:
        for p in procs.values():
            p.terminate()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
