# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""mcp_tools' core (module_utils/_pin_tools.py): one session, every page, the session ended,
and the comparison with the pins - against the pinning tests' fixture server behind a small
Streamable HTTP front (JSON and SSE answers)."""
from __future__ import annotations

import json
import os
import sys
import threading

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.mcpsec.gateway.plugins.module_utils import _jcs, _pin_tools

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '..', 'fixtures', 'pin_fixture', 'src'))
import mcpsec_pin_fixture as fixture  # noqa: E402

TOOLS = [{'name': 'echo', 'inputSchema': {'type': 'object'}},
         {'name': 'add', 'description': 'Adds.', 'inputSchema': {'type': 'object'}, '_meta': {'x': 1}},
         {'name': 'note', 'inputSchema': {'type': 'object', 'properties': {'id': {'type': 'integer'}}}}]


class Front(BaseHTTPRequestHandler):
    """A stateful Streamable HTTP front: a session id from initialize, required afterwards."""
    log = []

    def log_message(self, *args):
        pass

    def _answer(self, status, body=None, headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        data = b'' if body is None else body.encode()
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        message = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        sid = self.headers.get('Mcp-Session-Id')
        Front.log.append((message.get('method'), sid, self.headers.get('MCP-Protocol-Version')))
        if message.get('method') != 'initialize' and sid != 'sid-1':
            return self._answer(400)
        answer = fixture.handle(message, self.server.tools_file)
        if answer is None:
            return self._answer(202)
        headers = {'Mcp-Session-Id': 'sid-1'} if message['method'] == 'initialize' else {}
        if self.server.sse:
            headers['Content-Type'] = 'text/event-stream'
            return self._answer(200, 'event: message\ndata: %s\n\n' % json.dumps(answer), headers)
        headers['Content-Type'] = 'application/json'
        return self._answer(200, json.dumps(answer), headers)

    def do_DELETE(self):
        Front.log.append(('DELETE', self.headers.get('Mcp-Session-Id'), None))
        self._answer(200)


@pytest.fixture(params=[False, True], ids=['json', 'sse'])
def server(request, tmp_path):
    path = tmp_path / 'tools.json'
    path.write_text(json.dumps(TOOLS))
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), Front)
    httpd.tools_file, httpd.sse = str(path), request.param
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Front.log = []
    yield 'http://127.0.0.1:%d/mcp' % httpd.server_address[1], path
    httpd.shutdown()
    httpd.server_close()


def test_lists_every_page_in_one_session_and_ends_it(server):
    url, _path = server
    tools = _pin_tools.list_tools(url)
    assert [t['name'] for t in tools] == ['echo', 'add', 'note']
    methods = [entry[0] for entry in Front.log]
    assert methods == ['initialize', 'notifications/initialized', 'tools/list', 'tools/list', 'DELETE']
    assert all(entry[1] == 'sid-1' for entry in Front.log[1:])
    assert all(entry[2] == '2025-06-18' for entry in Front.log[1:4])


def test_compare_new_unchanged_changed_removed(server):
    url, path = server
    pins, definitions = _pin_tools.new_pins(_pin_tools.list_tools(url))
    assert pins['add'] == _jcs.tool_digest(TOOLS[1]) and '_meta' not in definitions['add']
    changed = [dict(TOOLS[0], description='now with a hidden instruction'), TOOLS[1],
               {'name': 'fresh', 'inputSchema': {'type': 'object'}}]
    path.write_text(json.dumps(changed))
    report = _pin_tools.compare(_pin_tools.list_tools(url), pins, definitions)
    status = dict((item['tool'], item['status']) for item in report)
    assert status == {'echo': 'changed', 'add': 'unchanged', 'fresh': 'new', 'note': 'removed'}
    echo = [item for item in report if item['tool'] == 'echo'][0]
    assert echo['pin'] == pins['echo'] and echo['digest'] == _jcs.tool_digest(changed[0])
    assert '+  "description": "now with a hidden instruction",' in echo['diff'].splitlines()
    assert echo['diff'].startswith('--- pinned/echo\n+++ listed/echo')
    assert [i['tool'] for i in _pin_tools.drift(report, 'enforce')] == ['echo', 'fresh']
    assert [i['tool'] for i in _pin_tools.drift(report, 'report')] == ['echo']
    lines = _pin_tools.report_lines(report, 'pinned')
    assert lines[0] == 'pinned/echo: changed (%s -> %s)' % (pins['echo'], echo['digest'])
    assert 'pinned/note: removed' in lines and any(line.startswith('    +') for line in lines)
    assert _pin_tools.drift_lines(_pin_tools.drift(report, 'enforce'), 'pinned') == [
        'pinned/echo changed: pin %s, server %s' % (pins['echo'], echo['digest']),
        'pinned/fresh new: pin -, server %s' % _jcs.tool_digest(changed[2])]


def test_unreachable_and_refused_are_named():
    with pytest.raises(_pin_tools.McpError, match='initialize'):
        _pin_tools.Session('http://127.0.0.1:9/mcp', timeout=2).call('initialize')


def test_sse_with_several_events_picks_the_answer():
    body = (b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"}\n\n'
            b'data: {"jsonrpc":"2.0",\ndata: "id":3,"result":{}}\n\n')
    messages = _pin_tools._messages(body, 'text/event-stream')
    assert messages[1] == {'jsonrpc': '2.0', 'id': 3, 'result': {}}
