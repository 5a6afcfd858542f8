# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The expand_servers filter as Jinja calls it: numbers that arrive as text (ansible-core before
2.19 renders "{{ n }}" as a string) are whole numbers; anything else is named, never guessed."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.expand_servers import FilterModule

EXPAND = FilterModule().filters()['expand_servers']
LEGACY = {'source': 'npm', 'package': '@modelcontextprotocol/server-everything', 'version': '2026.8.31',
          'executable': 'mcp-server-everything', 'args': [], 'env': {}}
DEFAULTS = {'instances': '2', 'max_sessions': '16', 'session_memory_mb': '64', 'session_tasks': '12',
            'base_port': '8000', 'user': 'mcp', 'group': 'mcp', 'home': '/var/lib/mcp',
            'env_file': '/etc/mcpsec/mcp-server.env', 'install_dir': '/opt/mcpsec/mcp-server',
            'unit': 'mcpsec-supergateway', 'memory_max': '1536M', 'tasks_max': '320'}
TIME = {'source': 'pypi', 'package': 'mcp-server-time', 'version': '2025.9.25', 'executable': 'mcp-server-time',
        'env': {'TOKEN': 'secret-value-91c2'}}


def test_text_numbers_of_a_server_are_whole_numbers():
    servers = EXPAND({'default': LEGACY, 'time': dict(TIME, instances='1', max_sessions=' 4 ', session_memory_mb='64',
                                                      session_tasks='8', port='9000')}, {}, DEFAULTS)
    default, time_ = servers
    assert (default['instances'], default['tasks_max'], default['ports']) == (2, 320, [8000, 8001])
    assert (time_['instances'], time_['max_sessions'], time_['ports']) == (1, 4, [9000])
    assert (time_['tasks_max'], time_['memory_max'], time_['session_capacity']) == (64 + 4 * 8, '512M', 4)


@pytest.mark.parametrize('value, problem', [
    ('2.5', 'mcp_servers.time.instances: expected an integer, got a string'),
    ('-1', 'mcp_servers.time.instances: expected an integer, got a string'),
    ('\u00b2', 'mcp_servers.time.instances: expected an integer, got a string'),   # a digit to isdigit(), not to int()
    ('0', 'mcp_servers.time.instances: must be 1..8, got 0'),
])
def test_other_text_is_named_at_its_key(value, problem):
    with pytest.raises(AnsibleFilterError) as err:
        EXPAND({'time': dict(TIME, instances=value)}, LEGACY, DEFAULTS)
    assert problem in str(err.value) and 'secret-value-91c2' not in str(err.value)
