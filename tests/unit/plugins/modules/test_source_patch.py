# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""source_patch: only the stock file is patched, only into the patched one; anything else is refused."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.mcpsec.gateway.plugins.module_utils._source_patch import PatchError, check_spec, plan

ROOT = Path(__file__).resolve().parents[4]
STOCK = b"const a = isInit(m);\nconst b = find(m => isInit(m));\nrest();\n"
EDITS = [{'old': 'const a = isInit(m);', 'new': 'const a = fast(m);'},
         {'old': 'find(m => isInit(m))', 'new': 'a ? find(fast) : undefined'}]
PATCHED = b"const a = fast(m);\nconst b = a ? find(fast) : undefined;\nrest();\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_stock_is_patched_and_patched_is_left_alone():
    assert plan(STOCK, 'f.js', sha(STOCK), sha(PATCHED), EDITS, 'present') == PATCHED
    assert plan(PATCHED, 'f.js', sha(STOCK), sha(PATCHED), EDITS, 'present') is None


def test_absent_restores_the_stock_file_and_leaves_it_alone():
    assert plan(PATCHED, 'f.js', sha(STOCK), sha(PATCHED), EDITS, 'absent') == STOCK
    assert plan(STOCK, 'f.js', sha(STOCK), sha(PATCHED), EDITS, 'absent') is None


@pytest.mark.parametrize('state', ['present', 'absent'])
def test_a_file_it_does_not_recognise_is_refused(state):
    other = STOCK.replace(b'rest', b'other')
    with pytest.raises(PatchError) as err:
        plan(other, '/opt/x/f.js', sha(STOCK), sha(PATCHED), EDITS, state)
    msg = str(err.value)
    assert '/opt/x/f.js' in msg and sha(other) in msg and 'refusing to patch' in msg
    assert 'Reinstall the package at its pinned version' in msg


def test_edits_that_do_not_produce_the_patched_checksum_are_refused():
    with pytest.raises(PatchError, match='do not produce the file the checksums describe'):
        plan(STOCK, 'f.js', sha(STOCK), sha(b'something else'), EDITS, 'present')


def test_an_edit_that_is_not_found_exactly_once_is_refused():
    twice = STOCK + b"const a = isInit(m);\n"
    with pytest.raises(PatchError, match='edit 0 is found 2 times'):
        plan(twice, 'f.js', sha(twice), sha(PATCHED), EDITS, 'present')


def test_spec_problems_name_the_option():
    problems = check_spec('abc', sha(STOCK), [{'old': '', 'new': 'x'}, {'old': 'y', 'new': 'y'}])
    assert any(p.startswith('stock_sha256 must be 64 lowercase hex digits') for p in problems)
    assert 'edits[0].old is empty' in problems and 'edits[1]: old and new are the same' in problems
    assert check_spec(sha(STOCK), sha(STOCK), EDITS) == [
        'stock_sha256 and patched_sha256 are the same: the patch would change nothing']
    assert check_spec(sha(STOCK), sha(PATCHED), []) == ['edits is empty: give at least one {old, new} pair']


def run_module(tmp_path, args, check=False):
    argfile = tmp_path / 'args.json'
    argfile.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check)}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, '-m', 'ansible_collections.mcpsec.gateway.plugins.modules.source_patch', str(argfile)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    out = proc.stdout
    return json.loads(out[out.index('{'):])


def test_module_patches_atomically_keeping_mode_and_check_mode_writes_nothing(tmp_path):
    target = tmp_path / 'f.js'
    target.write_bytes(STOCK)
    os.chmod(target, 0o644)
    args = {'path': str(target), 'stock_sha256': sha(STOCK), 'patched_sha256': sha(PATCHED), 'edits': EDITS}
    checked = run_module(tmp_path, args, check=True)
    assert checked['changed'] is True and checked['sha256'] == sha(PATCHED) and target.read_bytes() == STOCK
    done = run_module(tmp_path, args)
    assert done['changed'] is True and done['state'] == 'patched' and target.read_bytes() == PATCHED
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert run_module(tmp_path, args)['changed'] is False
    assert run_module(tmp_path, dict(args, state='absent'))['changed'] is True and target.read_bytes() == STOCK
    assert sorted(p.name for p in tmp_path.iterdir()) == ['args.json', 'f.js']   # no temporary file left


def test_module_refuses_an_unknown_file_and_leaves_it(tmp_path):
    target = tmp_path / 'f.js'
    target.write_bytes(b'local change\n')
    result = run_module(tmp_path, {'path': str(target), 'stock_sha256': sha(STOCK), 'patched_sha256': sha(PATCHED),
                                   'edits': EDITS})
    assert result['failed'] is True and 'refusing to patch' in result['msg']
    assert target.read_bytes() == b'local change\n'


def test_the_shipped_bridge_patches_are_well_formed():
    """Each role patch file: known versions only, valid digests, edits that change something."""
    role = ROOT / 'roles' / 'supergateway'
    known = yaml.safe_load((role / 'vars' / 'main.yml').read_text(encoding='utf-8'))['__supergateway_bridge_versions']
    files = sorted(p.name for p in (role / 'vars').glob('bridge-*.yml'))
    assert files == sorted('bridge-%s.yml' % v for v in known)
    for version in known:
        patch = yaml.safe_load((role / 'vars' / ('bridge-%s.yml' % version)).read_text(encoding='utf-8'))
        patch = patch['__supergateway_bridge_patch']
        assert patch['version'] == version
        for f in patch['files']:
            assert f['path'].startswith('node_modules/') and '..' not in f['path']
            assert check_spec(f['stock_sha256'], f['patched_sha256'], f['edits']) == []
        assert any('mcpsec.gateway bridge patch' in e['new'] for f in patch['files'] for e in f['edits'])


def test_the_patch_text_in_the_docs_is_the_shipped_one():
    """docs/supergateway-patch.md's diff (the text for upstream) says what the role applies."""
    doc = (ROOT / 'docs' / 'supergateway-patch.md').read_text(encoding='utf-8')
    diff = doc.split('```diff\n', 1)[1].split('```', 1)[0].splitlines()
    patch = yaml.safe_load((ROOT / 'roles' / 'supergateway' / 'vars' / 'bridge-4.0.0.yml')
                           .read_text(encoding='utf-8'))['__supergateway_bridge_patch']
    olds = ''.join(e['old'] for f in patch['files'] for e in f['edits'])
    news = ''.join(e['new'] for f in patch['files'] for e in f['edits'])
    removed = [ln[1:] for ln in diff if ln.startswith('-') and not ln.startswith('---')]
    added = [ln[1:] for ln in diff if ln.startswith('+') and not ln.startswith('+++')]
    assert added and all(ln + '\n' in news for ln in added)
    assert all(ln + '\n' in olds for ln in removed)
    assert len(added) - len(removed) == news.count('\n') - olds.count('\n')
