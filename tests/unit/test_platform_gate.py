# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The platform gate: site.yml's first task refuses an unsupported platform, naming it.

The gate (roles/common/tasks/platform.yml) runs alone against this machine with `-c local`:
it only gathers facts and asserts, nothing is converged. site.yml itself never runs here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATE_PLAY = [{
    'name': 'Run only the platform gate',
    'hosts': 'localhost',
    'gather_facts': True,
    'tasks': [{'name': 'Run the gate', 'ansible.builtin.include_role': {'name': 'mcpsec.gateway.common',
                                                                        'tasks_from': 'platform'}}],
}]


def run_gate(tmp_path, extra_vars=None):
    play = tmp_path / 'gate.yml'
    play.write_text(yaml.safe_dump(GATE_PLAY))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'),
               ANSIBLE_NOCOLOR='1')
    cmd = ['ansible-playbook', '-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=' + sys.executable, str(play)]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def local_platform():
    with open('/etc/os-release') as f:
        rel = dict(line.rstrip('\n').split('=', 1) for line in f if '=' in line)
    return rel.get('NAME', '').strip('"').split()[0], rel.get('VERSION_ID', '').strip('"').split('.')[0]


def test_site_yml_runs_the_gate_first():
    with open(os.path.join(ROOT, 'playbooks', 'site.yml')) as f:
        play = yaml.safe_load(f)[0]
    first = play['pre_tasks'][0]
    assert first['ansible.builtin.include_role'] == {'name': 'mcpsec.gateway.common', 'tasks_from': 'platform',
                                                     'apply': {'tags': ['always']}}


def test_supported_platforms_match_the_roles_meta():
    with open(os.path.join(ROOT, 'roles', 'common', 'vars', 'main.yml')) as f:
        supported = yaml.safe_load(f)['__common_supported_platforms']
    declared = [p['meta'] for p in supported]
    roles = os.path.join(ROOT, 'roles')
    for role in sorted(os.listdir(roles)):
        with open(os.path.join(roles, role, 'meta', 'main.yml')) as f:
            assert yaml.safe_load(f)['galaxy_info']['platforms'] == declared, role


@pytest.mark.skipif(local_platform() == ('Debian', '13'), reason='this machine is a supported platform')
def test_this_machine_is_refused_with_the_platform_named(tmp_path):
    distribution, major = local_platform()
    run = run_gate(tmp_path)
    out = run.stdout + run.stderr
    print(f'\n[verify] platform gate on this machine ({distribution} {major}): rc {run.returncode}')
    assert run.returncode != 0, out[-2000:]
    assert f'Unsupported platform: this host runs {distribution} {major}' in out, out[-2000:]
    assert 'mcpsec.gateway supports Debian 13 only' in out, out[-2000:]


@pytest.mark.parametrize('facts, ok', [
    ({'distribution': 'Debian', 'version': '13.2', 'major': '13'}, True),
    ({'distribution': 'Debian', 'version': '12.8', 'major': '12'}, False),
    ({'distribution': 'Ubuntu', 'version': '24.04', 'major': '24'}, False),
])
def test_gate_with_facts_overridden(tmp_path, facts, ok):
    run = run_gate(tmp_path, {'__common_platform_distribution': facts['distribution'],
                              '__common_platform_version': facts['version'],
                              '__common_platform_major': facts['major']})
    out = run.stdout + run.stderr
    print(f"\n[verify] platform gate as {facts['distribution']} {facts['version']}: rc {run.returncode}")
    assert (run.returncode == 0) is ok, out[-2000:]
    if not ok:
        assert f"this host runs {facts['distribution']} {facts['major']} ({facts['distribution']} {facts['version']})" in out
