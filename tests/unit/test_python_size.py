"""No function over 60 lines in plugins/ (issue 24 item 4), as in the njs (test_njs_size.py):
every def in every module, nested ones included, counted from its def line to its last line."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 60
MODULES = sorted((ROOT / 'plugins').rglob('*.py'))


def _functions(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            yield node.name, node.lineno, node.end_lineno - start + 1


def test_there_are_plugin_modules():
    assert len(MODULES) >= 10, MODULES


@pytest.mark.parametrize('path', MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_over_60_lines(path):
    long = ['%s (line %d): %d lines' % (name, line, n) for name, line, n in _functions(path) if n > MAX_FUNCTION_LINES]
    assert not long, '%s: split these functions (at most %d lines each): %s' % (
        path.relative_to(ROOT), MAX_FUNCTION_LINES, '; '.join(long))


def test_the_counter_counts():
    """A 61-line function is found (the test can fail)."""
    body = '\n'.join('    x%d = %d' % (i, i) for i in range(59))
    src = ROOT / '.cache' / 'size-probe.py'
    src.parent.mkdir(exist_ok=True)
    src.write_text('def probe():\n%s\n    return x0\n' % body)
    try:
        assert list(_functions(src)) == [('probe', 1, 61)]
    finally:
        src.unlink()
