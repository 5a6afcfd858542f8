# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.audit_summary import audit_summary
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._audit import parse_window, summarize

NOW = '2026-11-25T12:00:00+00:00'


def line(minutes_ago, **fields):
    entry = {'time': '2026-11-25T%02d:%02d:00+00:00' % divmod(12 * 60 - minutes_ago, 60)}
    entry.update(fields)
    return json.dumps(entry)


LOG = [
    line(5, client='10.0.0.1', subject='alice', method='tools/call', tool='echo', decision='allow', status=200),
    line(6, client='10.0.0.1', subject='alice', method='tools/call', tool='echo', decision='allow', status=200),
    line(7, client='10.0.0.1', subject='alice', method='tools/call', tool='get-sum', decision='allow', status=200),
    line(8, client='10.0.0.2', subject='bob', method='tools/call', tool='printEnv', decision='deny',
         reason='tool_not_allowed', status=403),
    line(9, client='10.0.0.2', subject='bob', method='tools/call', tool='printEnv', decision='deny', status=403),
    line(10, client='10.0.0.2', subject='bob', method='tools/call', tool='echo', decision='limit', status=429),
    line(11, client='10.0.0.3', subject='carol', method='tools/list', decision='allow', status=200),
    line(12, client='10.0.0.3', subject='carol', method='tools/call', tool='echo', status=429),
    line(13, client='10.0.0.3', subject='carol', method='tools/call', tool='echo', status=429),
    line(14, client='10.0.0.9', status=401),
    line(15, client='10.0.0.9', subject='', status=429),
    line(16, subject='alice', method='tools/call', tool='echo', status=502),
    # Outside a 1h window:
    line(180, subject='mallory', status=403),
]


def test_counts_rankings_and_error_rate_over_a_window():
    s = summarize(LOG, window='1h', now=NOW, top=3)
    assert s['total'] == 12
    assert s['outside_window'] == 1
    assert s['top_users_429'] == [{'name': 'carol', 'count': 2}, {'name': 'anonymous@10.0.0.9', 'count': 1},
                                  {'name': 'bob', 'count': 1}]
    assert s['top_users_403'] == [{'name': 'bob', 'count': 2}]
    assert s['top_tools'][0] == {'name': 'echo', 'count': 6}
    assert s['top_tools'][1:] == [{'name': 'printEnv', 'count': 2}, {'name': 'get-sum', 'count': 1}]
    # 403 x2, 429 x4, 401, 502 -> 8 of 12
    assert s['errors'] == 8
    assert s['error_rate'] == pytest.approx(8 / 12, abs=1e-4)
    assert s['server_errors'] == 1
    assert s['status_counts'] == {'200': 4, '401': 1, '403': 2, '429': 4, '502': 1}
    assert s['decisions'] == {'allow': 4, 'deny': 2, 'limit': 1}


def test_without_a_window_every_line_counts():
    s = summarize(LOG, now=NOW)
    assert s['total'] == 13
    assert s['top_users_403'][0] == {'name': 'bob', 'count': 2}
    assert {'name': 'mallory', 'count': 1} in s['top_users_403']


def test_since_and_until_bound_the_window():
    s = summarize(LOG, since='2026-11-25T11:50:00+00:00', until='2026-11-25T11:53:00Z', now=NOW)
    # minutes_ago 7..10 -> 11:50..11:53
    assert s['total'] == 4
    assert s['top_users_403'] == [{'name': 'bob', 'count': 2}]


def test_tolerates_missing_fields_bad_lines_and_odd_values():
    lines = [
        '', 'not json', '[1, 2]', '{"status": "abc"}', '{"time": "yesterday", "status": 200}',
        json.dumps({'time': NOW}), json.dumps({'time': NOW, 'subject': '-', 'tool': '-', 'status': '429'}),
        json.dumps({'time': NOW, 'subject': None, 'client': None, 'status': 403, 'tool': {'x': 1}}),
    ]
    s = summarize(lines, now=NOW)
    assert s['invalid_lines'] == 2
    assert s['total'] == 5
    assert s['untimed_lines'] == 2
    assert s['status_counts'] == {'200': 1, '403': 1, '429': 1, 'unknown': 2}
    assert s['top_users_429'] == [{'name': 'anonymous', 'count': 1}]
    assert s['top_tools'] == []
    windowed = summarize(lines, window='1h', now=NOW)
    assert windowed['total'] == 3
    assert windowed['untimed_lines'] == 2


