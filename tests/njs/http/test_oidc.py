"""oidc mode: the JWKS cache (cold, single-flight, rotation, outage), accepted and refused JWTs,
scopes, subjects that are not plain ASCII, audiences per server."""
import concurrent.futures
import shutil
import time

import pytest

from gateway import TIME_PATH, restart_gateway, sh
from judge import authed, expect, expect_401, expect_403_scope
from mcp_wire import is_rpc_error, rpc, tool_call

pytestmark = pytest.mark.applies(modes=('oidc',))
IDP_JWKS = '/opt/mcpsec-test/idp/jwks.json'


def idp(action):
    if action == 'stop':
        sh('nginx -c /opt/mcpsec-test/idp.conf -s stop; sleep 0.3')
    else:
        sh('nginx -c /opt/mcpsec-test/idp.conf')
        time.sleep(0.3)


def jwks_fetches():
    try:
        with open('/var/log/mcpsec-idp-access.log') as f:
            return sum(1 for line in f if '/certs' in line)
    except OSError:
        return 0


@pytest.fixture
def cold_gateway():
    """A restarted gateway (empty JWKS cache and stamps) before the test and after it."""
    restart_gateway()
    yield
    restart_gateway()


@pytest.fixture
def idp_down():
    """stop() takes the IdP down; it is up again when the test ends."""
    yield lambda: idp('stop')
    idp('start')


def test_cold_cache_idp_down(client, check, cold_gateway, idp_down):
    idp_down()
    r = client.post('rs256_reader', rpc('initialize', {}, 1))
    check('cold JWKS cache + IdP down: 503 JSON', r.status_code == 503 and is_rpc_error(r, None), r)


def test_single_flight(client, check, cold_gateway):
    """A cold cache and 64 concurrent requests make one JWKS fetch."""
    before = jwks_fetches()
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as ex:
        rs = list(ex.map(lambda i: client.post('rs256_reader', rpc('tools/list', {}, i)), range(64)))
    fetched = jwks_fetches() - before
    check('single-flight: 64 concurrent cold requests, %d JWKS fetch(es)' % fetched,
          fetched == 1 and all(authed(r) for r in rs), (fetched, sorted(set(r.status_code for r in rs))))
    time.sleep(3.5)   # rs256_reader's per-user limit_req bucket refills (20 r/s) before the next test


def test_tokens_accepted(gw, client, check):
    r = client.initialize('es256_reader')[0]
    check('ES256 token accepted', r.status_code == 200, r)
    check('aud array containing the resource accepted', client.initialize('rs256_aud_array')[0].status_code == 200)
    check('nbf in the past accepted', client.initialize('rs256_nbf_past')[0].status_code == 200)
    _r, s = client.initialize('rs256_proto_roles')
    expect(check, 'roles __proto__/constructor grant nothing',
           client.post('rs256_proto_roles', tool_call('echo', id_=3), sid=s), 403, 3)
    client.post('rs256_reader', rpc('tools/list', {}, 4))
    check('verified token served from cache (second use)', authed(client.post('rs256_reader', rpc('tools/list', {}, 5))))


def test_scopes(gw, client, check):
    """required_scopes [mcp:tools], scope_roles {mcp:admin: [admin]}."""
    r = client.initialize('rs256_noscope')[0]
    check('token without the required scope: 403 insufficient_scope naming it',
          expect_403_scope(check, gw.mode, 'token without the required scope: 403', r, 1) and
          any('scope="mcp:tools"' in c for c in r.headers.get_list('www-authenticate')), r)
    check('required scope from an scp list accepted', client.initialize('rs256_scp_list')[0].status_code == 200)
    r, s = client.initialize('rs256_scope_admin')
    check('scope_roles: mcp:admin grants admin (no roles claim)', r.status_code == 200 and
          client.post('rs256_scope_admin', tool_call('admin-only-tool', id_=4), sid=s).status_code == 200, r)


@pytest.fixture
def rotated_jwks(gw, cold_gateway):
    """The IdP publishes the rotated key set (the old keys and rsa-2) until the test ends."""
    shutil.copy(IDP_JWKS, IDP_JWKS + '.orig')
    yield lambda: shutil.copy('%s/jwks-rotated.json' % gw.fixtures_dir, IDP_JWKS)
    shutil.move(IDP_JWKS + '.orig', IDP_JWKS)


