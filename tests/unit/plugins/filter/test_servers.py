# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mcp_servers: servers as data, the legacy single server unchanged, named errors."""

from __future__ import annotations

import shlex

import pytest

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy_check import PolicyError
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._servers import (
    expand_servers, server_errors,
)

LEGACY = {'source': 'npm', 'package': '@modelcontextprotocol/server-everything', 'version': '2026.8.31',
          'executable': 'mcp-server-everything', 'args': [], 'env': {'MARKER': 'x'}}
DEFAULTS = {'instances': 2, 'max_sessions': 16, 'session_memory_mb': 64, 'session_tasks': 12, 'base_port': 8000,
            'user': 'mcp', 'home': '/var/lib/mcpsec', 'env_file': '/etc/mcpsec/mcp-server.env',
            'install_dir': '/opt/mcpsec/mcp-server', 'unit': 'mcpsec-supergateway'}
SLACK = {'source': 'npm', 'package': '@modelcontextprotocol/server-slack', 'version': '2025.4.25',
         'executable': 'mcp-server-slack', 'env': {'SLACK_BOT_TOKEN': 'xoxb-secret-value'}}
TIME = {'source': 'pypi', 'package': 'mcp-server-time', 'version': '2025.9.25', 'executable': 'mcp-server-time',
        'instances': 1, 'max_sessions': 4}


def test_without_mcp_servers_the_legacy_variables_are_one_server_in_todays_layout():
    [server] = expand_servers(None, LEGACY, DEFAULTS)
    assert server['name'] == 'default' and server['path'] == '/mcp'
    assert (server['user'], server['env_file'], server['unit'], server['install_dir']) == (
        'mcp', '/etc/mcpsec/mcp-server.env', 'mcpsec-supergateway', '/opt/mcpsec/mcp-server')
    assert server['ports'] == [8000, 8001] and server['env'] == {'MARKER': 'x'}
    assert expand_servers({}, LEGACY, DEFAULTS) == [server]


def test_each_server_gets_a_sandbox_and_a_port_block_of_its_own():
    servers = expand_servers({'time': TIME, 'slack': SLACK, 'default': LEGACY}, {}, DEFAULTS)
    assert [s['name'] for s in servers] == ['default', 'slack', 'time']
    default, slack, time_ = servers
    assert default['path'] == '/mcp' and default['user'] == 'mcp' and default['ports'] == [8000, 8001]
    assert slack['path'] == '/slack/mcp' and slack['user'] == 'mcp-slack'
    assert slack['env_file'] == '/etc/mcpsec/servers/slack.env' and slack['unit'] == 'mcpsec-sg-slack'
    assert slack['slice'] == 'mcpsec-sg-slack.slice' and slack['ports'] == [8008, 8009]
    assert time_['ports'] == [8016] and time_['max_sessions'] == 4 and time_['source'] == 'pypi'
    assert len({s['user'] for s in servers}) == 3 and len({s['env_file'] for s in servers}) == 3


def test_an_explicit_port_is_kept_and_the_others_go_around_it():
    servers = expand_servers({'slack': dict(SLACK, port=8000), 'time': TIME}, {}, DEFAULTS)
    assert [s['ports'] for s in servers] == [[8000, 8001], [8008]]


def errors(servers, legacy=None):
    if isinstance(servers, dict) and 'default' not in servers and any(s.get('path') == '/mcp' for s in servers.values()):
        servers = dict(servers, default=LEGACY)
    return server_errors(servers, legacy or {}, DEFAULTS)


