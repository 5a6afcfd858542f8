# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validators of the authentication sections: ``auth`` (and ``auth.oidc``) and ``users``."""

from __future__ import annotations

import difflib
import re

from ._policy_check import (
    JS_RESERVED, ROOT, _MISSING, _check_name, _idx, _key, _non_ascii, _placeholder_reason, _show,
    _split_url, _type_name,
)
from ._policy_access import _user_roles


MIN_PASSWORD = 12
MIN_TOKEN = 32
LEEWAY_MAX = 300
# The clock skew allowed when leeway_seconds is not set.
DEFAULT_LEEWAY = 60
ALGORITHMS = ('RS256', 'ES256')
MODES = ('basic', 'bearer', 'oidc')

# RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E
SCOPE_RE = re.compile(r'^[\x21\x23-\x5b\x5d-\x7e]{1,128}$')
# RFC 6750 b64token, the only thing that fits in "Authorization: Bearer <token>"
B64TOKEN_RE = re.compile(r'^[A-Za-z0-9._~+/-]+=*$')
CLAIM_SEGMENT_RE = re.compile(r'^[A-Za-z0-9_:/-]{1,64}$')

AUTH_KEYS = ('mode', 'oidc')
OIDC_KEYS = ('issuer', 'audience', 'jwks_uri', 'algorithms', 'subject_claim',
             'roles_claim', 'scopes_supported', 'required_scopes', 'scope_roles',
             'leeway_seconds', 'ca_file')
USER_KEYS = ('password', 'token', 'roles')
DEFAULT_OIDC_CA_FILE = '/etc/ssl/certs/ca-certificates.crt'


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
    """auth.oidc: a dict of the expanded settings (defaults filled in), or None."""
    fields = ctx.mapping(path, raw, OIDC_KEYS)
    if fields is None:
        return None
    result = {'jwks_uri': None, 'algorithms': list(ALGORITHMS), 'subject_claim': 'sub',
              'roles_claim': ['roles'], 'leeway': DEFAULT_LEEWAY, 'ca_file': DEFAULT_OIDC_CA_FILE}
    _oidc_endpoints(ctx, path, fields, resource, result)
    if fields.get('algorithms') is not None:
        result['algorithms'] = _algorithms(ctx, path + '.algorithms', fields['algorithms'])
    _oidc_claims(ctx, path, fields, result)
    result['scopes'] = _scopes(ctx, path + '.scopes_supported', fields.get('scopes_supported'), False)
    result['required_scopes'] = _scopes(ctx, path + '.required_scopes', fields.get('required_scopes'), True)
    result['scope_roles'] = _scope_roles_shape(ctx, path + '.scope_roles', fields.get('scope_roles'))
    if fields.get('leeway_seconds') is not None:
        value = ctx.integer(path + '.leeway_seconds', fields['leeway_seconds'], 0, LEEWAY_MAX)
        if value is not None:
            result['leeway'] = value
    if fields.get('ca_file') is not None:
        text = ctx.string(path + '.ca_file', fields['ca_file'], 'write an absolute path to a PEM bundle')
        if text is not None:
            if not text.startswith('/') or '\n' in text or ';' in text or ' ' in text or _non_ascii(text):
                ctx.err(path + '.ca_file', 'must be an absolute path without spaces or semicolons',
                        "use e.g. '%s'" % DEFAULT_OIDC_CA_FILE)
            else:
                result['ca_file'] = text
    return result


def _oidc_endpoints(ctx, path, fields, resource, result):
    """issuer (and the discovery URL made from it), audience, jwks_uri."""
    issuer = fields.get('issuer', _MISSING)
    if issuer is _MISSING:
        ctx.err(path + '.issuer', 'is required', 'set it to the https URL of your identity provider (its "iss")')
    elif _split_url(ctx, path + '.issuer', issuer, True, 'issuer') is not None:
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
    if jwks is not None and _split_url(ctx, path + '.jwks_uri', jwks, True, 'jwks_uri') is not None:
        result['jwks_uri'] = str(jwks).strip()


def _algorithms(ctx, path, raw):
    items = ctx.seq(path, raw, '[RS256, ES256]')
    if items is None:
        return None
    chosen = []
    for index, item in enumerate(items):
        ipath = _idx(path, index)
        text = None if item is _MISSING else ctx.string(ipath, item, 'write RS256 or ES256')
        if text is None:
            continue
        if text.upper() not in ALGORITHMS:
            ctx.err(ipath, 'algorithm %s is not supported' % _show(text),
                    'use RS256 and/or ES256 (njs verifies only these)')
        elif text.upper() not in chosen:
            chosen.append(text.upper())
    if not items:
        ctx.err(path, 'is empty', 'remove it for [RS256, ES256] or list one of them')
    return chosen


def _oidc_claims(ctx, path, fields, result):
    """subject_claim (one claim name) and roles_claim (a dotted path, split)."""
    if fields.get('subject_claim') is not None:
        text = ctx.string(path + '.subject_claim', fields['subject_claim'], 'write a claim name such as sub')
        if text is not None:
            if not CLAIM_SEGMENT_RE.match(text) or text.lower() in JS_RESERVED:
                ctx.err(path + '.subject_claim', 'claim name %s is invalid' % _show(text),
                        'use a claim name from [A-Za-z0-9_:/-], e.g. sub or preferred_username')
            else:
                result['subject_claim'] = text
    if fields.get('roles_claim') is not None:
        text = ctx.string(path + '.roles_claim', fields['roles_claim'],
                          'write a dotted claim path such as realm_access.roles')
        if text is not None:
            segments = text.split('.')
            bad = [s for s in segments if not CLAIM_SEGMENT_RE.match(s) or s.lower() in JS_RESERVED]
            if bad:
                ctx.err(path + '.roles_claim', 'claim path %s has an invalid segment %s' % (_show(text), _show(bad[0])),
                        'use dot-separated claim names from [A-Za-z0-9_:/-], e.g. realm_access.roles')
            else:
                result['roles_claim'] = segments


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
