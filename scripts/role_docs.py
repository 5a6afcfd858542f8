"""Print (or --check) README.md's "Role variable reference" from the roles' argument specs.

    python3 scripts/role_docs.py          # rewrite the section in README.md
    python3 scripts/role_docs.py --check  # exit 1 when README.md is out of date
"""
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ['common', 'host', 'mcp_server', 'supergateway', 'tls', 'proxy', 'lb']
START = '## Role variable reference\n'
END = '## Licence\n'


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


def section():
    out = [START, '\n', "Generated from each role's `meta/argument_specs.yml` (the contract the roles validate against)",
           ' by `scripts/role_docs.py`.\n']
    for role in ROLES:
        with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as f:
            options = yaml.safe_load(f)['argument_specs']['main']['options']
        out += ['\n', '### %s\n' % role, '\n', '| variable | type | default | meaning |\n', '| --- | --- | --- | --- |\n']
        for name, opt in options.items():
            if name == 'mcpsec_policy':
                continue
            default = '`%s`' % json.dumps(opt['default']) if 'default' in opt else '\u2014'
            out.append('| `%s` | %s | %s | %s |\n' % (name, type_of(opt), default, meaning(opt)))
    out.append('\n')
    return ''.join(out)


def main():
    path = os.path.join(ROOT, 'README.md')
    with open(path) as f:
        text = f.read()
    head, rest = text.split(START, 1)
    tail = rest[rest.index(END):]
    new = head + section() + tail
    if '--check' in sys.argv[1:]:
        if new != text:
            sys.stderr.write('README.md role variable reference is out of date: run python3 scripts/role_docs.py\n')
            return 1
        return 0
    with open(path, 'w') as f:
        f.write(new)
    return 0


if __name__ == '__main__':
    sys.exit(main())
