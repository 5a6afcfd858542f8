# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The AWX surveys are valid survey specs and ask only for arguments the code declares.

Every survey variable must exist in a role's ``meta/argument_specs.yml``: the main entry points
for site.yml, for an operation the entry point its playbook includes (``include_role`` with
``tasks_from``), with a compatible type, choices that the spec allows and the spec's default.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SURVEYS = os.path.join(REPO, 'awx', 'surveys')
SURVEY_TYPES = {'text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect'}
# Survey type -> argument spec types it can feed.
COMPATIBLE = {
    'text': {'str', 'path', 'raw'},
    'textarea': {'str', 'raw'},
    'password': {'str', 'raw'},
    'integer': {'int', 'float', 'raw'},
    'float': {'float', 'raw'},
    'multiplechoice': {'str', 'raw'},
    'multiselect': {'list'},
}


def _load_setup():
    with open(os.path.join(REPO, 'playbooks', 'awx_setup.yml'), encoding='utf-8') as f:
        return yaml.safe_load(f)[0]


def _role_specs():
    specs = {}
    roles = os.path.join(REPO, 'roles')
    for role in sorted(os.listdir(roles)):
        path = os.path.join(roles, role, 'meta', 'argument_specs.yml')
        if os.path.exists(path):
            with open(path, encoding='utf-8') as f:
                for name, opt in yaml.safe_load(f)['argument_specs']['main']['options'].items():
                    specs[name] = dict(opt, _source='roles/%s' % role)
    return specs


def _entry_points(playbook):
    """(role, entry point) of every include_role with tasks_from in the playbook's tasks."""
    with open(os.path.join(REPO, playbook), encoding='utf-8') as f:
        plays = yaml.safe_load(f)
    for play in plays:
        for task in play.get('tasks') or []:
            include = task.get('ansible.builtin.include_role') or {}
            if include.get('tasks_from'):
                yield include['name'].split('.')[-1], include['tasks_from']


def _playbook_specs(playbook):
    """The arguments a playbook takes: the options of the role entry points it includes."""
    specs = {}
    for role, entry in _entry_points(playbook):
        with open(os.path.join(REPO, 'roles', role, 'meta', 'argument_specs.yml'), encoding='utf-8') as f:
            options = yaml.safe_load(f)['argument_specs'][entry].get('options') or {}
        for name, opt in options.items():
            specs[name] = dict(opt, _source='roles/%s %s' % (role, entry))
    return specs


def _specs_for(template):
    specs = _role_specs() if template['playbook'] == 'playbooks/site.yml' else {}
    specs.update(_playbook_specs(template['playbook']))
    return specs


TEMPLATES = _load_setup()['vars']['awx_job_templates']


def _survey(name):
    with open(os.path.join(SURVEYS, name + '.json'), encoding='utf-8') as f:
        return json.load(f)


def _choices(item):
    choices = item['choices']
    return choices.split('\n') if isinstance(choices, str) else list(choices)


def test_every_survey_file_is_used_and_every_template_has_one():
    files = {f[:-5] for f in os.listdir(SURVEYS) if f.endswith('.json')}
    used = {t['survey'] for t in TEMPLATES}
    assert files == used


def test_the_issue_s_operations_have_job_templates():
    playbooks = {(t['playbook'], t.get('job_tags')) for t in TEMPLATES}
    assert ('playbooks/site.yml', None) in playbooks
    assert ('playbooks/verify.yml', None) in playbooks
    assert ('playbooks/rotate.yml', None) in playbooks
    assert ('playbooks/site.yml', 'tls') in playbooks
    for t in TEMPLATES:
        assert os.path.exists(os.path.join(REPO, t['playbook'])), t['playbook']


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['survey'] for t in TEMPLATES])
def test_survey_is_valid_awx_survey_json(template):
    survey = _survey(template['survey'])
    assert set(survey) == {'name', 'description', 'spec'}
    assert isinstance(survey['name'], str) and survey['name']
    assert isinstance(survey['description'], str) and survey['description']
    assert isinstance(survey['spec'], list) and survey['spec']
    variables = [item.get('variable') for item in survey['spec']]
    assert len(variables) == len(set(variables)), 'a variable is asked twice'
    for item in survey['spec']:
        where = '%s: %s' % (template['survey'], item.get('variable'))
        assert item['type'] in SURVEY_TYPES, where
        for key in ('question_name', 'question_description', 'variable'):
            assert isinstance(item.get(key), str) and item[key], '%s: %s' % (where, key)
        assert isinstance(item.get('required'), bool), where
        assert 'default' in item, where
        default = item['default']
        if item['type'] in ('multiplechoice', 'multiselect'):
            choices = _choices(item)
            assert choices and all(isinstance(c, str) and c for c in choices), where
            assert len(choices) == len(set(choices)), where
            picked = [d for d in (default.split('\n') if isinstance(default, str) else default) if d]
            assert all(d in choices for d in picked), where
            if item['type'] == 'multiplechoice':
                assert len(picked) <= 1, where
        elif item['type'] in ('integer', 'float') and default == '' and not item['required']:
            pass    # no default: AWX passes nothing unless the question is answered
        elif item['type'] == 'integer':
            assert isinstance(default, int) and not isinstance(default, bool), where
            assert item['min'] <= default <= item['max'], where
        elif item['type'] == 'float':
            assert isinstance(default, (int, float)) and not isinstance(default, bool), where
            assert item['min'] <= default <= item['max'], where
        else:
            assert isinstance(default, str), where
            if default:
                assert item.get('min', 0) <= len(default) <= item.get('max', 1024), where
        if item['required']:
            assert default not in ('', None), '%s: a required question needs a default' % where


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['survey'] for t in TEMPLATES])
def test_survey_variables_match_the_argument_specs(template):
    specs = _specs_for(template)
    for item in _survey(template['survey'])['spec']:
        name = item['variable']
        assert name in specs, '%s: %s is not an argument of %s' % (template['survey'], name, template['playbook'])
        spec = specs[name]
        where = '%s: %s (%s)' % (template['survey'], name, spec['_source'])
        spec_type = spec.get('type', 'str')
        assert spec_type in COMPATIBLE[item['type']], '%s: survey %s cannot feed %s' % (where, item['type'], spec_type)
        if item['type'] == 'multiselect':
            assert spec.get('elements', 'str') == 'str', where
        if spec.get('required'):
            assert item['required'], '%s: required by the spec' % where
        if 'choices' in spec:
            assert item['type'] in ('multiplechoice', 'multiselect'), '%s: the spec has choices' % where
            assert set(_choices(item)) <= set(spec['choices']), '%s: choices outside %s' % (where, spec['choices'])
        default = item['default']
        if default not in ('', None) and 'default' in spec:
            if item['type'] == 'multiselect':
                assert default.split('\n') == spec['default'], where
            elif item['type'] == 'float':
                assert float(default) == float(spec['default']), where
            else:
                assert default == spec['default'], '%s: default %r, spec %r' % (where, default, spec['default'])


