"""bearer mode (issue 13): exact session caps, atomic per-tool windows, one answer for unknown and
foreign sessions, tool names outside MCP's characters, the refusal limit, reclaimed slots, per-user limit."""
import concurrent.futures
import time

import pytest

from gateway import restart_upstream
from judge import concurrent_initializes, flood, not_forwarded, tally
from mcp_wire import initialize as init_msg
from mcp_wire import is_rpc_error, message_of, rpc, session_id, tool_call

pytestmark = pytest.mark.applies(modes=('bearer',))


def test_session_cap_exact(client, check, addresses):
    """Issue 13 item 5: 8 concurrent initializes of one subject over both workers admit exactly
    max_sessions_per_user (2); DELETE frees exactly those slots (twice: nothing leaks)."""
    srcs = addresses(8)
    for this_round in (1, 2):
        res = concurrent_initializes(client, ['erin'] * 8, srcs)
        won = [x for x in res if x[0] == 200 and x[1]]
        lost = [x for x in res if x[0] != 200]
        check('session cap is exact: 8 concurrent initializes of one subject over both workers, round %d, '
              'admit exactly 2 (%s)' % (this_round, tally(res)),
              len(won) == 2 and len(lost) == 6 and all(x[0] == 429 and 'session_cap' in x[2] and x[3] for x in lost),
              res)
        deleted = [client.delete_session('erin', x[1]).status_code for x in won]
        check('session cap: DELETE of the admitted sessions frees exactly their slots (round %d: %s)'
              % (this_round, deleted), deleted == [200, 200], deleted)


def test_backend_404_to_initialize(client, check):
    """Item 6: a backend 404 to a request without a session id answers with the request's own id and
    frees the reservation; in a session it is "Session not found" and releases the binding."""
    codes = []
    for i in range(3):      # more than the cap: a leaked reservation would lock erin out
        r = client.post('erin', init_msg('answer-404', 'init-404-%d' % i))
        codes.append(r.status_code)
        check('backend 404 to initialize (no session id): 404 JSON-RPC error with the request id, not '
              '"Session not found" (%d)' % i,
              r.status_code == 404 and is_rpc_error(r, 'init-404-%d' % i) and 'Session not found' not in message_of(r)
              and not session_id(r), r)
    r, sid = client.initialize('erin')
    check('backend 404 to initialize frees the reservation: erin opens a session after 3 of them (%s)' % codes,
          r.status_code == 200 and bool(sid), r)
    restart_upstream()
    r = client.post('erin', rpc('ping', None, 'in-session'), sid=sid)
    check('backend 404 in a session: 404 "Session not found" with a null id',
          r.status_code == 404 and is_rpc_error(r, None) and 'Session not found' in message_of(r), r)
    r2 = client.post('erin', rpc('ping', None, 'again'), sid=sid)
    check('backend 404 in a session released the binding (the id is unknown now)', r2.status_code == 404
          and message_of(r2) == message_of(r), r2)


def test_per_tool_limit_atomic(client, check, addresses):
    """N concurrent calls over both workers admit exactly the limit (slow-tool: 3 per 60 s)."""
    _r, msid = client.initialize('mallory')
    srcs = addresses(8)
    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as ex:
        rs = list(ex.map(lambda i: client.post('mallory', tool_call('slow-tool', id_=100 + i), sid=msid, src=srcs[i % 8]),
                         range(24)))
    codes = sorted(r.status_code for r in rs)
    check('per-tool limit is atomic: 24 concurrent calls over both workers admit exactly 3 (%s)'
          % {c: codes.count(c) for c in set(codes)}, codes == [200] * 3 + [429] * 21
          and all(r.headers.get('retry-after') for r in rs if r.status_code == 429), codes)


def test_unknown_and_foreign_sessions(client, check, addresses):
    _r, asid = client.initialize('alice')
    src = addresses(1)[0]
    foreign = client.post('bob', rpc('ping', None, 9), sid=asid, src=src)
    unknown = client.post('bob', rpc('ping', None, 9), sid='no-such-session-0001', src=src)
    check('unknown and foreign session ids get the same 404 body', foreign.status_code == unknown.status_code == 404
          and foreign.content == unknown.content and is_rpc_error(foreign, None), (foreign, unknown))


NAMES = (('look-alike', 'ech\u043e'), ('space', 'get env'), ('129 chars', 'a' * 129),
         ('U+2028', 'echo\u2028x'), ('U+0085', 'echo\u0085'))


@pytest.mark.parametrize('label,name', NAMES, ids=[x[0] for x in NAMES])
def test_tool_name_charset(client, check, label, name):
    """tools/call names outside [A-Za-z0-9_.-]{1,128}: 403 whatever the role, before the backend."""
    _r, asid = client.initialize('alice')
    r = client.post('alice', tool_call(name, id_=6), sid=asid)
    check('tool name %s refused 403 for an admin, not forwarded' % label,
          r.status_code == 403 and is_rpc_error(r, 6) and not_forwarded(r), r)


def test_refusal_limit(client, check, addresses):
    """Refusals (401/403/404) count per address: a flood meets 429, another address does not
    (the window is the clock's minute: a flood that crosses one may see 2 x 300 before its 429)."""
    _r, asid = client.initialize('alice')
    src, other_src = addresses(2)
    codes = []
    for i in range(700):
        codes.append(client.post('bob', rpc('ping', None, i), sid='flood-%d' % i, src=src).status_code)
        if codes[-1] != 404:
            break
    after = client.post('bob', rpc('ping', None, 1), sid=asid, src=src)
    other = client.post('alice', rpc('ping', None, 2), sid=asid, src=other_src)
    check('refusal limit: 300 refused per minute per address, then 429 (%d x 404 first), other address 200'
          % codes.count(404), codes[-1] == 429 and 300 <= codes.count(404) <= 600
          and after.status_code == 429 and after.headers.get('retry-after') and other.status_code == 200,
          (codes[-3:], after, other))


def test_reclaim_after_backend_restart(client, check):
    """A backend restart forgets every session: slots at the cap are reclaimed, nobody is locked out."""
    held, capped = [], None
    for _i in range(3):     # dave's sessions up to his cap (2)
        r, sid = client.initialize('dave')
        if r.status_code != 200:
            capped = r
            break
        held.append(sid)
    restart_upstream()
    time.sleep(1.2)     # one round of probes per subject per second (sessions.js RECLAIM_EVERY_MS)
    r, s3 = client.initialize('dave')
    check('session cap reached, backend restarted: initialize reclaims the lost slots (%s then %d)'
          % (capped.status_code if capped else None, r.status_code),
          capped is not None and capped.status_code == 429 and r.status_code == 200 and bool(s3), (capped, r))
    check('a reclaimed session id is gone for good', bool(held)
          and client.post('dave', rpc('ping', None, 3), sid=held[0]).status_code == 404, held)


@pytest.fixture
def refill():
    """After a per-user flood, the user's bucket (20 r/s, burst 200) is full again before the next test."""
    yield
    time.sleep(10.5)


def test_per_user_limit(client, check, addresses, refill):
    _r, dsid = client.initialize('dave')
    flood(check, client, 'per-user limit_req (filtered list path)', 'mallory', addresses(1)[0], 400,
          client.initialize('mallory')[1])
    check('per-user limit_req: other users unaffected',
          client.post('dave', rpc('tools/list', {}, 1), sid=dsid).status_code == 200)