@pytest.mark.parametrize('servers, expected', [
    ({'Slack': SLACK}, "mcp_servers.Slack: server name 'Slack' is invalid; use 1-31 characters from [a-z0-9-]"),
    ({'health': SLACK}, "mcp_servers.health: server name 'health' is reserved; choose another name"),
    ({'slack': dict(SLACK, source='docker')}, "mcp_servers.slack.source: must be npm or pypi"),
    ({'slack': dict(SLACK, version='^1.2.0')}, "mcp_servers.slack.version: '^1.2.0' is not an exact version"),
    ({'slack': dict(SLACK, version='latest')}, "mcp_servers.slack.version: 'latest' is not an exact version"),
    ({'slack': dict(SLACK, executable='../bin/sh')}, "mcp_servers.slack.executable: '../bin/sh' is not a file name"),
    ({'slack': dict(SLACK, path='/health/x')}, "mcp_servers.slack.path: '/health/x' is under /health"),
    ({'slack': dict(SLACK, path='/a/../mcp')}, "mcp_servers.slack.path: '/a/../mcp' is not a plain absolute path"),
    ({'slack': dict(SLACK, instances=9)}, "mcp_servers.slack.instances: must be 1..8, got 9"),
    ({'slack': dict(SLACK, colour='red')}, "mcp_servers.slack.colour: unknown key"),
    ({'slack': dict(SLACK, env={'BAD-NAME': 'x'})}, 'mcp_servers.slack.env.BAD-NAME: is not an environment variable name'),
    ({'a': dict(SLACK, path='/x/mcp'), 'b': dict(TIME, path='/x/mcp')},
     "mcp_servers.b.path: path '/x/mcp' is also the path of server 'a'"),
    ({'a': dict(SLACK, port=8000), 'b': dict(TIME, port=8004)}, "mcp_servers.b.port: its ports 8004-8011 overlap"),
    ({'slack': dict(SLACK, package='Bad Name')}, "mcp_servers.slack.package: 'Bad Name' is not a npm package name"),
    ({'default': dict(LEGACY, path='/everything/mcp')},
     "mcp_servers.default.path: the server named default is always at /mcp, got '/everything/mcp'"),
    ({'default': dict(LEGACY, port=9000)}, 'mcp_servers.default.port: the default server listens on common_supergateway_port'),
    ({'default': LEGACY, 'slack': dict(SLACK, port=8004)},
     "mcp_servers.slack.port: its ports 8004-8011 overlap those of server 'default' (8000-8007)"),
    ({'default': LEGACY, 'slack': dict(SLACK, port=7996)},
     "mcp_servers.slack.port: its ports 7996-8003 overlap those of server 'default' (8000-8007)"),
    ({'slack': dict(SLACK, port=65530)}, 'mcp_servers.slack.port: must be 1024..65527, got 65530'),
    ({'slack': dict(SLACK, args='--flag')}, 'mcp_servers.slack.args: expected a list, got a string'),
    ({'slack': dict(SLACK, args=['--n', 3])}, 'mcp_servers.slack.args[1]: expected a string, got an integer'),
    ({'slack': dict(SLACK, env={'A': 'x\ny'})}, 'mcp_servers.slack.env.A: holds a line break or NUL'),
    ({'slack': dict(SLACK, max_sessions=0)}, 'mcp_servers.slack.max_sessions: must be 1..1024, got 0'),
    ({'slack': dict(SLACK, session_memory_mb='64')}, 'mcp_servers.slack.session_memory_mb: expected an integer'),
    ({'slack': dict(SLACK, path='/mcp')}, "mcp_servers.slack.path: path '/mcp' is also the path of server 'default'"),
    ({'www-data': SLACK}, "mcp_servers.www-data: server name 'www-data' is reserved"),
    ([SLACK], 'mcp_servers: expected a mapping of MCP servers, got a list'),
])
def test_bad_input_is_named_with_the_key_and_the_fix(servers, expected):
    found = errors(servers)
    assert any(line.startswith(expected) for line in found), found


def test_secret_values_never_appear_in_a_message():
    found = errors({'slack': dict(SLACK, env={'SLACK_BOT_TOKEN': ['xoxb-secret-value']}, version='^1')})
    assert found and not any('xoxb-secret-value' in line for line in found)


def test_an_invalid_set_raises_with_every_problem():
    with pytest.raises(PolicyError) as err:
        expand_servers({'Slack': SLACK, 'time': dict(TIME, version='>=1')}, {}, DEFAULTS)
    assert len(err.value.errors) == 2


