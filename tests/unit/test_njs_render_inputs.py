"""The njs tests render through the proxy role (tests/njs/render.yml) and give it only what a
user could: every variable the harness sets that is not its own (njs_*, __njs_*) is a documented
option of the proxy role or of a role it depends on. A variable a template reads that the role
no longer defines then fails every render, as it fails every converge (issue 24 item 2)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NJS = ROOT / 'tests' / 'njs'
# The proxy role and its meta dependencies (roles/proxy/meta/main.yml: common, tls).
ROLES = ('proxy', 'common', 'tls')
HARNESS = re.compile(r'^(njs_|__njs_)')
FILES = [NJS / 'policy.yml'] + sorted((NJS / 'variants').glob('*.yml'))


def _options():
    out = set()
    for role in ROLES:
        spec = yaml.safe_load((ROOT / 'roles' / role / 'meta' / 'argument_specs.yml').read_text())
        out.update(spec['argument_specs']['main']['options'])
    return out


OPTIONS = _options()


@pytest.mark.parametrize('path', FILES, ids=lambda p: p.name)
def test_harness_sets_only_documented_role_options(path):
    keys = yaml.safe_load(path.read_text()) or {}
    foreign = sorted(k for k in keys if not HARNESS.match(k) and k not in OPTIONS)
    assert not foreign, '%s sets %s: not an option of roles %s' % (path.name, foreign, ', '.join(ROLES))


def test_every_variant_names_its_auth_mode():
    for path in FILES[1:]:
        assert (yaml.safe_load(path.read_text()) or {}).get('njs_mode') in ('basic', 'bearer', 'oidc'), path.name


def test_the_render_playbook_runs_the_roles_render_tasks():
    play = yaml.safe_load((NJS / 'render.yml').read_text())[0]
    includes = [t['ansible.builtin.include_role'] for t in play['tasks'] if 'ansible.builtin.include_role' in t]
    assert includes == [{'name': 'mcpsec.gateway.proxy', 'tasks_from': 'render'}]
    configure = (ROOT / 'roles' / 'proxy' / 'tasks' / 'configure.yml').read_text()
    assert 'import_tasks: render.yml' in configure
