# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.cidr_families import cidr_families


def test_families_are_split_normalised_and_deduplicated():
    assert cidr_families(['0.0.0.0/0', '::/0']) == {'ipv4': ['0.0.0.0/0'], 'ipv6': ['::/0']}
    assert cidr_families(['192.0.2.7', '2001:DB8::/32', '10.0.0.0/8', '192.0.2.7/32']) == {
        'ipv4': ['192.0.2.7/32', '10.0.0.0/8'], 'ipv6': ['2001:db8::/32']}
    assert cidr_families([]) == {'ipv4': [], 'ipv6': []}


@pytest.mark.parametrize('networks, message', [
    (['10.1.2.3/8'], "ssh[0]: '10.1.2.3/8' has host bits set; use '10.0.0.0/8'"),
    (['::1', 'example.com'], "ssh[1]: 'example.com' is not an IP network"),
    ('10.0.0.0/8', 'ssh: expected a list of networks, got str'),
])
def test_bad_entries_are_named(networks, message):
    with pytest.raises(AnsibleFilterError) as caught:
        cidr_families(networks, name='ssh')
    assert message in str(caught.value)
