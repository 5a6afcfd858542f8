"""bearer mode, issue 20: two MCP servers behind one gateway (/mcp and /time/mcp), a policy each."""
import pytest

from gateway import JSON_HEADERS, TIME_PATH
from mcp_wire import initialize as init_msg
from mcp_wire import json_or_sse, listed, message_of, rpc, tool_call

pytestmark = pytest.mark.applies(modes=('bearer',))
DOC = 'demo://resource/static/document/a.md'
EVERY = (('initialize', init_msg()), ('tools/list', rpc('tools/list', {}, 2)), ('tools/call', tool_call('echo', id_=3)),
         ('resources/list', rpc('resources/list', {}, 4)), ('resources/read', rpc('resources/read', {'uri': DOC}, 5)),
         ('resources/subscribe', rpc('resources/subscribe', {'uri': DOC}, 6)),
         ('prompts/list', rpc('prompts/list', {}, 7)), ('prompts/get', rpc('prompts/get', {'name': 'simple-prompt'}, 8)),
         ('completion/complete', rpc('completion/complete', {'ref': {'type': 'ref/prompt', 'name': 'simple-prompt'},
                                                             'argument': {'name': 'a', 'value': 'b'}}, 9)),
         ('ping', rpc('ping', None, 10)))
# tim: granted only on time; bob (reader): only on default
ELSEWHERE = (('tim', '/mcp', 'default'), ('bob', TIME_PATH, 'time'))


@pytest.mark.parametrize('user,path,other', ELSEWHERE, ids=['tim-at-default', 'bob-at-time'])
@pytest.mark.parametrize('name,body', EVERY, ids=[x[0] for x in EVERY])
def test_nothing_granted_here(client, check, user, path, other, name, body):
    r = client.post(user, body, path=path)
    check('servers: %s (nothing granted on %s) %s: 403 no_grants, id kept' % (user, other, name),
          r.status_code == 403 and message_of(r).endswith('grant no tool, resource or prompt')
          and json_or_sse(r).get('id') == body['id'], r)


@pytest.mark.parametrize('user,path,other', ELSEWHERE, ids=['tim-at-default', 'bob-at-time'])
@pytest.mark.parametrize('method', ('GET', 'DELETE'))
def test_nothing_granted_streams(client, check, user, path, other, method):
    r = client.http(method, path=path, headers=[client.cred(user), ('Accept', 'text/event-stream')])
    check('servers: %s %s at %s: 403' % (user, method, path), r.status_code == 403, (other, r))


def test_time_server_policy(client, check):
    r, tsid = client.initialize('tim', path=TIME_PATH)
    check('servers: tim initializes at /time/mcp', r.status_code == 200 and bool(tsid), r)
    r = client.post('tim', rpc('tools/list', {}, 20), sid=tsid, path=TIME_PATH)
    check('servers: tim tools/list at /time/mcp shows only echo',
          r.status_code == 200 and listed(r, 'tools', 'name')[0] == ['echo'], r)
    r = client.post('tim', tool_call('get-sum', id_=21), sid=tsid, path=TIME_PATH)
    check('servers: tim tools/call get-sum at /time/mcp: 403 tool_denied',
          r.status_code == 403 and 'not permitted' in message_of(r), r)
    r = client.post('tim', tool_call('echo', id_=22), sid=tsid, path=TIME_PATH)
    check('servers: tim tools/call echo at /time/mcp: 200', r.status_code == 200, r)
    r = client.http('POST', path=TIME_PATH, headers=JSON_HEADERS, body=rpc('ping'))
    check('servers: 401 at /time/mcp', r.status_code == 401, r)


def seen_port(r):
    return ((json_or_sse(r).get('result') or {}).get('seen') or {}).get('port')


