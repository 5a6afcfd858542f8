# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tool pinning (docs/tool-pinning.md): ``tool_pins`` and ``tool_pinning`` of the policy.

``mcpsec_policy.tool_pins.<server>.<tool>`` and the pins file playbooks/pin_tools.yml writes
(``mcpsec_tool_pins``, the same shape, passed to expand_policy as ``tool_pins=``) hold
"sha256:<64 hex>" digests; one server's pins come from one of the two. ``tool_pinning.<server>``
is enforce or report (enforce when the server has pins). The result per server is None (no
pinning) or {mode, pins}, what njs_policy.servers.<name>.tool_pinning carries. No Ansible imports.
"""

from __future__ import annotations

import re

from collections.abc import Mapping

from ._policy_check import ROOT, _check_name, _key, _show, _type_name

PINS_FILE_ROOT = 'mcpsec_tool_pins'
MODES = ('enforce', 'report')
DIGEST_RE = re.compile(r'^sha256:[0-9a-f]{64}$')
REPIN = 'run playbooks/pin_tools.yml (it writes the pins file, docs/tool-pinning.md)'


def _known_server(ctx, path, name, names):
    if not isinstance(name, str):
        ctx.err(path, 'server name must be a string, got %s' % _type_name(name), 'quote the name')
        return False
    if name in names:
        return True
    ctx.err(path, 'names no server of this host',
            'use a server of mcp_servers (servers here: %s) or remove the key' % ', '.join(names))
    return False


def _server_pins(ctx, path, value):
    """{tool: digest} of one server, or None when its shape is wrong (reported)."""
    if not isinstance(value, Mapping):
        ctx.err(path, 'expected a mapping of tool name to digest, got %s' % _type_name(value),
                'write <tool>: "sha256:<64 lowercase hex>" pairs; ' + REPIN)
        return None
    pins, good = {}, True
    for tool in value:
        tool_path = _key(path, tool)
        if not isinstance(tool, str):
            ctx.err(tool_path, 'tool name must be a string, got %s' % _type_name(tool), 'quote the name')
            good = False
            continue
        if not _check_name(ctx, tool_path, tool, 'pinned_tool'):
            good = False
            continue
        digest = value[tool]
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            shown = _show(digest) if isinstance(digest, str) else _type_name(digest)
            ctx.err(tool_path, 'digest %s is malformed' % shown,
                    'write "sha256:" and 64 lowercase hex digits, as pin_tools.yml prints them')
            good = False
            continue
        pins[tool] = digest
    return pins if good else None


def _pin_sets(ctx, root, raw, names):
    """{server: pins or None} of one source (the policy's tool_pins or the pins file)."""
    if raw is None or ctx.undefined(root, raw):
        return {}
    if not isinstance(raw, Mapping):
        ctx.err(root, 'expected a mapping of server name to pins, got %s' % _type_name(raw),
                'write <server>: {<tool>: "sha256:..."}; ' + REPIN)
        return {}
    result = {}
    for server in raw:
        path = _key(root, server)
        if not _known_server(ctx, path, server, names):
            continue
        result[server] = _server_pins(ctx, path, raw[server])
    return result


def _modes(ctx, raw, names):
    path = ROOT + '.tool_pinning'
    if raw is None or ctx.undefined(path, raw):
        return {}
    if not isinstance(raw, Mapping):
        ctx.err(path, 'expected a mapping of server name to enforce or report, got %s' % _type_name(raw),
                'write <server>: enforce | report')
        return {}
    result = {}
    for server in raw:
        server_path = _key(path, server)
        if not _known_server(ctx, server_path, server, names):
            continue
        mode = raw[server]
        if mode not in MODES:
            ctx.err(server_path, 'unknown mode %s' % (_show(mode) if isinstance(mode, str) else _type_name(mode)),
                    'use enforce (refuse drifted and unpinned tools) or report (pass them, log them)')
            continue
        result[server] = mode
    return result


def tool_pinning(ctx, policy_pins, modes_raw, file_pins, names):
    """{server: None | {'mode', 'pins'}} for every server in names; errors go to ctx."""
    inline = _pin_sets(ctx, ROOT + '.tool_pins', policy_pins, names)
    written = _pin_sets(ctx, PINS_FILE_ROOT, file_pins, names)
    modes = _modes(ctx, modes_raw, names)
    for server in sorted(set(inline) & set(written)):
        ctx.err(_key(PINS_FILE_ROOT, server), 'pins server %s, which %s.tool_pins.%s pins too' % (server, ROOT, server),
                'keep one: the pins file pin_tools.yml writes, or %s.tool_pins' % ROOT)
    result = {}
    for server in names:
        pins = inline.get(server, written.get(server))
        mode = modes.get(server)
        if pins is None and (server in inline or server in written):
            result[server] = None  # malformed: reported above
            continue
        if pins is None and mode is None:
            result[server] = None
            continue
        mode = mode or 'enforce'
        if mode == 'enforce' and not pins:
            where = ROOT + '.tool_pinning.' + server if server in modes else _key(
                ROOT + '.tool_pins' if server in inline else PINS_FILE_ROOT, server)
            ctx.err(where, 'enforce mode with no pinned tool would refuse every tool of server %s' % server,
                    REPIN + ', or set %s.tool_pinning.%s: report to see what it lists' % (ROOT, server))
            result[server] = None
            continue
        result[server] = {'mode': mode, 'pins': dict((tool, (pins or {})[tool]) for tool in sorted(pins or {}))}
    return result
