# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.mcpsec.gateway.plugins.module_utils import _credentials as cred
from ansible_collections.mcpsec.gateway.plugins.module_utils._credentials import (
    CredentialError,
    plan,
    reserve,
    verify_secret,
    write_temp,
)

ALICE = 'Vq8#kL2!pZ9w-alice'
BOB = 'tR4$mN7&xB1q-bob'
CAROL = 'Zx3%cV6^bN9m-carol'
SECRETS = (ALICE, BOB, CAROL, 'a-brand-new-password')


def entries(**users):
    return [{'name': name, 'secret': secret} for name, secret in users.items()]


def lines(text):
    return dict(line.split(':', 1) for line in text.splitlines())


# ---------------------------------------------------------------------------- htpasswd

def test_new_file_hashes_every_user_with_sha512_crypt():
    result = plan('htpasswd', None, entries(bob=BOB, alice=ALICE))
    users = lines(result.content)
    assert list(users) == ['alice', 'bob']  # sorted by name
    for name, secret in (('alice', ALICE), ('bob', BOB)):
        assert users[name].startswith('$6$')
        assert 'rounds=' not in users[name]  # 5000 is implicit, as glibc writes it
        assert verify_secret(secret, users[name])
    assert (result.added, result.updated, result.removed) == (['alice', 'bob'], [], [])


def test_second_run_keeps_every_hash_byte_for_byte():
    first = plan('htpasswd', None, entries(alice=ALICE, bob=BOB)).content
    second = plan('htpasswd', first, entries(alice=ALICE, bob=BOB))
    assert second.content == first
    assert (second.added, second.updated, second.removed) == ([], [], [])


def test_changing_one_password_changes_only_that_line():
    first = plan('htpasswd', None, entries(alice=ALICE, bob=BOB, carol=CAROL)).content
    second = plan('htpasswd', first, entries(alice=ALICE, bob='a-brand-new-password', carol=CAROL))
    old, new = lines(first), lines(second.content)
    assert old['alice'] == new['alice'] and old['carol'] == new['carol']
    assert old['bob'] != new['bob'] and verify_secret('a-brand-new-password', new['bob'])
    assert second.updated == ['bob'] and second.added == [] and second.removed == []


def test_users_not_in_entries_are_removed():
    first = plan('htpasswd', None, entries(alice=ALICE, mallory=BOB)).content
    second = plan('htpasswd', first, entries(alice=ALICE))
    assert list(lines(second.content)) == ['alice']
    assert second.removed == ['mallory']


def test_empty_entries_leave_an_empty_file():
    first = plan('htpasswd', None, entries(alice=ALICE)).content
    assert plan('htpasswd', first, []).content == ''


def test_foreign_hash_schemes_are_replaced():
    existing = 'alice:$apr1$abcdefgh$0123456789abcdefghijkl\n# comment\n\nbob:{SHA}xyz=\n'
    result = plan('htpasswd', existing, entries(alice=ALICE, bob=BOB))
    assert result.updated == ['alice', 'bob']
    assert all(v.startswith('$6$') for v in lines(result.content).values())


def test_other_rounds_are_rehashed_then_stable():
    first = plan('htpasswd', None, entries(alice=ALICE)).content
    second = plan('htpasswd', first, entries(alice=ALICE), rounds=6000)
    assert 'rounds=6000' in second.content and second.updated == ['alice']
    assert plan('htpasswd', second.content, entries(alice=ALICE), rounds=6000).content == second.content


def test_diff_names_users_only():
    first = plan('htpasswd', None, entries(alice=ALICE, bob=BOB, mallory=CAROL)).content
    result = plan('htpasswd', first, entries(alice=ALICE, bob='a-brand-new-password', carol=CAROL))
    diff = result.diff('/etc/nginx/mcpsec/htpasswd', True)
    assert diff['before'] == 'alice\nbob\nmallory\n'
    assert diff['after'] == 'alice\nbob (secret changed)\ncarol\n'
    text = json.dumps(diff)
    assert '$6$' not in text
    for secret in SECRETS:
        assert secret not in text
    assert (result.added, result.updated, result.removed) == (['carol'], ['bob'], ['mallory'])


@pytest.mark.parametrize('bad, message', [
    ([{'name': 'al:ice', 'secret': ALICE}], 'entries[0].name'),
    ([{'name': 'alice', 'secret': ALICE}, {'name': 'alice', 'secret': BOB}], "user 'alice' is listed twice"),
    ([{'name': 'alice', 'secret': ''}], 'must be a non-empty string'),
    ([{'name': 'a b', 'secret': ALICE}], 'without ":", "#" or whitespace'),
])
def test_bad_entries_fail_without_showing_secrets(bad, message):
    with pytest.raises(CredentialError) as caught:
        plan('htpasswd', None, bad)
    assert message in str(caught.value)
    for secret in SECRETS:
        assert secret not in str(caught.value)


