# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Credential files for nginx/njs: htpasswd (sha512-crypt or bcrypt) and token digests.

No Ansible imports: the module credential_file is a thin adapter and the unit tests
import this file directly. Secrets never leave this module except as hashes/digests;
results name users only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile

try:
    from passlib.hash import sha512_crypt as _sha512_crypt
    PASSLIB_IMPORT_ERROR = None
except ImportError as exc:  # checked by the module; reported with the package to install
    _sha512_crypt = None
    PASSLIB_IMPORT_ERROR = exc

try:
    import bcrypt as _bcrypt
    BCRYPT_IMPORT_ERROR = None
except ImportError as exc:
    _bcrypt = None
    BCRYPT_IMPORT_ERROR = exc

FORMATS = ('htpasswd', 'token_digest')
SCHEMES = ('sha512_crypt', 'bcrypt')
# nginx checks the password with crypt(3) on EVERY request: the work factor is paid per
# request, so the defaults are glibc's own default (5000) and a moderate bcrypt cost.
DEFAULT_ROUNDS = {'sha512_crypt': 5000, 'bcrypt': 10}
ROUNDS_RANGE = {'sha512_crypt': (1000, 999999999), 'bcrypt': (4, 31)}
NAME_RE = re.compile(r'^[^:\s#]{1,256}$')
SHA512_RE = re.compile(r'^\$6\$(?:rounds=(\d+)\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$')
BCRYPT_RE = re.compile(r'^\$2[aby]\$(\d\d)\$[./0-9A-Za-z]{53}$')


class CredentialError(Exception):
    """A problem the user must fix; the message never contains a secret."""


def missing_library(fmt, scheme):
    """Return an error message when a library needed for fmt/scheme is absent, else None."""
    if fmt != 'htpasswd':
        return None
    if scheme == 'sha512_crypt' and PASSLIB_IMPORT_ERROR is not None:
        return ('the passlib Python library is required for htpasswd files with sha512_crypt on the '
                'target host: install python3-passlib (apt) or passlib (pip)')
    if scheme == 'bcrypt' and BCRYPT_IMPORT_ERROR is not None:
        return ('the bcrypt Python library is required for scheme=bcrypt on the target host: '
                'install python3-bcrypt (apt) or bcrypt (pip), or use scheme=sha512_crypt')
    return None


# --------------------------------------------------------------------------- hashing

def hash_scheme(hashed):
    """Return (scheme, rounds) of an existing hash, or (None, None) for anything else."""
    match = SHA512_RE.match(hashed)
    if match:
        return 'sha512_crypt', int(match.group(1) or 5000)
    match = BCRYPT_RE.match(hashed)
    if match:
        return 'bcrypt', int(match.group(1))
    return None, None


def hash_secret(secret, scheme, rounds):
    if scheme == 'sha512_crypt':
        return _sha512_crypt.using(rounds=rounds).hash(secret)
    data = secret.encode('utf-8')
    if len(data) > 72:
        raise CredentialError('bcrypt uses only the first 72 bytes of a password')
    # "2b": the prefix nginx's crypt(3) (libxcrypt on Debian) and htpasswd -B write.
    return _bcrypt.hashpw(data, _bcrypt.gensalt(rounds=rounds, prefix=b'2b')).decode('ascii')


def verify_secret(secret, hashed):
    """True when hashed (sha512-crypt or bcrypt) verifies secret; False for anything else."""
    scheme = hash_scheme(hashed)[0]
    try:
        if scheme == 'sha512_crypt' and _sha512_crypt is not None:
            return bool(_sha512_crypt.verify(secret, hashed))
        if scheme == 'bcrypt' and _bcrypt is not None:
            data = secret.encode('utf-8')
            # bcrypt >= 5 raises on > 72 bytes instead of truncating; such a hash never verifies.
            if len(data) > 72:
                return False
            return bool(_bcrypt.checkpw(data, hashed.encode('ascii')))
    except (ValueError, TypeError):
        return False
    return False


def token_digest(token):
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


# --------------------------------------------------------------------------- parsing

