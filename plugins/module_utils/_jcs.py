# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""RFC 8785 (JCS) canonical JSON and the tool digest of tool pinning (docs/tool-pinning.md).

The gateway (roles/proxy/files/njs/pins.js) computes the same digest over what a server
lists, so every byte here must be what ECMAScript's JSON.stringify writes: object keys
sorted by UTF-16 code units, strings escaped as QuoteJSONString does (lone surrogates as
\\udxxx), numbers as Number::toString (shortest round-trip digits, no ".0" on integral
values, exponent form outside 1e-7 .. 1e21). The test vectors both sides check are in
tests/fixtures/jcs_vectors.json. Standard library only: a module and a filter use it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import math
import re

# The members of a tool object that define it (MCP 2025-11-25 Tool); others (_meta, icons) are not pinned.
TOOL_MEMBERS = ('name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations')
DIGEST_RE = re.compile(r'^sha256:[0-9a-f]{64}$')

_ESCAPES = {'"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'}


class JcsError(ValueError):
    """A value RFC 8785 cannot represent (NaN, an infinity, a non-JSON type)."""


def _number(value):
    """ECMAScript Number::toString of a double (RFC 8785 section 3.2.2.3)."""
    try:
        value = float(value)
    except OverflowError:
        raise JcsError('a number beyond the range of an IEEE 754 double')
    if math.isnan(value) or math.isinf(value):
        raise JcsError('NaN and infinities have no JSON form')
    if value == 0:
        return '0'
    sign = '-' if value < 0 else ''
    # repr gives the shortest digits that round-trip, as d.ddd[e+-x]; n is where the point goes.
    mantissa, _e, exp = repr(abs(value)).partition('e')
    whole, _dot, frac = mantissa.partition('.')
    raw = whole + frac
    digits = raw.lstrip('0')
    n = len(whole) + int(exp or 0) - (len(raw) - len(digits))
    digits = digits.rstrip('0')
    k = len(digits)
    if k <= n <= 21:
        text = digits + '0' * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + '.' + digits[n:]
    elif -6 < n <= 0:
        text = '0.' + '0' * (-n) + digits
    else:
        e = n - 1
        text = digits[0] + ('.' + digits[1:] if k > 1 else '') + 'e' + ('+' if e >= 0 else '-') + str(abs(e))
    return sign + text


def _string(text):
    """ECMAScript QuoteJSONString: a surrogate pair is one character, a lone surrogate \\udxxx."""
    out = ['"']
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        code = ord(char)
        if 0xD800 <= code <= 0xDBFF and index + 1 < size and 0xDC00 <= ord(text[index + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((code - 0xD800) << 10) + (ord(text[index + 1]) - 0xDC00)))
            index += 2
            continue
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append('\\u%04x' % code)
        else:
            out.append(char)
        index += 1
    out.append('"')
    return ''.join(out)


def _utf16_key(text):
    # Big-endian UTF-16 bytes compare as the code units do; lone surrogates pass through.
    return text.encode('utf-16-be', 'surrogatepass')


def canonical(value):
    """The RFC 8785 canonical JSON text of a JSON value (dict, list, str, int, float, bool, None)."""
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise JcsError('an object key that is no string: %s' % type(key).__name__)
        keys = sorted(value, key=_utf16_key)
        return '{' + ','.join(_string(key) + ':' + canonical(value[key]) for key in keys) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(canonical(item) for item in value) + ']'
    raise JcsError('a %s is no JSON value' % type(value).__name__)


def _reject_constant(name):
    raise JcsError('%s is no JSON value' % name)


def parse(text):
    """JSON text to a value as ECMAScript's JSON.parse reads it (NaN and Infinity refused)."""
    return json.loads(text, parse_constant=_reject_constant)


def digest_of(text):
    """"sha256:" + lowercase hex SHA-256 of the UTF-8 bytes of a canonical text."""
    return 'sha256:' + hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()


def tool_definition(tool):
    """The pinned part of a tool object: those of TOOL_MEMBERS it holds."""
    if not isinstance(tool, dict):
        raise JcsError('a tool is a JSON object, got a %s' % type(tool).__name__)
    return dict((key, tool[key]) for key in TOOL_MEMBERS if key in tool)


def tool_canonical(tool):
    return canonical(tool_definition(tool))


def tool_digest(tool):
    """The digest a pin holds: "sha256:<hex>" of the tool's canonical definition."""
    return digest_of(tool_canonical(tool))


def tool_pretty(tool):
    """The tool's definition for a reviewer: keys sorted, indented; not what the digest covers."""
    return json.dumps(tool_definition(tool), sort_keys=True, indent=2, ensure_ascii=False)