def test_bad_rounds_and_scheme():
    with pytest.raises(CredentialError, match='rounds for sha512_crypt must be in'):
        plan('htpasswd', None, entries(alice=ALICE), rounds=10)
    with pytest.raises(CredentialError, match='scheme must be one of'):
        plan('htpasswd', None, entries(alice=ALICE), scheme='md5')


def test_verify_secret_is_robust():
    assert not verify_secret(ALICE, '')
    assert not verify_secret(ALICE, 'garbage')
    assert not verify_secret(ALICE, '$2b$10$' + 'x' * 53)
    assert not verify_secret(ALICE, '$6$abc$' + 'y' * 86)


def test_missing_library_messages(monkeypatch):
    monkeypatch.setattr(cred, 'PASSLIB_IMPORT_ERROR', ImportError('passlib'))
    assert 'install python3-passlib' in cred.missing_library('htpasswd', 'sha512_crypt')
    assert cred.missing_library('token_digest', 'sha512_crypt') is None
    monkeypatch.setattr(cred, 'BCRYPT_IMPORT_ERROR', ImportError('bcrypt'))
    assert 'install python3-bcrypt' in cred.missing_library('htpasswd', 'bcrypt')


# ---------------------------------------------------------------------------- bcrypt

@pytest.fixture
def bcrypt_available():
    if cred.BCRYPT_IMPORT_ERROR is not None:
        pytest.fail('bcrypt is a dev requirement (requirements-dev.txt) and must be installed to test the bcrypt scheme')


def test_bcrypt_hashes_are_2b_and_idempotent(bcrypt_available):
    first = plan('htpasswd', None, entries(alice=ALICE), scheme='bcrypt', rounds=4)
    hashed = lines(first.content)['alice']
    assert hashed.startswith('$2b$04$') and verify_secret(ALICE, hashed)
    assert plan('htpasswd', first.content, entries(alice=ALICE), scheme='bcrypt', rounds=4).content == first.content


def test_switching_scheme_rehashes(bcrypt_available):
    first = plan('htpasswd', None, entries(alice=ALICE)).content
    second = plan('htpasswd', first, entries(alice=ALICE), scheme='bcrypt', rounds=4)
    assert lines(second.content)['alice'].startswith('$2b$') and second.updated == ['alice']


def test_bcrypt_refuses_passwords_over_72_bytes(bcrypt_available):
    with pytest.raises(CredentialError, match='72 bytes'):
        plan('htpasswd', None, entries(alice='p' * 73), scheme='bcrypt', rounds=4)
    assert not verify_secret('p' * 73, '$2b$04$' + 'a' * 53)


# ---------------------------------------------------------------------------- token digests

def test_token_digest_file():
    tokens = {'ci-bot': '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e', 'alpha': '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d'}
    result = plan('token_digest', None, entries(**tokens))
    data = json.loads(result.content)
    assert list(data) == ['alpha', 'ci-bot']
    for name, token in tokens.items():
        assert data[name] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in result.content
    assert result.content.endswith('\n')
    again = plan('token_digest', result.content, entries(**tokens))
    assert again.content == result.content and again.added == again.updated == again.removed == []
    changed = plan('token_digest', result.content, entries(alpha=tokens['alpha'] + 'x'))
    assert (changed.added, changed.updated, changed.removed) == ([], ['alpha'], ['ci-bot'])


def test_token_digest_replaces_unreadable_file():
    result = plan('token_digest', 'not json', entries(bot='3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e'))
    assert result.added == ['bot']


# ---------------------------------------------------------------------------- temp file and reservation

def test_write_temp_is_0600_next_to_the_target(tmp_path):
    target = tmp_path / 'htpasswd'
    target.write_text('old\n')
    tmp = write_temp(str(target), 'new\n')
    assert os.path.dirname(tmp) == str(tmp_path)  # same file system: the move is a rename
    assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o600  # never readable by others
    assert open(tmp).read() == 'new\n' and target.read_text() == 'old\n'


def test_write_temp_missing_directory(tmp_path):
    with pytest.raises(CredentialError, match='does not exist'):
        write_temp(str(tmp_path / 'nope' / 'htpasswd'), 'x')