def test_empty_log():
    s = summarize('', window='24h', now=NOW)
    assert s['total'] == 0 and s['error_rate'] == 0.0 and s['top_tools'] == []


@pytest.mark.parametrize('value, seconds', [('90s', 90), ('15m', 900), ('24h', 86400), ('7d', 604800),
                                            ('1w', 604800), (3600, 3600), (' 2h ', 7200)])
def test_windows(value, seconds):
    assert parse_window(value) == seconds


def test_filter_adds_the_report_lines_and_accepts_a_string():
    s = audit_summary('\n'.join(LOG), window='1h', now=NOW, top=2)
    assert s['total'] == 12
    report = '\n'.join(s['report'])
    assert 'top users 429   carol=2, anonymous@10.0.0.9=1' in report
    assert 'top users 403   bob=2' in report
    assert 'top tools       echo=6, printEnv=2' in report
    assert 'error rate      66.7% (8 of 12' in report


@pytest.mark.parametrize('kwargs, message', [
    ({'window': '24x'}, 'window:'),
    ({'window': 0}, 'window:'),
    ({'since': 'yesterday'}, 'since:'),
    ({'now': 'noon'}, 'now:'),
    ({'top': 0}, 'top:'),
])
def test_filter_names_the_bad_argument(kwargs, message):
    kwargs.setdefault('now', NOW)
    with pytest.raises(AnsibleFilterError, match='audit_summary: ' + message):
        audit_summary(LOG, **kwargs)


def test_filter_rejects_a_mapping():
    with pytest.raises(AnsibleFilterError, match='string or a list'):
        audit_summary({'a': 1})


# Characters str.splitlines() treats as line ends. nginx's escape=json leaves U+2028,
# U+2029 and U+0085 raw (valid JSON); the others are control characters JSON refuses raw.
RAW_IN_JSON = ['\u2028', '\u2029', '\u0085']
CONTROLS = ['\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e']


def denied_lines(char):
    line = json.dumps({'time': NOW, 'subject': 'mallory', 'method': 'tools/call', 'tool': 'xQy',
                       'decision': 'deny', 'status': 403}).replace('xQy', 'x%sy' % char)
    return [line] * 6


@pytest.mark.parametrize('char', RAW_IN_JSON + CONTROLS, ids=lambda c: 'U+%04X' % ord(c))
def test_lines_end_at_newline_only(char):
    # Six denied calls whose tool name carries a character splitlines() would split at
    # are six lines (once they were 1 request plus 10 invalid lines).
    denied = denied_lines(char)
    text = '\n'.join(denied) + '\n'
    valid = char in RAW_IN_JSON
    for given in (text, [text], denied):
        s = summarize(given, now=NOW)
        assert (s['total'], s['invalid_lines']) == ((6, 0) if valid else (0, 6)), (given, s)
    if valid:
        s = audit_summary(text, now=NOW)
        assert s['top_users_403'] == [{'name': 'mallory', 'count': 6}]
        assert s['top_tools'] == [{'name': 'x%sy' % char, 'count': 6}]


def test_a_list_of_whole_files_is_split_into_lines():
    older, newer = '\n'.join(LOG[:6]) + '\n', '\n'.join(LOG[6:]) + '\n'
    s = summarize([older, newer], window='1h', now=NOW)
    assert (s['total'], s['outside_window'], s['invalid_lines']) == (12, 1, 0)


def test_max_lines_keeps_the_newest_lines():
    # LOG is oldest last; reversed, the last three lines are the three newest.
    s = summarize(list(reversed(LOG)) + ['', '  '], now=NOW, max_lines=3)
    assert s['total'] == 3
    assert s['first'] == '2026-11-25T11:53:00+00:00' and s['last'] == '2026-11-25T11:55:00+00:00'
    assert audit_summary('\n'.join(LOG), now=NOW, max_lines=1)['total'] == 1


@pytest.mark.parametrize('bad', [0, -1, True, '10'])
def test_max_lines_must_be_a_positive_integer(bad):
    with pytest.raises(Exception, match='max_lines'):
        summarize(LOG, now=NOW, max_lines=bad)


