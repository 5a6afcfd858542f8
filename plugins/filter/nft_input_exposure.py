# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: nft_input_exposure
short_description: Tell whether nftables lets other hosts open a TCP port
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Reads the output of C(nft -j list ruleset) and reports, for every base chain on the input
    hook, its policy and the rules that may accept a new TCP connection to O(port) from another
    host (following C(jump) and C(goto)).
  - Conservative. A rule counts as accepting unless one of its matches provably excludes the
    port, such as loopback only, states without C(new), another protocol or a port set without it.
  - The port is C(closed) when, for IPv4 and for IPv6, some input base chain has policy
    C(drop) and no accepting rule.
positional: _input
options:
  _input:
    description: The JSON ruleset, as a string or already parsed.
    type: raw
    required: true
  port:
    description: The TCP port.
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Read the ruleset
  ansible.builtin.command: nft -j list ruleset
  register: __nft
  changed_when: false

- name: Ensure supergateway's port is closed to other hosts
  ansible.builtin.assert:
    that: (__nft.stdout | mcpsec.gateway.nft_input_exposure(port=8000)).closed
"""

RETURN = r"""
_value:
  description:
    - C(port); C(input_chains) (each C(family), C(table), C(chain), C(policy),
      C(accepting_rules), C(blocks)); C(policy_drop) (every input base chain drops by default);
      C(accepting_rules) (all of them, as text); C(blocked) (C(ipv4), C(ipv6)); C(closed).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._nft import NftError, input_exposure


def nft_input_exposure(ruleset, port):
    try:
        return input_exposure(ruleset, int(port))
    except (NftError, TypeError, ValueError) as exc:
        raise AnsibleFilterError('nft_input_exposure: %s' % exc) from None


class FilterModule(object):
    def filters(self):
        return {'nft_input_exposure': nft_input_exposure}
