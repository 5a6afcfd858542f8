# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one parser of rates, durations and sizes (plugins/plugin_utils/_units.py): each accepted
form, each refused form with its message (key; problem; fix)."""

from __future__ import annotations

import pytest

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._units import (
    UnitError,
    parse_duration,
    parse_rate,
    parse_size,
    size_mib,
)

POLICY = {'units': ('s', 'm', 'h'), 'maximum': 86400}          # rate_limits.per_tool.<tool>.per
AUDIT = {'units': ('s', 'm', 'h', 'd', 'w')}                    # audit_summary / audit_report window
NGINX = {'units': ('ms', 's', 'm', 'h', 'd', 'w'), 'minimum': 0, 'bare': True}   # an nginx time


@pytest.mark.parametrize('text, expected', [
    ('10r/s', (10, 1)), ('600r/m', (600, 60)), (' 20r/s ', (20, 1)), ('999999r/m', (999999, 60)), ('1r/s', (1, 1)),
])
def test_rates(text, expected):
    assert parse_rate(text, 'k') == expected


@pytest.mark.parametrize('value', ['10/s', '0r/s', 'r/s', '10r/h', '10 r/s', '1000000r/s', '010r/s', 10, None, '50 per minute'])
def test_refused_rates(value):
    with pytest.raises(UnitError) as info:
        parse_rate(value, 'mcpsec_policy.rate_limits.per_ip.rate')
    assert str(info.value).startswith('mcpsec_policy.rate_limits.per_ip.rate: rate ')
    assert str(info.value).endswith("is not valid; write N r/s or N r/m with N >= 1, e.g. '10r/s' or '600r/m'")


@pytest.mark.parametrize('value, options, seconds', [
    ('60s', POLICY, 60), ('5m', POLICY, 300), ('1h', POLICY, 3600), ('24h', POLICY, 86400), (' 2h ', POLICY, 7200),
    ('5 m', POLICY, 300), ('060s', POLICY, 60),
    ('90s', AUDIT, 90), ('15m', AUDIT, 900), ('24h', AUDIT, 86400), ('7d', AUDIT, 604800), ('1w', AUDIT, 604800),
    (3600, AUDIT, 3600), ('0024h', AUDIT, 86400),
    ('500ms', NGINX, 0.5), ('1s', NGINX, 1), ('1m', NGINX, 60), ('2', NGINX, 2), ('1500ms', NGINX, 1.5),
    ('2000ms', NGINX, 2), ('0s', NGINX, 0), (1, NGINX, 1),
])
def test_durations(value, options, seconds):
    got = parse_duration(value, 'k', **options)
    assert got == seconds and type(got) is type(seconds)


@pytest.mark.parametrize('value, options, message', [
    ('60', POLICY, "per: duration '60' is not valid; write N followed by s, m or h, e.g. '60s', '5m' or '1h'"),
    ('2d', POLICY, "per: duration '2d' is not valid; write N followed by s, m or h"),
    ('25h', POLICY, "per: duration '25h' is longer than 24h; use at most 24h"),
    ('0s', POLICY, "per: duration '0s' is shorter than 1s; use at least 1s"),
    ('1.5h', POLICY, "per: duration '1.5h' is not valid"),
    ('-1s', POLICY, "per: duration '-1s' is not valid"),
    ('24x', AUDIT, "per: duration '24x' is not valid; write N followed by s, m, h, d or w, e.g. '60s', '5m' or '1h'"),
    ('86400', AUDIT, "per: duration '86400' is not valid"),
    (0, AUDIT, "per: duration '0' is shorter than 1s"),
    (-5, AUDIT, "per: duration '-5' is shorter than 1s"),
    (True, AUDIT, "per: expected a duration such as '60s', got bool; write N followed by s, m, h, d or w"),
    (None, AUDIT, "per: expected a duration such as '60s', got NoneType"),
    ('1y', NGINX, "per: duration '1y' is not valid; write N followed by ms, s, m, h, d or w (N alone is seconds), "
                  "e.g. '500ms', '60s' or '5m'"),
    ('1m30s', NGINX, "per: duration '1m30s' is not valid"),
])
def test_refused_durations(value, options, message):
    with pytest.raises(UnitError) as info:
        parse_duration(value, 'per', **options)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize('value, size', [
    ('1280M', 1280 * 1024 ** 2), ('1280m', 1280 * 1024 ** 2), ('2G', 2 * 1024 ** 3), ('786432k', 768 * 1024 ** 2),
    ('1073741824', 1024 ** 3), (4096, 4096), (' 1T ', 1024 ** 4), ('1.5G', 3 * 512 * 1024 ** 2),
    ('infinity', None), ('Infinity', None), ('80%', None), ('12.5%', None),
])
def test_sizes(value, size):
    assert parse_size(value, 'k') == size


def test_mib_rounds_down():
    assert (size_mib('4352M', 'k'), size_mib('1048575', 'k'), size_mib('infinity', 'k')) == (4352, 0, None)


@pytest.mark.parametrize('value', ['lots', '4352 MB', '1.5', '-1G', '', None, True, '2GiB', '%'])
def test_refused_sizes(value):
    with pytest.raises(UnitError) as info:
        parse_size(value, 'common_supergateway_memory_max')
    assert str(info.value).startswith('common_supergateway_memory_max: size ')
    assert str(info.value).endswith("is not valid; write bytes, or N with K, M, G or T (1024-based), "
                                    "e.g. '2G' or '1280M', or 'infinity'")


def test_messages_never_carry_control_characters():
    with pytest.raises(UnitError) as info:
        parse_rate('10r/s\n\x1b[31m', 'k')
    assert '\n' not in str(info.value) and '\x1b' not in str(info.value)


def test_the_seconds_filter_hands_playbooks_a_number():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mcpsec.gateway.plugins.filter.seconds import seconds
    assert seconds('24h', 'audit_window') == 86400
    assert seconds('500ms', 'common_audit_log_flush', units=['ms', 's', 'm'], minimum=0, bare=True) == 0.5
    with pytest.raises(AnsibleFilterError, match=r"^audit_window: duration '24x' is not valid; write N followed by s, m"):
        seconds('24x', 'audit_window')
    with pytest.raises(AnsibleFilterError, match=r'^seconds: units must be some of ms, s, m, h, d, w'):
        seconds('1y', 'k', units=['y'])
