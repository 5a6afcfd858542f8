# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: env_changes
short_description: Name the variables of the MCP servers' env files that a new rendering adds, updates or removes
version_added: 0.3.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Compares each server's current EnvironmentFile (as C(ansible.builtin.slurp) returns it, base64) with
    the text about to be written, line by line in memory, and returns the variable names only.
  - A variable is a line C(NAME=...); of a name written twice the last line counts; a variable is
    updated when its whole line differs. Values never appear in the result or in an error.
positional: _input
options:
  _input:
    description:
      - Server name to C({before, after}) - C(before) the slurped content (base64; empty when the file
        does not exist yet), C(after) the new file's text.
      - Holds secrets; use it only in tasks with C(no_log).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Work out which environment variables change (names only)
  ansible.builtin.set_fact:
    __changes: "{{ __mcp_server_env_files | mcpsec.gateway.env_changes }}"
  no_log: true
"""

RETURN = r"""
_value:
  description:
    - C(by_server) - server name to C({added, updated, removed}) (sorted variable names).
    - C(total) - the same over every server; the server named C(default) lists C(NAME), another
      server C(<server>.NAME).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._env_diff import EnvDiffError
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._env_diff import env_changes as _env_changes


def env_changes(files):
    try:
        return _env_changes(files)
    except EnvDiffError as exc:
        raise AnsibleFilterError('env_changes: %s' % exc) from None


class FilterModule(object):
    def filters(self):
        return {'env_changes': env_changes}
