# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tool pinning in the policy (issue 22): tool_pins, tool_pinning and the pins file
(mcpsec_tool_pins, expand_policy's tool_pins=) - every error path and the njs_policy output."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy import (
    PolicyError, expand_policy, policy_errors,
)

SERVERS = [
    {'name': 'default', 'path': '/mcp', 'upstream': 'mcpsec_backend', 'instances': 1, 'session_capacity': 8},
    {'name': 'pinned', 'path': '/pinned/mcp', 'upstream': 'mcpsec_backend_pinned', 'instances': 1,
     'session_capacity': 8},
]
D1 = 'sha256:' + 'a' * 64
D2 = 'sha256:' + '0123456789abcdef' * 4
POLICY = {
    'public_url': 'https://mcp.example.com',
    'auth': {'mode': 'bearer'},
    'users': {'alice': {'token': 'q7ZpL2xW9rT4vB8nK3mC6yH1dF5gJ0sA', 'roles': ['admin']}},
    'roles': {'admin': {'tools': ['*'], 'servers': {'pinned': {'tools': ['*']}}}},
}


def policy(**changes):
    out = copy.deepcopy(POLICY)
    out.update(changes)
    return out


def pinning(out, server='pinned'):
    return out['njs_policy']['servers'][server]['tool_pinning']


def test_no_pins_no_mode_means_no_pinning():
    out = expand_policy(POLICY, SERVERS)
    assert pinning(out) is None and pinning(out, 'default') is None


def test_pins_default_to_enforce_sorted():
    out = expand_policy(policy(tool_pins={'pinned': {'zeta': D1, 'alpha.b-c_d': D2}}), SERVERS)
    assert pinning(out) == {'mode': 'enforce', 'pins': {'alpha.b-c_d': D2, 'zeta': D1}}
    assert list(pinning(out)['pins']) == ['alpha.b-c_d', 'zeta']
    assert pinning(out, 'default') is None


def test_report_mode_with_pins_and_without():
    out = expand_policy(policy(tool_pins={'pinned': {'echo': D1}}, tool_pinning={'pinned': 'report'}), SERVERS)
    assert pinning(out) == {'mode': 'report', 'pins': {'echo': D1}}
    out = expand_policy(policy(tool_pinning={'pinned': 'report', 'default': 'report'}), SERVERS)
    assert pinning(out) == {'mode': 'report', 'pins': {}} == pinning(out, 'default')


def test_pins_file_is_merged_without_editing_the_policy():
    out = expand_policy(POLICY, SERVERS, tool_pins={'pinned': {'echo': D1}})
    assert pinning(out) == {'mode': 'enforce', 'pins': {'echo': D1}}
    out = expand_policy(policy(tool_pins={'default': {'x': D2}}), SERVERS, tool_pins={'pinned': {'echo': D1}})
    assert pinning(out) == {'mode': 'enforce', 'pins': {'echo': D1}}
    assert pinning(out, 'default') == {'mode': 'enforce', 'pins': {'x': D2}}
    out = expand_policy(policy(tool_pinning={'pinned': 'report'}), SERVERS, tool_pins={'pinned': {'echo': D1}})
    assert pinning(out)['mode'] == 'report'


def test_default_server_without_servers_argument():
    out = expand_policy(policy(roles={'admin': {'tools': ['*']}}, tool_pins={'default': {'echo': D1}}))
    assert out['njs_policy']['servers']['default']['tool_pinning'] == {'mode': 'enforce', 'pins': {'echo': D1}}


