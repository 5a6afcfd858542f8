# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The proxy's session capacity (roles/proxy/vars/main.yml __proxy_session_capacity) follows
the supergateway slice's limits: the smallest of supergateway_max_sessions and what TasksMax
and MemoryMax leave for sessions after each instance's base share (64 tasks, 256 MiB)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def capacity(**overrides) -> int:
    ansible = shutil.which('ansible') or str(ROOT / '.venv' / 'bin' / 'ansible')
    cmd = [ansible, 'localhost', '-m', 'ansible.builtin.debug', '-a', 'var=__proxy_session_capacity',
           '-e', '@' + str(ROOT / 'roles' / 'common' / 'defaults' / 'main.yml'),
           '-e', '@' + str(ROOT / 'roles' / 'supergateway' / 'defaults' / 'main.yml'),
           '-e', '@' + str(ROOT / 'roles' / 'proxy' / 'vars' / 'main.yml')]
    if overrides:
        cmd += ['-e', json.dumps(overrides)]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='json',
               ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd='/tmp', timeout=120, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    doc = json.loads(out.stdout[out.stdout.index('{'):])
    result = doc['plays'][0]['tasks'][0]['hosts']['localhost']
    return int(result['__proxy_session_capacity'])


@pytest.mark.parametrize('overrides, expected', [
    ({'common_supergateway_instances': 1}, 32),                 # the defaults: 32 sessions, 576 tasks, 4352M
    ({'supergateway_max_sessions': 10}, 10),                    # limits derived from it follow
    ({'supergateway_tasks_max': 200}, 8),                       # (200 - 64) // 16
    ({'supergateway_memory_max': '1G'}, 6),                     # (1024 - 256) // 128
    ({'supergateway_memory_max': '786432K'}, 4),                # 768 MiB
    ({'supergateway_memory_max': 'infinity'}, 32),              # no byte count: no memory bound
    ({'supergateway_tasks_max': 64}, 0),                        # nothing left for sessions: the role refuses it
    ({'supergateway_session_tasks': 11, 'supergateway_tasks_max': 576}, 32),
    # Several instances: the derived limits grow by a base share each, the capacity stays.
    ({'common_supergateway_instances': 4}, 32),                 # 768 tasks, 5120M
    ({'common_supergateway_instances': 4, 'supergateway_tasks_max': 576}, 20),    # (576 - 256) // 16
    ({'common_supergateway_instances': 2, 'supergateway_memory_max': '2G'}, 12),  # (2048 - 512) // 128
])
def test_capacity_follows_the_unit(overrides, expected):
    assert capacity(**overrides) == expected
