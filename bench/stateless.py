"""What supergateway 4.0.0's 2026-07-28 (stateless) path costs per request, next to a session.

Runs ON a converged gateway host (bench/stateless.sh copies it in) against supergateway on
its loopback port, so nothing but the backend is measured. Prints a table: p50/p90 latency
of tools/call echo through a session and through the stateless path (sequential), and for
a burst of concurrent stateless calls the wall time and the peak number of MCP server
processes on the host (sampled with pgrep while the burst runs).
"""
import concurrent.futures
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

URL = sys.argv[1] if len(sys.argv) > 1 else 'http://127.0.0.1:8000/mcp'
PROCESS = sys.argv[2] if len(sys.argv) > 2 else 'mcp-server-everything'
N = int(sys.argv[3]) if len(sys.argv) > 3 else 40
BURST = int(sys.argv[4]) if len(sys.argv) > 4 else 25
BASE = {'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream'}


def post(body, headers):
    req = urllib.request.Request(URL, data=json.dumps(body).encode(), headers={**BASE, **headers}, method='POST')
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as resp:
        data = resp.read()
        sid = resp.headers.get('Mcp-Session-Id')
    return time.monotonic() - t0, data, sid


def echo(i, meta=None):
    params = {'name': 'echo', 'arguments': {'message': 'm%d' % i}}
    if meta:
        params['_meta'] = meta
    return {'jsonrpc': '2.0', 'id': i, 'method': 'tools/call', 'params': params}


MODERN_META = {'io.modelcontextprotocol/protocolVersion': '2026-07-28',
               'io.modelcontextprotocol/clientCapabilities': {}}
MODERN_HEADERS = {'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo'}


def processes():
    out = subprocess.run(['pgrep', '-fc', '--', PROCESS], capture_output=True, text=True, check=False)
    return int(out.stdout.strip() or 0)


def ms(xs, q):
    xs = sorted(xs)
    return 1000 * xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    _t, _d, sid = post({'jsonrpc': '2.0', 'id': 0, 'method': 'initialize', 'params': {
        'protocolVersion': '2025-11-25', 'capabilities': {}, 'clientInfo': {'name': 'bench', 'version': '1'}}}, {})
    post({'jsonrpc': '2.0', 'method': 'notifications/initialized'}, {'Mcp-Session-Id': sid})
    session = [post(echo(i), {'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25'})[0] for i in range(1, N + 1)]
    idle = processes()
    stateless = []
    for i in range(1, N + 1):
        t, data, _s = post(echo(i, MODERN_META), MODERN_HEADERS)
        assert b'm%d' % i in data, data[:200]
        stateless.append(t)
    peak = [processes()]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], processes())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as pool:
        list(pool.map(lambda i: post(echo(i, MODERN_META), MODERN_HEADERS), range(BURST)))
    wall = time.monotonic() - t0
    done.set()
    sampler.join()
    print('| supergateway 4.0.0, tools/call echo (%d calls each) | p50 | p90 |' % N)
    print('| --- | --- | --- |')
    print('| session (2025-11-25), one server process for the session | %.1f ms | %.1f ms |' % (ms(session, .5), ms(session, .9)))
    print('| stateless (2026-07-28), a server process per request | %.1f ms | %.1f ms |' % (ms(stateless, .5), ms(stateless, .9)))
    print('per stateless call: %.0fx the session call at p50' % (statistics.median(stateless) / statistics.median(session)))
    print('burst of %d concurrent stateless calls: %.2f s wall, %s MCP server processes at the peak '
          '(%d before the burst, all sessions included)' % (BURST, wall, peak[0], idle))


main()