@pytest.mark.parametrize('changes,file_pins,path,words', [
    ({'tool_pins': {'nope': {'echo': D1}}}, None, 'mcpsec_policy.tool_pins.nope:', 'names no server'),
    ({}, {'nope': {'echo': D1}}, 'mcpsec_tool_pins.nope:', 'names no server'),
    ({'tool_pinning': {'nope': 'report'}}, None, 'mcpsec_policy.tool_pinning.nope:', 'names no server'),
    ({'tool_pins': ['echo']}, None, 'mcpsec_policy.tool_pins:', 'expected a mapping of server name'),
    ({}, 'echo', 'mcpsec_tool_pins:', 'expected a mapping of server name'),
    ({'tool_pins': {'pinned': [D1]}}, None, 'mcpsec_policy.tool_pins.pinned:', 'mapping of tool name to digest'),
    ({'tool_pins': {'pinned': {'bad tool': D1}}}, None, 'mcpsec_policy.tool_pins.pinned["bad tool"]:',
     'is invalid'),
    ({'tool_pins': {'pinned': {'t' * 129: D1}}}, None, 'mcpsec_policy.tool_pins.pinned.ttt', 'is invalid'),
    ({'tool_pins': {'pinned': {'\u0435cho': D1}}}, None, 'mcpsec_policy.tool_pins.pinned[', 'is not ASCII'),
    ({'tool_pins': {'pinned': {'constructor': D1}}}, None, 'mcpsec_policy.tool_pins.pinned.constructor:',
     'reserved JavaScript'),
    ({'tool_pins': {'pinned': {'echo': 'sha256:' + 'A' * 64}}}, None, 'mcpsec_policy.tool_pins.pinned.echo:',
     'is malformed'),
    ({'tool_pins': {'pinned': {'echo': 'sha256:abc'}}}, None, 'mcpsec_policy.tool_pins.pinned.echo:', 'is malformed'),
    ({'tool_pins': {'pinned': {'echo': 'sha512:' + 'a' * 64}}}, None, 'mcpsec_policy.tool_pins.pinned.echo:',
     'is malformed'),
    ({'tool_pins': {'pinned': {'echo': None}}}, None, 'mcpsec_policy.tool_pins.pinned.echo:', 'digest null'),
    ({}, {'pinned': {'echo': 'a' * 64}}, 'mcpsec_tool_pins.pinned.echo:', 'is malformed'),
    ({'tool_pinning': {'pinned': 'strict'}}, None, 'mcpsec_policy.tool_pinning.pinned:', "unknown mode 'strict'"),
    ({'tool_pinning': {'pinned': True}}, None, 'mcpsec_policy.tool_pinning.pinned:', 'unknown mode a boolean'),
    ({'tool_pinning': 'enforce'}, None, 'mcpsec_policy.tool_pinning:', 'expected a mapping of server name'),
    ({'tool_pinning': {'pinned': 'enforce'}}, None, 'mcpsec_policy.tool_pinning.pinned:', 'enforce mode with no'),
    ({'tool_pins': {'pinned': {}}}, None, 'mcpsec_policy.tool_pins.pinned:', 'enforce mode with no'),
    ({}, {'pinned': {}}, 'mcpsec_tool_pins.pinned:', 'enforce mode with no'),
    ({'tool_pins': {'pinned': {'echo': D1}}}, {'pinned': {'echo': D1}}, 'mcpsec_tool_pins.pinned:',
     'mcpsec_policy.tool_pins.pinned pins too'),
    ({'tool_pins': {1: {'echo': D1}}}, None, 'mcpsec_policy.tool_pins.1:', 'server name must be a string'),
    ({'tool_pins': {'pinned': {True: D1}}}, None, 'mcpsec_policy.tool_pins.pinned.True:', 'tool name must be a string'),
    ({'tool_pin': {}}, None, 'mcpsec_policy.tool_pin:', "did you mean 'tool_pins'"),
])
def test_errors_name_the_key_and_the_fix(changes, file_pins, path, words):
    errors = policy_errors(policy(**changes), SERVERS, file_pins)
    assert any(line.startswith(path) and words in line for line in errors), errors
    with pytest.raises(PolicyError):
        expand_policy(policy(**changes), SERVERS, file_pins)


def test_error_fixes_point_at_pin_tools_or_report():
    errors = policy_errors(policy(tool_pinning={'pinned': 'enforce'}), SERVERS)
    assert errors == ['mcpsec_policy.tool_pinning.pinned: enforce mode with no pinned tool would refuse every tool '
                      'of server pinned; run playbooks/pin_tools.yml (it writes the pins file, '
                      'docs/tool-pinning.md), or set mcpsec_policy.tool_pinning.pinned: report to see what it lists']
    errors = policy_errors(policy(tool_pins={'pinned': {'echo': 'sha256:ABC'}}), SERVERS)
    assert errors == ["mcpsec_policy.tool_pins.pinned.echo: digest 'sha256:ABC' is malformed; write \"sha256:\" "
                      'and 64 lowercase hex digits, as pin_tools.yml prints them']


def test_every_problem_at_once():
    errors = policy_errors(policy(tool_pins={'nope': {}, 'pinned': {'echo': 'x', 'a b': D1}},
                                  tool_pinning={'default': 'off'}), SERVERS)
    assert len(errors) == 4, errors


def test_the_filter_takes_the_pins_file():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mcpsec.gateway.plugins.filter.expand_policy import expand_policy as flt
    from ansible_collections.mcpsec.gateway.plugins.filter.policy_errors import FilterModule
    out = flt(POLICY, servers=SERVERS, tool_pins={'pinned': {'echo': D1}})
    assert out['njs_policy']['servers']['pinned']['tool_pinning']['pins'] == {'echo': D1}
    with pytest.raises(AnsibleFilterError, match='mcpsec_tool_pins.nope'):
        flt(POLICY, servers=SERVERS, tool_pins={'nope': {'echo': D1}})
    check = FilterModule().filters()['policy_errors']
    assert check(POLICY, servers=SERVERS, tool_pins={'pinned': {'echo': D1}}) == []