def test_targets_of_every_method_and_millisecond_times():
    """Lines as the gateway writes them now: milliseconds in the time, target_type and target."""
    log = [json.dumps({'time': '2026-11-25T11:59:00.250+00:00', 'subject': 'bob', 'method': 'resources/read',
                       'target_type': 'resource', 'target': 'demo://doc/a', 'status': 200}),
           json.dumps({'time': '2026-11-25T11:58:00.999+00:00', 'subject': 'bob', 'method': 'resources/read',
                       'target_type': 'resource', 'target': 'demo://doc/a', 'status': 403}),
           json.dumps({'time': '2026-11-25T11:57:00.001+00:00', 'subject': 'bob', 'method': 'prompts/get',
                       'target_type': 'prompt', 'target': 'simple-prompt', 'status': 200})]
    s = summarize(log, window='1h', now=NOW)
    assert s['total'] == 3 and s['untimed_lines'] == 0 and s['outside_window'] == 0
    assert s['first'] == '2026-11-25T11:57:00.001000+00:00'
    assert s['top_targets'] == [{'name': 'resource demo://doc/a', 'count': 2},
                                {'name': 'prompt simple-prompt', 'count': 1}]


def test_each_server_is_summarised_and_lines_without_one_count_as_default():
    """Issue 20: the audit line names the MCP server; older lines (no "server") are the default one's."""
    log = LOG[:6] + [
        line(20, server='time', client='10.0.0.4', subject='dave', method='tools/call', tool='get_current_time',
             decision='allow', status=200),
        line(21, server='time', client='10.0.0.4', subject='dave', method='tools/call', tool='get_current_time',
             decision='allow', status=200),
        line(22, server='time', client='10.0.0.2', subject='bob', method='tools/call', tool='convert_time',
             decision='deny', reason='tool_denied', status=403),
        line(23, server='default', subject='alice', method='tools/call', tool='echo', status=200),
        line(24, server='', subject='alice', method='tools/list', status=200),
        line(25, server='-', subject='carol', method='tools/call', tool='echo', status=429),
        line(26, server='a-search', subject='erin', method='initialize', status=502),
    ]
    s = summarize(log, window='1h', now=NOW)
    assert s['total'] == 13
    assert list(s['servers']) == ['default', 'a-search', 'time']
    default, time = s['servers']['default'], s['servers']['time']
    # 6 lines without the field + "default" + "" + "-"
    assert default['total'] == 9
    assert default['status_counts'] == {'200': 5, '403': 2, '429': 2}
    assert default['top_users_403'] == [{'name': 'bob', 'count': 2}]
    assert default['top_users_429'] == [{'name': 'bob', 'count': 1}, {'name': 'carol', 'count': 1}]
    assert time['total'] == 3 and time['errors'] == 1 and time['error_rate'] == pytest.approx(1 / 3, abs=1e-4)
    assert time['top_tools'] == [{'name': 'get_current_time', 'count': 2}, {'name': 'convert_time', 'count': 1}]
    assert time['top_users_403'] == [{'name': 'bob', 'count': 1}] and time['top_users_429'] == []
    assert s['servers']['a-search']['server_errors'] == 1
    # the whole log's counts are the sum of the servers'
    assert sum(v['total'] for v in s['servers'].values()) == s['total']
    assert set(default) == set(time) and 'since' not in default and 'invalid_lines' not in default

    report = audit_summary(log, window='1h', now=NOW, top=2)['report']
    assert 'servers         default=9, a-search=1, time=3' in report
    assert ('server time     3 requests, error rate 33.3% (1 >= 400, 0 >= 500); 429 -; 403 bob=1; '
            'tools get_current_time=2, convert_time=1') in report
    assert report[-4].startswith('servers ') and report[-3].startswith('server default  9 requests')


def test_a_log_of_one_server_is_all_default():
    s = audit_summary(LOG, window='1h', now=NOW)
    assert list(s['servers']) == ['default'] and s['servers']['default']['total'] == s['total'] == 12
    assert s['report'][-2:] == [
        'servers         default=12',
        'server default  12 requests, error rate 66.7% (8 >= 400, 1 >= 500); 429 carol=2, anonymous@10.0.0.9=1, '
        'bob=1; 403 bob=2; tools echo=6, printEnv=2, get-sum=1']
    assert summarize('', now=NOW)['servers'] == {}