def test_reserve_creates_an_empty_0600_file_once(tmp_path):
    target = tmp_path / 'tokens.json'
    assert reserve(str(target)) is True
    assert target.read_text() == '' and stat.S_IMODE(os.stat(str(target)).st_mode) == 0o600
    target.write_text('{}\n')
    assert reserve(str(target)) is False
    assert target.read_text() == '{}\n'


# ---------------------------------------------------------------------------- the module, end to end

def run_module(tmp_path, args, check=False, diff=True):
    argfile = tmp_path / 'args.json'
    argfile.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check,
                                                               _ansible_diff=diff)}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, '-m', 'ansible_collections.mcpsec.gateway.plugins.modules.credential_file', str(argfile)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    out = proc.stdout
    result = json.loads(out[out.index('{'):])
    return result, out + proc.stderr


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / 'etc').mkdir()
    return tmp_path


def test_module_check_mode_then_apply_then_idempotent(workdir):
    path = str(workdir / 'etc' / 'htpasswd')
    args = {'path': path, 'entries': [{'name': 'alice', 'password': ALICE}, {'name': 'bob', 'secret': BOB}],
            'mode': '0640'}
    result, raw = run_module(workdir, args, check=True)
    assert result['changed'] is True and result['added'] == ['alice', 'bob']
    assert not os.path.exists(path)
    for secret in (ALICE, BOB):
        assert secret not in raw

    result, raw = run_module(workdir, args)
    assert result['changed'] is True and result['users'] == ['alice', 'bob']
    assert result['diff']['after'] == 'alice\nbob\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    content = open(path).read()
    for secret in (ALICE, BOB):
        assert secret not in raw

    result, _raw = run_module(workdir, args)
    assert result['changed'] is False
    assert open(path).read() == content
    assert sorted(os.listdir(str(workdir / 'etc'))) == ['htpasswd']  # no temp file left behind

    args['mode'] = '0600'
    result, _raw = run_module(workdir, args, check=True)
    assert result['changed'] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_module_token_digest_and_removal(workdir):
    path = str(workdir / 'etc' / 'tokens.json')
    token = '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e'
    args = {'path': path, 'format': 'token_digest',
            'entries': [{'name': 'ci-bot', 'token': token}, {'name': 'old', 'token': token + 'old'}]}
    result, raw = run_module(workdir, args)
    assert result['changed'] is True and token not in raw
    args['entries'] = args['entries'][:1]
    result, raw = run_module(workdir, args)
    assert result['removed'] == ['old'] and result['changed'] is True
    assert json.load(open(path)) == {'ci-bot': hashlib.sha256(token.encode()).hexdigest()}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_module_new_file_without_mode_is_0600_and_moved_atomically(workdir):
    path = str(workdir / 'etc' / 'htpasswd')
    result, _raw = run_module(workdir, {'path': path, 'entries': [{'name': 'alice', 'password': ALICE}]})
    assert result['changed'] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # not the umask's 0644 atomic_move gives new files
    assert sorted(os.listdir(str(workdir / 'etc'))) == ['htpasswd']


def test_module_replaces_with_atomic_move_and_passes_unsafe_writes(workdir):
    """The write goes through AnsibleModule.atomic_move with the task's unsafe_writes."""
    path = str(workdir / 'etc' / 'htpasswd')
    seen = workdir / 'seen.json'
    wrapper = workdir / 'wrapped.py'
    wrapper.write_text(
        'import json, sys\n'
        'from ansible.module_utils import basic\n'
        'orig = basic.AnsibleModule.atomic_move\n'
        'def spy(self, src, dest, unsafe_writes=False, keep_dest_attrs=True):\n'
        '    open(%r, "w").write(json.dumps([dest, unsafe_writes, keep_dest_attrs]))\n'
        '    return orig(self, src, dest, unsafe_writes=unsafe_writes, keep_dest_attrs=keep_dest_attrs)\n'
        'basic.AnsibleModule.atomic_move = spy\n'
        'from ansible_collections.mcpsec.gateway.plugins.modules import credential_file\n'
        'credential_file.main()\n' % str(seen))
    argfile = workdir / 'args.json'
    argfile.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {
        'path': path, 'unsafe_writes': True, 'mode': '0640',
        'entries': [{'name': 'alice', 'password': ALICE}]}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, str(wrapper), str(argfile)], capture_output=True, text=True,
                          env=env, cwd=str(workdir), check=False)
    assert '"changed": true' in proc.stdout, proc.stdout + proc.stderr
    assert json.loads(seen.read_text()) == [path, True, False]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
