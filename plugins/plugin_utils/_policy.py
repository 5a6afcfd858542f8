# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validate and expand ``mcpsec_policy`` (see docs/policy.md, docs/expanded-policy.md).

Pure Python on purpose: no Ansible imports, so the unit tests import it directly and
the filter plugin is a thin adapter. Every problem is collected; ``PolicyError`` lists
them one per line as ``<key path>: <problem>; <fix>``. Secret values (passwords,
tokens) are never echoed, and neither is any value we cannot show to be harmless.
"""

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
RATE_RE = re.compile(r'^([1-9][0-9]{0,5})r/([sm])$')
WINDOW_RE = re.compile(r'^([1-9][0-9]{0,5})([smh])$')
HOST_LABEL_RE = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$')
# RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E
SCOPE_RE = re.compile(r'^[\x21\x23-\x5b\x5d-\x7e]{1,128}$')
# RFC 6750 b64token, the only thing that fits in "Authorization: Bearer <token>"
B64TOKEN_RE = re.compile(r'^[A-Za-z0-9._~+/-]+=*$')
CLAIM_SEGMENT_RE = re.compile(r'^[A-Za-z0-9_:/-]{1,64}$')
# A resource URI pattern: visible ASCII only ('*' is the glob), so no space or control hides in it.
RESOURCE_RE = re.compile(r'^[\x21-\x7e]{1,1024}$')

# Names njs would resolve through Object.prototype on an ordinary object.
JS_RESERVED = frozenset(name.lower() for name in (
    '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'isPrototypeOf',
    'propertyIsEnumerable', 'toLocaleString', 'toString', 'valueOf',
    '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__',
))

MIN_PASSWORD = 12
MIN_TOKEN = 32
WINDOW_MAX = 86400
SESSIONS_MAX = 1000
LEEWAY_MAX = 300
ALGORITHMS = ('RS256', 'ES256')

PLACEHOLDER_WORDS = frozenset((
    'changeme', 'changethis', 'changeit', 'replaceme', 'password', 'passwd', 'secret',
    'token', 'todo', 'fixme', 'tbd', 'placeholder', 'example', 'dummy', 'default',
    'yourpassword', 'yourtoken', 'yoursecret', 'mypassword', 'mysecret', 'mytoken',
    'letmein', 'qwerty', 'admin', 'test',
))
PLACEHOLDER_MARKERS = ('CHANGE_ME', 'CHANGEME', 'TODO', 'FIXME', 'REPLACE_ME', 'PLACEHOLDER')

TOP_KEYS = ('public_url', 'auth', 'users', 'roles', 'rate_limits', 'sessions',
            'allow_origins', 'allow_cidrs', 'metrics_allow_cidrs')
AUTH_KEYS = ('mode', 'oidc')
OIDC_KEYS = ('issuer', 'audience', 'jwks_uri', 'algorithms', 'subject_claim',
             'roles_claim', 'scopes_supported', 'required_scopes', 'scope_roles',
             'leeway_seconds', 'ca_file')
USER_KEYS = ('password', 'token', 'roles')
ROLE_KEYS = ('tools', 'resources', 'prompts')
RATE_KEYS = ('per_ip', 'per_user', 'per_tool')
ZONE_KEYS = ('rate', 'burst', 'connections')
TOOL_LIMIT_KEYS = ('calls', 'per')
SESSION_KEYS = ('max_per_user',)
MODES = ('basic', 'bearer', 'oidc')

DEFAULT_ALLOW_CIDRS = ('0.0.0.0/0', '::/0')
DEFAULT_METRICS_CIDRS = ('127.0.0.1/32', '::1/128')
DEFAULT_OIDC_CA_FILE = '/etc/ssl/certs/ca-certificates.crt'
# connections: concurrent requests and streams (an HTTP/2 stream or an SSE response
# counts as long as it is open) that reach the backend, nginx limit_conn.
DEFAULT_ZONES = {
    'per_ip': {'rate': '20r/s', 'burst': 40, 'connections': 64},
    'per_user': {'rate': '10r/s', 'burst': 20, 'connections': 32},
}
CONNECTIONS_MAX = 65535   # nginx limit_conn refuses more
ZONE_SIZE = '10m'
# IPv4 clients by address, IPv6 clients by their /64 (a map in njs_http.conf.j2):
# one IPv6 host usually holds a whole /64, so per-address keys would not limit it.
CLIENT_KEY = '$mcpsec_client_key'
MCP_PATH = '/mcp'
# The njs_policy layout; njs refuses a document whose version it does not know.
NJS_POLICY_VERSION = 2
METADATA_PATH = '/.well-known/oauth-protected-resource'

_MISSING = object()
_BROKEN = object()  # a value whose evaluation failed; already reported


class PolicyError(ValueError):
    """Raised by :func:`expand_policy`; ``errors`` holds one line per problem."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(PolicyError, self).__init__('\n'.join(self.errors))


