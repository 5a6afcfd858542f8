# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import os
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.nft_input_exposure import nft_input_exposure


def match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def payload(proto, field):
    return {'payload': {'protocol': proto, 'field': field}}


def rule(*expr, chain='input', table='mcpsec_filter', family='inet', handle=1):
    return {'rule': {'family': family, 'table': table, 'chain': chain, 'handle': handle, 'expr': list(expr)}}


ACCEPT = {'accept': None}
ANY4 = match(payload('ip', 'saddr'), {'set': [{'prefix': {'addr': '0.0.0.0', 'len': 0}}]})

# What roles/host/templates/nftables.conf.j2 renders, as `nft -j list ruleset` prints it.
GATEWAY = {'nftables': [
    {'metainfo': {'version': '1.1.3', 'json_schema_version': 1}},
    {'table': {'family': 'inet', 'name': 'mcpsec_filter', 'handle': 1}},
    {'chain': {'family': 'inet', 'table': 'mcpsec_filter', 'name': 'input', 'handle': 1,
               'type': 'filter', 'hook': 'input', 'prio': 0, 'policy': 'drop'}},
    {'chain': {'family': 'inet', 'table': 'mcpsec_filter', 'name': 'forward', 'handle': 2,
               'type': 'filter', 'hook': 'forward', 'prio': 0, 'policy': 'drop'}},
    {'chain': {'family': 'inet', 'table': 'mcpsec_filter', 'name': 'output', 'handle': 3,
               'type': 'filter', 'hook': 'output', 'prio': 0, 'policy': 'accept'}},
    rule(match({'ct': {'key': 'state'}}, ['established', 'related'], op='in'), ACCEPT, handle=4),
    rule(match({'ct': {'key': 'state'}}, 'invalid', op='in'), {'drop': None}, handle=5),
    rule(match({'meta': {'key': 'iif'}}, 'lo'), ACCEPT, handle=6),
    rule(match(payload('ip', 'protocol'), 'icmp'), ACCEPT, handle=7),
    rule(match(payload('ip6', 'nexthdr'), 'ipv6-icmp'), ACCEPT, handle=8),
    rule(ANY4, match(payload('tcp', 'dport'), 22), ACCEPT, handle=9),
    rule(ANY4, match(payload('tcp', 'dport'), {'set': [80, 443]}), ACCEPT, handle=10),
    rule(match(payload('ip6', 'saddr'), {'set': [{'prefix': {'addr': '::', 'len': 0}}]}),
         match(payload('tcp', 'dport'), {'set': [80, 443]}), ACCEPT, handle=11),
]}


def with_rules(*rules):
    data = copy.deepcopy(GATEWAY)
    data['nftables'].extend(rules)
    return data


def test_the_gateway_ruleset_keeps_8000_closed_and_443_open():
    closed = nft_input_exposure(json.dumps(GATEWAY), 8000)
    assert closed['closed'] and closed['policy_drop']
    assert closed['accepting_rules'] == []
    assert closed['blocked'] == {'ipv4': True, 'ipv6': True}
    opened = nft_input_exposure(GATEWAY, 443)
    assert not opened['closed']
    assert len(opened['accepting_rules']) == 2


@pytest.mark.parametrize('extra', [
    rule(match(payload('tcp', 'dport'), 8000), ACCEPT, handle=20),
    rule(match(payload('tcp', 'dport'), {'set': [80, {'range': [7000, 9000]}]}), ACCEPT, handle=20),
    rule(match(payload('th', 'dport'), {'range': [8000, 8001]}), ACCEPT, handle=20),
    rule(match(payload('tcp', 'dport'), 22, op='!='), ACCEPT, handle=20),
    rule(ANY4, ACCEPT, handle=20),                       # an address match alone opens every port
    rule(match({'meta': {'key': 'iifname'}}, 'eth0'), ACCEPT, handle=20),
    rule(match({'ct': {'key': 'state'}}, ['new', 'established'], op='in'), ACCEPT, handle=20),
    rule(match({'meta': {'key': 'l4proto'}}, {'set': ['tcp', 'udp']}), ACCEPT, handle=20),
], ids=['port', 'range-in-set', 'th-range', 'not-22', 'saddr-only', 'other-iface', 'ct-new', 'l4proto-tcp'])
def test_an_accept_that_covers_8000_is_found(extra):
    out = nft_input_exposure(with_rules(extra), 8000)
    assert not out['closed']
    assert len(out['accepting_rules']) == 1
    assert 'handle 20' in out['accepting_rules'][0]


