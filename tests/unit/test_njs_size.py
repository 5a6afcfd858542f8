"""The njs enforcement point stays readable (issue 20 item 6): no function over 60 lines,
a thin entry module, every module the proxy role installs present and nothing more."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NJS = ROOT / 'roles' / 'proxy' / 'files' / 'njs'
MAX_FUNCTION_LINES = 60
MAX_ENTRY_LINES = 200
FUNCTION_RE = re.compile(r'^[ \t]*(?:export\s+)?(?:async\s+)?function\s+([A-Za-z_$][\w$]*)\s*\(', re.M)
# A '/' starts a regex literal after these (else it divides).
REGEX_AFTER = set('(,=:[!&|?{};+-*%<>~^') | {''}


def _skip_regex(text, j):
    """The index after the regex literal starting at text[j] == '/'."""
    j += 1
    in_class = False
    while j < len(text):
        ch = text[j]
        if ch == '\\':
            j += 2
            continue
        if ch == '[':
            in_class = True
        elif ch == ']':
            in_class = False
        elif ch == '/' and not in_class:
            return j + 1
        elif ch == '\n':
            raise ValueError('unterminated regex literal')
        j += 1
    raise ValueError('unterminated regex literal')


def _body_end(text, open_brace):
    """The index of the '}' closing the '{' at open_brace: strings, template
    literals, comments and regex literals skipped."""
    depth, j, prev = 0, open_brace, ''
    while j < len(text):
        ch = text[j]
        nxt = text[j + 1] if j + 1 < len(text) else ''
        if ch in '\'"`':
            j += 1
            while text[j] != ch:
                j += 2 if text[j] == '\\' else 1
            prev, j = ch, j + 1
            continue
        if ch == '/' and nxt == '/':
            j = text.index('\n', j)
            continue
        if ch == '/' and nxt == '*':
            j = text.index('*/', j) + 2
            continue
        if ch == '/' and (prev in REGEX_AFTER or re.search(r'\breturn\s*$', text[max(0, j - 12):j])):
            j = _skip_regex(text, j)
            prev = '/'
            continue
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth == 0:
                return j
        if not ch.isspace():
            prev = ch
        j += 1
    raise ValueError('unbalanced braces')


def functions(path):
    text = path.read_text(encoding='utf-8')
    out = []
    for m in FUNCTION_RE.finditer(text):
        start = text.count('\n', 0, m.start()) + 1
        end = text.count('\n', 0, _body_end(text, text.index('{', m.end()))) + 1
        out.append((m.group(1), start, end - start + 1))
    return out


MODULES = sorted(NJS.glob('*.js'))


@pytest.mark.parametrize('path', MODULES, ids=[p.name for p in MODULES])
def test_no_njs_function_over_60_lines(path):
    found = functions(path)
    assert found, 'no function found in %s: the scanner is broken' % path.name
    long = ['%s:%d %s (%d lines)' % (path.name, start, name, n) for name, start, n in found if n > MAX_FUNCTION_LINES]
    assert not long, 'split these (at most %d lines each): %s' % (MAX_FUNCTION_LINES, ', '.join(long))


def test_the_scanner_measures_what_it_should():
    sample = NJS / 'json.js'
    sizes = dict((name, n) for name, _s, n in functions(sample))
    assert 5 < sizes['scanJson'] < 40 and 'startValue' in sizes
    # a regex literal with quotes and braces inside does not confuse it
    respond_sizes = dict((name, n) for name, _s, n in functions(NJS / 'respond.js'))
    assert max(respond_sizes.values()) <= MAX_FUNCTION_LINES, respond_sizes


def test_the_entry_module_is_a_thin_dispatcher():
    lines = (NJS / 'mcpsec.js').read_text(encoding='utf-8').count('\n')
    assert lines <= MAX_ENTRY_LINES, 'mcpsec.js has %d lines: move the work into the modules' % lines


def test_the_proxy_role_installs_exactly_the_njs_modules():
    role_vars = yaml.safe_load((ROOT / 'roles' / 'proxy' / 'vars' / 'main.yml').read_text(encoding='utf-8'))
    assert sorted(role_vars['__proxy_njs_modules']) == [p.name for p in MODULES]


def _exports(path):
    text = path.read_text(encoding='utf-8')
    block = re.search(r'export default \{(.*?)\};', text, re.S)
    assert block, '%s has no export default' % path.name
    return re.findall(r'^\s*([A-Za-z_$][\w$]*)\s*:', block.group(1), re.M)


@pytest.mark.parametrize('path', MODULES, ids=[p.name for p in MODULES])
def test_every_njs_export_is_used(path):
    """Used by another module, by nginx (js_content, js_set, ... in the templates) or by
    the njs unit tests (which reach every export of the modules they import as m.<name>)."""
    module = path.stem
    others = ''.join(p.read_text(encoding='utf-8') for p in MODULES if p != path)
    templates = ''.join(p.read_text(encoding='utf-8') for p in (ROOT / 'roles' / 'proxy' / 'templates').glob('*.j2'))
    tests = ''.join(p.read_text(encoding='utf-8') for p in (ROOT / 'tests' / 'njs').glob('*.js'))
    alias = {'mcpsec': 'mcpsec', 'health': 'mcpsec_health', 'metrics': 'mcpsec_metrics'}.get(module)
    unused = [name for name in _exports(path)
              if not re.search(r'\b%s\.%s\b' % (module, name), others)
              and not (alias and re.search(r'\b%s\.%s\b' % (alias, name), templates))
              and not re.search(r'\b(m|%s)\.%s\b' % (module, name), tests)]
    assert not unused, '%s exports what nothing uses: %s' % (path.name, ', '.join(unused))
