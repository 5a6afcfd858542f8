# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: expand_policy
short_description: Validate C(mcpsec_policy) and expand it into what the roles render
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Validates the one shared input of the collection, C(mcpsec_policy), and returns the
    expanded structure described in C(docs/expanded-policy.md) - nginx server name and port,
    RFC 9728 metadata, rate-limit zones, the credential lists for
    M(mcpsec.gateway.credential_file) and the secret-free C(njs_policy) document.
  - Every problem is collected and reported in one error, one line per problem, each line
    starting with the key path (for example C(mcpsec_policy.users.alice.roles[1])) and ending
    with the fix. Passwords and tokens never appear in an error.
  - Safe defaults apply. No users means nobody gets in; a user without roles may call no tool.
  - See C(docs/policy.md) in the collection for every key, its type and default.
positional: _input
options:
  _input:
    description: The C(mcpsec_policy) mapping.
    type: dict
    required: true
  servers:
    description:
      - The servers the host serves, as P(mcpsec.gateway.expand_servers#filter) returns them.
        Without it, one server named C(default) at C(/mcp).
    type: list
    elements: dict
  tool_pins:
    description:
      - The pins file C(playbooks/pin_tools.yml) writes (C(mcpsec_tool_pins)), the shape of
        C(mcpsec_policy.tool_pins); merged into it. One server's pins come from one of the two.
    type: dict
seealso:
  - plugin: mcpsec.gateway.policy_errors
    plugin_type: filter
  - module: mcpsec.gateway.credential_file
"""

EXAMPLES = r"""
- name: Expand the policy once for every role
  ansible.builtin.set_fact:
    __mcpsec: "{{ mcpsec_policy | mcpsec.gateway.expand_policy }}"

- name: Render the njs policy document
  ansible.builtin.copy:
    content: "{{ __mcpsec.njs_policy | to_nice_json }}\n"
    dest: /etc/nginx/mcpsec/policy.json
    owner: root
    group: www-data
    mode: "0640"
"""

RETURN = r"""
_value:
  description:
    - The expanded policy. Keys C(public_url), C(server_name), C(server_name_kind) (C(ip) or C(dns)),
      C(port), C(resource), C(mcp_path), C(resource_metadata_url), C(resource_metadata_paths),
      C(resource_metadata), C(auth_mode), C(htpasswd_users), C(token_users), C(allow_cidrs),
      C(allow_cidrs_ipv4), C(allow_cidrs_ipv6), C(metrics_allow_cidrs), C(oidc_ca_file),
      C(limit_req_zones), C(limit_req), C(limit_req_retry_after) (seconds), C(servers) (one entry per MCP server) and C(njs_policy) (version 3).
    - C(htpasswd_users) and C(token_users) hold secrets; use them only in tasks with C(no_log).
  type: dict
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.release import __version__ as ansible_version

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy import (
    PolicyError,
    expand_policy as _expand_policy,
)

# Before 2.19 a plain str returned by a filter may be templated again when it is used
# later, so a password containing "{#" could be mangled: mark the output unsafe there.
# From 2.19 on, data tagging never treats filter output as a template.
_WRAP = tuple(int(x) for x in re.findall(r'\d+', ansible_version)[:2]) < (2, 19)
if _WRAP:
    from ansible.utils.unsafe_proxy import wrap_var
else:
    wrap_var = None


def expand_policy(policy, servers=None, tool_pins=None):
    try:
        expanded = _expand_policy(policy, servers, tool_pins)
    except PolicyError as exc:
        # "from None": the core's traceback adds nothing and must not carry values along.
        raise AnsibleFilterError(str(exc)) from None
    return wrap_var(expanded) if _WRAP else expanded


class FilterModule(object):
    def filters(self):
        return {'expand_policy': expand_policy}
