# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tool pinning on the host (docs/tool-pinning.md): list an MCP server's tools over its
loopback supergateway port (initialize, every tools/list page, DELETE of the session), and
compare them with the pins and the reviewed definitions. Standard library only."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import json

from urllib.error import HTTPError, URLError
from urllib.request import ProxyHandler, Request, build_opener

from ansible_collections.mcpsec.gateway.plugins.module_utils._jcs import tool_digest, tool_pretty, tool_definition

PROTOCOL = '2025-06-18'
MAX_PAGES = 100
CLIENT = {'name': 'mcpsec-pin-tools', 'version': '1'}


class McpError(Exception):
    """The server could not be listed; the message says where it stopped."""


def _messages(body, content_type):
    """The JSON-RPC messages of a response: one JSON body or the data of SSE events."""
    text = body.decode('utf-8')
    if 'text/event-stream' not in (content_type or ''):
        return [json.loads(text)] if text.strip() else []
    out, data = [], []
    for line in text.splitlines() + ['']:
        if line.startswith('data:'):
            data.append(line[5:][1:] if line[5:6] == ' ' else line[5:])
        elif line == '' and data:
            out.append(json.loads('\n'.join(data)))
            data = []
    return out


class Session(object):
    """One MCP session over Streamable HTTP, no proxy (loopback), no credentials."""

    def __init__(self, url, timeout=10, protocol=PROTOCOL):
        self.url, self.timeout, self.protocol = url, timeout, protocol
        self.sid, self.next_id = None, 0
        self.opener = build_opener(ProxyHandler({}))

    def _send(self, method, payload=None):
        headers = {'Accept': 'application/json, text/event-stream', 'Content-Type': 'application/json'}
        if self.sid:
            headers['Mcp-Session-Id'] = self.sid
            headers['MCP-Protocol-Version'] = self.protocol
        data = None if payload is None else json.dumps(payload).encode('utf-8')
        request = Request(self.url, data=data, headers=headers, method=method)
        try:
            response = self.opener.open(request, timeout=self.timeout)
        except HTTPError as exc:
            raise McpError('%s %s: HTTP %s' % (method, self.url, exc.code))
        except (URLError, OSError) as exc:
            raise McpError('%s %s: %s' % (method, self.url, getattr(exc, 'reason', exc)))
        with response:
            return response.headers, response.read()

    def call(self, method, params=None):
        self.next_id += 1
        rid = self.next_id
        try:
            headers, body = self._send('POST', {'jsonrpc': '2.0', 'id': rid, 'method': method, 'params': params or {}})
        except McpError as exc:
            raise McpError('%s: %s' % (method, exc))
        if self.sid is None:
            self.sid = headers.get('Mcp-Session-Id')
        try:
            answers = [m for m in _messages(body, headers.get('Content-Type')) if isinstance(m, dict) and m.get('id') == rid]
        except ValueError:
            raise McpError('%s: the answer is not JSON' % method)
        if not answers:
            raise McpError('%s: no answer with id %d' % (method, rid))
        if 'error' in answers[0]:
            raise McpError('%s: JSON-RPC error %s' % (method, json.dumps(answers[0]['error'])[:200]))
        return answers[0].get('result')

    def notify(self, method):
        self._send('POST', {'jsonrpc': '2.0', 'method': method})

    def close(self):
        if self.sid:
            try:
                self._send('DELETE')
            except McpError:
                pass  # a server that keeps no sessions may refuse DELETE (405): nothing to end


def list_tools(url, timeout=10, protocol=PROTOCOL):
    """Every tool the server lists, all pages, in one session that is ended afterwards."""
    session = Session(url, timeout, protocol)
    try:
        session.call('initialize', {'protocolVersion': protocol, 'capabilities': {}, 'clientInfo': CLIENT})
        session.notify('notifications/initialized')
        tools, cursor, seen = [], None, set()
        for _page in range(MAX_PAGES):
            result = session.call('tools/list', {'cursor': cursor} if cursor else {})
            page = result.get('tools') if isinstance(result, dict) else None
            if not isinstance(page, list) or not all(isinstance(t, dict) and isinstance(t.get('name'), str) for t in page):
                raise McpError('tools/list: the result holds no list of named tools')
            tools.extend(page)
            cursor = result.get('nextCursor')
            if cursor is None:
                return tools
            if cursor in seen:
                raise McpError('tools/list: the cursor %s came back (a loop)' % json.dumps(cursor)[:80])
            seen.add(cursor)
        raise McpError('tools/list: more than %d pages' % MAX_PAGES)
    finally:
        session.close()


def _diff(name, old, new):
    old_text = tool_pretty(old).splitlines() if old is not None else []
    return '\n'.join(difflib.unified_diff(old_text, tool_pretty(new).splitlines(), 'pinned/' + name,
                                          'listed/' + name, lineterm=''))


def compare(tools, pins, definitions=None):
    """Each tool's status against the pins: new, unchanged, changed (with a unified diff of
    the reviewed definition against the listed one) or removed (pinned, no longer listed)."""
    definitions = definitions or {}
    report, listed = [], {}
    for tool in tools:
        name = tool['name']
        digest = tool_digest(tool)
        listed[name] = tool
        pin = pins.get(name)
        item = {'tool': name, 'pin': pin, 'digest': digest}
        if pin is None:
            item['status'] = 'new'
        elif pin == digest:
            item['status'] = 'unchanged'
        else:
            item['status'] = 'changed'
            item['diff'] = _diff(name, definitions.get(name), tool)
        report.append(item)
    for name in sorted(set(pins) - set(listed)):
        report.append({'tool': name, 'pin': pins[name], 'digest': None, 'status': 'removed'})
    return report


def new_pins(tools):
    """The pins and the reviewed definitions of what the server lists now, by tool name."""
    pins = dict((tool['name'], tool_digest(tool)) for tool in tools)
    return pins, dict((tool['name'], tool_definition(tool)) for tool in tools)


def drift(report, mode):
    """What verify.yml fails on: a changed tool, and in enforce mode a tool with no pin."""
    return [item for item in report
            if item['status'] == 'changed' or (item['status'] == 'new' and mode == 'enforce')]


def drift_lines(items, server=None):
    """One line per drifted tool, naming both digests (what a scheduled check fails with)."""
    prefix = server + '/' if server else ''
    return ['%s%s %s: pin %s, server %s' % (prefix, item['tool'], item['status'], item['pin'] or '-', item['digest'])
            for item in items]


def report_lines(report, server=None):
    """One line per tool for the operator, and the diff of a changed one below it."""
    lines = []
    for item in report:
        line = '%s%s: %s' % (server + '/' if server else '', item['tool'], item['status'])
        if item['status'] == 'changed':
            line += ' (%s -> %s)' % (item['pin'], item['digest'])
        elif item['status'] in ('new', 'unchanged'):
            line += ' (%s)' % item['digest']
        lines.append(line)
        if item.get('diff'):
            lines.extend('    ' + d for d in item['diff'].splitlines())
    return lines
