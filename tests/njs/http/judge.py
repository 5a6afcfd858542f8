"""What the njs cases expect of an answer: JSON-RPC errors, 401 challenges per mode, 403 scope."""
import concurrent.futures

from mcp_wire import is_rpc_error, json_or_sse, message_of, rpc
from gateway import RESOURCE_METADATA

MODE_WORDS = {'basic': 'HTTP Basic authentication', 'bearer': 'static bearer tokens', 'oidc': 'OpenID Connect'}


def expect(check, name, r, status, id_=None, rpc_body=True):
    return check(name, r.status_code == status and (not rpc_body or is_rpc_error(r, id_)), r)


def challenge_ok(mode, r, error=None):
    """oidc: RFC 9728 (resource_metadata). basic/bearer: no OAuth pointer at all, so that no
    client starts a discovery and registration that cannot succeed."""
    chs = r.headers.get_list('www-authenticate')
    if mode == 'basic':
        return chs == ['Basic realm="mcpsec", charset="UTF-8"']
    if mode == 'bearer':
        return chs == ['Bearer realm="mcpsec"' + (', error="%s"' % error if error else '')]
    bearer = [c for c in chs if c.startswith('Bearer ')]
    if len(bearer) != 1 or ('resource_metadata="%s"' % RESOURCE_METADATA) not in bearer[0]:
        return False
    if error is None:
        return 'error=' not in bearer[0]
    return ('error="%s"' % error) in bearer[0]


def names_mode(mode, r):
    """The 401's JSON-RPC message names how this gateway authenticates."""
    msg = message_of(r)
    return msg.startswith('Unauthorized (') and MODE_WORDS[mode] in msg


def expect_401(check, mode, name, r, error=None):
    return check(name, r.status_code == 401 and challenge_ok(mode, r, error) and is_rpc_error(r, None)
                 and names_mode(mode, r), r)


def authed(r):
    """The request got past authentication (whatever the later checks said)."""
    return r.status_code not in (0, 401, 429, 500, 503)


def expect_403_scope(check, mode, name, r, id_):
    """403 with the JSON-RPC error; the insufficient_scope challenge in oidc mode only
    (basic and bearer have no token with more scope to step up to: no challenge)."""
    if mode == 'oidc':
        challenge = any('error="insufficient_scope"' in c for c in r.headers.get_list('www-authenticate'))
    else:
        challenge = not r.headers.get_list('www-authenticate')
    return check(name, r.status_code == 403 and is_rpc_error(r, id_) and challenge, r)


def not_forwarded(r):
    """The test upstream echoes what it saw under "seen": an answer without it never reached it."""
    return 'seen' not in r.text


def flood(check, client, name, user, src, n, sid):
    """n concurrent tools/list of user from src: some meet the limit, each 429 with Retry-After and JSON."""
    def one(i):
        return client.post(user, rpc('tools/list', {}, 1000 + i), sid=sid, src=src)
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as ex:
        rs = list(ex.map(one, range(n)))
    limited = [r for r in rs if r.status_code == 429]
    ok = len(limited) > 0 and all(r.headers.get('retry-after') and json_or_sse(r) for r in limited)
    check('%s: 429 with Retry-After and JSON (%d of %d limited)' % (name, len(limited), n), ok,
          sorted(set(r.status_code for r in rs)))


def concurrent_initializes(client, users, srcs):
    """One initialize per (user, source) at once; [(status, sid, message, retry-after, user)]."""
    def one(job):
        user, src = job
        r, sid = client.initialize(user, src=src)
        return (r.status_code, sid, message_of(r), r.headers.get('retry-after'), user)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(users)) as ex:
        return list(ex.map(one, list(zip(users, srcs))))


def tally(results):
    codes = [x[0] for x in results]
    return dict((c, codes.count(c)) for c in sorted(set(codes)))