def test_key_rotation(gw, client, check, rotated_jwks):
    """The first unknown kid triggers a refetch that finds the new key; more unknown kids do not."""
    check('a warm cache before the rotation', client.initialize('rs256_reader')[0].status_code == 200)
    rotated_jwks()
    before = jwks_fetches()
    check('rotated key: unknown kid refetches JWKS and verifies', client.initialize('rs256_rotated')[0].status_code == 200)
    for t in gw.fx['tokens']['unknown_kids']:
        client.post(None, rpc('ping'), extra=[('Authorization', 'Bearer ' + t)])
    check('unknown kids: at most one refetch per 30 s (%d fetches)' % (jwks_fetches() - before),
          jwks_fetches() - before == 1, jwks_fetches() - before)


BAD = ('expired', 'nbf_future', 'wrong_iss', 'wrong_aud', 'no_exp', 'string_exp', 'no_sub', 'crlf_sub', 'alg_none',
       'alg_none_nokid', 'hs256_pubkey_pem', 'hs256_empty_key', 'unknown_kid', 'unpublished_key_known_kid',
       'es256_with_rsa_kid', 'rs256_with_ec_kid', 'es256_der_sig', 'tampered_payload', 'crit_header',
       'bad_typ', 'duplicate_claim')


@pytest.mark.parametrize('name', BAD)
def test_bad_jwt(gw, client, check, name):
    r = client.post(None, rpc('initialize', {}, 1), extra=[('Authorization', 'Bearer ' + gw.fx['tokens'][name])])
    expect_401(check, 'oidc', '401 JWT %s' % name, r, 'invalid_token')


def test_not_a_jwt(client, check):
    expect_401(check, 'oidc', '401 not a JWT',
               client.post(None, rpc('ping'), extra=[('Authorization', 'Bearer abc.def')]), 'invalid_token')
    expect_401(check, 'oidc', '401 no token', client.post(None, rpc('ping')))


def test_unusual_subjects(client, check):
    """Issue 19 item 5: subjects that are not printable ASCII or are long work in their own sessions
    and stay apart (U+1F600 and U+F600, two 300-character subjects sharing 299)."""
    sids = {}
    for name in ('sub_jose', 'sub_backslash', 'sub_300', 'sub_300b', 'sub_emoji', 'sub_f600'):
        r, sid = client.initialize(name)
        calls = [client.post(name, rpc('ping', None, 10 + i), sid=sid).status_code for i in range(2)]
        sids[name] = sid
        check('OIDC subject %s: initialize %d, its own session answers %s' % (name, r.status_code, calls),
              r.status_code == 200 and calls == [200, 200], r)
    for a, b in (('sub_emoji', 'sub_f600'), ('sub_300', 'sub_300b')):
        r = client.post(b, rpc('ping', None, 20), sid=sids[a])
        check('OIDC subjects %s and %s are two identities: %s\'s session is 404 for %s' % (a, b, a, b),
              r.status_code == 404, r)


def test_audience_per_server(client, check):
    """Issue 20: a token for the default server's resource is refused at another server's path
    (its audiences are its own resource URL), the same token works where it belongs."""
    r = client.post('rs256_reader', rpc('tools/list', {}, 1), path=TIME_PATH)
    check('servers: a token whose aud is /mcp\'s resource at /time/mcp: 401 (audience of another server)',
          r.status_code == 401 and 'resource-metadata' not in (r.headers.get('www-authenticate') or '')
          and 'oauth-protected-resource/time/mcp' in (r.headers.get('www-authenticate') or ''), r)
    r = client.post('rs256_reader', rpc('tools/list', {}, 1))
    check('servers: the same token at /mcp is not refused for its audience', r.status_code != 401, r)


def test_warm_cache_idp_down(gw, client, check, idp_down):
    """A warm cache survives an IdP outage (a token it has not verified yet still verifies)."""
    check('a warm JWKS cache before the outage', client.initialize('rs256_reader')[0].status_code == 200)
    idp_down()
    r = client.post('rs256_nbf_past', rpc('ping', None, 3), sid=client.initialize('rs256_nbf_past')[1])
    check('IdP down, warm JWKS: new token still verifies', r.status_code == 200, r)
    r = client.post(None, rpc('ping'), extra=[('Authorization', 'Bearer ' + gw.fx['tokens']['expired'])])
    expect_401(check, 'oidc', 'IdP down: bad token still 401 (not 503)', r, 'invalid_token')
