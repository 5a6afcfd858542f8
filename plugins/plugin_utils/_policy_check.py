# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The check context of the policy validators: error collection and the shared checks.

``_Ctx`` collects every problem as ``<key path>: <problem>; <fix>``; its helpers check the
shape of a value (mapping, list, string, integer) and say what is wrong with it. The name,
secret and URL checks below are used by several sections. No Ansible imports."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import unicodedata

from collections.abc import Mapping, Sequence


ROOT = 'mcpsec_policy'

USER_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$')
ROLE_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_-]{0,63}$')
TOOL_RE = re.compile(r'^[A-Za-z0-9_.-]{1,128}$')
HOST_LABEL_RE = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$')

# Names njs would resolve through Object.prototype on an ordinary object.
JS_RESERVED = frozenset(name.lower() for name in (
    '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'isPrototypeOf',
    'propertyIsEnumerable', 'toLocaleString', 'toString', 'valueOf',
    '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__',
))

PLACEHOLDER_WORDS = frozenset((
    'changeme', 'changethis', 'changeit', 'replaceme', 'password', 'passwd', 'secret',
    'token', 'todo', 'fixme', 'tbd', 'placeholder', 'example', 'dummy', 'default',
    'yourpassword', 'yourtoken', 'yoursecret', 'mypassword', 'mysecret', 'mytoken',
    'letmein', 'qwerty', 'admin', 'test',
))
PLACEHOLDER_MARKERS = ('CHANGE_ME', 'CHANGEME', 'TODO', 'FIXME', 'REPLACE_ME', 'PLACEHOLDER')

_MISSING = object()
_BROKEN = object()  # a value whose evaluation failed; already reported


class PolicyError(ValueError):
    """Raised by :func:`expand_policy`; ``errors`` holds one line per problem."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(PolicyError, self).__init__('\n'.join(self.errors))


def _is_undefined(value):
    # jinja2.Undefined (and Ansible's subclasses) or an ansible-core 2.19 Marker;
    # duck-typed so that this module stays free of Ansible/Jinja imports.
    for klass in type(value).__mro__:
        if klass.__name__ in ('Undefined', 'Marker', 'UndefinedMarker'):
            return True
    return False


def _type_name(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, int):
        return 'an integer'
    if isinstance(value, float):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, Mapping):
        return 'a mapping'
    if isinstance(value, (list, tuple)):
        return 'a list'
    return 'a %s' % type(value).__name__


def _show(text, limit=80):
    """Quote a (non-secret) string for a message; escapes make look-alikes visible."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + '...'
    return "'%s'" % text.encode('ascii', 'backslashreplace').decode('ascii').replace("'", "\\'")


def _key(path, key):
    key = str(key)
    if re.match(r'^[A-Za-z0-9_-]+$', key):
        return '%s.%s' % (path, key)
    return '%s[%s]' % (path, json.dumps(key))


def _idx(path, index):
    return '%s[%d]' % (path, index)


def _non_ascii(text):
    for pos, char in enumerate(text):
        if ord(char) > 127:
            return pos, char
    return None


def _describe_char(char):
    return 'U+%04X %s' % (ord(char), unicodedata.name(char, 'UNKNOWN'))


