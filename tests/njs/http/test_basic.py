"""basic mode: wrong credentials, the per-IP limit, the failed-authentication throttle, no metrics,
the verified-credential cache."""
import base64
import socket
import subprocess
import time

import pytest

from gateway import JSON_HEADERS
from judge import authed, expect_401, flood
from mcp_wire import message_of, rpc

pytestmark = pytest.mark.applies(modes=('basic',))
HTPASSWD = '/etc/nginx/mcpsec/htpasswd'


def basic(user, password):
    return ('Authorization', 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode())


def test_wrong_credentials(client, check):
    r = client.http('POST', headers=[basic('alice', 'wrong-password-xx')] + JSON_HEADERS, body=rpc('ping'))
    expect_401(check, 'basic', '401 wrong password, Basic challenge only', r)
    r = client.http('POST', headers=[('Authorization', 'Bearer ' + 'x' * 40)] + JSON_HEADERS, body=rpc('ping'))
    expect_401(check, 'basic', '401 Bearer token in basic mode (Basic challenge only)', r)


def test_per_ip_limit(client, check, addresses, admin_sid):
    flood(check, client, 'per-IP limit_req', 'alice', addresses(1)[0], 700, admin_sid)


def test_failed_auth_throttle(client, check, addresses, admin_sid):
    src = addresses(1)[0]
    bad = [basic('alice', 'guess-guess-guess')] + JSON_HEADERS
    if time.time() % 60 > 45:        # the window is the clock's minute: 55 guesses must not cross one
        time.sleep(61 - time.time() % 60)
    codes = [client.http('POST', headers=bad, body=rpc('ping'), src=src).status_code for _i in range(55)]
    r = client.post('alice', rpc('ping'), src=src)
    check('failed-auth throttle: 50 bad passwords per minute, then 429 even for the right one',
          codes[:50] == [401] * 50 and set(codes[50:]) == {429} and r.status_code == 429
          and r.headers.get('retry-after'), (codes, r))
    check('failed-auth throttle: other addresses unaffected', authed(client.post('alice', rpc('ping'), sid=admin_sid)))


def test_metrics_off(check):
    """Rendered with proxy_observability_enabled false (inner.sh): no metrics anywhere."""
    try:
        socket.create_connection(('127.0.0.1', 8081), timeout=3).close()
        listening = True
    except OSError:
        listening = False
    with open('/etc/nginx/conf.d/mcpsec-http.conf') as f:
        conf = f.read()
    check('metrics off: nothing listens on the status port, no metrics zone, no metrics module',
          not listening and 'mcpsec_metrics' not in conf and 'metrics.js' not in conf, listening)


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return time.monotonic() - t0, r


def median(xs):
    return sorted(xs)[len(xs) // 2]


def with_carol(lines, entry):
    """The htpasswd text with carol's line replaced (entry None: removed)."""
    out = [(('carol:%s' % entry) if line.startswith('carol:') else line) for line in lines.splitlines()]
    return ''.join(line + '\n' for line in out if entry is not None or not line.startswith('carol:'))


@pytest.fixture
def htpasswd(kept_file):
    """The htpasswd file as rendered and write(text), until the test ends."""
    def write(text):
        with open(HTPASSWD, 'w') as f:
            f.write(text)
    return kept_file(HTPASSWD), write


def test_cache_skips_the_hash(gw, client, check, addresses, htpasswd):
    """carol's hash made slow (sha512-crypt, 200,000 rounds: ~100 ms a hash) so that a request
    that is hashed and one that is not differ by far more than a loaded machine's noise."""
    original, write = htpasswd
    slow = subprocess.run(['perl', '-e', 'print crypt($ARGV[0], q($6$rounds=200000$mcpsecslowsalt$))',
                           gw.secrets['passwords']['carol']], capture_output=True, check=True).stdout.decode()
    write(with_carol(original, slow))
    client.post('carol', rpc('ping'))     # verified by auth_basic, now cached
    # answered by njs after authentication (400 session_required): no upstream in the timing
    hits = [timed(lambda: client.http('GET', headers=[client.cred('carol'), ('Accept', 'text/event-stream')]))
            for _i in range(15)]
    # each failure makes nginx hash the password; spread over addresses (the failed-auth throttle)
    bad = [basic('carol', 'not-the-password')] + JSON_HEADERS
    misses = [timed(lambda src=src: client.http('POST', headers=bad, body=rpc('ping'), src=src))
              for src in addresses(15)]
    check('basic cache: repeated credential accepted (15 x authenticated, 403 no_grants)',
          all(r.status_code == 403 and message_of(r).endswith('grant no tool, resource or prompt') for _t, r in hits),
          [(r.status_code, r.content[:80]) for _t, r in hits[:1]])
    check('basic cache: a verified credential skips the hash (median %.2f ms vs %.2f ms per hashed failure)'
          % (median([t for t, _r in hits]) * 1000, median([t for t, _r in misses]) * 1000),
          all(r.status_code == 401 for _t, r in misses)
          and median([t for t, _r in hits]) * 10 < median([t for t, _r in misses]))


def test_cache_follows_the_file(client, check, htpasswd):
    """A changed or removed password misses at once."""
    original, write = htpasswd
    client.post('carol', rpc('ping'))     # the current password, now cached
    new_hash = subprocess.run(['openssl', 'passwd', '-6', '-stdin'], input=b'carol-new-password-0123',
                              capture_output=True, check=True).stdout.decode().strip()
    write(with_carol(original, new_hash))
    r_old = client.post('carol', rpc('ping'))
    new = [basic('carol', 'carol-new-password-0123')] + JSON_HEADERS
    r_new = client.http('POST', headers=new, body=rpc('ping'))
    check('basic cache: changed password: cached old one 401 at once, new one 200',
          r_old.status_code == 401 and authed(r_new), (r_old, r_new))
    write(with_carol(original, None))
    r_gone = client.http('POST', headers=new, body=rpc('ping'))
    check('basic cache: removed user 401 at once', r_gone.status_code == 401, r_gone)
    write(original)
    check('basic cache: original password works again after restore', authed(client.post('carol', rpc('ping'))))
