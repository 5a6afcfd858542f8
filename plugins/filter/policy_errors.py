# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: policy_errors
short_description: List the problems in C(mcpsec_policy) without failing
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Runs the same validation as P(mcpsec.gateway.expand_policy#filter) and returns the list of
    problems, one string per problem, each C(<key path>) then the problem and the fix. The list is empty when
    the policy is valid. Useful in C(ansible.builtin.assert) or to show every problem in a
    pre-flight report. Secrets never appear in the messages.
positional: _input
options:
  _input:
    description: The C(mcpsec_policy) mapping.
    type: raw
    required: true
  servers:
    description:
      - The servers the host serves, as P(mcpsec.gateway.expand_servers#filter) returns them; grants on
        a server not in it are problems. Without it, one server named C(default) at C(/mcp).
    type: list
    elements: dict
  tool_pins:
    description:
      - The pins file C(playbooks/pin_tools.yml) writes (C(mcpsec_tool_pins)), the shape of
        C(mcpsec_policy.tool_pins); merged into it. One server's pins come from one of the two.
    type: dict
seealso:
  - plugin: mcpsec.gateway.expand_policy
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Ensure the policy is valid before touching the host
  ansible.builtin.assert:
    that: mcpsec_policy | mcpsec.gateway.policy_errors | length == 0
    fail_msg: "{{ mcpsec_policy | mcpsec.gateway.policy_errors | join('\n') }}"

- name: Ensure the policy grants only on servers this host serves
  ansible.builtin.assert:
    that: mcpsec_policy | mcpsec.gateway.policy_errors(servers=__mcpsec_servers) | length == 0
    fail_msg: "{{ mcpsec_policy | mcpsec.gateway.policy_errors(servers=__mcpsec_servers) | join('\n') }}"
"""

RETURN = r"""
_value:
  description: One message per problem; empty when the policy is valid.
  type: list
  elements: str
"""

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy import policy_errors


class FilterModule(object):
    def filters(self):
        return {'policy_errors': policy_errors}
