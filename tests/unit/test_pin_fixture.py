# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pinning tests' MCP server (tests/fixtures/pin_fixture): pages of two, the file read
at every request, the protocol versions it echoes."""
from __future__ import annotations

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures', 'pin_fixture', 'src'))
import mcpsec_pin_fixture as fixture  # noqa: E402


@pytest.fixture
def tools_file(tmp_path):
    path = tmp_path / 'tools.json'
    path.write_text(json.dumps([{'name': n, 'inputSchema': {'type': 'object'}} for n in ('a', 'b', 'c', 'd', 'e')]))
    return str(path)


def rpc(method, params=None, rid=1):
    message = {'jsonrpc': '2.0', 'id': rid, 'method': method}
    if params is not None:
        message['params'] = params
    return message


def test_every_page_holds_two_tools(tools_file):
    names, cursor, pages = [], None, 0
    while True:
        result = fixture.handle(rpc('tools/list', {'cursor': cursor} if cursor else None), tools_file)['result']
        names += [t['name'] for t in result['tools']]
        pages += 1
        cursor = result.get('nextCursor')
        if cursor is None:
            break
    assert names == ['a', 'b', 'c', 'd', 'e'] and pages == 3


@pytest.mark.parametrize('cursor', ['page-0', 'page-9', 'x', 3, 'page-'])
def test_bad_cursor_is_an_error(tools_file, cursor):
    assert fixture.handle(rpc('tools/list', {'cursor': cursor}), tools_file)['error']['code'] == -32602


def test_the_file_is_read_at_every_request(tools_file):
    with open(tools_file, 'w') as out:
        json.dump([{'name': 'z', 'description': 'changed'}], out)
    assert fixture.handle(rpc('tools/list'), tools_file)['result'] == {'tools': [{'name': 'z', 'description': 'changed'}]}
    text = fixture.handle(rpc('tools/call', {'name': 'z', 'arguments': {'q': 1}}), tools_file)['result']['content'][0]['text']
    assert text == 'tool z called with {"q": 1}'
    assert fixture.handle(rpc('tools/call', {'name': 'a'}), tools_file)['error']['code'] == -32602


@pytest.mark.parametrize('asked,answered', [('2025-03-26', '2025-03-26'), ('2025-06-18', '2025-06-18'),
                                            ('2025-11-25', '2025-11-25'), ('1999-01-01', '2025-11-25')])
def test_initialize_echoes_known_versions(tools_file, asked, answered):
    result = fixture.handle(rpc('initialize', {'protocolVersion': asked}), tools_file)['result']
    assert result['protocolVersion'] == answered and result['capabilities'] == {'tools': {'listChanged': False}}


def test_ping_notification_unknown_and_missing_file(tools_file):
    assert fixture.handle(rpc('ping', rid='x'), tools_file) == {'jsonrpc': '2.0', 'id': 'x', 'result': {}}
    assert fixture.handle({'jsonrpc': '2.0', 'method': 'notifications/initialized'}, tools_file) is None
    assert fixture.handle(rpc('resources/list'), tools_file)['error']['code'] == -32601
    assert fixture.handle(rpc('tools/list'), tools_file + '.gone')['error']['code'] == -32603