def test_limits_capacity_command_and_upstream_per_server():
    defaults = dict(DEFAULTS, group='mcp', memory_max='2048M', tasks_max=400)
    servers = expand_servers({'default': LEGACY, 'time': dict(TIME, args=['--local-timezone', 'Europe/Paris x']),
                              'my-db': SLACK}, {}, defaults)
    default, db, time_ = servers
    # default: today's unit limits and capacity formula (roles/common)
    assert (default['group'], default['memory_max'], default['tasks_max']) == ('mcp', '2048M', 400)
    assert default['session_capacity'] == min(16, (400 - 128) // 12, (2048 - 512) // 64)
    assert default['command'] == '/opt/mcpsec/mcp-server/node_modules/.bin/mcp-server-everything'
    assert default['upstream'] == 'mcpsec_backend'
    # others: limits from their own budgets, their own group, quoted args, a pypi bin dir
    assert (time_['group'], time_['memory_max'], time_['tasks_max']) == ('mcp-time', '%dM' % (256 + 4 * 64), 64 + 4 * 12)
    assert time_['session_capacity'] == 4
    assert time_['command'] == "/opt/mcpsec/servers/time/bin/mcp-server-time --local-timezone 'Europe/Paris x'"
    assert (db['upstream'], db['unit'], db['user']) == ('mcpsec_backend_my-db', 'mcpsec-sg-my-db', 'mcp-my-db')


def test_an_unbounded_memory_max_bounds_nothing():
    [server] = expand_servers(None, LEGACY, dict(DEFAULTS, memory_max='infinity', tasks_max=10000))
    assert server['session_capacity'] == 16


def test_the_default_server_keeps_up_to_64_instances_and_others_follow_its_ports():
    servers = expand_servers({'default': LEGACY, 'time': TIME}, {}, dict(DEFAULTS, instances=12))
    assert servers[0]['ports'] == list(range(8000, 8012)) and servers[1]['ports'][0] >= 8012
    with pytest.raises(PolicyError, match=r'mcp_servers\.time\.instances: must be 1\.\.8'):
        expand_servers({'time': dict(TIME, instances=9)}, {}, DEFAULTS)
    # a server without its own count takes the host's, at most 8
    [_d, other] = expand_servers({'default': LEGACY, 'x': SLACK}, {}, dict(DEFAULTS, instances=12))
    assert other['instances'] == 8


def test_the_filter_takes_jinja_text_and_names_the_key():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mcpsec.gateway.plugins.filter.expand_servers import FilterModule

    expand = FilterModule().filters()['expand_servers']
    text = dict(DEFAULTS, base_port='8000', instances='2', max_sessions='16', tasks_max='400', memory_max='2048M')
    assert expand({}, LEGACY, text)[0]['ports'] == [8000, 8001]
    with pytest.raises(AnsibleFilterError) as err:
        expand({'Bad': SLACK}, LEGACY, text)
    assert 'mcp_servers.Bad' in str(err.value) and 'xoxb-secret-value' not in str(err.value)


def test_the_default_server_keeps_the_first_port_and_the_others_go_around_it():
    servers = expand_servers({'default': LEGACY, 'a': dict(SLACK, port=8016), 'b': TIME}, {}, DEFAULTS)
    assert [s['ports'] for s in servers] == [[8000, 8001], [8016, 8017], [8008]]
    # the default server's block is its instance count when that is more than 8; the next block follows it
    [default] = expand_servers(None, LEGACY, dict(DEFAULTS, instances=64))
    assert default['ports'] == list(range(8000, 8064))


def test_upstreams_never_collide_with_another_servers_instance_upstreams():
    servers = expand_servers({'x': SLACK, 'x-1': TIME}, {}, DEFAULTS)
    names = set()
    for server in servers:
        names.add(server['upstream'])
        names.update('%s_%d' % (server['upstream'], i) for i in range(server['instances']))
    assert len(names) == sum(1 + s['instances'] for s in servers)
    assert [s['upstream'] for s in servers] == ['mcpsec_backend_x', 'mcpsec_backend_x-1']


def test_the_command_is_shell_quoted_like_the_roles_quote_filter():
    args = ['--db', "it's; rm -rf /", '$HOME', '']
    [server] = expand_servers(None, dict(LEGACY, args=args), DEFAULTS)
    assert server['command'] == ("/opt/mcpsec/mcp-server/node_modules/.bin/mcp-server-everything "
                                 "--db 'it'\"'\"'s; rm -rf /' '$HOME' ''")
    assert shlex.split(server['command'])[1:] == args


@pytest.mark.parametrize('defaults, capacity', [
    ({'memory_max': '4352M', 'tasks_max': 576, 'instances': 1, 'max_sessions': 32,
      'session_memory_mb': 128, 'session_tasks': 16}, 32),                          # today's defaults
    ({'memory_max': '1G', 'tasks_max': 576, 'instances': 1, 'max_sessions': 32,
      'session_memory_mb': 128, 'session_tasks': 16}, 6),                           # (1024 - 256) // 128
    ({'memory_max': '786432k', 'tasks_max': 576, 'instances': 1, 'max_sessions': 32,
      'session_memory_mb': 128, 'session_tasks': 16}, 4),                           # 768 MiB, any case
    ({'memory_max': '80%', 'tasks_max': 200, 'instances': 1, 'max_sessions': 32,
      'session_memory_mb': 128, 'session_tasks': 16}, 8),                           # % bounds nothing; (200 - 64) // 16
    ({'memory_max': '2G', 'tasks_max': 10000, 'instances': 2, 'max_sessions': 32,
      'session_memory_mb': 128, 'session_tasks': 16}, 12),                          # (2048 - 512) // 128
])
def test_the_default_servers_capacity_is_todays_formula(defaults, capacity):
    """The cases of tests/unit/test_session_capacity.py (roles/common's formula), through the filter."""
    [server] = expand_servers(None, LEGACY, dict(DEFAULTS, **defaults))
    assert server['session_capacity'] == capacity


BUDGETS = {'memory_max': '4352M', 'tasks_max': 576, 'instances': 1, 'max_sessions': 32,
           'session_memory_mb': 128, 'session_tasks': 16}


@pytest.mark.parametrize('admitted, expected', [(None, 32), (8, 8), (32, 32)])
def test_the_proxy_admits_the_capacity_or_less(admitted, expected):
    """max_sessions_total: what njs admits; proxy_max_sessions_total (defaults' max_sessions_total) or the capacity."""
    [server] = expand_servers(None, LEGACY, dict(DEFAULTS, max_sessions_total=admitted, **BUDGETS))
    assert (server['session_capacity'], server['max_sessions_total']) == (32, expected)


@pytest.mark.parametrize('budgets, message', [
    ({'tasks_max': 64}, 'common_supergateway_tasks_max: leaves no room for a session: the slice '
                        'mcpsec-supergateway.slice holds 0 sessions over its 1 instances (common_supergateway_'
                        'max_sessions 32, TasksMax 64 = 64 (64 per instance) + 16 per session, MemoryMax 4352M = 256M '
                        '(256M per instance) + 128M per session); raise it, or lower common_supergateway_instances'),
    ({'memory_max': '300M'}, 'common_supergateway_memory_max: leaves no room for a session'),
    ({'max_sessions_total': 33}, 'proxy_max_sessions_total: is 33, more than the slice holds: the slice '
                                 'mcpsec-supergateway.slice holds 32 sessions'),
    ({'max_sessions_total': 0}, 'proxy_max_sessions_total: is 0, below 1'),
    ({'max_sessions_total': 'many'}, 'proxy_max_sessions_total: expected an integer, got a string'),
    ({'memory_max': '4352 MB'}, "common_supergateway_memory_max: size '4352 MB' is not valid; write bytes, or N "
                                "with K, M, G or T (1024-based), e.g. '2G' or '1280M', or 'infinity'"),
])
def test_what_the_slice_cannot_hold_is_named(budgets, message):
    """Was the proxy role's assert (configure.yml): now the filter's error, before anything changes."""
    with pytest.raises(PolicyError) as info:
        expand_servers(None, LEGACY, dict(DEFAULTS, **dict(BUDGETS, **budgets)))
    assert message in str(info.value)


def test_other_servers_ignore_the_default_servers_cap():
    """proxy_max_sessions_total caps the default server only; each other server admits its capacity."""
    time_ = {'package': 'mcp-server-time', 'version': '1.0.0', 'executable': 'mcp-server-time', 'max_sessions': 4}
    servers = expand_servers({'default': dict(LEGACY), 'time': time_}, LEGACY, dict(DEFAULTS, max_sessions_total=8, **BUDGETS))
    assert [(s['name'], s['max_sessions_total']) for s in servers] == [('default', 8), ('time', 4)]


def test_a_default_tasks_max_that_is_no_number_is_named():
    found = server_errors(None, LEGACY, dict(DEFAULTS, memory_max='1G', tasks_max='infinity'))
    assert found == ["common_supergateway_tasks_max: expected an integer, got a string; "
                     "write the TasksMax of the default server's slice as a whole number"]


def test_a_hyphenated_server_gets_a_slice_of_its_own_not_one_inside_another():
    # systemd nests "mcpsec-sg-a-b.slice" inside "mcpsec-sg-a.slice": a's limits would bound a-b
    servers = expand_servers({'a': SLACK, 'a-b': TIME, 'default': LEGACY}, {}, DEFAULTS)
    slices = dict((s['name'], s['slice']) for s in servers)
    assert slices == {'default': 'mcpsec-supergateway.slice', 'a': 'mcpsec-sg-a.slice', 'a-b': 'mcpsec-sg-a_b.slice'}
    assert [s['unit'] for s in servers] == ['mcpsec-supergateway', 'mcpsec-sg-a', 'mcpsec-sg-a-b']
    for outer in slices.values():
        for inner in slices.values():
            assert inner == outer or not inner.startswith(outer[:-len('.slice')] + '-')
