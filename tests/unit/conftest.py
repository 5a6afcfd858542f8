# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make ``ansible_collections.mcpsec.gateway`` importable from a plain checkout.

The repository root IS the collection root, so a temporary
``ansible_collections/mcpsec/gateway`` symlink to it is put on sys.path. Under
``ansible-test units`` the collection is already importable and nothing is done.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _importable():
    parts = REPO.split(os.sep)
    return parts[-3:-1] == ['ansible_collections', 'mcpsec'] and parts[-1] == 'gateway'


if not _importable():
    _root = tempfile.mkdtemp(prefix='mcpsec-collection-')
    os.makedirs(os.path.join(_root, 'ansible_collections', 'mcpsec'))
    os.symlink(REPO, os.path.join(_root, 'ansible_collections', 'mcpsec', 'gateway'))
    sys.path.insert(0, _root)
    atexit.register(shutil.rmtree, _root, True)


def pytest_configure(config):
    # passlib 1.7.4 imports the stdlib crypt module (gone in 3.13, where passlib falls back).
    config.addinivalue_line('filterwarnings', "ignore:'crypt' is deprecated:DeprecationWarning")