# --------------------------------------------------------------------------- helpers

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


# --------------------------------------------------------------------------- name checks

# kind -> (what, regex, ASCII characters, fix for an invalid name)
NAME_RULES = {
    'user': ('user name', USER_RE, '[A-Za-z0-9_.@-]',
             'use 1-64 characters from [A-Za-z0-9_.@-], starting with a letter or digit'),
    'role': ('role name', ROLE_RE, '[A-Za-z0-9_-]',
             'use 1-64 characters from [A-Za-z0-9_-], starting with a letter'),
    'tool': ('tool name', TOOL_RE, '[A-Za-z0-9_.-]',
             "use 1-128 characters from [A-Za-z0-9_.-], or '*' for every tool"),
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


# --------------------------------------------------------------------------- URLs

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


# --------------------------------------------------------------------------- sections

def _cidrs(ctx, path, value, default, allow_empty):
    if value is None:
        return list(default)
    items = ctx.seq(path, value, '[10.0.0.0/8, "fd00::/8"]')
    if items is None:
        return None
    if not items and not allow_empty:
        ctx.err(path, 'is empty, so nobody could reach the gateway',
                "list at least one network; use ['0.0.0.0/0', '::/0'] to allow everyone")
        return None
    result = []
    for index, item in enumerate(items):
        ipath = _idx(path, index)
        if item is _MISSING:
            continue
        text = ctx.string(ipath, item, "write a CIDR such as '10.0.0.0/8'")
        if text is None:
            continue
        text = text.strip()
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                fixed = ipaddress.ip_network(text, strict=False)
            except ValueError:
                ctx.err(ipath, '%s is not an IP network' % _show(text),
                        "write a CIDR such as '10.0.0.0/8' or '2001:db8::/32'")
                continue
            ctx.err(ipath, '%s has host bits set' % _show(text), "use '%s'" % fixed)
            continue
        if str(net) not in result:
            result.append(str(net))
    return result


def _auth(ctx, auth, resource):
    """Return (mode, oidc-dict-or-None, scopes)."""
    path = ROOT + '.auth'
    if auth is _MISSING:
        ctx.err(path, 'is required', "add auth: {mode: basic}  (basic, bearer or oidc)")
        return None, None, []
    fields = ctx.mapping(path, auth, AUTH_KEYS)
    if fields is None:
        return None, None, []
    mode = None
    raw_mode = fields.get('mode', _MISSING)
    if raw_mode is _MISSING:
        ctx.err(path + '.mode', 'is required', 'set it to one of: %s' % ', '.join(MODES))
    else:
        text = ctx.string(path + '.mode', raw_mode, 'set it to one of: %s' % ', '.join(MODES))
        if text is not None:
            if text in MODES:
                mode = text
            else:
                close = difflib.get_close_matches(text.lower(), MODES, n=1, cutoff=0.5)
                hint = ("did you mean '%s'?" % close[0]) if close else ('use one of: %s' % ', '.join(MODES))
                ctx.err(path + '.mode', 'unknown mode %s' % _show(text), hint)
    raw_oidc = fields.get('oidc', _MISSING)
    if mode is None:
        return None, None, []
    if mode != 'oidc':
        if raw_oidc is not _MISSING and raw_oidc is not None:
            ctx.err(path + '.oidc', "is only used when auth.mode is 'oidc' (mode is %s)" % _show(mode),
                    'remove auth.oidc or set auth.mode: oidc')
        return mode, None, []
    if raw_oidc is _MISSING or raw_oidc is None:
        ctx.err(path + '.oidc', "is required when auth.mode is 'oidc'",
                'add auth.oidc.issuer: https://<your identity provider>')
        return mode, None, []
    return mode, _oidc(ctx, path + '.oidc', raw_oidc, resource), None


def _oidc(ctx, path, raw, resource):
    fields = ctx.mapping(path, raw, OIDC_KEYS)
    if fields is None:
        return None
    result = {}
    issuer = fields.get('issuer', _MISSING)
    if issuer is _MISSING:
        ctx.err(path + '.issuer', 'is required', 'set it to the https URL of your identity provider (its "iss")')
    else:
        parts = _split_url(ctx, path + '.issuer', issuer, True, 'issuer')
        if parts is not None:
            # Kept exactly as written: it must equal the token's "iss" byte for byte.
            result['issuer'] = str(issuer).strip()
            result['discovery_url'] = result['issuer'].rstrip('/') + '/.well-known/openid-configuration'
    audience = fields.get('audience')
    if audience is None:
        result['audience'] = resource
    else:
        text = ctx.string(path + '.audience', audience, 'write the audience your tokens carry in "aud"')
        if text is not None and not text.strip():
            ctx.err(path + '.audience', 'is empty', 'remove it to default to the resource URL')
        elif text is not None:
            result['audience'] = text.strip()
    jwks = fields.get('jwks_uri')
    result['jwks_uri'] = None
    if jwks is not None:
        if _split_url(ctx, path + '.jwks_uri', jwks, True, 'jwks_uri') is not None:
            result['jwks_uri'] = str(jwks).strip()
    algs = fields.get('algorithms')
    if algs is None:
        result['algorithms'] = list(ALGORITHMS)
    else:
        items = ctx.seq(path + '.algorithms', algs, '[RS256, ES256]')
        if items is not None:
            chosen = []
            for index, item in enumerate(items):
                ipath = _idx(path + '.algorithms', index)
                text = None if item is _MISSING else ctx.string(ipath, item, 'write RS256 or ES256')
                if text is None:
                    continue
                if text.upper() in ALGORITHMS:
                    if text.upper() not in chosen:
                        chosen.append(text.upper())
                else:
                    ctx.err(ipath, 'algorithm %s is not supported' % _show(text),
                            'use RS256 and/or ES256 (njs verifies only these)')
            if not chosen and not items:
                ctx.err(path + '.algorithms', 'is empty', 'remove it for [RS256, ES256] or list one of them')
            result['algorithms'] = chosen
    subject = fields.get('subject_claim')
    result['subject_claim'] = 'sub'
    if subject is not None:
        text = ctx.string(path + '.subject_claim', subject, 'write a claim name such as sub')
        if text is not None:
            if not CLAIM_SEGMENT_RE.match(text) or text.lower() in JS_RESERVED:
                ctx.err(path + '.subject_claim', 'claim name %s is invalid' % _show(text),
                        'use a claim name from [A-Za-z0-9_:/-], e.g. sub or preferred_username')
            else:
                result['subject_claim'] = text
    roles_claim = fields.get('roles_claim')
    result['roles_claim'] = ['roles']
    if roles_claim is not None:
        text = ctx.string(path + '.roles_claim', roles_claim, 'write a dotted claim path such as realm_access.roles')
        if text is not None:
            segments = text.split('.')
            bad = [s for s in segments if not CLAIM_SEGMENT_RE.match(s) or s.lower() in JS_RESERVED]
            if bad:
                ctx.err(path + '.roles_claim', 'claim path %s has an invalid segment %s' % (_show(text), _show(bad[0])),
                        'use dot-separated claim names from [A-Za-z0-9_:/-], e.g. realm_access.roles')
            else:
                result['roles_claim'] = segments
    scope_list = _scopes(ctx, path + '.scopes_supported', fields.get('scopes_supported'), False)
    result['required_scopes'] = _scopes(ctx, path + '.required_scopes', fields.get('required_scopes'), True)
    result['scope_roles'] = _scope_roles_shape(ctx, path + '.scope_roles', fields.get('scope_roles'))
    leeway = fields.get('leeway_seconds')
    result['leeway'] = 60
    if leeway is not None:
        value = ctx.integer(path + '.leeway_seconds', leeway, 0, LEEWAY_MAX)
        if value is not None:
            result['leeway'] = value
    ca_file = fields.get('ca_file')
    result['ca_file'] = DEFAULT_OIDC_CA_FILE
    if ca_file is not None:
        text = ctx.string(path + '.ca_file', ca_file, 'write an absolute path to a PEM bundle')
        if text is not None:
            if not text.startswith('/') or '\n' in text or ';' in text or ' ' in text or _non_ascii(text):
                ctx.err(path + '.ca_file', 'must be an absolute path without spaces or semicolons',
                        "use e.g. '%s'" % DEFAULT_OIDC_CA_FILE)
            else:
                result['ca_file'] = text
    result['scopes'] = scope_list
    return result


def _scope_ok(ctx, path, text):
    if SCOPE_RE.match(text):
        return True
    ctx.err(path, 'scope %s is not a valid OAuth scope token' % _show(text),
            'use 1-128 printable ASCII characters without spaces, quotes or backslashes')
    return False


def _scopes(ctx, path, raw, strict):
    """A list of scope tokens in the user's order; duplicates dropped, or errors when strict."""
    result = []
    if raw is None:
        return result
    items = ctx.seq(path, raw, '[mcp:tools]')
    for index, item in enumerate(items or []):
        ipath = _idx(path, index)
        text = None if item is _MISSING else ctx.string(ipath, item, 'write a scope such as mcp:tools')
        if text is None or not _scope_ok(ctx, ipath, text):
            continue
        if text in result:
            if strict:
                ctx.err(ipath, 'scope %s is listed twice' % _show(text), 'remove the duplicate')
            continue
        result.append(text)
    return result


def _scope_roles_shape(ctx, path, raw):
    """[(scope, raw role list)]: the scopes are checked here, the roles once roles are known."""
    pairs = ctx.names(path, raw, 'scopes to role lists')
    result = []
    for scope, role_list in pairs or []:
        if _scope_ok(ctx, _key(path, scope), scope):
            result.append((scope, role_list))
    return result


def _scope_roles(ctx, oidc, roles):
    """Resolve auth.oidc.scope_roles against the defined roles: {scope: [role, ...]} or None."""
    path = ROOT + '.auth.oidc.scope_roles'
    result = {}
    for scope, role_list in oidc['scope_roles']:
        result[scope] = _user_roles(ctx, _key(path, scope), role_list, roles)
    return None if None in result.values() else result


def _roles(ctx, raw):
    path = ROOT + '.roles'
    pairs = ctx.names(path, raw, 'role names to {tools, resources, prompts}')
    roles = {}
    if pairs is None:
        return None
    for name, spec in pairs:
        rpath = _key(path, name)
        valid = _check_name(ctx, rpath, name, 'role')
        if spec is None:
            spec = {}
        fields = ctx.mapping(rpath, spec, ROLE_KEYS)
        if fields is None:
            continue
        grants = {}
        for key, kind in (('tools', 'tool'), ('resources', 'resource'), ('prompts', 'prompt')):
            grants[key] = _grant_list(ctx, rpath + '.' + key, fields.get(key), kind)
        if valid and None not in grants.values():
            roles[name] = grants
    return roles


# kind -> (what one item is called, the plural, a YAML example)
GRANT_KINDS = {
    'tool': ('tool', 'tools', '[echo, get-sum] or ["*"]'),
    'prompt': ('prompt', 'prompts', '[simple-prompt] or ["*"]'),
    'resource': ('resource pattern', 'resources', '["demo://resource/static/document/*"] or ["*"]'),
}


def _check_resource(ctx, path, pattern):
    bad = _non_ascii(pattern)
    if bad is not None:
        ctx.err(path, 'resource pattern %s is not ASCII (%s at position %d)'
                % (_show(pattern), _describe_char(bad[1]), bad[0]),
                'write the URI percent-encoded, as clients send it')
        return False
    if not RESOURCE_RE.match(pattern):
        ctx.err(path, 'resource pattern %s is invalid' % _show(pattern),
                "use 1-1024 visible ASCII characters without spaces; '*' matches any run of characters")
        return False
    return True


def _grant_list(ctx, path, raw, kind):
    """A role's tools, prompts or resources: ``{'all': bool, 'items': [...]}`` or None."""
    what, plural, example = GRANT_KINDS[kind]
    if raw is None:
        return {'all': False, 'items': []}
    items = ctx.seq(path, raw, example)
    if items is None:
        return None
    seen = []
    ok = True
    for index, item in enumerate(items):
        ipath = _idx(path, index)
        text = None if item is _MISSING else ctx.string(ipath, item, "write a %s, or '*' for every one" % what)
        if text is None:
            ok = False
        elif text != '*' and not (_check_resource(ctx, ipath, text) if kind == 'resource'
                                  else _check_name(ctx, ipath, text, kind)):
            ok = False
        elif text in seen:
            ctx.err(ipath, '%s %s is listed twice' % (what, _show(text)), 'remove the duplicate')
            ok = False
        else:
            seen.append(text)
    if '*' in seen and len(seen) > 1:
        ctx.err(path, "'*' already grants every %s, yet other %s are listed too"
                % ('resource' if kind == 'resource' else what, plural),
                "keep either '*' or the list of %s" % ('patterns' if kind == 'resource' else 'names'))
        ok = False
    if not ok:
        return None
    if '*' in seen:
        return {'all': True, 'items': []}
    return {'all': False, 'items': seen}


def _users(ctx, raw, mode, roles):
    path = ROOT + '.users'
    pairs = ctx.names(path, raw, 'user names to {password|token, roles}')
    if pairs is None:
        return None
    if mode == 'oidc':
        if pairs:
            ctx.err(path, "must be empty when auth.mode is 'oidc' (users and their roles come from the token)",
                    'remove users; map roles with auth.oidc.roles_claim')
        return []
    users = []
    folded = {}
    tokens = {}
    for name, spec in pairs:
        upath = _key(path, name)
        valid = _check_name(ctx, upath, name, 'user')
        if valid:
            low = name.lower()
            if low in folded:
                ctx.err(upath, 'user %s is the same as user %s ignoring case' % (_show(name), _show(folded[low])),
                        'keep one of them (user names are compared case-insensitively)')
                valid = False
            else:
                folded[low] = name
        if spec is None:
            spec = {}
        fields = ctx.mapping(upath, spec, USER_KEYS)
        if fields is None:
            continue
        secret = _user_secret(ctx, upath, fields, mode)
        if secret is not None and mode == 'bearer':
            other = tokens.get(secret)
            if other is not None:
                ctx.err(upath + '.token', 'is the same token as user %s has' % _show(other),
                        'give every user a token of their own')
                secret = None
            else:
                tokens[secret] = name
        user_roles = _user_roles(ctx, upath + '.roles', fields.get('roles'), roles)
        if valid and secret is not None and user_roles is not None:
            users.append((name, secret, user_roles))
    return users


def _user_secret(ctx, upath, fields, mode):
    if mode is None:
        return None
    wanted, other = ('password', 'token') if mode == 'basic' else ('token', 'password')
    minimum = MIN_PASSWORD if wanted == 'password' else MIN_TOKEN
    if other in fields:
        ctx.err(_key(upath, other), "is not used when auth.mode is %s" % _show(mode),
                'remove it%s' % ('' if wanted in fields else ' and set %s instead' % wanted))
    if wanted not in fields or fields[wanted] is None:
        how = ("at least %d characters, e.g. from 'openssl rand -base64 18'" % minimum) if wanted == 'password' \
            else ("at least %d characters, e.g. from 'openssl rand -hex 32'" % minimum)
        ctx.err(_key(upath, wanted), "is required when auth.mode is %s" % _show(mode),
                'set a %s of %s (keep it in ansible-vault)' % (wanted, how))
        return None
    value = fields[wanted]
    spath = _key(upath, wanted)
    if ctx.undefined(spath, value):
        return None
    if not isinstance(value, str):
        ctx.err(spath, 'expected a string, got %s' % _type_name(value), 'quote the %s' % wanted)
        return None
    if len(value) < minimum:
        ctx.err(spath, 'is too short (%d characters, minimum %d)' % (len(value), minimum),
                'use a longer random %s' % wanted)
        return None
    reason = _placeholder_reason(value)
    if reason is not None:
        ctx.err(spath, reason, 'set a real random %s (keep it in ansible-vault)' % wanted)
        return None
    if wanted == 'token' and not B64TOKEN_RE.match(value):
        ctx.err(spath, 'contains characters that cannot be sent in "Authorization: Bearer"',
                "use only [A-Za-z0-9._~+/-], e.g. from 'openssl rand -hex 32'")
        return None
    if wanted == 'password' and ('\n' in value or '\r' in value or '\x00' in value):
        ctx.err(spath, 'contains a line break or NUL character', 'use a single-line password')
        return None
    return value


def _user_roles(ctx, path, raw, roles):
    if raw is None:
        return []
    items = ctx.seq(path, raw, '[reader]')
    if items is None:
        return None
    result = []
    ok = True
    defined = sorted(roles) if roles is not None else []
    for index, item in enumerate(items):
        ipath = _idx(path, index)
        if item is _MISSING:
            ok = False
            continue
        text = ctx.string(ipath, item, 'write a role name defined under mcpsec_policy.roles')
        if text is None:
            ok = False
            continue
        if roles is not None and text not in roles:
            ctx.raw('%s: role %s is not defined (defined: %s)'
                    % (ipath, _show(text), ', '.join(defined) if defined else 'none; add it under mcpsec_policy.roles'))
            ok = False
            continue
        if text in result:
            ctx.err(ipath, 'role %s is listed twice' % _show(text), 'remove the duplicate')
            ok = False
            continue
        result.append(text)
    return result if ok else None


def _zone(ctx, path, raw, default):
    result = dict(default)
    if raw is None:
        return result
    fields = ctx.mapping(path, raw, ZONE_KEYS)
    if fields is None:
        return None
    ok = True
    if fields.get('rate') is not None:
        text = ctx.string(path + '.rate', fields['rate'], 'write a rate such as 10r/s or 600r/m')
        if text is None:
            ok = False
        elif not RATE_RE.match(text.strip()):
            ctx.err(path + '.rate', 'rate %s is not valid' % _show(text),
                    "write N r/s or N r/m with N >= 1, e.g. '10r/s' or '600r/m'")
            ok = False
        else:
            result['rate'] = text.strip()
    if fields.get('burst') is not None:
        value = ctx.integer(path + '.burst', fields['burst'], 0)
        if value is None:
            ok = False
        else:
            result['burst'] = value
    if fields.get('connections') is not None:
        value = ctx.integer(path + '.connections', fields['connections'], 1, CONNECTIONS_MAX)
        if value is None:
            ok = False
        else:
            result['connections'] = value
    return result if ok else None


def _window(ctx, path, raw):
    text = ctx.string(path, raw, 'write a window such as 60s, 5m or 1h')
    if text is None:
        return None
    match = WINDOW_RE.match(text.strip())
    if not match:
        ctx.err(path, 'window %s is not valid' % _show(text), "write N followed by s, m or h, e.g. '60s', '5m', '1h'")
        return None
    seconds = int(match.group(1)) * {'s': 1, 'm': 60, 'h': 3600}[match.group(2)]
    if seconds > WINDOW_MAX:
        ctx.err(path, 'window %s is longer than 24h' % _show(text), 'use at most 24h')
        return None
    return seconds


def _rate_limits(ctx, raw):
    path = ROOT + '.rate_limits'
    fields = {} if raw is None else ctx.mapping(path, raw, RATE_KEYS)
    if fields is None:
        return None
    zones = {}
    for name in ('per_ip', 'per_user'):
        zones[name] = _zone(ctx, path + '.' + name, fields.get(name), DEFAULT_ZONES[name])
    tool_limits = {}
    pairs = ctx.names(path + '.per_tool', fields.get('per_tool'), 'tool names to {calls, per}')
    for tool, spec in pairs or []:
        tpath = _key(path + '.per_tool', tool)
        if tool == '*':
            ctx.err(tpath, "per-tool limits need a tool name, not '*'",
                    'use rate_limits.per_user to limit all calls of a user')
            continue
        valid = _check_name(ctx, tpath, tool, 'tool')
        limit = ctx.mapping(tpath, spec, TOOL_LIMIT_KEYS)
        if limit is None:
            continue
        calls = window = None
        for key in TOOL_LIMIT_KEYS:
            if limit.get(key) is None:
                ctx.err(tpath + '.' + key, 'is required',
                        'set calls (an integer >= 1)' if key == 'calls' else "set per, e.g. '60s'")
        if limit.get('calls') is not None:
            calls = ctx.integer(tpath + '.calls', limit['calls'], 1)
        if limit.get('per') is not None:
            window = _window(ctx, tpath + '.per', limit['per'])
        if valid and calls is not None and window is not None:
            tool_limits[tool] = {'calls': calls, 'window': window}
    return zones, tool_limits


def _sessions(ctx, raw):
    path = ROOT + '.sessions'
    fields = {} if raw is None else ctx.mapping(path, raw, SESSION_KEYS)
    if fields is None:
        return None
    if fields.get('max_per_user') is None:
        return 10
    return ctx.integer(path + '.max_per_user', fields['max_per_user'], 1, SESSIONS_MAX)


# --------------------------------------------------------------------------- entry points

def _sorted(mapping):
    return dict((key, mapping[key]) for key in sorted(mapping))


def _njs_role(grants):
    role = {}
    for key in ('tools', 'resources', 'prompts'):
        role[key + '_all'] = grants[key]['all']
        role[key] = [str(item) for item in grants[key]['items']]
    return _sorted(role)


def _expand(policy):
    ctx = _Ctx()
    if policy is None:
        ctx.err(ROOT, 'is null', 'define mcpsec_policy with at least public_url and auth.mode (see docs/policy.md)')
        return ctx.errors, None
    top = ctx.mapping(ROOT, policy, TOP_KEYS)
    if top is None:
        return ctx.errors, None

    url = None
    raw_url = top.get('public_url', _MISSING)
    if raw_url is _MISSING or raw_url is None:
        ctx.err(ROOT + '.public_url', 'is required', 'set it to the https://host[:port] clients connect to')
    else:
        url = _split_url(ctx, ROOT + '.public_url', raw_url, False, 'public_url')
    if url is not None:
        public_url = _origin('https', url[1], url[2])
        resource = public_url + MCP_PATH
    else:
        public_url = resource = None

    mode, oidc, _unused = _auth(ctx, top.get('auth', _MISSING), resource or 'https://invalid' + MCP_PATH)
    roles = _roles(ctx, top.get('roles'))
    users = _users(ctx, top.get('users'), mode, roles)
    if oidc is not None:
        oidc['scope_roles'] = _scope_roles(ctx, oidc, roles)
    limits = _rate_limits(ctx, top.get('rate_limits'))
    sessions = _sessions(ctx, top.get('sessions'))

    origins = []
    raw_origins = top.get('allow_origins')
    if raw_origins is not None:
        items = ctx.seq(ROOT + '.allow_origins', raw_origins, '[https://claude.ai]')
        for index, item in enumerate(items or []):
            if item is _MISSING:
                continue
            origin = _check_origin(ctx, _idx(ROOT + '.allow_origins', index), item)
            if origin is not None and origin not in origins:
                origins.append(origin)
    cidrs = _cidrs(ctx, ROOT + '.allow_cidrs', top.get('allow_cidrs'), DEFAULT_ALLOW_CIDRS, False)
    metrics = _cidrs(ctx, ROOT + '.metrics_allow_cidrs', top.get('metrics_allow_cidrs'),
                     DEFAULT_METRICS_CIDRS, True)

    if ctx.errors:
        return ctx.errors, None
    if None in (url, mode, roles, users, limits, sessions, cidrs, metrics) or (mode == 'oidc' and oidc is None) \
            or (oidc is not None and oidc['scope_roles'] is None):
        # Every path that yields None has recorded an error; this is a safety net.
        return ['%s: could not be expanded; see the errors above' % ROOT], None

    zones, tool_limits = limits
    scopes = []
    if oidc:
        # Advertise every scope a token may need: the listed ones, the required ones, the granting ones.
        for scope in oidc['scopes'] + oidc['required_scopes'] + list(oidc['scope_roles']):
            if scope not in scopes:
                scopes.append(scope)
    metadata_url = public_url + METADATA_PATH
    metadata = {'resource': resource, 'scopes_supported': list(scopes), 'bearer_methods_supported': ['header']}
    if oidc:
        metadata['authorization_servers'] = [oidc['issuer']]
    njs_oidc = None
    if oidc:
        njs_oidc = _sorted({
            'issuer': str(oidc['issuer']),
            'audience': str(oidc['audience']),
            'jwks_uri': None if oidc['jwks_uri'] is None else str(oidc['jwks_uri']),
            'discovery_url': str(oidc['discovery_url']),
            'algorithms': list(oidc['algorithms']),
            'subject_claim': str(oidc['subject_claim']),
            'roles_claim': [str(s) for s in oidc['roles_claim']],
            'leeway': oidc['leeway'],
            'required_scopes': [str(s) for s in oidc['required_scopes']],
            'scope_roles': _sorted(dict((str(scope), [str(r) for r in granted])
                                        for scope, granted in oidc['scope_roles'].items())),
        })
    njs_policy = _sorted({
        'version': NJS_POLICY_VERSION,
        'auth_mode': mode,
        'resource': resource,
        'resource_metadata_url': metadata_url,
        'scope': ' '.join(scopes),
        'users': _sorted(dict((str(name), [str(r) for r in user_roles]) for name, _s, user_roles in users)),
        'roles': _sorted(dict((str(name), _njs_role(spec)) for name, spec in roles.items())),
        'tool_limits': _sorted(dict((str(tool), _sorted(spec)) for tool, spec in tool_limits.items())),
        'allow_origins': origins,
        'max_sessions_per_user': sessions,
        'oidc': njs_oidc,
    })
    expanded = {
        'public_url': public_url,
        'server_name': url[1],
        'port': url[2] or 443,
        'resource': resource,
        'mcp_path': MCP_PATH,
        'resource_metadata_url': metadata_url,
        'resource_metadata_paths': [METADATA_PATH, METADATA_PATH + MCP_PATH],
        'resource_metadata': _sorted(metadata),
        'auth_mode': mode,
        # Secrets keep the caller's object (an AnsibleUnsafe/tagged str stays one).
        'htpasswd_users': [{'name': str(n), 'password': s} for n, s, _r in users] if mode == 'basic' else [],
        'token_users': [{'name': str(n), 'token': s} for n, s, _r in users] if mode == 'bearer' else [],
        'allow_cidrs': cidrs,
        'metrics_allow_cidrs': metrics,
        'oidc_ca_file': str(oidc['ca_file']) if oidc else None,
        'limit_req_zones': [
            {'name': 'mcpsec_per_ip', 'key': CLIENT_KEY, 'rate': zones['per_ip']['rate'], 'size': ZONE_SIZE},
            {'name': 'mcpsec_per_user', 'key': '$mcpsec_subject', 'rate': zones['per_user']['rate'], 'size': ZONE_SIZE},
        ],
        'limit_req': [
            {'zone': 'mcpsec_per_ip', 'burst': zones['per_ip']['burst'], 'nodelay': True},
            {'zone': 'mcpsec_per_user', 'burst': zones['per_user']['burst'], 'nodelay': True},
        ],
        'limit_conn_zones': [
            {'name': 'mcpsec_conn_per_ip', 'key': CLIENT_KEY, 'size': ZONE_SIZE},
            {'name': 'mcpsec_conn_per_user', 'key': '$mcpsec_subject', 'size': ZONE_SIZE},
        ],
        'limit_conn': [
            {'zone': 'mcpsec_conn_per_ip', 'connections': zones['per_ip']['connections']},
            {'zone': 'mcpsec_conn_per_user', 'connections': zones['per_user']['connections']},
        ],
        'njs_policy': njs_policy,
    }
    return [], expanded


def policy_errors(policy):
    """Return the list of problems (empty when the policy is valid); never raises."""
    return _expand(policy)[0]


def expand_policy(policy):
    """Return the expanded policy or raise :class:`PolicyError` listing every problem."""
    errors, expanded = _expand(policy)
    if errors:
        raise PolicyError(errors)
    return expanded
