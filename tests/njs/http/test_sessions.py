"""Every mode: sessions bound to their subject, the per-user session cap, the per-tool limit."""
from judge import expect
from mcp_wire import is_rpc_error, rpc, tool_call

UNKNOWN_SID = '0b5c1a3e-0000-4000-8000-000000000000'


def stream(client, user, sid=None):
    headers = [client.cred(user), ('Accept', 'text/event-stream')] + ([('Mcp-Session-Id', sid)] if sid else [])
    return client.http('GET', headers=headers)


def test_foreign_and_bad_session_ids(client, users, check, admin_sid):
    reader, sid = users['reader'], admin_sid
    expect(check, '404 session id of another subject (POST)', client.post(reader, rpc('ping', None, 20), sid=sid), 404)
    expect(check, '404 session id of another subject (GET)', stream(client, reader, sid), 404)
    expect(check, '404 unknown session id', client.post(reader, rpc('ping', None, 21), sid=UNKNOWN_SID), 404)
    expect(check, '400 malformed session id', client.post(reader, rpc('ping', None, 22), sid='a b'), 400)
    expect(check, '400 GET without a session id', stream(client, reader), 400)


def test_own_session(client, users, check, reader_sid):
    reader, rsid = users['reader'], reader_sid
    r = stream(client, reader, rsid)
    check('GET stream on own session', r.status_code == 200 and b'event: message' in r.content, r)
    r = client.post(reader, b'{"jsonrpc":"2.0","method":"notifications/initialized"}', sid=rsid)
    check('notification passes (202)', r.status_code == 202, r)
    r = client.post(reader, b'{"jsonrpc":"2.0","id":"s1","result":{}}', sid=rsid)
    check('client response message passes', r.status_code == 202, r)


def test_delete_session(client, users, check, admin_sid):
    admin, sid = users['admin'], admin_sid
    expect(check, '404 DELETE of another subject\'s session', client.delete_session(users['reader'], sid), 404)
    check('DELETE own session', client.delete_session(admin, sid).status_code == 200)
    expect(check, '404 after DELETE the binding is gone', client.post(admin, rpc('ping', None, 23), sid=sid), 404)


def test_session_cap(client, users, check, reader_sid):
    """max_sessions_per_user = 2: the reader holds reader_sid already."""
    reader = users['reader']
    r1, s1 = client.initialize(reader)
    r2, _s2 = client.initialize(reader)
    check('session cap: second session allowed', r1.status_code == 200, r1)
    check('session cap: third session 429 with Retry-After',
          r2.status_code == 429 and r2.headers.get('retry-after') is not None and is_rpc_error(r2, 1), r2)
    client.delete_session(reader, s1)
    r3, s3 = client.initialize(reader)
    check('session cap: DELETE releases a slot', r3.status_code == 200 and bool(s3), r3)


def test_per_tool_limit(client, users, check, reader_sid, admin_sid):
    """slow-tool: 3 calls per 60 s per user (no other case calls it as this mode's reader or admin)."""
    reader, rsid = users['reader'], reader_sid
    codes = [client.post(reader, tool_call('slow-tool', id_=30 + i), sid=rsid).status_code for i in range(3)]
    r = client.post(reader, tool_call('slow-tool', id_=40), sid=rsid)
    ok = (codes == [200, 200, 200] and r.status_code == 429 and is_rpc_error(r, 40)
          and int(r.headers.get('retry-after') or 0) >= 1)
    check('per-tool limit: 4th call in the window 429 with Retry-After', ok, (codes, r))
    check('per-tool limit: other tools unaffected',
          client.post(reader, tool_call('echo', id_=41), sid=rsid).status_code == 200)
    r = client.post(users['admin'], tool_call('slow-tool', id_=42), sid=admin_sid)
    check('per-tool limit: counted per user', r.status_code == 200, r)