def test_sessions_stay_where_issued(client, check):
    """ada (admin: everything on default, every tool on time)."""
    r, asid = client.initialize('ada')
    r2, atsid = client.initialize('ada', path=TIME_PATH)
    check('servers: ada has a session at each server', r.status_code == 200 and r2.status_code == 200 and asid != atsid,
          (r, r2))
    unknown = client.post('ada', rpc('ping', None, 30), sid=asid[:-4] + ('AAAA' if not asid.endswith('AAAA') else 'BBBB'),
                          path=TIME_PATH)
    for label, sid, path in (('default\'s id at /time/mcp', asid, TIME_PATH), ('time\'s id at /mcp', atsid, '/mcp')):
        r = client.post('ada', rpc('ping', None, 31), sid=sid, path=path)
        check('servers: %s: 404 like an unknown id' % label, r.status_code == 404 and r.content == unknown.content
              and unknown.status_code == 404, (r, unknown))
    for label, sid, path in (('default', asid, '/mcp'), ('time', atsid, TIME_PATH)):
        r = client.post('ada', rpc('ping', None, 32), sid=sid, path=path)
        check('servers: ada\'s %s session still works where it was issued' % label, r.status_code == 200, r)
    r = client.post('ada', rpc('resources/list', {}, 33), sid=atsid, path=TIME_PATH)
    check('servers: ada resources/list at time (granted tools only there): filtered to nothing',
          r.status_code == 200 and listed(r, 'resources', 'uri')[0] == [], r)
    r = client.post('ada', rpc('resources/read', {'uri': DOC}, 35), sid=atsid, path=TIME_PATH)
    check('servers: ada resources/read at time: 403 (her resources grant is on default only)', r.status_code == 403, r)
    r = client.post('ada', rpc('resources/read', {'uri': DOC}, 36), sid=asid)
    check('servers: ada resources/read at default: 200', r.status_code == 200, r)
    r = client.post('ada', tool_call('echo', id_=34), sid=atsid, path=TIME_PATH)
    check('servers: a call at /time/mcp reaches the time backend (8008)', r.status_code == 200 and seen_port(r) == 8008, r)
    r = client.post('ada', tool_call('echo', id_=37), sid=asid)
    check('servers: a call at /mcp reaches the default backend (8000)', r.status_code == 200 and seen_port(r) == 8000, r)


def two_more(client, user, path):
    """The answers to two more initializes of user at path."""
    return client.initialize(user, path=path)[0], client.initialize(user, path=path)[0]


def test_caps_per_server(client, check):
    """max_per_user 2 and the host cap (4 at time, tests/njs/policy.yml) count per server."""
    held = [client.initialize('tim', path=TIME_PATH), client.initialize('ada', path=TIME_PATH),
            client.initialize('ada')]
    check('servers: tim and ada open sessions (one at default)', all(r.status_code == 200 for r, _s in held), held)
    r5, _a5 = client.initialize('ada')
    check('servers: ada still opens a second session at default (her time session is not counted there)',
          r5.status_code == 200, r5)
    # tim's cap is 2 at time; then time holds 4 (tim's 2, ada's 1, alice's first)
    for user, status, reason, label in (
            ('tim', 429, 'session_cap', 'the per-user cap counts per server (tim: 2 at time, the third refused 429)'),
            ('alice', 503, 'host_session_cap',
             'the host cap counts per server (time full at 4: alice\'s second refused 503 host_session_cap)')):
        first, second = two_more(client, user, TIME_PATH)
        check('servers: ' + label, first.status_code == 200 and second.status_code == status
              and message_of(second).endswith(reason), (first, second))
    r8, _hal = client.initialize('hal')
    check('servers: a full time server leaves default\'s host cap alone (hal opens a session at /mcp)',
          r8.status_code == 200, r8)
    for user, sid, _src, path in list(client.opened):
        r = client.delete_session(user, sid, path=path)
        check('servers: %s ends a session at %s (DELETE)' % (user, path), r.status_code in (200, 204), r)
    client.opened = []
