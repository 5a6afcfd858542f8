"""bearer mode: tokens refused, njs_policy versions (fail closed), a backend that restarts."""
import hashlib
import json

import pytest

from gateway import JSON_HEADERS, reload_nginx, start_upstream, stop_upstream
from judge import expect, expect_401
from mcp_wire import initialize as init_msg
from mcp_wire import is_rpc_error, message_of, rpc

pytestmark = pytest.mark.applies(modes=('bearer',))
POLICY = '/etc/nginx/mcpsec/policy.json'

BAD_TOKENS = (('401 unknown token', 'Bearer ' + 'Q' * 44, 'invalid_token'),
              ('401 token digest presented as token', None, 'invalid_token'),
              ('401 Basic scheme in bearer mode', 'Basic YWxpY2U6eA==', None),
              ('401 empty bearer', 'Bearer ', 'invalid_token'))


@pytest.mark.parametrize('name,authorization,error', BAD_TOKENS, ids=[x[0] for x in BAD_TOKENS])
def test_token_refused(gw, client, check, name, authorization, error):
    if authorization is None:
        authorization = 'Bearer ' + hashlib.sha256(gw.secrets['tokens']['bob'].encode()).hexdigest()
    expect_401(check, 'bearer', name, client.post(None, rpc('ping'), extra=[('Authorization', authorization)]), error)


def test_repeated_authorization(gw, client, check):
    r = client.http('POST', headers=[client.cred('bob'), client.cred('alice')] + JSON_HEADERS, body=rpc('ping'))
    check('repeated Authorization refused', r.status_code in (400, 401), r)
    if r.status_code == 400 and not is_rpc_error(r):
        gw.mcp_requests -= 1     # nginx refused it before any location: no audit line


@pytest.fixture
def policy(kept_file):
    """policy.json as rendered; write(doc) serves another one until the test ends."""
    def write(doc):
        with open(POLICY, 'w') as f:
            json.dump(doc, f)
        reload_nginx()
    return json.loads(kept_file(POLICY, reload_nginx)), write


@pytest.mark.parametrize('version', (1, 2, None))
def test_policy_version_refused(client, check, policy, version):
    """njs reads njs_policy version 3 only: another version refuses every request (fail closed)."""
    doc, write = policy
    if version is None:
        del doc['version']
    else:
        doc['version'] = version
    write(doc)
    r = client.post('alice', init_msg(version='2025-11-25'))
    check('policy.json version %s: every request refused (500 policy_version)' % version,
          r.status_code == 500 and message_of(r).endswith('policy_version'), r)


@pytest.mark.parametrize('key,expected', (('refusal_limit', 'policy_limits'), ('auth_failure_limit', 'policy_limits'),
                                          ('servers.default.max_sessions_total', 'policy_sessions')))
def test_policy_without_limits_refused(client, check, policy, key, expected):
    """njs holds no defaults for the per-address limits or the session caps: a policy without them refuses."""
    doc, write = policy
    if key.startswith('servers.'):
        del doc['servers']['default']['max_sessions_total']
    else:
        del doc[key]
    write(doc)
    r = client.post('alice', init_msg(id_='no-' + key, version='2025-11-25'))
    check('policy.json without %s: initialize refused (503 %s, Retry-After)' % (key, expected),
          r.status_code == 503 and message_of(r).endswith(expected) and bool(r.headers.get('retry-after')), r)


def test_policy_version_3_served(client, check):
    check('policy.json version 3 again: served', client.initialize('alice')[0].status_code == 200)


def test_backend_restart(client, check):
    """The backend goes away and comes back without its sessions."""
    _r, sid = client.initialize('dave')
    stop_upstream()
    try:
        r = client.post('dave', rpc('ping', None, 50), sid=sid)
    finally:
        start_upstream()
    check('backend down: 503 JSON with Retry-After', r.status_code == 503 and is_rpc_error(r, None)
          and r.headers.get('Retry-After') == '5', r)
    r = client.post('dave', rpc('ping', None, 51), sid=sid)
    check('backend lost the session: 404 with a JSON-RPC error', r.status_code == 404 and is_rpc_error(r, None), r)
    r = client.post('dave', rpc('ping', None, 52), sid=sid)
    expect(check, 'binding released after the backend\'s 404', r, 404)
    r1, _s1 = client.initialize('dave')
    r2 = client.initialize('dave')[0]
    check('released binding frees the session slot', r1.status_code == 200 and r2.status_code == 200, (r1, r2))
