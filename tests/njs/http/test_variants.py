"""bearer mode variants: a small host session cap (hostcap); the limit zones at 32k, filled (stores)."""
import time

import pytest

from gateway import error_log
from judge import concurrent_initializes, tally
from mcp_wire import message_of, rpc, tool_call


@pytest.mark.applies(modes=('bearer',), variants=('hostcap',))
def test_host_session_cap(client, check, addresses):
    """Issue 13 item 5, host cap (max_sessions_total 5): 15 concurrent initializes of 15 subjects
    admit exactly 5; after DELETE exactly 5 again; one subject's 6 concurrent admit its cap (2)."""
    users = ['u%d' % i for i in range(15)]
    srcs = addresses(15)
    for round_ in (1, 2):
        res = concurrent_initializes(client, users, srcs)
        won = [x for x in res if x[0] == 200 and x[1]]
        lost = [x for x in res if x[0] != 200]
        check('host session cap is exact: 15 concurrent initializes of 15 subjects over both workers, round %d, '
              'admit exactly 5 (%s)' % (round_, tally(res)),
              len(won) == 5 and len(lost) == 10
              and all(x[0] == 503 and 'host_session_cap' in x[2] and x[3] for x in lost), res)
        deleted = [client.delete_session(x[4], x[1]).status_code for x in won]
        check('host session cap: DELETE frees exactly the 5 slots (round %d: %s)' % (round_, deleted),
              deleted == [200] * 5, deleted)
    res = concurrent_initializes(client, ['u20'] * 6, srcs[:6])
    won = [x for x in res if x[0] == 200 and x[1]]
    check('per-subject cap under the host cap: 6 concurrent initializes of one subject admit exactly 2 (%s)'
          % tally(res), len(won) == 2 and all(x[0] == 429 for x in res if x[0] != 200), res)


@pytest.mark.applies(modes=('bearer',), variants=('hostcap',))
def test_short_idle_timeout_keeps_sessions_in_use(client, check):
    """proxy_session_idle_timeout 8s (a binding re-armed at most every 2 s): a session used every
    1.5 s for 12 s stays bound; its sibling, unused for those 12 s, is forgotten (404)."""
    _r, busy = client.initialize('u21')
    _r, idle = client.initialize('u21')
    statuses = []
    for i in range(8):
        time.sleep(1.5)
        statuses.append(client.post('u21', rpc('ping', None, i + 1), sid=busy).status_code)
    late = client.post('u21', rpc('ping', None, 100), sid=idle)
    check('idle timeout 8s: a session pinged every 1.5 s for 12 s answers every time (%s); the unused one '
          'is forgotten: %d' % (statuses, late.status_code),
          busy and idle and statuses == [200] * 8 and late.status_code == 404, (statuses, late))


def full_store(check, name, send, limit, expect_reason, log_text):
    """send(i) until an answer is not a success; the first refusal must be 503 with
    Retry-After naming expect_reason, and the error log must say log_text."""
    r, i = None, 0
    for i in range(limit):
        r = send(i)
        if r.status_code not in (200, 202, 401, 404, 429):
            break
    ok = (r is not None and r.status_code == 503 and bool(r.headers.get('retry-after'))
          and expect_reason in message_of(r) and log_text in error_log())
    check('%s full: 503 %s with Retry-After and an error log line, after %d requests' % (name, expect_reason, i + 1),
          ok, r)


def fill_sessions(client, check, src):
    """mcpsec_sessions: 200 subjects open their 2 sessions each until a reservation finds no room;
    the subjects that hold two."""
    holders = []

    def open_one(i):
        user = 'u%d' % (i // 2)
        r, s = client.initialize(user, src=src)     # one address: the counters zone is tiny too
        if s:
            holders.append(user)
        return r
    full_store(check, 'mcpsec_sessions (reservations)', open_one, 400, 'session_store_full',
               'session store refused a reservation')
    return [u for u in sorted(set(holders)) if holders.count(u) == 2]


@pytest.mark.applies(modes=('bearer',), variants=('stores',))
def test_full_stores_refuse(client, check, addresses):
    """Issue 13 item 2: each njs limit zone at 32k, filled, in turn: the request that finds it full is
    refused (503 + Retry-After + error log), never let through uncounted."""
    # mcpsec_toolslots: slow-tool admits 100000 an hour, one slot per admitted call
    _r, sid = client.initialize('alice')
    full_store(check, 'mcpsec_toolslots (per-tool slots)', lambda i: client.post('alice', tool_call('slow-tool', id_=i),
                                                                                 sid=sid),
               3000, 'counter_unavailable', 'tool call store refused a write')
    at_cap = fill_sessions(client, check, addresses(1)[0])
    # a subject at its cap in a full store: its reclaim stamp cannot be written -> 503, never a probe uncounted
    src, dave_src = addresses(2)
    answers = [client.initialize(u, src=src)[0] for u in at_cap]
    full = [a for a in answers if a.status_code == 503 and 'session_store_full' in message_of(a)
            and a.headers.get('retry-after')]
    check('mcpsec_sessions full, subject at its cap: the reclaim stamp is refused -> 503 session_store_full '
          '(%d of %d subjects; the others 429 session_cap), never 200' % (len(full), len(answers)),
          full and all(a.status_code in (429, 503) for a in answers)
          and 'session store refused the reclaim stamp' in error_log(), [a.status_code for a in answers])
    # mcpsec_counters: a new counter per address (the failed-authentication window), from many addresses
    pre = client.initialize('dave', src=dave_src)[0]   # 503 (sessions full), not a refusal: its failure window exists
    srcs = addresses(3000)
    full_store(check, 'mcpsec_counters (failed authentications per address)',
               lambda i: client.post(None, rpc('ping'), extra=[('Authorization', 'Bearer ' + 'Q' * 44)], src=srcs[i]),
               3000, 'counter_store_full', 'counter store refused a write')
    # the refusal counter of an address whose failure window already exists: its 404 cannot be counted
    r = client.post('dave', rpc('ping', None, 2), sid='no-such-session-after-full', src=dave_src)
    check('mcpsec_counters full: a refusal (404) that cannot be counted is a 503 counter_store_full with '
          'Retry-After (before: %d)' % pre.status_code,
          pre.status_code == 503 and r.status_code == 503 and 'counter_store_full' in message_of(r)
          and bool(r.headers.get('retry-after')), r)
    client.opened = []      # the variant ends here: its full stores are not emptied one DELETE at a time
