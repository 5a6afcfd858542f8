# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plan a literal patch of one installed source file, recognised by its SHA-256 before and after."""

from __future__ import annotations

import hashlib
import re

_DIGEST = re.compile(r'^[0-9a-f]{64}$')


class PatchError(Exception):
    """The file or the patch is not what the task says: nothing may be written."""


def digest(data):
    return hashlib.sha256(data).hexdigest()


def check_spec(stock_sha256, patched_sha256, edits):
    """Problems with the task's own arguments, each naming the option."""
    problems = []
    for name, value in (('stock_sha256', stock_sha256), ('patched_sha256', patched_sha256)):
        if not _DIGEST.match(value or ''):
            problems.append('%s must be 64 lowercase hex digits (a SHA-256), got %r' % (name, value))
    if stock_sha256 == patched_sha256:
        problems.append('stock_sha256 and patched_sha256 are the same: the patch would change nothing')
    if not edits:
        problems.append('edits is empty: give at least one {old, new} pair')
    for i, edit in enumerate(edits or []):
        if not edit.get('old'):
            problems.append('edits[%d].old is empty' % i)
        if edit.get('old') == edit.get('new'):
            problems.append('edits[%d]: old and new are the same' % i)
    return problems


def _apply(text, pairs, path, direction):
    for i, (old, new) in enumerate(pairs):
        found = text.count(old)
        if found != 1:
            raise PatchError('%s: edit %d is found %d times (exactly once expected) while %s the patch'
                             % (path, i, found, direction))
        text = text.replace(old, new, 1)
    return text


def plan(data, path, stock_sha256, patched_sha256, edits, state):
    """The file's new content, or None when it already is what O(state) asks for.

    A file that is neither the stock nor the patched one is refused: the patch was written
    against one exact file, and whatever else is installed there is left as it is."""
    found = digest(data)
    if found not in (stock_sha256, patched_sha256):
        raise PatchError(
            '%s has SHA-256 %s, which is neither the stock file (%s) nor the patched one (%s): '
            'refusing to patch a file this patch was not written for. Reinstall the package at its '
            'pinned version, or turn the patch off.' % (path, found, stock_sha256, patched_sha256))
    want = patched_sha256 if state == 'present' else stock_sha256
    if found == want:
        return None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise PatchError('%s is not UTF-8 text' % path)
    if state == 'present':
        pairs, direction = [(e['old'], e['new']) for e in edits], 'applying'
    else:
        pairs, direction = [(e['new'], e['old']) for e in reversed(edits)], 'reverting'
    result = _apply(text, pairs, path, direction).encode('utf-8')
    if digest(result) != want:
        raise PatchError('%s: after %s the patch the file has SHA-256 %s, not the expected %s: '
                         'the edits do not produce the file the checksums describe'
                         % (path, direction, digest(result), want))
    return result