@pytest.mark.parametrize('extra', [
    rule(match(payload('udp', 'dport'), 8000), ACCEPT, handle=20),
    rule(match({'meta': {'key': 'l4proto'}}, 'udp'), ACCEPT, handle=20),
    rule(match(payload('tcp', 'dport'), {'set': [{'range': [9000, 9100]}]}), ACCEPT, handle=20),
    rule(match({'meta': {'key': 'iifname'}}, {'set': ['lo']}), ACCEPT, handle=20),
    rule(match(payload('tcp', 'dport'), 8000), {'drop': None}, handle=20),
], ids=['udp', 'l4proto-udp', 'other-range', 'lo-set', 'drop'])
def test_rules_that_cannot_accept_8000_are_not_counted(extra):
    assert nft_input_exposure(with_rules(extra), 8000)['closed']


def test_a_jump_to_a_chain_that_accepts_is_followed():
    out = nft_input_exposure(with_rules(
        {'chain': {'family': 'inet', 'table': 'mcpsec_filter', 'name': 'extra', 'handle': 30}},
        rule(match(payload('tcp', 'dport'), 8000), ACCEPT, chain='extra', handle=31),
        rule({'jump': {'target': 'extra'}}, handle=32),
    ), 8000)
    assert not out['closed']
    assert 'extra handle 31' in out['accepting_rules'][0]


def test_policy_accept_means_open():
    data = copy.deepcopy(GATEWAY)
    data['nftables'][2]['chain']['policy'] = 'accept'
    out = nft_input_exposure(data, 8000)
    assert not out['closed'] and not out['policy_drop']


def test_an_ip_only_table_leaves_ipv6_open():
    data = copy.deepcopy(GATEWAY)
    for item in data['nftables']:
        for kind in ('table', 'chain', 'rule'):
            if kind in item:
                item[kind]['family'] = 'ip'
    out = nft_input_exposure(data, 8000)
    assert out['blocked'] == {'ipv4': True, 'ipv6': False}
    assert not out['closed']


def test_an_empty_ruleset_is_open():
    out = nft_input_exposure({'nftables': [{'metainfo': {}}]}, 8000)
    assert not out['closed'] and not out['policy_drop'] and out['input_chains'] == []


@pytest.mark.parametrize('value', ['not json', '[]', {'rules': []}])
def test_bad_input_is_named(value):
    with pytest.raises(AnsibleFilterError, match='nft_input_exposure: '):
        nft_input_exposure(value, 8000)


def test_bad_port_is_named():
    with pytest.raises(AnsibleFilterError, match='port'):
        nft_input_exposure(GATEWAY, 70000)


def test_a_real_gateway_ruleset_from_nft_1_1_3():
    """`nft -j list ruleset` on a host converged by playbooks/site.yml (Debian 13)."""
    path = os.path.join(os.path.dirname(__file__), 'fixtures', 'nft-gateway-trixie.json')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    assert nft_input_exposure(text, 8000)['closed']
    assert nft_input_exposure(text, 9113)['closed']
    for port in (22, 80, 443):
        out = nft_input_exposure(text, port)
        assert not out['closed'] and len(out['accepting_rules']) == 2, port


def test_a_site_table_with_policy_accept_cannot_reopen_the_port():
    """The host's own table (policy accept, a rule accepting 18777) beside the collection's: every
    base chain on the hook must accept, so 8000 stays closed (what verify.yml checks)."""
    data = with_rules(
        {'chain': {'family': 'inet', 'table': 'site', 'name': 'input', 'handle': 1,
                   'type': 'filter', 'hook': 'input', 'prio': 10, 'policy': 'accept'}},
        {'rule': {'family': 'inet', 'table': 'site', 'chain': 'input', 'handle': 2,
                  'expr': [match(payload('tcp', 'dport'), 18777), ACCEPT]}})
    out = nft_input_exposure(data, 8000)
    assert out['closed'] and not out['policy_drop']
    assert out['blocked'] == {'ipv4': True, 'ipv6': True}
