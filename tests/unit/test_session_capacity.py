# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's session capacity follows the supergateway slice's limits: the smallest of
common_supergateway_max_sessions and what TasksMax and MemoryMax leave for sessions after each
instance's base share (64 tasks, 256 MiB). The expand_servers filter computes it once
(session_capacity) with what the proxy admits (max_sessions_total, proxy_max_sessions_total at
most the capacity); these tests resolve it through the roles' own files (the common role alone, a
proxy alone too), so the roles hand the filter what the unit tests of the filter assume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(var: str, *files: str, **overrides) -> dict:
    """The debug task's result for `var`, resolved from the given role files (and extra vars) alone."""
    ansible = shutil.which('ansible') or str(ROOT / '.venv' / 'bin' / 'ansible')
    cmd = [ansible, 'localhost', '-m', 'ansible.builtin.debug', '-a', 'var=' + var]
    for name in files:
        cmd += ['-e', '@' + str(ROOT / 'roles' / name)]
    if overrides:
        cmd += ['-e', json.dumps(overrides)]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='json',
               ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd='/tmp', timeout=120, check=False)
    doc = json.loads(out.stdout[out.stdout.index('{'):])
    return doc['plays'][0]['tasks'][0]['hosts']['localhost']


def resolve(var: str, *files: str, **overrides) -> str:
    """`var` as Ansible resolves it from the given role files (and extra vars) alone."""
    result = run(var, *files, **overrides)
    assert not result.get('failed'), result
    return str(result[var])


COMMON = ('common/defaults/main.yml', 'common/vars/main.yml')
PROXY = COMMON + ('proxy/defaults/main.yml', 'proxy/vars/main.yml')


def capacity(**overrides) -> int:
    return int(resolve('__mcpsec_servers[0].session_capacity', *COMMON, **overrides))


@pytest.mark.parametrize('overrides, expected', [
    ({'common_supergateway_instances': 1}, 32),                        # the defaults: 32 sessions, 576 tasks, 4352M
    ({'common_supergateway_instances': 1, 'common_supergateway_max_sessions': 10}, 10),   # limits derived from it follow
    ({'common_supergateway_instances': 1, 'common_supergateway_tasks_max': 200}, 8),      # (200 - 64) // 16
    ({'common_supergateway_instances': 1, 'common_supergateway_memory_max': '1G'}, 6),    # (1024 - 256) // 128
    ({'common_supergateway_instances': 1, 'common_supergateway_memory_max': '786432K'}, 4),   # 768 MiB
    ({'common_supergateway_instances': 1, 'common_supergateway_memory_max': 'infinity'}, 32),  # no byte count: no memory bound
    ({'common_supergateway_instances': 1, 'common_supergateway_session_tasks': 11, 'common_supergateway_tasks_max': 576}, 32),
    # Several instances: the derived limits grow by a base share each, the capacity stays.
    ({'common_supergateway_instances': 4}, 32),                        # 768 tasks, 5120M
    ({'common_supergateway_instances': 4, 'common_supergateway_tasks_max': 576}, 20),     # (576 - 256) // 16
    ({'common_supergateway_instances': 2, 'common_supergateway_memory_max': '2G'}, 12),   # (2048 - 512) // 128
])
def test_capacity_follows_the_unit(overrides, expected):
    assert capacity(**overrides) == expected


@pytest.mark.parametrize('var, overrides, expected', [
    ('proxy_session_idle_timeout', {}, '1860s'),
    ('proxy_session_idle_timeout', {'common_supergateway_session_timeout_ms': 600000}, '660s'),
    ('__mcpsec_servers[0].max_sessions_total', {}, '32'),
    ('__mcpsec_servers[0].max_sessions_total', {'common_supergateway_max_sessions': 12}, '12'),
    ('__mcpsec_servers[0].max_sessions_total', {'proxy_max_sessions_total': 8}, '8'),
])
def test_proxy_alone_derives_from_common_facts(var, overrides, expected):
    """The proxy role with only its dependency common (no supergateway role in the play)."""
    assert resolve(var, *PROXY, **overrides) == expected


@pytest.mark.parametrize('overrides, message', [
    # nothing left for a session: named at the limit that leaves none (was an assert in the proxy role)
    ({'common_supergateway_instances': 1, 'common_supergateway_tasks_max': 64},
     'common_supergateway_tasks_max: leaves no room for a session: the slice mcpsec-supergateway.slice holds 0 '
     'sessions over its 1 instances'),
    ({'common_supergateway_instances': 1, 'common_supergateway_memory_max': '256M'},
     'common_supergateway_memory_max: leaves no room for a session'),
    # the proxy never admits more than the slice holds
    ({'common_supergateway_instances': 1, 'proxy_max_sessions_total': 40},
     'proxy_max_sessions_total: is 40, more than the slice holds: the slice mcpsec-supergateway.slice holds 32 '
     'sessions over its 1 instances (common_supergateway_max_sessions 32, TasksMax 576 = 64 (64 per instance) + 16 '
     'per session, MemoryMax 4352M = 256M (256M per instance) + 128M per session); set it to 1..32, or leave it '
     'unset for 32'),
    ({'common_supergateway_instances': 1, 'proxy_max_sessions_total': 0}, 'proxy_max_sessions_total: is 0, below 1'),
    ({'common_supergateway_instances': 1, 'common_supergateway_memory_max': 'lots'},
     "common_supergateway_memory_max: size 'lots' is not valid; write bytes, or N with K, M, G or T"),
])
def test_what_the_slice_cannot_hold_is_a_named_error(overrides, message):
    result = run('__mcpsec_servers[0].max_sessions_total', *PROXY, **overrides)
    assert result.get('failed') and message in result['msg'], result.get('msg')
