# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which variables of the servers' EnvironmentFiles change (names only, never values).

A variable is a line ``NAME=...`` (NAME of [A-Za-z_][A-Za-z0-9_]*); comments and other lines do
not count; of a name written twice the last line counts (as systemd reads it). A variable is
updated when its whole line differs. Lines are compared in memory only; nothing returned holds
a value. No Ansible imports."""

from __future__ import annotations

import base64
import binascii
import re

from collections.abc import Mapping

LINE_RE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=')
KINDS = ('added', 'updated', 'removed')
DEFAULT_SERVER = 'default'


class EnvDiffError(ValueError):
    """The input is not what the env tasks hand over (a caller's bug, named without values)."""


def variables(text):
    """NAME -> its (last) whole line."""
    out = {}
    for line in text.splitlines():
        match = LINE_RE.match(line)
        if match:
            out[match.group(1)] = line
    return out


def changes(before, after):
    """{added, updated, removed}: sorted variable names, from two env file texts."""
    old, new = variables(before), variables(after)
    return {
        'added': sorted(k for k in new if k not in old),
        'updated': sorted(k for k in new if k in old and old[k] != new[k]),
        'removed': sorted(k for k in old if k not in new),
    }


def _decoded(name, content):
    """The text of a slurped file (base64); '' for a file that does not exist yet (no content)."""
    if content is None or content == '':
        return ''
    try:
        return base64.b64decode(str(content), validate=True).decode('utf-8', 'replace')
    except (binascii.Error, ValueError):
        raise EnvDiffError('server %s: the current env file content is not base64 (pass slurp\'s content)' % name) from None


def env_changes(files):
    """``files``: server name -> {before: slurp's base64 content or '', after: the new file's text}.
    Returns {by_server: {name: {added, updated, removed}}, total: the same over every server, the
    default server's names as NAME, another server's as <server>.NAME}."""
    if not isinstance(files, Mapping):
        raise EnvDiffError('expected a mapping of server name to {before, after}, got %s' % type(files).__name__)
    by_server, total = {}, dict((kind, []) for kind in KINDS)
    for name in sorted(files):
        pair = files[name]
        if not isinstance(pair, Mapping) or not isinstance(pair.get('after'), str):
            raise EnvDiffError('server %s: expected {before, after} with after the new file\'s text' % name)
        found = changes(_decoded(name, pair.get('before')), pair['after'])
        by_server[name] = found
        for kind in KINDS:
            total[kind].extend(k if name == DEFAULT_SERVER else '%s.%s' % (name, k) for k in found[kind])
    return {'by_server': by_server, 'total': total}
