# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every tag docs/roles.md documents selects tasks of playbooks/site.yml.

A tag on include_tasks selects only the include itself (ansible-core 2.19), so a tag can
look right in the code and select nothing: this lists the tasks each documented tag selects
with `ansible-playbook --list-tasks --tags <tag>` and fails on an empty list.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASK_LINE = re.compile(r'^\s{6}(\S.*?)\tTAGS: \[(.*)\]$')


INCLUDES = ('include_tasks', 'include_role', 'ansible.builtin.include_tasks', 'ansible.builtin.include_role')


def _include_names(tasks):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if any(key in task for key in INCLUDES):
            yield task.get('name', '')
        for key in ('block', 'rescue', 'always'):
            yield from _include_names(task.get(key))


def dynamic_includes():
    """Names of the include_tasks/include_role tasks: --list-tasks shows them, not what they run."""
    names = set()
    paths = [os.path.join(ROOT, 'playbooks', 'site.yml'), os.path.join(ROOT, 'playbooks', 'lb.yml')]
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, 'roles')):
        paths += [os.path.join(dirpath, n) for n in files if os.path.basename(dirpath) == 'tasks' and n.endswith('.yml')]
    for path in paths:
        with open(path) as f:
            data = yaml.safe_load(f)
        for item in data or []:
            names.update(_include_names(item.get('pre_tasks', []) + item.get('tasks', []) + item.get('post_tasks', [])
                                        if 'hosts' in item else [item]))
    return names


def documented_tags():
    with open(os.path.join(ROOT, 'docs', 'roles.md')) as f:
        text = f.read()
    section = text.split('\n## Tags\n', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'^\| `([a-z_]+)` \|', section, re.M)


def playbook_of(tag):
    """The load balancer's tags select tasks of playbooks/lb.yml (its own play), every other one site.yml's."""
    return 'lb.yml' if tag == 'lb' or tag.startswith('lb_') else 'site.yml'


def selected_tasks(tag):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'))
    run = subprocess.run(['ansible-playbook', '-i', os.path.join(ROOT, 'inventories', 'demo'),
                          os.path.join(ROOT, 'playbooks', playbook_of(tag)), '--list-tasks', '--tags', tag,
                          '-e', 'mcpsec_lb_target=all'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    includes = dynamic_includes()
    tasks = []
    for line in run.stdout.splitlines():
        match = TASK_LINE.match(line)
        tags = [t.strip() for t in match.group(2).split(',')] if match else []
        # Tasks tagged always (argument checks, the pre_tasks) run with any tag: they prove nothing.
        if match and 'always' not in tags and match.group(1).split(' : ')[-1] not in includes:
            tasks.append((match.group(1), tags))
    return tasks


def test_the_readme_documents_every_tag_in_the_roles():
    used = set()
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, 'roles')):
        for name in files:
            if name.endswith('.yml') and os.path.basename(dirpath) == 'tasks':
                with open(os.path.join(dirpath, name)) as f:
                    for tags in re.findall(r'^\s+tags: \[(.*)\]$', f.read(), re.M):
                        used.update(t.strip() for t in tags.split(','))
    used.discard('always')
    assert used - set(documented_tags()) == set()


@pytest.mark.parametrize('tag', documented_tags())
def test_documented_tag_selects_its_tasks(tag):
    tasks = selected_tasks(tag)
    assert tasks, '--tags %s selects no task of playbooks/%s' % (tag, playbook_of(tag))
    # Every selected task carries the tag itself (not only an include that does).
    assert all(tag in tags for _name, tags in tasks), tasks
    print('%s: %d tasks' % (tag, len(tasks)))
