"""bearer mode, issue 21 item 4: the audit line carries millisecond time, the target of every method,
the protocol version, the user agent and the W3C trace id; the backend gets the trace context."""
import re

import pytest

from gateway import AUDIT, audit_lines_after, audit_size
from mcp_wire import encode, json_or_sse, rpc, tool_call

pytestmark = pytest.mark.applies(modes=('bearer',))
KEPT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
UA = 'mcpsec-siem-test/1.0 (\u2028raw)'   # a raw U+2028 in a header
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$')

SIEM_CASES = [
    ('tools/call', tool_call('echo', {'text': 'x'}, id_=301), 'tool', 'echo'),
    ('resources/read', rpc('resources/read', {'uri': 'demo://resource/static/document/a.md'}, 302),
     'resource', 'demo://resource/static/document/a.md'),
    ('resources/subscribe', rpc('resources/subscribe', {'uri': 'demo://resource/static/document/a.md'}, 303),
     'resource', 'demo://resource/static/document/a.md'),
    ('prompts/get', rpc('prompts/get', {'name': 'simple-prompt'}, 304), 'prompt', 'simple-prompt'),
    ('completion/complete (prompt ref)', rpc('completion/complete', {
        'ref': {'type': 'ref/prompt', 'name': 'simple-prompt'}, 'argument': {'name': 'a', 'value': ''}}, 305),
     'prompt', 'simple-prompt'),
    ('completion/complete (resource ref)', rpc('completion/complete', {
        'ref': {'type': 'ref/resource', 'uri': 'demo://resource/static/document/{name}'},
        'argument': {'name': 'name', 'value': ''}}, 306), 'resource', 'demo://resource/static/document/{name}'),
]


def traced(client, sid):
    """Each case's request with the client's traceparent, tracestate and a user agent with a raw U+2028."""
    seen = []
    for label, body, _ttype, _target in SIEM_CASES:
        body = encode(body)
        raw = (b'POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nConnection: close\r\n' + ('%s: %s' % client.cred('alice')).encode()
               + b'\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n'
               + b'MCP-Protocol-Version: 2025-06-18\r\nMcp-Session-Id: ' + sid.encode()
               + b'\r\ntraceparent: ' + KEPT.encode() + b'\r\ntracestate: vendor=abc'
               + b'\r\nUser-Agent: ' + UA.encode() + b'\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        seen.append((label, client.http('POST', raw=raw)))
    return seen


def test_siem_audit(client, check):
    r, sid = client.initialize('alice')
    check('siem: initialize for the audit cases', r.status_code == 200 and bool(sid), r)
    before = audit_size()
    seen = traced(client, sid)
    # a malformed traceparent (uppercase hex) and none at all: a new one is started, tracestate dropped
    bad = client.post('alice', rpc('ping', None, 307), sid=sid, extra=[('traceparent', KEPT.upper()),
                                                                       ('tracestate', 'vendor=abc')])
    none = client.post('alice', rpc('ping', None, 308), sid=sid)
    # the initialize's own line may land after `before` (bearer buffers the log): not one of these
    recs = audit_lines_after(before, len(SIEM_CASES) + 2,
                             lambda x: x.get('client') == client.src and x.get('method') != 'initialize')
    by_id = {x.get('rpc_id'): x for x in recs}
    for i, (label, resp) in enumerate(seen):
        _l, _b, ttype, target = SIEM_CASES[i]
        x = by_id.get(str(301 + i)) or {}
        check('siem: %s audited with target_type %s, target, protocol version, user agent, trace id (%d)'
              % (label, ttype, resp.status_code),
              x.get('target_type') == ttype and x.get('target') == target and x.get('protocol_version') == '2025-06-18'
              and x.get('trace_id') == KEPT.split('-')[1] and x.get('user_agent') == 'mcpsec-siem-test/1.0 (\\u2028raw)'
              and bool(TIME_RE.match(x.get('time', ''))) and x.get('decision') in ('allow', 'deny'), x)
    saw = (json_or_sse(seen[0][1]).get('result') or {}).get('seen') or {}
    check('siem: the backend gets the client\'s traceparent and tracestate, once each',
          saw.get('traceparent') == [KEPT] and saw.get('tracestate') == ['vendor=abc'], saw)
    for label, resp, id_ in (('uppercase (malformed)', bad, '307'), ('absent', none, '308')):
        x = by_id.get(id_) or {}
        saw = (json_or_sse(resp).get('result') or {}).get('seen') or {}
        tp = (saw.get('traceparent') or [''])[0]
        check('siem: traceparent %s: a new one (version 00, the audit line\'s trace id), no tracestate' % label,
              bool(re.match(r'^00-[0-9a-f]{32}-[0-9a-f]{16}-01$', tp)) and tp.split('-')[1] == x.get('trace_id')
              and x.get('trace_id') != KEPT.split('-')[1] and not saw.get('tracestate'), (tp, x, saw))
    ini = audit_lines_after(0, 1, lambda x: x.get('client') == client.src and x.get('method') == 'initialize')
    check('siem: an initialize is audited with the version its params name',
          bool(ini) and ini[0].get('protocol_version') == '2025-06-18', ini[:1])
    with open(AUDIT, 'rb') as f:
        raw_ua = f.read()[before:]
    check('siem: the user agent\'s raw U+2028 never reaches the audit file', b'\xe2\x80\xa8' not in raw_ua
          and b'\\\\u2028raw' in raw_ua, raw_ua[-200:])
