# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""check_mode_gap: the one check-mode guard - true only in check mode after a named change it skipped."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.mcpsec.gateway.plugins.lookup.check_mode_gap import LookupModule, check_mode_gap

CHANGED = {'changed': True}
UNCHANGED = {'changed': False}
SKIPPED = {'changed': False, 'skipped': True}


@pytest.mark.parametrize('check_mode,results,names,gap', [
    (True, {'__p': CHANGED}, ['__p'], True),          # fresh host, --check: the package is not there
    (False, {'__p': CHANGED}, ['__p'], False),        # a real run installed it
    (True, {'__p': UNCHANGED}, ['__p'], False),       # converged host, --check: it is there
    (True, {'__p': SKIPPED}, ['__p'], False),
    (True, {}, ['__p'], False),                       # never registered: nothing was skipped
    (True, {'__p': UNCHANGED, '__q': CHANGED}, ['__p', '__q'], True),
    (True, {'__p': 'text'}, ['__p'], False),
])
def test_gap_only_in_check_mode_after_a_named_change(check_mode, results, names, gap):
    variables = dict(results, ansible_check_mode=check_mode)
    assert check_mode_gap(names, variables) is gap
    assert LookupModule().run(names, variables=variables) == [gap]


def test_a_guard_without_names_is_refused():
    with pytest.raises(AnsibleLookupError, match='name the registered results'):
        check_mode_gap([], {'ansible_check_mode': True})