class _Ctx(object):
    def __init__(self):
        self.errors = []

    def err(self, path, problem, fix):
        self.errors.append('%s: %s; %s' % (path, problem, fix))

    def raw(self, line):
        self.errors.append(line)

    def broken(self, path, exc):
        # Only undefined-variable errors are quoted: they name a variable, never a value.
        name = type(exc).__name__
        detail = name
        if 'Undefined' in name or 'Marker' in name:
            text = ' '.join(str(exc).split())
            if text:
                detail = '%s: %s' % (name, text if len(text) <= 120 else text[:120] + '...')
        self.err(path, 'cannot be evaluated (%s)' % detail, 'define the variables it refers to')

    # -- structural helpers -------------------------------------------------------
    def undefined(self, path, value):
        if value is _BROKEN:
            return True
        if _is_undefined(value):
            self.err(path, 'is undefined', 'define the variable it refers to or remove the key')
            return True
        return False

    def mapping(self, path, value, keys, what='a mapping'):
        """Return a plain dict of the known keys, reporting unknown keys; None if not a mapping."""
        if self.undefined(path, value):
            return None
        if not isinstance(value, Mapping):
            self.err(path, 'expected %s, got %s' % (what, _type_name(value)),
                     'write it as key: value pairs (allowed keys: %s)' % ', '.join(keys))
            return None
        result = {}
        for raw_key in value:
            if not isinstance(raw_key, str):
                self.err(_key(path, raw_key), 'key must be a string, got %s' % _type_name(raw_key),
                         'quote the key')
                continue
            if raw_key not in keys:
                close = difflib.get_close_matches(raw_key, keys, n=1, cutoff=0.6)
                hint = ("did you mean '%s'?" % close[0]) if close else ('allowed keys: %s' % ', '.join(keys))
                self.err(_key(path, raw_key), 'unknown key', hint)
                continue
            try:
                result[raw_key] = value[raw_key]
            except Exception as exc:  # a lazily templated value that fails (e.g. undefined)
                self.broken(_key(path, raw_key), exc)
                result[raw_key] = _BROKEN
        return result

    def names(self, path, value, what):
        """A mapping keyed by names (users, roles, per_tool): validate only the shape."""
        if value is None:
            return {}
        if self.undefined(path, value):
            return None
        if not isinstance(value, Mapping):
            self.err(path, 'expected a mapping of %s, got %s' % (what, _type_name(value)),
                     'write it as name: {...} pairs, or {} for none')
            return None
        result = []
        for raw_key in value:
            if not isinstance(raw_key, str):
                hint = 'quote the name'
                if isinstance(raw_key, bool):
                    hint = 'quote the name (YAML reads yes/no/on/off/true/false unquoted as booleans)'
                self.err(_key(path, raw_key), 'name must be a string, got %s' % _type_name(raw_key), hint)
                continue
            try:
                result.append((raw_key, value[raw_key]))
            except Exception as exc:
                self.broken(_key(path, raw_key), exc)
        return result

    def seq(self, path, value, example):
        if self.undefined(path, value):
            return None
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            self.err(path, 'expected a list, got %s' % _type_name(value), 'write a YAML list, e.g. %s' % example)
            return None
        items = []
        for index in range(len(value)):
            try:
                items.append(value[index])
            except Exception as exc:
                self.broken(_idx(path, index), exc)
                items.append(_MISSING)
        return items

    def string(self, path, value, fix='write a string'):
        if self.undefined(path, value):
            return None
        if not isinstance(value, str):
            self.err(path, 'expected a string, got %s' % _type_name(value), fix)
            return None
        return value

    def integer(self, path, value, low, high=None):
        if self.undefined(path, value):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(path, 'expected an integer, got %s' % _type_name(value),
                     'write a whole number without quotes')
            return None
        if value < low or (high is not None and value > high):
            span = ('%d..%d' % (low, high)) if high is not None else ('>= %d' % low)
            self.err(path, 'must be %s, got %d' % (span, value), ('use a value in %s' % span) if high is not None else ('use a value %s' % span))
            return None
        return int(value)


# kind -> (what, regex, ASCII characters, fix for an invalid name)
NAME_RULES = {
    'user': ('user name', USER_RE, '[A-Za-z0-9_.@-]',
             'use 1-64 characters from [A-Za-z0-9_.@-], starting with a letter or digit'),
    'role': ('role name', ROLE_RE, '[A-Za-z0-9_-]',
             'use 1-64 characters from [A-Za-z0-9_-], starting with a letter'),
    'tool': ('tool name', TOOL_RE, '[A-Za-z0-9_.-]',
             "use 1-128 characters from [A-Za-z0-9_.-], or '*' for every tool"),
    'pinned_tool': ('tool name', TOOL_RE, '[A-Za-z0-9_.-]',
                    'use the name the server lists (MCP: 1-128 characters from [A-Za-z0-9_.-])'),
    'prompt': ('prompt name', TOOL_RE, '[A-Za-z0-9_.-]',
               "use 1-128 characters from [A-Za-z0-9_.-], or '*' for every prompt"),
}


def _check_name(ctx, path, name, kind):
    """Validate a user, role, tool or prompt name; return True when valid."""
    what, regex, charset, fix = NAME_RULES[kind]
    bad = _non_ascii(name)
    if bad is not None:
        ctx.err(path, '%s %s is not ASCII (%s at position %d, a look-alike of an ASCII letter?)'
                % (what, _show(name), _describe_char(bad[1]), bad[0]),
                'type the name in ASCII: %s' % charset)
        return False
    if name.lower() in JS_RESERVED:
        ctx.err(path, '%s %s is a reserved JavaScript property name' % (what, _show(name)),
                'choose another name')
        return False
    if not regex.match(name):
        ctx.err(path, '%s %s is invalid' % (what, _show(name)), fix)
        return False
    return True


