# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validators of what roles grant: ``roles`` (tools, resources, prompts) and role references."""

from __future__ import annotations

import re

from ._policy_check import ROOT, _MISSING, _check_name, _describe_char, _idx, _key, _non_ascii, _show


ROLE_KEYS = ('tools', 'resources', 'prompts', 'servers')
GRANT_KEYS = ('tools', 'resources', 'prompts')
SERVER_NAME_RE = re.compile(r'^[a-z][a-z0-9-]{0,30}$')

# A resource URI pattern: visible ASCII only ('*' is the glob), so no space or control hides in it.
RESOURCE_RE = re.compile(r'^[\x21-\x7e]{1,1024}$')

# kind -> (what one item is called, the plural, a YAML example)
GRANT_KINDS = {
    'tool': ('tool', 'tools', '[echo, get-sum] or ["*"]'),
    'prompt': ('prompt', 'prompts', '[simple-prompt] or ["*"]'),
    'resource': ('resource pattern', 'resources', '["demo://resource/static/document/*"] or ["*"]'),
}


def _grants(ctx, rpath, fields):
    """tools, resources and prompts of one role (or of one role on one server), or None."""
    grants = {}
    for key, kind in (('tools', 'tool'), ('resources', 'resource'), ('prompts', 'prompt')):
        grants[key] = _grant_list(ctx, rpath + '.' + key, fields.get(key), kind)
    return None if None in grants.values() else grants


def _server_grants(ctx, rpath, raw):
    """roles.<r>.servers: server name -> its grants; the names are checked against the
    servers the host serves later (_policy._check_server_grants), here only their form."""
    path = rpath + '.servers'
    pairs = ctx.names(path, raw, 'server names to {tools, resources, prompts}')
    if pairs is None:
        return None
    servers = {}
    ok = True
    for server, spec in pairs:
        spath = _key(path, server)
        if not SERVER_NAME_RE.match(server):
            ctx.err(spath, 'server name %s is invalid' % _show(server),
                    'use the name of a server in mcp_servers ([a-z][a-z0-9-]{0,30})')
            ok = False
            continue
        fields = ctx.mapping(spath, {} if spec is None else spec, GRANT_KEYS)
        grants = None if fields is None else _grants(ctx, spath, fields)
        if grants is None:
            ok = False
            continue
        servers[server] = grants
    return servers if ok else None


def _roles(ctx, raw):
    path = ROOT + '.roles'
    pairs = ctx.names(path, raw, 'role names to {tools, resources, prompts, servers}')
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
        grants = _grants(ctx, rpath, fields)
        servers = _server_grants(ctx, rpath, fields.get('servers'))
        if valid and grants is not None and servers is not None:
            grants['servers'] = servers
            grants['top_level'] = any(key in fields for key in GRANT_KEYS)
            roles[name] = grants
    return roles


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
