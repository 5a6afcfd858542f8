"""Every mode: the 2026-07-28 wire format gets the same checks, then -32022 naming the session revisions."""
import pytest

from judge import expect_403_scope, not_forwarded
from mcp_wire import error_of, json_or_sse, modern, rpc_code, tool_call


def mh(method, name=None):
    h = [('MCP-Protocol-Version', '2026-07-28'), ('Mcp-Method', method)]
    return h + ([('Mcp-Name', name)] if name is not None else [])


def test_modern_call_refused_with_revisions(client, users, check):
    r = client.post(users['reader'], modern('tools/call', {'name': 'echo', 'arguments': {}}, 90),
                    extra=mh('tools/call', 'echo'))
    err = error_of(r)
    check('2026-07-28 tools/call: 400 -32022 listing the session revisions, not forwarded',
          r.status_code == 400 and err.get('code') == -32022 and '2025-11-25' in (err.get('data') or {}).get('supported', [])
          and (err.get('data') or {}).get('requested') == '2026-07-28' and json_or_sse(r).get('id') == 90
          and not_forwarded(r), r)


HEADER_CASES = (
    ('2026-07-28 without Mcp-Method: 400 -32020', {'name': 'echo'}, 91, [('MCP-Protocol-Version', '2026-07-28')], 400, -32020),
    ('2026-07-28 tools/call without Mcp-Name: 400 -32020', {'name': 'echo'}, 92, mh('tools/call'), 400, -32020),
    ('2026-07-28 Mcp-Name mismatch: 400 -32020', {'name': 'echo'}, 93, mh('tools/call', 'get-sum'), 400, -32020),
    ('2026-07-28 Mcp-Method mismatch: 400 -32020', {'name': 'echo'}, 94, mh('tools/list'), 400, -32020),
    ('2026-07-28 base64 Mcp-Name decoded (matches): -32022', {'name': 'echo'}, 95,
     mh('tools/call', '=?base64?ZWNobw==?='), None, -32022),
)


@pytest.mark.parametrize('name,params,id_,extra,status,code', HEADER_CASES, ids=[x[0] for x in HEADER_CASES])
def test_modern_headers(client, users, check, name, params, id_, extra, status, code):
    r = client.post(users['reader'], modern('tools/call', params, id_), extra=extra)
    check(name, (status is None or r.status_code == status) and rpc_code(r) == code, r)


def test_modern_denied(gw, client, users, check):
    reader = users['reader']
    expect_403_scope(check, gw.mode, '2026-07-28 denied tool: 403 like a session request',
                     client.post(reader, modern('tools/call', {'name': 'admin-only-tool'}, 96),
                                 extra=mh('tools/call', 'admin-only-tool')), 96)
    expect_403_scope(check, gw.mode, '2026-07-28 denied resource: 403',
                     client.post(reader, modern('resources/read', {'uri': 'demo://resource/secret/key'}, 97),
                                 extra=mh('resources/read', 'demo://resource/secret/key')), 97)


@pytest.mark.parametrize('method', ('server/discover', 'tools/list', 'subscriptions/listen'))
def test_modern_methods(client, users, check, method):
    r = client.post(users['reader'], modern(method, {}, 98), extra=mh(method))
    check('2026-07-28 %s: -32022, not forwarded' % method, r.status_code == 400 and rpc_code(r) == -32022, r)


def test_modern_mixed_with_sessions(client, users, check, reader_sid):
    reader = users['reader']
    r = client.post(reader, modern('tools/call', {'name': 'echo'}, 99), sid=reader_sid, extra=mh('tools/call', 'echo'))
    check('2026-07-28 envelope inside a session: -32022 (never the per-request path)', rpc_code(r) == -32022, r)
    r = client.post(reader, tool_call('echo', id_=100), sid=reader_sid, extra=[('MCP-Protocol-Version', '2026-07-28')])
    check('2026-07-28 header without envelope: refused, not forwarded', r.status_code == 400 and not_forwarded(r), r)
    r = client.post(reader, b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"_meta":'
                    b'{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"requestId":1}}',
                    extra=mh('notifications/cancelled'))
    check('2026-07-28 notification: refused, not forwarded', r.status_code == 400 and not_forwarded(r), r)
    r = client.post(users['admin'], modern('tools/call', {'name': 'admin-only-tool'}, 101),
                    extra=mh('tools/call', 'admin-only-tool'))
    check('2026-07-28 allowed call: -32022 (admin)', rpc_code(r) == -32022, r)