def validate_entries(entries):
    """Check names and secrets; return a list of (name, secret) in the given order."""
    result = []
    seen = set()
    for index, entry in enumerate(entries):
        name = entry.get('name')
        secret = entry.get('secret')
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise CredentialError('entries[%d].name must be 1-256 characters without ":", "#" or whitespace'
                                  % index)
        if name in seen:
            raise CredentialError("entries[%d].name: user '%s' is listed twice" % (index, name))
        seen.add(name)
        if not isinstance(secret, str) or not secret:
            raise CredentialError("entries[%d].secret for user '%s' must be a non-empty string" % (index, name))
        result.append((name, secret))
    return result


def parse_htpasswd(text):
    """Return {name: hash} from htpasswd text, ignoring blank lines and comments."""
    users = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith('#') or ':' not in line:
            continue
        name, hashed = line.split(':', 1)
        users[name] = hashed.strip()
    return users


def parse_tokens(text):
    """Return {name: digest} from a tokens.json text; {} for anything unreadable."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return dict((k, v) for k, v in data.items() if isinstance(k, str) and isinstance(v, str))


# --------------------------------------------------------------------------- planning

class Plan(object):
    """The desired content and what differs from the current file (names only)."""

    def __init__(self, content, before_names, after_names, added, updated, removed):
        self.content = content
        self.before_names = before_names
        self.after_names = after_names
        self.added = added
        self.updated = updated
        self.removed = removed

    def diff(self, path, changed):
        """Names only: an updated user appears as '<name> (secret changed)' after."""
        before = ''.join('%s\n' % name for name in self.before_names)
        after = ''.join('%s%s\n' % (name, ' (secret changed)' if name in self.updated else '')
                        for name in self.after_names)
        if changed and before == after:
            after += '# file rewritten (format or order normalised)\n'
        return {'before': before, 'after': after,
                'before_header': '%s (users)' % path, 'after_header': '%s (users)' % path}


def plan(fmt, existing_text, entries, scheme='sha512_crypt', rounds=None):
    """Compute the new file content.

    existing_text is None when the file does not exist. An htpasswd hash that still
    verifies its secret with the requested scheme and rounds is kept byte for byte.
    """
    if fmt not in FORMATS:
        raise CredentialError('format must be one of: %s' % ', '.join(FORMATS))
    pairs = validate_entries(entries)
    if fmt == 'token_digest':
        current = parse_tokens(existing_text) if existing_text is not None else {}
        desired = dict((name, token_digest(secret)) for name, secret in pairs)
        content = json.dumps(desired, sort_keys=True, indent=2) + '\n'
    else:
        if scheme not in SCHEMES:
            raise CredentialError('scheme must be one of: %s' % ', '.join(SCHEMES))
        if rounds is None:
            rounds = DEFAULT_ROUNDS[scheme]
        low, high = ROUNDS_RANGE[scheme]
        if not low <= rounds <= high:
            raise CredentialError('rounds for %s must be in %d..%d' % (scheme, low, high))
        current = parse_htpasswd(existing_text) if existing_text is not None else {}
        desired = {}
        for name, secret in pairs:
            old = current.get(name)
            if old is not None and hash_scheme(old) == (scheme, rounds) and verify_secret(secret, old):
                desired[name] = old
            else:
                desired[name] = hash_secret(secret, scheme, rounds)
        content = ''.join('%s:%s\n' % (name, desired[name]) for name in sorted(desired))
    added = sorted(name for name in desired if name not in current)
    updated = sorted(name for name in desired if name in current and current[name] != desired[name])
    removed = sorted(name for name in current if name not in desired)
    return Plan(content, sorted(current), sorted(desired), added, updated, removed)


# --------------------------------------------------------------------------- files

def read_text(path):
    """Return the file's text, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return None


def write_temp(path, content):
    """Write content to a new 0600 temp file next to path (same file system) and return its name.

    The caller gives it its final owner, group and mode and moves it over path with Ansible's
    ``AnsibleModule.atomic_move``; the temp file is removed when writing fails.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CredentialError('directory %s does not exist' % directory)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content.encode('utf-8'))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return tmp


def reserve(path):
    """Create path empty and 0600 if it does not exist; True when it was created.

    atomic_move gives a file it creates the umask's permissions (often 0644) after the
    rename; moving over an existing, empty 0600 file keeps the permissions set on the temp
    file instead, so a secret is never readable by anyone it was not meant for.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True
