"""No dead variables (issue 24 item 4): every key of every role's defaults/main.yml and
vars/main.yml is read somewhere in the roles, the playbooks or the plugins, outside the line
that defines it (a key only a comment or its own definition names is dead)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ('roles', 'playbooks', 'plugins') for p in sorted((ROOT / d).rglob('*'))
           if p.is_file() and p.suffix in ('.yml', '.yaml', '.j2', '.py', '.js', '.cfg') and '__pycache__' not in p.parts]
# Keys the collection's users set and no role reads on purpose: none (a key listed here needs a reason).
ALLOWED = {}


def _definitions():
    for kind in ('defaults', 'vars'):
        for path in sorted((ROOT / 'roles').glob('*/%s/main.yml' % kind)):
            for key in (yaml.safe_load(path.read_text()) or {}):
                yield path, key


DEFINITIONS = list(_definitions())


def _uses(key, defined_in):
    word = re.compile(r'(?<![\w.])%s(?!\w)' % re.escape(key))
    for path in SOURCES:
        for n, line in enumerate(path.read_text(errors='replace').splitlines(), 1):
            code = line.split('#', 1)[0] if path.suffix in ('.yml', '.yaml', '.cfg') else line
            if path == defined_in and re.match(r'\s*%s\s*:' % re.escape(key), code):
                continue
            if word.search(code):
                yield path, n


def test_there_are_definitions():
    assert len(DEFINITIONS) > 50


@pytest.mark.parametrize('path,key', DEFINITIONS, ids=lambda v: v if isinstance(v, str) else v.parent.parent.name)
def test_every_variable_is_used(path, key):
    if key in ALLOWED:
        return
    assert next(_uses(key, path), None) is not None, (
        '%s: %s is defined but nothing in roles/, playbooks/ or plugins/ reads it: remove it (or use it)'
        % (path.relative_to(ROOT), key))