def _placeholder_reason(secret):
    if '{{' in secret or '}}' in secret or '{%' in secret:
        return 'contains template markers ({{ or {%), so it was never rendered'
    if re.search(r'<[^<>]*>', secret):
        return 'looks like a <placeholder>'
    for marker in PLACEHOLDER_MARKERS:
        if marker in secret:
            return 'contains the placeholder marker %s' % marker
    lowered = secret.lower()
    if lowered.startswith('xxx') or len(set(lowered)) == 1:
        return 'is a placeholder (a run of one character)'
    core = re.sub(r'[^a-z]', '', lowered)
    for word in PLACEHOLDER_WORDS:
        if core and (core == word or core == word * (len(core) // len(word))):
            return 'is an obvious placeholder or dictionary word'
    for prefix in ('changeme', 'changethis', 'replaceme', 'placeholder', 'your', 'insert'):
        if core.startswith(prefix):
            return 'is an obvious placeholder'
    if len(set(secret)) < 5:
        return 'uses fewer than 5 distinct characters'
    return None


def _split_url(ctx, path, value, allow_path, what):
    """Return (scheme, host, port, path) of an https URL or None; never echoes userinfo."""
    from urllib.parse import urlsplit

    text = ctx.string(path, value, 'write an https:// URL')
    if text is None:
        return None
    text = text.strip()
    if not text:
        ctx.err(path, 'is empty', 'write an https:// URL')
        return None
    bad = _non_ascii(text)
    if bad is not None:
        ctx.err(path, '%s contains a non-ASCII character (%s)' % (what, _describe_char(bad[1])),
                'use the punycode (xn--) form of the host name')
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        ctx.err(path, '%s is not a valid URL' % what, 'write https://host[:port]')
        return None
    if parts.scheme.lower() != 'https':
        shown = parts.scheme or 'no scheme'
        fix_host = parts.hostname or 'host'
        ctx.err(path, '%s must use https, got %s' % (what, _show(shown)),
                "use 'https://%s%s'" % (fix_host, '' if port in (None, 443, 80) else ':%d' % port))
        return None
    if parts.username is not None or parts.password is not None or '@' in parts.netloc:
        ctx.err(path, '%s must not contain user information (user:password@)' % what,
                'remove it; credentials never belong in a URL')
        return None
    host = (parts.hostname or '').lower()
    if not host:
        ctx.err(path, '%s has no host' % what, 'write https://host[:port]')
        return None
    if not _valid_host(host):
        ctx.err(path, '%s has an invalid host %s' % (what, _show(host)),
                'use a DNS name or an IP address')
        return None
    if port is not None and not 1 <= port <= 65535:
        ctx.err(path, '%s has an invalid port' % what, 'use a port in 1..65535')
        return None
    if parts.query or parts.fragment or text.endswith(('?', '#')):
        ctx.err(path, '%s must not have a query or fragment' % what,
                "remove everything from '?' or '#' on")
        return None
    url_path = parts.path
    if not allow_path and url_path not in ('', '/'):
        ctx.err(path, '%s must not have a path (got %s)' % (what, _show(url_path)),
                "use '%s'" % _origin('https', host, port))
        return None
    return 'https', host, port, url_path


def _valid_host(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip('.').split('.')
    return len(host) <= 253 and all(HOST_LABEL_RE.match(label) for label in labels)


def _origin(scheme, host, port):
    default = 443 if scheme == 'https' else 80
    shown = '[%s]' % host if ':' in host else host
    if port is None or port == default:
        return '%s://%s' % (scheme, shown)
    return '%s://%s:%d' % (scheme, shown, port)


def _check_origin(ctx, path, value):
    from urllib.parse import urlsplit

    text = ctx.string(path, value, "write an origin such as 'https://claude.ai'")
    if text is None:
        return None
    text = text.strip()
    if text in ('*', 'null'):
        ctx.err(path, 'origin %s would let any web page call the gateway' % _show(text),
                'list the exact origins, e.g. https://claude.ai')
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        ctx.err(path, 'origin %s is not valid' % _show(text), 'write scheme://host[:port]')
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or '').lower()
    if scheme not in ('https', 'http') or not host or not _valid_host(host) \
            or parts.username is not None or '@' in parts.netloc:
        ctx.err(path, 'origin %s is not valid' % _show(text), 'write scheme://host[:port], e.g. https://claude.ai')
        return None
    loopback = host in ('localhost', '127.0.0.1', '::1')
    if scheme == 'http' and not loopback:
        ctx.err(path, 'origin %s uses http' % _show(text),
                "use '%s' (http is only accepted for localhost)" % _origin('https', host, port))
        return None
    if parts.path or parts.query or parts.fragment:
        ctx.err(path, 'origin %s has a path, query or fragment' % _show(text),
                "browsers send only scheme://host[:port]: use '%s'" % _origin(scheme, host, port))
        return None
    return _origin(scheme, host, port)
