# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The env-file diff of roles/mcp_server/tasks/env.yml (the env_changes filter): names only."""

from __future__ import annotations

import base64

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.env_changes import env_changes
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._env_diff import changes

HEADER = '# Ansible managed\n# Read by systemd as root before the service drops its privileges.\n'


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize('before, after, expected', [
    ('', 'A="1"\n', {'added': ['A'], 'updated': [], 'removed': []}),                       # a new file
    ('A="1"\nB="2"\n', 'A="1"\nB="3"\n', {'added': [], 'updated': ['B'], 'removed': []}),   # a rotated secret
    ('A="1"\nB="2"\n', 'A="1"\n', {'added': [], 'updated': [], 'removed': ['B']}),
    ('A="1"\n', 'A="1"\n', {'added': [], 'updated': [], 'removed': []}),                    # unchanged
    (HEADER + 'A="1"\n', '# another header\nA="1"\n', {'added': [], 'updated': [], 'removed': []}),  # comments
    ('A="1"\nA="2"\n', 'A="2"\n', {'added': [], 'updated': [], 'removed': []}),             # the last line counts
    ('not a variable\n9A=1\n', 'Z_9="x"\n_U=1\n', {'added': ['Z_9', '_U'], 'updated': [], 'removed': []}),
    ('A=1\r\nB=2\r\n', 'A=1\nB=2\n', {'added': [], 'updated': [], 'removed': []}),         # line ends
])
def test_changes(before, after, expected):
    assert changes(before, after) == expected


def test_the_filter_sums_servers_and_never_returns_a_value():
    out = env_changes({
        'default': {'before': b64('TOKEN="old-secret"\nKEEP="k"\n'), 'after': 'TOKEN="new-secret"\nKEEP="k"\nNEW="n"\n'},
        'time': {'before': '', 'after': 'TZ="UTC"\n'},                     # no file yet (slurp failed)
        'slack': {'before': b64('GONE="g"\n'), 'after': ''},
    })
    assert out == {
        'by_server': {'default': {'added': ['NEW'], 'updated': ['TOKEN'], 'removed': []},
                      'slack': {'added': [], 'updated': [], 'removed': ['GONE']},
                      'time': {'added': ['TZ'], 'updated': [], 'removed': []}},
        'total': {'added': ['NEW', 'time.TZ'], 'updated': ['TOKEN'], 'removed': ['slack.GONE']},
    }
    assert 'secret' not in repr(out) and '"' not in repr(out)


@pytest.mark.parametrize('files, message', [
    ([], 'env_changes: expected a mapping of server name to {before, after}, got list'),
    ({'a': {'before': ''}}, "env_changes: server a: expected {before, after} with after the new file's text"),
    ({'a': {'before': 'TOKEN=not base64!', 'after': ''}}, 'env_changes: server a: the current env file content is not base64'),
])
def test_bad_input_is_named_without_values(files, message):
    with pytest.raises(AnsibleFilterError) as info:
        env_changes(files)
    assert str(info.value).startswith(message) and 'TOKEN' not in str(info.value)
