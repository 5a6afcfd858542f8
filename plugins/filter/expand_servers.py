# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: expand_servers
short_description: Validate C(mcp_servers) and expand it into the servers a gateway host serves
version_added: 0.2.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Validates C(mcp_servers), the MCP servers a host serves, and returns them as the roles
    render them (C(docs/servers.md)), the server named C(default) first, then by name.
  - Without C(mcp_servers) (or with an empty one) the C(mcp_server_*) variables, passed as
    O(legacy), describe one server named C(default) at C(/mcp) in the layout of earlier releases.
  - Every other server gets a sandbox of its own, decided here once - a system user
    C(mcp-<name>) and home, a root-owned env file C(/etc/mcpsec/servers/<name>.env), template
    units C(mcpsec-sg-<name>@N) in a slice of their own, and a block of loopback ports.
  - Every problem is reported in one error, one line per problem, starting with the key path
    and ending with the fix. Environment values (secrets) never appear in an error.
positional: _input, legacy, defaults
options:
  _input:
    description: The C(mcp_servers) mapping (server name to its description); empty for one server.
    type: dict
    required: true
  legacy:
    description: The C(mcp_server_*) values without the prefix (source, package, version, executable, args, env).
    type: dict
    required: true
  defaults:
    description:
      - The default server's layout (user, group, home, env_file, install_dir, unit), the first
        loopback port (base_port) and the budgets every server starts from (instances,
        max_sessions, session_memory_mb, session_tasks, memory_max, tasks_max).
      - C(max_sessions_total) (proxy_max_sessions_total), when set and not null, is what the proxy
        admits to the default server; it must be 1 up to what the default server's slice holds.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Expand the servers once for every role
  ansible.builtin.set_fact:
    __mcpsec_servers: "{{ mcp_servers | mcpsec.gateway.expand_servers(__common_servers_legacy, __common_servers_defaults) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description:
    - A list of servers, each with C(name), C(source), C(package), C(version), C(executable),
      C(args), C(env) (secrets), C(path), C(instances), C(max_sessions), C(session_memory_mb),
      C(session_tasks), C(user), C(group), C(home), C(env_file), C(install_dir), C(unit),
      C(slice), C(port), C(ports), C(memory_max), C(tasks_max),
      C(session_capacity) (the sessions the slice's limits hold), C(max_sessions_total) (the sessions
      the proxy admits, C(session_capacity) or C(proxy_max_sessions_total) for the default server),
      C(command) and C(upstream).
    - C(env) holds secrets; show the list only in tasks with C(no_log).
  type: list
  elements: dict
"""

import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy_check import PolicyError
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._servers import expand_servers as _expand_servers

_DIGITS = re.compile(r'^[0-9]+$')
_INT_SERVER_KEYS = ('instances', 'max_sessions', 'session_memory_mb', 'session_tasks', 'port')
_INT_DEFAULTS = ('base_port', 'instances', 'max_sessions', 'session_memory_mb', 'session_tasks', 'tasks_max',
                 'max_sessions_total')


def _whole(value):
    """"16" -> 16 (ASCII digits only); any other value as it is."""
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    return value


def _numbers(defaults):
    """Jinja hands some of the role defaults over as text: whole numbers become ints."""
    out = dict(defaults)
    if out.get('max_sessions_total') == '':
        out['max_sessions_total'] = None
    for key in _INT_DEFAULTS:
        if key in out:
            out[key] = _whole(out[key])
    return out


def _server_numbers(servers):
    """The same for each server's budgets and port: "{{ n }}" is text before ansible-core 2.19.
    Anything but plain digits is left for the validator to name."""
    if not isinstance(servers, Mapping):
        return servers
    out = {}
    for name, spec in servers.items():
        if isinstance(spec, Mapping):
            spec = dict(spec)
            for key in _INT_SERVER_KEYS:
                if key in spec:
                    spec[key] = _whole(spec[key])
        out[name] = spec
    return out


def expand_servers(servers, legacy, defaults):
    try:
        return _expand_servers(_server_numbers(servers), dict(legacy or {}), _numbers(defaults or {}))
    except PolicyError as exc:
        # "from None": the core's traceback adds nothing and must not carry values along.
        raise AnsibleFilterError('mcp_servers is invalid:\n' + str(exc)) from None


class FilterModule(object):
    def filters(self):
        return {'expand_servers': expand_servers}
