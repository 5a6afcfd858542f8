"""Every mode: fail closed on the body and the headers; body limits; methods."""
import pytest

from gateway import JSON_HEADERS
from judge import expect
from mcp_wire import encode, rpc, tool_call

PING = encode(rpc('ping'))
BODIES = (
    ('batch array', b'[' + PING + b']', None),
    ('duplicate key at top level', b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}', None),
    ('duplicate params.name', b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",'
                              b'"name":"admin-only-tool"}}', None),
    ('duplicate via \\u-escaped key', b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",'
                                      b'"na\\u006de":"admin-only-tool"}}', None),
    ('duplicate key deep in arguments', b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",'
                                        b'"arguments":{"a":[{"x":1,"x":2}]}}}', None),
    ('invalid JSON', b'{"jsonrpc":"2.0","id":1,', None),
    ('trailing garbage', PING + b'x', None),
    ('two JSON values', PING + PING, None),
    ('invalid UTF-8 byte', b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\xff"}}', None),
    ('overlong UTF-8', b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\xc0\xaf"}}', None),
    ('UTF-8 BOM', b'\xef\xbb\xbf' + PING, None),
    ('lone surrogate escape', b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\\ud800"}}', None),
    ('deep nesting', b'{"jsonrpc":"2.0","id":1,"method":"ping","params":' + b'{"a":' * 40 + b'1' + b'}' * 40 + b'}', None),
    ('jsonrpc 1.0', b'{"jsonrpc":"1.0","id":1,"method":"ping"}', 1),
    ('id null', b'{"jsonrpc":"2.0","id":null,"method":"ping"}', None),
    ('tools/call without name', b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}', 1),
    ('tools/call as notification', b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}', None),
    ('empty body', b'', None),
)


@pytest.mark.parametrize('name,body,id_', BODIES, ids=[x[0] for x in BODIES])
def test_body_refused(client, users, check, reader_sid, name, body, id_):
    expect(check, '400 %s' % name, client.post(users['reader'], body, sid=reader_sid), 400, id_)


HEADERS = (
    ('Content-Encoding: gzip', [('Content-Encoding', 'gzip')], True),
    ('Content-Encoding: identity', [('Content-Encoding', 'identity')], True),
    ('Content-Type text/plain', [('Content-Type', 'text/plain')], False),
    ('no Content-Type', [], False),
    ('charset=iso-8859-1', [('Content-Type', 'application/json; charset=iso-8859-1')], False),
    ('charset=utf-16', [('Content-Type', 'application/json; charset=utf-16')], False),
    ('MCP-Protocol-Version unknown', [('MCP-Protocol-Version', '2099-01-01')], True),
    ('Mcp-Method disagrees', [('Mcp-Method', 'tools/list')], True),
    ('Mcp-Name disagrees', [('Mcp-Method', 'tools/call'), ('Mcp-Name', 'admin-only-tool')], True),
    ('Mcp-Session-Id repeated', None, True),
)


@pytest.mark.parametrize('name,extra,with_ct', HEADERS, ids=[x[0] for x in HEADERS])
def test_headers_refused(client, users, check, reader_sid, name, extra, with_ct):
    """A body that is not JSON (or not UTF-8) is 415 Unsupported Media Type, as the backend's SDK answers."""
    extra = [('Mcp-Session-Id', reader_sid)] if extra is None else extra
    headers = [client.cred(users['reader'])] + (JSON_HEADERS if with_ct else [('Accept', 'application/json, text/event-stream')])
    r = client.http('POST', headers=headers + [('Mcp-Session-Id', reader_sid)] + extra, body=tool_call('echo', id_=11))
    status = 400 if with_ct else 415
    expect(check, '%d %s' % (status, name), r, status, 11 if name.startswith('Mcp-') and 'repeated' not in name else None)


def test_headers_accepted_and_origin(client, users, check, reader_sid):
    reader, rsid = users['reader'], reader_sid
    r = client.post(reader, tool_call('echo', id_=12), sid=rsid, ctype=False,
                    extra=[('Content-Type', 'Application/JSON; charset="UTF-8"'), ('MCP-Protocol-Version', '2025-11-25'),
                           ('Mcp-Method', 'tools/call'), ('Mcp-Name', 'echo'), ('Origin', 'https://claude.ai')])
    check('200 matching Mcp-Method/Mcp-Name, known version, allowed Origin, charset="UTF-8"', r.status_code == 200, r)
    expect(check, '403 Origin not allowed',
           client.post(reader, tool_call('echo', id_=13), sid=rsid, extra=[('Origin', 'https://evil.example')]), 403)
    expect(check, '403 Origin null', client.post(reader, tool_call('echo', id_=14), sid=rsid, extra=[('Origin', 'null')]), 403)


def chunked(body, size):
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b''.join(b'%x\r\n%s\r\n' % (len(c), c) for c in parts) + b'0\r\n\r\n'


def echo_of(n, id_=1):
    return (b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"s":"' % id_
            + b'x' * n + b'"}}}')


def test_body_limits(client, users, check, reader_sid):
    reader, rsid = users['reader'], reader_sid
    big = echo_of(120000)
    expect(check, '413 body over the limit (Content-Length)', client.post(reader, big, sid=rsid), 413)
    r = client.post(reader, chunked(big, 8192), sid=rsid, extra=[('Transfer-Encoding', 'chunked')])
    expect(check, '413 body over the limit (chunked)', r, 413)
    r = client.post(reader, echo_of(95000), sid=rsid)
    check('95 KB body inspected in memory and forwarded', r.status_code == 200, r)
    # its own id: the first may not have left its log phase yet
    r = client.post(reader, chunked(echo_of(95000, 2), 1000), sid=rsid, extra=[('Transfer-Encoding', 'chunked')])
    check('95 KB chunked body in 95 chunks inspected and forwarded', r.status_code == 200, r)


def test_method_not_allowed(client, users, check):
    r = client.http('PUT', headers=[client.cred(users['reader'])] + JSON_HEADERS, body=rpc('ping'))
    expect(check, '405 PUT', r, 405)
    check('405 carries Allow', 'POST' in (r.headers.get('allow') or ''), r)
