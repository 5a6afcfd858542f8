"""Write (or --check) the role reference pages, docs/roles/<role>.md, from the roles' argument specs,
and the index of them at the end of docs/roles.md.

    python3 scripts/role_docs.py          # rewrite the pages and the index
    python3 scripts/role_docs.py --check  # exit 1 when any of them is out of date
"""
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ['common', 'host', 'mcp_server', 'supergateway', 'tls', 'proxy', 'lb']
START = '## Role variable reference\n'
DOC = os.path.join('docs', 'roles.md')


def type_of(opt):
    t = opt.get('type', 'str')
    if t == 'list':
        t = 'list/' + opt.get('elements', 'str')
    if 'choices' in opt:
        t += ' (' + ', '.join(str(c) for c in opt['choices']) + ')'
    return t


def meaning(opt):
    d = opt.get('description', '')
    if isinstance(d, list):
        d = ' '.join(d)
    return ' '.join(str(d).split()).replace('|', '\\|')


def options_of(role):
    with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as f:
        spec = yaml.safe_load(f)['argument_specs']['main']
    return spec.get('short_description', ''), spec['options']


def page(role):
    """docs/roles/<role>.md: every variable of the role's main entry point."""
    short, options = options_of(role)
    out = ['# Role `mcpsec.gateway.%s`\n' % role, '\n']
    if short:
        out += [short.strip() + '\n', '\n']
    out += ["Generated from `roles/%s/meta/argument_specs.yml` (the contract the role validates against)" % role,
            ' by `scripts/role_docs.py`; `ansible-doc -t role mcpsec.gateway.%s` prints the same.\n' % role, '\n',
            '| variable | type | default | meaning |\n', '| --- | --- | --- | --- |\n']
    for name, opt in options.items():
        if name == 'mcpsec_policy':
            continue
        default = '`%s`' % json.dumps(opt['default']) if 'default' in opt else '\u2014'
        out.append('| `%s` | %s | %s | %s |\n' % (name, type_of(opt), default, meaning(opt)))
    return ''.join(out)


def section():
    out = [START, '\n', "One generated page per role, from its `meta/argument_specs.yml`:\n", '\n']
    for role in ROLES:
        out.append('- [%s](roles/%s.md)\n' % (role, role))
    return ''.join(out)


def main():
    wanted = {}
    path = os.path.join(ROOT, DOC)
    with open(path) as f:
        text = f.read()
    wanted[path] = text.split(START, 1)[0] + section()
    for role in ROLES:
        wanted[os.path.join(ROOT, 'docs', 'roles', role + '.md')] = page(role)
    stale = []
    for target, content in wanted.items():
        current = None
        if os.path.exists(target):
            with open(target) as f:
                current = f.read()
        if current != content:
            stale.append(os.path.relpath(target, ROOT))
    if '--check' in sys.argv[1:]:
        if stale:
            sys.stderr.write('role reference out of date (%s): run python3 scripts/role_docs.py\n' % ', '.join(stale))
            return 1
        return 0
    os.makedirs(os.path.join(ROOT, 'docs', 'roles'), exist_ok=True)
    for target, content in wanted.items():
        with open(target, 'w') as f:
            f.write(content)
    return 0


if __name__ == '__main__':
    sys.exit(main())
