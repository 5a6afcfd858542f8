# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: cidr_families
short_description: Split a list of networks into its IPv4 and IPv6 members
version_added: 0.2.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Parses every entry with Python's C(ipaddress) and returns the normalised IPv4 and IPv6
    networks apart, each list in the given order without duplicates, so that templates
    (nftables needs C(ip saddr) and C(ip6 saddr) rules apart) hold no address parsing.
  - A bare address means one host (C(/32), C(/128)). An entry that is not a network, or has
    host bits set, fails with a message that names it and the fix.
positional: _input
options:
  _input:
    description: The networks, for example C(host_firewall_ssh_cidrs).
    type: list
    elements: str
    required: true
  name:
    description: The variable the list comes from, used in error messages.
    type: str
    default: networks
"""

EXAMPLES = r"""
- name: Render one nftables rule per address family
  ansible.builtin.template:
    src: nftables.conf.j2
    dest: /etc/nftables.conf
    mode: "0700"
  vars:
    __ssh: "{{ host_firewall_ssh_cidrs | mcpsec.gateway.cidr_families(name='host_firewall_ssh_cidrs') }}"
    # __ssh.ipv4 == ['10.0.0.0/8'], __ssh.ipv6 == ['fd00::/8'] for ['10.0.0.0/8', 'fd00::/8']
"""

RETURN = r"""
_value:
  description: C(ipv4) and C(ipv6), each a list of networks in CIDR notation.
  type: dict
"""


from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy_limits import parse_network


def cidr_families(networks, name='networks'):
    if isinstance(networks, (str, bytes)) or not hasattr(networks, '__iter__'):
        raise AnsibleFilterError('%s: expected a list of networks, got %s' % (name, type(networks).__name__))
    families = {'ipv4': [], 'ipv6': []}
    for index, item in enumerate(networks):
        text = str(item).strip()
        net, fixed = parse_network(text)
        if net is None and fixed is None:
            raise AnsibleFilterError("%s[%d]: '%s' is not an IP network; write a CIDR such as '10.0.0.0/8'"
                                     % (name, index, text))
        if net is None:
            raise AnsibleFilterError("%s[%d]: '%s' has host bits set; use '%s'" % (name, index, text, fixed))
        family = families['ipv4' if net.version == 4 else 'ipv6']
        if str(net) not in family:
            family.append(str(net))
    return families


class FilterModule(object):
    def filters(self):
        return {'cidr_families': cidr_families}
