"""Every mode: resources by URI glob, prompts by name, completion refs, default deny, session-bound messages."""
import pytest

from judge import expect, expect_403_scope, not_forwarded
from mcp_wire import is_rpc_error, message_of, rpc, rpc_code, tool_call, json_or_sse

SECRET = 'demo://resource/secret/key'


def test_targets(gw, client, users, check, reader_sid, admin_sid):
    reader, rsid, mode = users['reader'], reader_sid, gw.mode

    def post(body):
        return client.post(reader, body, sid=rsid)
    check('resources/read: URI matching the role pattern allowed',
          post(rpc('resources/read', {'uri': 'demo://resource/static/document/sub/b.md'}, 70)).status_code == 200)
    expect_403_scope(check, mode, 'resources/read: URI outside the patterns 403 with the id',
                     post(rpc('resources/read', {'uri': SECRET}, 71)), 71)
    expect_403_scope(check, mode, 'resources/read: prefix trick (pattern text as prefix only) refused',
                     post(rpc('resources/read', {'uri': 'demo://resource/static/documentX'}, 72)), 72)
    expect_403_scope(check, mode, 'resources/subscribe: URI outside the patterns 403',
                     post(rpc('resources/subscribe', {'uri': SECRET}, 73)), 73)
    check('resources/subscribe: allowed URI passes',
          post(rpc('resources/subscribe', {'uri': 'demo://resource/static/document/a.md'}, 74)).status_code == 200)
    expect_403_scope(check, mode, 'resources/unsubscribe: URI outside the patterns 403',
                     post(rpc('resources/unsubscribe', {'uri': SECRET}, 75)), 75)
    check('prompts/get: allowed prompt', post(rpc('prompts/get', {'name': 'simple-prompt'}, 76)).status_code == 200)
    expect_403_scope(check, mode, 'prompts/get: prompt not in the role 403',
                     post(rpc('prompts/get', {'name': 'complex-prompt'}, 77)), 77)
    expect_403_scope(check, mode, 'completion/complete: ref to a denied prompt 403', post(rpc('completion/complete', {
        'ref': {'type': 'ref/prompt', 'name': 'complex-prompt'}, 'argument': {'name': 'a', 'value': ''}}, 78)), 78)
    check('completion/complete: ref to an allowed resource template', post(rpc('completion/complete', {
        'ref': {'type': 'ref/resource', 'uri': 'demo://resource/static/document/{name}'},
        'argument': {'name': 'name', 'value': ''}}, 79)).status_code == 200)
    expect(check, 'completion/complete: ref of an unknown type 400', post(rpc('completion/complete', {
        'ref': {'type': 'ref/tool', 'name': 'echo'}, 'argument': {'name': 'a', 'value': ''}}, 80)), 400, 80)
    check('admin: resources/read of any URI',
          client.post(users['admin'], rpc('resources/read', {'uri': SECRET}, 81), sid=admin_sid).status_code == 200)
    check('logging/setLevel in own session', post(rpc('logging/setLevel', {'level': 'info'}, 82)).status_code == 200)


# a URI the server would normalise out of the glob (dot segments, encoded dots or slashes,
# backslashes) is refused whatever it matches as text, for every method that names one
DOTTED = (('../..', 'demo://resource/static/document/../../secret/key'),
          ('%2e%2e', 'demo://resource/static/document/%2e%2e/%2e%2e/secret/key'),
          ('%2E%2e', 'demo://resource/static/document/%2E%2e/%2E%2e/secret/key'),
          ('.%2E', 'demo://resource/static/document/.%2E/.%2E/secret/key'),
          ('a single .', 'demo://resource/static/document/./a.md'),
          ('a backslash', 'demo://resource/static/document/..\\..\\secret/key'),
          ('an encoded slash', 'demo://resource/static/document/..%2F..%2Fsecret/key'),
          ('a tab', 'demo://resource/static/document/\t../../secret/key'))


def uri_params(method, u):
    if method == 'completion/complete':
        return {'ref': {'type': 'ref/resource', 'uri': u}, 'argument': {'name': 'name', 'value': ''}}
    return {'uri': u}


@pytest.mark.parametrize('method', ('resources/read', 'resources/subscribe', 'resources/unsubscribe',
                                    'completion/complete'))
@pytest.mark.parametrize('label,uri', DOTTED, ids=[x[0] for x in DOTTED])
def test_uri_normalisation_refused(client, users, check, reader_sid, label, uri, method):
    r = client.post(users['reader'], rpc(method, uri_params(method, uri), 69), sid=reader_sid)
    check('%s with %s: 403 resource_uri, not forwarded' % (method, label),
          r.status_code == 403 and is_rpc_error(r, 69) and 'resource URI' in message_of(r) and not_forwarded(r), r)


@pytest.mark.parametrize('method', ('tools/delete', 'sampling/createMessage', 'constructor', '__proto__',
                                    'admin/shutdown'))
def test_unknown_method(client, users, check, reader_sid, method):
    """Default deny: unknown methods never reach the backend."""
    r = client.post(users['reader'], rpc(method, {}, 83), sid=reader_sid)
    check('unknown method %r: 400 -32601 with the id, not forwarded' % method,
          r.status_code == 400 and rpc_code(r) == -32601 and json_or_sse(r).get('id') == 83 and not_forwarded(r), r)


def test_session_bound_messages(client, users, check, reader_sid, admin_sid):
    reader, rsid, sid = users['reader'], reader_sid, admin_sid
    expect(check, 'known notification sent as a request (id) refused',
           client.post(reader, rpc('notifications/initialized', {}, 84), sid=rsid), 400, 84)
    expect(check, 'notification without a session 400',
           client.post(reader, b'{"jsonrpc":"2.0","method":"notifications/initialized"}'), 400)
    expect(check, 'client response without a session 400',
           client.post(reader, b'{"jsonrpc":"2.0","id":"s9","result":{}}'), 400, 's9')
    expect(check, 'client response into another subject\'s session 404',
           client.post(reader, b'{"jsonrpc":"2.0","id":"s8","result":{"content":[]}}', sid=sid), 404)
    expect(check, 'sampling answer into another subject\'s session 404',
           client.post(reader, b'{"jsonrpc":"2.0","id":0,"result":{"role":"assistant","content":{"type":"text",'
                       b'"text":"x"},"model":"m"}}', sid=sid), 404)
    expect(check, 'tasks/get without a session 400', client.post(reader, rpc('tasks/get', {'taskId': 't1'}, 85)), 400, 85)
    expect(check, 'tasks/get in another subject\'s session 404',
           client.post(reader, rpc('tasks/get', {'taskId': 't1'}, 86), sid=sid), 404)
    expect(check, 'tools/call without a session 400', client.post(reader, tool_call('echo', id_=87)), 400, 87)
