"""One-connection tools/call latency with the targets interleaved request by request.

Usage: python3 interleaved.py <iterations> <name>=<url>|<auth variable>|<session id> ...

<auth variable> names an environment variable holding the target's Authorization header
value (empty: none), so no credential is on the command line.

Runs inside a bench host (bench/gateway_inner.sh). One keep-alive connection per target
(opened again every RECONNECT_EVERY iterations); each iteration sends the same tools/call to
every target in turn, in an order that rotates every iteration, so drift of this shared VM
(seconds to minutes long) hits every target alike. Prints one line per target: "name p50_us
p99_us errors" (errors: answers other than 200), then one line per pair of neighbours and for the last against the first: "name-other paired_p50_us" (the median
over iterations of the per-iteration difference). Client overhead (Python) is in every figure
and cancels out of the differences.
"""
import http.client
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

RECONNECT_EVERY = 200
BODY = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
        b'"params":{"name":"echo","arguments":{"message":"bench"}}}')


def connect(url):
    u = urlsplit(url)
    if u.scheme == 'https':
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE   # the bench host's own certificate, on loopback
        return http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx), u.path
    return http.client.HTTPConnection(u.hostname, u.port or 80), u.path


def call(conn, path, headers):
    conn.request('POST', path, body=BODY, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main():
    n = int(sys.argv[1])
    targets = []
    for spec in sys.argv[2:]:
        name, rest = spec.split('=', 1)
        url, auth_var, sid = rest.split('|')
        conn, path = connect(url)
        headers = {'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream',
                   'MCP-Protocol-Version': '2025-06-18', 'Mcp-Session-Id': sid}
        if auth_var:
            headers['Authorization'] = os.environ[auth_var]
        targets.append({'name': name, 'conn': conn, 'path': path, 'headers': headers, 'us': [], 'errors': 0})
    k = len(targets)
    for i in range(n):
        if i % RECONNECT_EVERY == 0:
            # New connections now and then: nginx's workers are pinned to CPUs and a
            # connection stays with the worker that accepted it, so one long-lived connection
            # per target would measure where it landed as much as what it runs.
            for t in targets:
                t['conn'].close()
                t['conn'].connect()             # TLS handshake outside the timed calls
                for _warm in range(5):          # warm up: upstream keep-alive, caches
                    call(t['conn'], t['path'], t['headers'])
        for j in range(k):
            t = targets[(i + j) % k]
            t0 = time.perf_counter_ns()
            status = call(t['conn'], t['path'], t['headers'])
            t['us'].append((time.perf_counter_ns() - t0) / 1000.0)
            if status != 200:
                t['errors'] += 1
    for t in targets:
        print('%s %.0f %.0f %d' % (t['name'], pct(t['us'], 0.5), pct(t['us'], 0.99), t['errors']))
    pairs = [(targets[j], targets[j - 1]) for j in range(1, k)]
    if k > 2:
        pairs.append((targets[-1], targets[0]))
    for a, b in pairs:
        print('%s-%s %.0f' % (a['name'], b['name'], pct([x - y for x, y in zip(a['us'], b['us'])], 0.5)))


if __name__ == '__main__':
    main()
