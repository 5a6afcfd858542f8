# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""RFC 8785 canonical JSON and the tool digest: the vectors the njs side checks too
(tests/fixtures/jcs_vectors.json), ECMAScript number forms, and what is refused."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.mcpsec.gateway.plugins.module_utils import _jcs

VECTORS_FILE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'jcs_vectors.json')
with open(VECTORS_FILE, encoding='utf-8') as _f:
    VECTORS = json.load(_f)


@pytest.mark.parametrize('vector', VECTORS, ids=[v.get('note', v['input'])[:60] for v in VECTORS])
def test_vector(vector):
    value = _jcs.parse(vector['input'])
    text = _jcs.tool_canonical(value) if vector.get('tool') else _jcs.canonical(value)
    assert text == vector['canonical']
    digest = _jcs.tool_digest(value) if vector.get('tool') else _jcs.digest_of(text)
    assert digest == vector['digest']
    assert digest == 'sha256:' + hashlib.sha256(vector['canonical'].encode('utf-8')).hexdigest()


def test_vectors_cover_rfc_appendix_b_and_sorting():
    notes = [v.get('note', '') for v in VECTORS]
    assert sum(1 for n in notes if n.startswith('RFC 8785 Appendix B')) == 24
    assert 'RFC 8785 section 3.2.3 (UTF-16 key order)' in notes
    assert sum(1 for v in VECTORS if v.get('tool')) >= 3


@pytest.mark.parametrize('value,text', [
    (1.0, '1'), (-1.5, '-1.5'), (100, '100'), (1e21, '1e+21'), (1e20, '100000000000000000000'),
    (1e-7, '1e-7'), (1.5e-7, '1.5e-7'), (1e-6, '0.000001'), (123456789012345678901234567890, '1.2345678901234568e+29'),
    (2 ** 53 + 1, '9007199254740992'), (0.1 + 0.2, '0.30000000000000004'), (-0.0, '0'), (5e-324, '5e-324'),
])
def test_numbers_as_ecmascript_writes_them(value, text):
    assert _jcs.canonical(value) == text


@pytest.mark.parametrize('value,text', [
    ('\ud800', '"\\ud800"'), ('a\udfffb', '"a\\udfffb"'), ('\ud83d\ude00', '"\U0001F600"'),
    ('\U0001F600', '"\U0001F600"'), ('\x7f\u2028', '"\x7f\u2028"'), ('\x00\x1f', '"\\u0000\\u001f"'),
    ('/<>&', '"/<>&"'),
])
def test_strings_as_ecmascript_writes_them(value, text):
    assert _jcs.canonical(value) == text


def test_keys_sorted_by_utf16_code_units_not_code_points():
    # U+1F600 is D83D DE00 in UTF-16: before U+FB33, though its code point is after.
    assert _jcs.canonical({'\ufb33': 1, '\U0001F600': 2}) == '{"\U0001F600":2,"\ufb33":1}'


@pytest.mark.parametrize('value', [float('nan'), float('inf'), {1: 'x'}, {'a': {1, 2}}, b'x', 10 ** 400])
def test_refused(value):
    with pytest.raises(_jcs.JcsError):
        _jcs.canonical(value)


@pytest.mark.parametrize('text', ['NaN', '[Infinity]', '{"a": -Infinity}'])
def test_parse_refuses_non_json_numbers(text):
    with pytest.raises(_jcs.JcsError):
        _jcs.parse(text)


def test_ascii_agrees_with_python_sorted_dump():
    value = {'z': [1, 2.5, {'b': None, 'a': 'x"y'}], 'A': True, 'm': -3}
    assert _jcs.canonical(value) == json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def test_tool_digest_covers_the_definition_only():
    tool = {'name': 'echo', 'inputSchema': {'type': 'object'}}
    digest = _jcs.tool_digest(tool)
    assert _jcs.DIGEST_RE.match(digest)
    assert _jcs.tool_digest(dict(tool, _meta={'a': 1}, icons=[], execution={})) == digest
    for key, value in (('title', 'Echo'), ('description', 'x'), ('outputSchema', {}), ('annotations', {})):
        assert _jcs.tool_digest(dict(tool, **{key: value})) != digest
    assert _jcs.tool_digest(dict(tool, inputSchema={'type': 'object', 'properties': {}})) != digest


def test_tool_pretty_is_sorted_and_indented():
    assert _jcs.tool_pretty({'name': 'a', 'inputSchema': {'type': 'object'}, '_meta': {}}) == (
        '{\n  "inputSchema": {\n    "type": "object"\n  },\n  "name": "a"\n}')


def test_tool_must_be_an_object():
    with pytest.raises(_jcs.JcsError):
        _jcs.tool_digest(['echo'])
