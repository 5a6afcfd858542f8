"""Every mode: OAuth metadata (or its absence), CORS, 401 without credentials, what the backend sees."""
import hashlib

import pytest

from gateway import JSON_HEADERS
from judge import expect_401
from mcp_wire import encode, json_or_sse, rpc, tool_call

NO_OAUTH_PATHS = ('/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp',
                  '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/register')


@pytest.mark.applies(modes=('oidc',))
def test_oauth_metadata(client, check):
    r = client.http('GET', '/.well-known/oauth-protected-resource')
    j = json_or_sse(r)
    check('metadata: RFC 9728 document', r.status_code == 200 and j.get('resource') == 'https://mcp.test/mcp'
          and j.get('bearer_methods_supported') == ['header'] and 'json' in (r.headers.get('content-type') or ''), r)
    r2 = client.http('GET', '/.well-known/oauth-protected-resource/mcp')
    check('metadata: path-inserted form', r2.status_code == 200 and json_or_sse(r2) == j, r2)


@pytest.mark.applies(modes=('basic', 'bearer'))
@pytest.mark.parametrize('path', NO_OAUTH_PATHS)
def test_no_oauth(gw, client, check, path):
    word = {'basic': 'HTTP Basic authentication', 'bearer': 'static bearer tokens'}[gw.mode]
    r = client.http('POST' if path == '/register' else 'GET', path, headers=JSON_HEADERS,
                    body=b'{}' if path == '/register' else None)
    j = json_or_sse(r)
    check('no OAuth in %s mode: %s is 404 naming the mode' % (gw.mode, path), r.status_code == 404
          and j.get('error') == 'no_oauth' and word in (j.get('error_description') or ''), r)


def test_cors(client, check):
    """A preflight from an allowed origin is answered before authentication."""
    pre = client.http('OPTIONS', headers=[('Origin', 'https://claude.ai'), ('Access-Control-Request-Method', 'POST'),
                                          ('Access-Control-Request-Headers', 'authorization,content-type')])
    allow = set(h.strip().lower() for h in (pre.headers.get('access-control-allow-headers') or '').split(','))
    check('CORS preflight, allowed origin: 204 without credentials, MCP headers allowed', pre.status_code == 204
          and pre.headers.get('access-control-allow-origin') == 'https://claude.ai' and set([
              'authorization', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'mcp-method', 'mcp-name',
              'last-event-id']) <= allow, pre)
    pre = client.http('OPTIONS', headers=[('Origin', 'https://evil.example'), ('Access-Control-Request-Method', 'POST')])
    check('CORS preflight, other origin: 403, no Allow-Origin', pre.status_code == 403
          and pre.headers.get('access-control-allow-origin') is None, pre)
    pre = client.http('OPTIONS', headers=[('Origin', 'https://evil.example|https://claude.ai'),
                                          ('Access-Control-Request-Method', 'POST')])
    check('CORS preflight, origin with "|": 403', pre.status_code == 403, pre)
    r = client.http('POST', headers=JSON_HEADERS + [('Origin', 'https://claude.ai')], body=rpc('ping'))
    check('CORS: a 401 to an allowed origin carries Allow-Origin and exposes the MCP headers', r.status_code == 401
          and r.headers.get('access-control-allow-origin') == 'https://claude.ai'
          and 'Mcp-Session-Id' in (r.headers.get('access-control-expose-headers') or ''), r)


@pytest.mark.parametrize('method', ('POST', 'GET', 'DELETE'))
def test_401_without_credentials(gw, client, check, method):
    expect_401(check, gw.mode, '401 without credentials: %s' % method,
               client.http(method, headers=JSON_HEADERS, body=rpc('ping') if method == 'POST' else None))


def seen_of(r):
    """What the test upstream saw of a request (its result carries it)."""
    return (json_or_sse(r).get('result') or {}).get('seen') or {}


def test_upstream_sees(client, users, check):
    """initialize: the session id; the backend gets the subject, never the credentials or cookies."""
    admin = users['admin']
    r, sid = client.initialize(admin)
    seen = seen_of(r)
    check('initialize: 200 with a session id', r.status_code == 200 and bool(sid), r)
    check('upstream: Authorization stripped', r.status_code == 200 and seen.get('authorization') is None, seen)
    check('upstream: X-Mcpsec-Subject is the subject', seen.get('subject') is not None and len(seen['subject']) == 1, seen)
    check('upstream: path is the backend path', seen.get('path') == '/mcp', seen)
    check('upstream: X-Powered-By hidden', r.headers.get('x-powered-by') is None, r)
    subject_admin = (seen.get('subject') or [None])[0]
    body = encode(tool_call('echo', {'text': 'h\u00e9llo \\u0041', 'n': [1, 2.5e3]}, 5))
    spoof = [('X-Mcpsec-Subject', 'mallory'), ('x-mcpsec-subject', 'eve'), ('Cookie', 'a=b')]
    r = client.post(admin, body, sid=sid, extra=spoof)
    seen = seen_of(r)
    check('upstream: client X-Mcpsec-Subject replaced', r.status_code == 200 and seen.get('subject') == [subject_admin], seen)
    check('upstream: Cookie stripped', seen.get('cookie') is None, seen)
    check('upstream: body forwarded byte-for-byte', seen.get('body_sha256') == hashlib.sha256(body).hexdigest(), seen)
    r = client.post(admin, tool_call('admin-only-tool', id_=6), sid=sid)
    check('admin role (all tools): admin-only-tool allowed', r.status_code == 200, r)
