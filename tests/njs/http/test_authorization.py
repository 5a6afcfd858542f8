"""Every mode: roles per tool, users without grants, lists filtered, targets by name and URI (issue 12)."""
import hashlib

import pytest

from gateway import RESOURCE_METADATA
from judge import expect, expect_403_scope
from mcp_wire import encode, is_rpc_error, json_or_sse, listed, message_of, rpc, tool_call


def test_reader_roles(gw, client, users, check, reader_sid):
    reader, rsid = users['reader'], reader_sid
    check('reader: initialize', bool(rsid), rsid)
    check('reader: echo allowed', client.post(reader, tool_call('echo', id_=2), sid=rsid).status_code == 200)
    r = client.post(reader, tool_call('admin-only-tool', id_=3), sid=rsid)
    if gw.mode == 'oidc':
        ok = any('error="insufficient_scope"' in c and RESOURCE_METADATA in c for c in r.headers.get_list('www-authenticate'))
    else:   # no step-up where no token with more scope exists
        ok = not r.headers.get_list('www-authenticate')
    ok = ok and r.status_code == 403 and is_rpc_error(r, 3) and 'tool "admin-only-tool" is not permitted' in message_of(r)
    check('reader: admin-only-tool 403 naming the tool, with the request id%s' % (
        ', insufficient_scope' if gw.mode == 'oidc' else ', no challenge'), ok, r)
    r = client.post(reader, b'{"jsonrpc":"2.0","id":"e1","method":"tools/call","params":{"name":"\\u0065cho"}}', sid=rsid)
    check('\\u-escaped tool name authorised as what it decodes to (echo)', r.status_code == 200, r)
    r = client.post(reader, b'{"jsonrpc":"2.0","id":"e2","method":"tools/call","params":{"name":"\\u0061dmin-only-tool"}}',
                    sid=rsid)
    expect(check, '\\u-escaped admin-only-tool refused', r, 403, 'e2')
    expect(check, 'unicode look-alike tool name refused', client.post(reader, tool_call('ech\u043e', id_=4), sid=rsid), 403, 4)
    expect(check, 'tool named constructor refused', client.post(reader, tool_call('constructor', id_=7), sid=rsid), 403, 7)


NOROLES_SCOPED = (('initialize', None, 1), ('tools/call', tool_call('echo', id_=8), 8),
                  ('resources/list', rpc('resources/list', {}, 9), 9))


@pytest.mark.parametrize('method,body,id_', NOROLES_SCOPED, ids=[x[0] for x in NOROLES_SCOPED])
def test_noroles_scoped(gw, client, users, check, method, body, id_):
    name = 'user whose roles grant nothing: %s 403%s' % (method, ' insufficient_scope' if method == 'initialize' else '')
    r = client.initialize(users['noroles'])[0] if body is None else client.post(users['noroles'], body)
    expect_403_scope(check, gw.mode, name, r, id_)


@pytest.mark.parametrize('method', ('prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel',
                                    'tasks/list', 'ping'))
def test_noroles_methods(client, users, check, method):
    r = client.post(users['noroles'], rpc(method, {}, 10))
    check('user whose roles grant nothing: %s 403' % method, r.status_code == 403, r)


def test_noroles_stream(client, users, check):
    r = client.http('GET', headers=[client.cred(users['noroles']), ('Accept', 'text/event-stream')])
    check('user whose roles grant nothing: GET stream 403', r.status_code == 403, r)


def seen_of(r):
    return (json_or_sse(r).get('result') or {}).get('seen') or {}


@pytest.mark.parametrize('shape,params,rid,aid', (('JSON', {}, 60, 61), ('SSE', {'cursor': 'sse'}, 63, 64)))
def test_tools_list(client, users, check, reader_sid, admin_sid, shape, params, rid, aid):
    """Lists: the reader sees only what the roles allow, cursors kept, JSON and SSE."""
    r = client.post(users['reader'], rpc('tools/list', params, rid), sid=reader_sid)
    names, cursor = listed(r, 'tools', 'name')
    check('tools/list (%s): reader sees exactly echo, get-sum; nextCursor kept' % shape,
          r.status_code == 200 and names == ['echo', 'get-sum'] and cursor == 'p2', r)
    seen = seen_of(r)
    check('tools/list (%s) subrequest: subject set, Authorization stripped, body as sent' % shape,
          len(seen.get('subject') or []) == 1 and seen.get('authorization') is None
          and seen.get('body_sha256') == hashlib.sha256(encode(rpc('tools/list', params, rid))).hexdigest(), seen)
    r = client.post(users['admin'], rpc('tools/list', params, aid), sid=admin_sid)
    names, cursor = listed(r, 'tools', 'name')
    check('tools/list (%s): admin (tools *) sees every tool' % shape,
          r.status_code == 200 and names == ['echo', 'get-sum', 'admin-only-tool', 'get-env'], r)


def test_tools_list_sse_events(client, users, check, reader_sid):
    r = client.post(users['reader'], rpc('tools/list', {'cursor': 'sse'}, 62), sid=reader_sid)
    body = r.text
    check('tools/list (SSE): other events kept (notification, ids, comment)',
          r.status_code == 200 and 'notifications/message' in body and 'id: 7' in body and 'id: 8' in body
          and ': keep-alive comment' in body and 'get-env' not in body and 'admin-only-tool' not in body, body[:300])


LISTS = (('prompts/list', 'prompts', 'name', ['simple-prompt']),
         ('resources/list', 'resources', 'uri', ['demo://resource/static/document/a.md',
                                                 'demo://resource/static/document/sub/b.md']),
         ('resources/templates/list', 'resourceTemplates', 'uriTemplate', ['demo://resource/static/document/{name}']))


@pytest.mark.parametrize('shape,params', (('JSON', {}), ('SSE', {'cursor': 'sse'})))
@pytest.mark.parametrize('method,key,field,want', LISTS, ids=[x[0] for x in LISTS])
def test_lists_filtered(client, users, check, reader_sid, method, key, field, want, shape, params):
    r = client.post(users['reader'], rpc(method, params, 1600), sid=reader_sid)
    names, cursor = listed(r, key, field)
    check('%s (%s): filtered to the role, cursor kept' % (method, shape),
          r.status_code == 200 and names == want and cursor == 'p2', r)


def test_list_answers_not_lists(client, users, check, reader_sid):
    r = client.post(users['reader'], rpc('tools/list', {'cursor': 'broken'}, 64), sid=reader_sid)
    expect(check, 'list answer that is not a list: 502, never passed unfiltered', r, 502, 64)
    r = client.post(users['reader'], rpc('tools/list', {'cursor': 'error'}, 65), sid=reader_sid)
    check('list: the backend\'s own JSON-RPC error passes', r.status_code == 200 and is_rpc_error(r, 65), r)
