"""A trivial stand-in for supergateway (streamable HTTP, stateful) on 127.0.0.1:8000.

It answers JSON-RPC requests with what it saw (path, the headers the proxy must
control, a digest of the raw body) so the tests can assert what crossed the proxy.
"""
import hashlib
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSIONS = set()
LOCK = threading.Lock()

# What the list methods answer: the gateway filters these per role.
LISTS = {
    'tools/list': ('tools', [{'name': n, 'inputSchema': {'type': 'object'}}
                             for n in ('echo', 'get-sum', 'admin-only-tool', 'get-env')]),
    'prompts/list': ('prompts', [{'name': 'simple-prompt'}, {'name': 'complex-prompt'}]),
    'resources/list': ('resources', [{'uri': 'demo://resource/static/document/a.md', 'name': 'a'},
                                     {'uri': 'demo://resource/static/document/sub/b.md', 'name': 'b'},
                                     {'uri': 'demo://resource/secret/key', 'name': 'key'},
                                     # matches the reader's glob as text, resolves outside it (issue 19 item 1)
                                     {'uri': 'demo://resource/static/document/../../secret/key', 'name': 'escape'}]),
    'resources/templates/list': ('resourceTemplates', [{'uriTemplate': 'demo://resource/static/document/{name}', 'name': 'doc'},
                                                       {'uriTemplate': 'demo://resource/secret/{id}', 'name': 'secret'}]),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def seen(self, body=b''):
        return {'port': self.server.server_address[1], 'path': self.path, 'authorization': self.headers.get('Authorization'),
                'subject': self.headers.get_all('X-Mcpsec-Subject'), 'cookie': self.headers.get('Cookie'),
                'session': self.headers.get('Mcp-Session-Id'), 'body_sha256': hashlib.sha256(body).hexdigest(),
                'traceparent': self.headers.get_all('traceparent'), 'tracestate': self.headers.get_all('tracestate')}

    def send(self, status, obj=None, headers=None):
        data = b'' if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.send_header('X-Powered-By', 'Express')
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def session_ok(self):
        sid = self.headers.get('Mcp-Session-Id')
        with LOCK:
            return sid in SESSIONS

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        if self.path != '/mcp':
            return self.send(404, {'error': 'path'})
        msg = json.loads(body)
        sid = self.headers.get('Mcp-Session-Id')
        if msg.get('method') == 'initialize' and sid is None:
            if ((msg.get('params') or {}).get('clientInfo') or {}).get('name') == 'answer-404':
                # a backend that answers 404 to a request without a session (issue 13, item 6)
                return self.send(404, {'jsonrpc': '2.0', 'id': None, 'error': {'code': -32001, 'message': 'Session not found'}})
            client = ((msg.get('params') or {}).get('clientInfo') or {}).get('name')
            # 'fixed-sid': the same backend id every time, so that the second binding fails and the
            # gateway must end the session it cannot bind (issue 19 item 2); 'slow': answers after 1 s
            sid = 'fixed-sid-0001' if client == 'fixed-sid' else str(uuid.uuid4())
            if client == 'slow':
                time.sleep(1.0)
            with LOCK:
                SESSIONS.add(sid)
            return self.send(200, {'jsonrpc': '2.0', 'id': msg.get('id'), 'result': {'seen': self.seen(body)}},
                             {'Mcp-Session-Id': sid})
        if sid is not None and not self.session_ok():
            return self.send(404, {'jsonrpc': '2.0', 'id': None, 'error': {'code': -32001, 'message': 'Session not found'}})
        if 'id' not in msg or 'method' not in msg:
            return self.send(202)
        if msg['method'] in LISTS:
            return self.list_answer(msg, body)
        if msg['method'] == 'tools/call' and (msg.get('params') or {}).get('name') == 'sleep':
            time.sleep(min(3.0, float(((msg['params'].get('arguments') or {}).get('seconds')) or 1)))
        return self.send(200, {'jsonrpc': '2.0', 'id': msg['id'], 'result': {'seen': self.seen(body)}})

    def tool_pages(self):
        """The tools this port lists when a test wrote /tmp/upstream-tools-<port>.json (tool
        pinning, issue 22): {"pages": [[tool, ...], ...], "broken": bool}, read at every request."""
        try:
            with open('/tmp/upstream-tools-%d.json' % self.server.server_address[1]) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def list_answer(self, msg, body):
        """params.cursor picks the shape: none -> JSON page 1 (nextCursor p2); 'sse' -> an SSE
        stream (a notification, then the response); 'broken' -> an answer that is not a list;
        'error' -> the backend's own JSON-RPC error. With a tools file (tool_pages), tools/list
        answers its pages (cursor page-<n>; 'sse': the first page as a stream)."""
        key, items = LISTS[msg['method']]
        cursor = (msg.get('params') or {}).get('cursor')
        result = {key: items, 'nextCursor': 'p2', 'seen': self.seen(body)}
        pages = self.tool_pages() if msg['method'] == 'tools/list' else None
        if pages is not None:
            n = int(cursor[5:]) if isinstance(cursor, str) and cursor.startswith('page-') else 0
            result = {key: pages['pages'][n] if not pages.get('broken') else {'not': 'a list'}}
            if n + 1 < len(pages['pages']):
                result['nextCursor'] = 'page-%d' % (n + 1)
        if cursor == 'broken':
            result[key] = {'not': 'a list'}
        if cursor == 'error':
            return self.send(200, {'jsonrpc': '2.0', 'id': msg['id'], 'error': {'code': -32602, 'message': 'bad cursor'}})
        if cursor != 'sse':
            return self.send(200, {'jsonrpc': '2.0', 'id': msg['id'], 'result': result})
        events = ('event: message\nid: 7\ndata: {"jsonrpc":"2.0","method":"notifications/message",'
                  '"params":{"level":"info","data":"listing"}}\n\n'
                  ': keep-alive comment\n\n'
                  'event: message\nid: 8\ndata: ' + json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': result}) + '\n\n')
        data = events.encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        for i in range(0, len(data), 50):      # chunked, in pieces that split lines
            part = data[i:i + 50]
            self.wfile.write(b'%x\r\n%s\r\n' % (len(part), part))
        self.wfile.write(b'0\r\n\r\n')
        return None

    def do_GET(self):
        if self.path == '/healthz':     # supergateway's health endpoint (mcpsec_backend_up)
            return self.send(200, {'status': 'ok'})
        if not self.session_ok():
            return self.send(404, {'error': 'session'})
        data = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/ping"}\n\n'
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_DELETE(self):
        sid = self.headers.get('Mcp-Session-Id')
        with open('/tmp/upstream-deletes.log', 'a') as log:    # what the gateway ended (tests/njs/http)
            log.write('%s\n' % sid)
        with LOCK:
            if sid not in SESSIONS:
                return self.send(404, {'error': 'session'})
            SESSIONS.discard(sid)
        return self.send(200, {'deleted': sid})


if __name__ == '__main__':
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    ThreadingHTTPServer(('127.0.0.1', port), Handler).serve_forever()
