"""The generated role pages (docs/roles/<role>.md) must match the roles' argument specs."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_readme_role_reference_is_current():
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'role_docs.py'), '--check'],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_every_role_option_is_documented():
    import yaml  # pylint: disable=import-outside-toplevel
    for role in os.listdir(os.path.join(ROOT, 'roles')):
        with open(os.path.join(ROOT, 'docs', 'roles', role + '.md')) as f:
            readme = f.read()
        with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as f:
            options = yaml.safe_load(f)['argument_specs']['main']['options']
        for name in options:
            if name != 'mcpsec_policy':
                assert '| `%s` |' % name in readme, (role, name)