@pytest.mark.parametrize('template', [t for t in TEMPLATES if t['playbook'] == 'playbooks/site.yml'],
                         ids=[t['survey'] for t in TEMPLATES if t['playbook'] == 'playbooks/site.yml'])
def test_site_surveys_never_override_the_inventory_by_default(template):
    """AWX sends every non-empty survey default as an extra var, which beats the inventory.

    A default there would silently replace the inventory's pinned versions, SSH port,
    certificate mode or key type on every run, so these questions are optional and empty.
    """
    for item in _survey(template['survey'])['spec']:
        assert item['default'] == '' and not item['required'], item['variable']


OPERATIONS = ['playbooks/verify.yml', 'playbooks/rotate.yml', 'playbooks/audit_report.yml', 'playbooks/drain.yml',
              'playbooks/pin_tools.yml']


@pytest.mark.parametrize('playbook', OPERATIONS)
def test_operations_are_role_entry_points_with_well_formed_specs(playbook):
    """Each operation is a thin wrapper: it includes role entry points and declares no spec of its own."""
    with open(os.path.join(REPO, playbook), encoding='utf-8') as f:
        plays = yaml.safe_load(f)
    assert not [k for play in plays for k in (play.get('vars') or {}) if k.endswith('_argument_spec')], playbook
    specs = _playbook_specs(playbook)
    assert specs
    for name, spec in specs.items():
        assert spec.get('type') in {'str', 'int', 'float', 'bool', 'list', 'dict', 'path', 'raw'}, name
        assert spec.get('description'), name
        if 'choices' in spec and 'default' in spec:
            defaults = spec['default'] if isinstance(spec['default'], list) else [spec['default']]
            assert set(defaults) <= set(spec['choices']), name


def _role_defaults():
    out = {}
    for role in os.listdir(os.path.join(REPO, 'roles')):
        path = os.path.join(REPO, 'roles', role, 'defaults', 'main.yml')
        if os.path.exists(path):
            with open(path, encoding='utf-8') as f:
                out.update(yaml.safe_load(f) or {})
    return out


@pytest.mark.parametrize('playbook', OPERATIONS)
def test_operation_defaults_are_the_roles_defaults(playbook):
    """A spec's default documents the value the role's defaults/main.yml sets (written once, there)."""
    defaults = _role_defaults()
    for name, spec in _playbook_specs(playbook).items():
        if 'default' in spec and '{{' not in str(spec['default']):
            assert name in defaults, '%s: %s has a spec default but no role default' % (playbook, name)
            assert defaults[name] == spec['default'], '%s: %s %r != %r' % (playbook, name, defaults[name], spec['default'])


def test_collections_requirements_cover_what_the_playbooks_use():
    with open(os.path.join(REPO, 'collections', 'requirements.yml'), encoding='utf-8') as f:
        names = {c['name'] for c in yaml.safe_load(f)['collections']}
    assert {'community.crypto', 'community.general', 'awx.awx'} <= names
    # one pinned mcpsec.gateway: the execution environment's build, never a second copy from a branch
    assert not any('gateway' in n for n in names), names


def test_the_execution_environment_carries_the_pinned_build():
    with open(os.path.join(REPO, 'execution-environment.yml'), encoding='utf-8') as f:
        ee = yaml.safe_load(f)
    with open(os.path.join(REPO, 'galaxy.yml'), encoding='utf-8') as f:
        version = yaml.safe_load(f)['version']
    files = [c['name'] for c in ee['dependencies']['galaxy']['collections'] if c.get('type') == 'file']
    assert files == ['/tmp/mcpsec/mcpsec-gateway.tar.gz']
    assert ee['options']['tags'] == ['mcpsec/gateway-ee:%s' % version]
