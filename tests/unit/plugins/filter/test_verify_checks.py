# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""verify_checks: every row of the security checklist, passing and failing, and the printed table."""

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.verify_checks import verify_checks

SERVICE = 'mcpsec-supergateway@0'
SS = 'LISTEN 0 511 0.0.0.0:8000 0.0.0.0:*\nLISTEN 0 511 [::]:8000 [::]:*\nLISTEN 0 511 0.0.0.0:8008 0.0.0.0:*\n'
EXPOSURE = '→ Overall exposure level for %s.service: %s OK :-)\n'


def _ruleset(policy='drop', extra_rules=()):
    items = [{'metainfo': {'json_schema_version': 1}},
             {'table': {'family': 'inet', 'name': 'mcpsec_filter', 'handle': 1}},
             {'chain': {'family': 'inet', 'table': 'mcpsec_filter', 'name': 'input', 'handle': 1,
                        'type': 'filter', 'hook': 'input', 'prio': 0, 'policy': policy}}]
    items += [{'rule': dict(r, family='inet', table='mcpsec_filter', chain='input', handle=i + 2)}
              for i, r in enumerate(extra_rules)]
    return json.dumps({'nftables': items})


ACCEPT_8000 = {'expr': [{'match': {'op': '==', 'left': {'payload': {'protocol': 'tcp', 'field': 'dport'}},
                                   'right': 8000}}, {'accept': None}]}


def _tls(name, accept, rc, text):
    return {'item': {'name': name, 'accept': accept}, 'rc': rc, 'stdout': text, 'stderr': ''}


def good():
    """Probes of a healthy gateway with one other server (time, port 8008) and one pinned server."""
    return {
        'service': SERVICE, 'backend_port': 8000, 'limits': {'supergateway': 2.0, 'nginx': 3.0},
        'want_location': 'https://gw.example/mcp?verify=1',
        'redirect': {'status': 301, 'location': 'https://gw.example/mcp?verify=1'},
        'tls': [_tls('TLS 1.0 refused', False, 1, 'alert protocol version\n'),
                _tls('TLS 1.2 accepted', True, 0, 'New, TLSv1.2, Cipher is ECDHE\n')],
        'noauth': {'status': 401, 'www_authenticate': 'Basic realm="mcp"'},
        'health': {'status': 200},
        'idp': None,
        'audit': {'rc': 0, 'stdout': '{"status": 200}\n{"status": 401}\n', 'stderr': ''},
        'audit_log': '/var/log/nginx/mcpsec-audit.log',
        'env': {'exists': True, 'pw_name': 'root', 'gr_name': 'root', 'mode': '0600'},
        'env_file': '/etc/mcpsec/mcp-server.env',
        'exposure': [{'item': SERVICE, 'stdout': EXPOSURE % (SERVICE, '1.1')},
                     {'item': 'mcpsec-sg-time@0', 'stdout': EXPOSURE % ('mcpsec-sg-time@0', '1.2')},
                     {'item': 'nginx', 'stdout': EXPOSURE % ('nginx', '2.5')}],
        'ss': {'rc': 0, 'stdout': SS},
        'nobody': {'rc': 0, 'stdout_lines': ['127.0.0.1:8000 ConnectionRefusedError', '::1:8000 TimeoutError'],
                   'stderr': ''},
        'nft': {'rc': 0, 'stdout': _ruleset(), 'stderr': ''},
        'others': [{'item': {'name': 'time', 'unit': 'mcpsec-sg-time', 'port': 8008,
                             'env_file': '/etc/mcpsec/servers/time.env', 'path': '/time/mcp'},
                    'stat': {'exists': True, 'pw_name': 'root', 'gr_name': 'root', 'mode': '0600'}}],
        'pins': [{'item': {'key': 'pinned', 'value': {'tool_pinning': {'mode': 'enforce', 'pins': {}}}},
                  'drift': [], 'report': [{'tool': 'echo', 'status': 'unchanged'}, {'tool': 'old', 'status': 'removed'}]},
                 {'item': {'key': 'time'}, 'skipped': True}],
    }


def rows(probes):
    return {row['name']: row for row in verify_checks(probes)['checks']}


def test_a_healthy_gateway_passes_every_row():
    result = verify_checks(good())
    assert result['failed'] == []
    assert [r['name'] for r in result['checks']] == [
        'HTTP redirects to HTTPS', 'TLS 1.0 refused', 'TLS 1.2 accepted',
        '401 and a challenge without credentials', 'Health endpoint answers 200',
        'Audit log lines are JSON', 'Env file is 0600 root:root', 'Exposure of %s <= 2.0' % SERVICE,
        'Exposure of nginx <= 3.0', 'supergateway listens on 8000',
        'Only nginx and root reach the backend (nobody refused)', 'nftables input drops 8000',
        'Env file of time is 0600 root:root', 'Exposure of mcpsec-sg-time@0 <= 2.0', 'time listens on 8008',
        'nftables input drops 8008', 'Tools of pinned match their pins (enforce)']
    details = {r['name']: r['detail'] for r in result['checks']}
    assert details['HTTP redirects to HTTPS'] == '301 -> https://gw.example/mcp?verify=1'
    assert details['TLS 1.0 refused'] == 'refused by the server (alert protocol version)'
    assert details['TLS 1.2 accepted'] == 'handshake ok'
    assert details['401 and a challenge without credentials'] == '401, WWW-Authenticate: Basic realm="mcp"'
    assert details['Audit log lines are JSON'] == '2 lines, 0 not JSON'
    assert details['Env file is 0600 root:root'] == '/etc/mcpsec/mcp-server.env root:root 0600'
    assert details['Exposure of %s <= 2.0' % SERVICE] == '1.1'
    assert details['supergateway listens on 8000'] == '0.0.0.0:8000 [::]:8000'
    assert details['nftables input drops 8000'] == 'input policy drop, accepting rules: none'
    assert details['nftables input drops 8008'] == 'input closed'
    assert details['Tools of pinned match their pins (enforce)'] == '1 tools match their pins, pinned but not listed: old'


def test_the_table_keeps_its_printed_form():
    table = verify_checks(good())['table']
    assert table[0] == 'RESULT  %-42s %s' % ('CHECK', 'DETAIL')
    assert table[1] == 'PASS    HTTP redirects to HTTPS                    301 -> https://gw.example/mcp?verify=1'
    probes = good()
    probes['health'] = {'status': 502}
    assert 'FAIL    Health endpoint answers 200                502' in verify_checks(probes)['table']


def _set(probes, path, value):
    target = probes
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


# (the row, where the probes change, the new value, the detail the failing row shows)
FAILURES = [
    ('HTTP redirects to HTTPS', ['redirect'], {'status': 302, 'location': 'https://gw.example/mcp?verify=1'},
     '302 -> https://gw.example/mcp?verify=1'),
    ('HTTP redirects to HTTPS', ['redirect'], {'status': 301, 'location': 'https://evil.example/'},
     '301 -> https://evil.example/'),
    ('HTTP redirects to HTTPS', ['redirect'], {'msg': 'Connection refused'}, 'no answer -> -'),
    ('TLS 1.0 refused', ['tls', 0], _tls('TLS 1.0 refused', False, 0, 'Protocol  : TLSv1\nCipher is X\n'),
     'accepted by the server'),
    ('TLS 1.0 refused', ['tls', 0], _tls('TLS 1.0 refused', False, 1, 'no protocols available\n'),
     'the local openssl cannot offer it: inconclusive'),
    ('TLS 1.2 accepted', ['tls', 1], _tls('TLS 1.2 accepted', True, 1, 'x\n40E7:error:0A00042E:tlsv1 alert\n'),
     'handshake failed: 40E7:error:0A00042E:tlsv1 alert'),
    ('TLS 1.2 accepted', ['tls', 1], _tls('TLS 1.2 accepted', True, 0, 'New, TLSv1.2, Cipher is (NONE)\n'),
     'handshake failed: rc 0'),
    ('401 and a challenge without credentials', ['noauth'], {'status': 200}, '200, WWW-Authenticate: (none)'),
    ('401 and a challenge without credentials', ['noauth'], {'status': 401, 'www_authenticate': 'Digest x'},
     '401, WWW-Authenticate: Digest x'),
    ('Health endpoint answers 200', ['health'], {'msg': 'refused'}, 'no answer'),
    ('Audit log lines are JSON', ['audit'], {'rc': 0, 'stdout': '{"a": 1}\nnot json\n'}, '2 lines, 1 not JSON'),
    ('Audit log lines are JSON', ['audit'], {'rc': 0, 'stdout': ''}, '0 lines, 0 not JSON'),
    ('Audit log lines are JSON', ['audit'], {'rc': 1, 'stderr': 'tail: cannot open'}, 'tail: cannot open'),
    ('Env file is 0600 root:root', ['env'], {'exists': True, 'pw_name': 'root', 'gr_name': 'root', 'mode': '0644'},
     '/etc/mcpsec/mcp-server.env root:root 0644'),
    ('Env file is 0600 root:root', ['env'], {'exists': False}, '/etc/mcpsec/mcp-server.env is missing'),
    ('Exposure of %s <= 2.0' % SERVICE, ['exposure', 0], {'item': SERVICE, 'stdout': EXPOSURE % (SERVICE, '9.6')},
     '9.6'),
    ('Exposure of nginx <= 3.0', ['exposure', 2], {'item': 'nginx', 'stdout': 'Failed to analyze'}, 'no score'),
    ('supergateway listens on 8000', ['ss'], {'rc': 0, 'stdout': 'LISTEN 0 5 0.0.0.0:80008 *\n'},
     'nothing listens on 8000'),
    ('Only nginx and root reach the backend (nobody refused)', ['nobody'],
     {'rc': 0, 'stdout_lines': ['127.0.0.1:8000 open', '::1:8000 ConnectionRefusedError']},
     '127.0.0.1:8000 open, ::1:8000 ConnectionRefusedError'),
    ('Only nginx and root reach the backend (nobody refused)', ['nobody'],
     {'rc': 1, 'stdout_lines': [], 'stderr': 'runuser: failed'}, 'runuser: failed'),
    ('nftables input drops 8000', ['nft'], {'rc': 0, 'stdout': _ruleset(extra_rules=[ACCEPT_8000])},
     'input policy drop, accepting rules: inet mcpsec_filter input handle 2: [{"match":{"left":{"payload":'
     '{"field":"dport","protocol":"tcp"}},"op":"==","right":8000}},{"accept":null}]'),
    ('nftables input drops 8000', ['nft'], {'rc': 0, 'stdout': _ruleset(policy='accept')},
     'input policy accept, accepting rules: none'),
    ('nftables input drops 8000', ['nft'], {'rc': 1, 'stderr': 'nft: permission denied'},
     'nft failed: nft: permission denied'),
    ('nftables input drops 8008', ['nft'], {'rc': 1, 'stderr': 'x'}, 'open or unknown'),
    ('Env file of time is 0600 root:root', ['others', 0, 'stat'], {'exists': False},
     '/etc/mcpsec/servers/time.env is missing'),
    ('Exposure of mcpsec-sg-time@0 <= 2.0', ['exposure', 1], {'item': 'mcpsec-sg-time@0', 'stdout': ''}, 'no score'),
    ('time listens on 8008', ['ss'], {'rc': 0, 'stdout': 'LISTEN 0 511 0.0.0.0:8000 0.0.0.0:*\n'},
     'nothing listens on 8008'),
    ('Tools of pinned match their pins (enforce)', ['pins', 0, 'drift'],
     [{'tool': 'echo', 'status': 'changed', 'pin': 'sha256:aa', 'digest': 'sha256:bb'},
      {'tool': 'new', 'status': 'new', 'pin': None, 'digest': 'sha256:cc'}],
     'echo changed: pin sha256:aa, server sha256:bb; new new: pin -, server sha256:cc'),
    ('Tools of pinned match their pins (enforce)', ['pins', 0],
     {'item': {'key': 'pinned', 'value': {'tool_pinning': {'mode': 'enforce'}}}, 'failed': True,
      'msg': 'connection refused'}, 'connection refused'),
]


@pytest.mark.parametrize('name,path,value,detail', FAILURES, ids=['%s-%d' % (f[0], i) for i, f in enumerate(FAILURES)])
def test_each_row_fails_on_its_own_defect(name, path, value, detail):
    probes = good()
    _set(probes, path, value)
    result = rows(probes)
    assert result[name]['ok'] is False
    assert result[name]['detail'] == detail
    assert name in verify_checks(probes)['failed']


def test_a_redirect_to_any_https_url_passes_without_a_public_url():
    probes = good()
    probes['want_location'] = ''
    probes['redirect'] = {'status': 308, 'location': 'https://other.example/mcp?verify=1'}
    assert rows(probes)['HTTP redirects to HTTPS']['ok'] is True


def test_the_idp_row_is_there_for_oidc_only():
    assert 'IdP discovery and JWKS verified (oidc)' not in rows(good())
    probes = good()
    probes['idp'] = {'ok': False, 'detail': 'jwks_uri: connect failed'}
    row = rows(probes)['IdP discovery and JWKS verified (oidc)']
    assert (row['ok'], row['detail']) == (False, 'jwks_uri: connect failed')
    probes['idp'] = {'ok': True, 'detail': '2 keys'}
    assert rows(probes)['IdP discovery and JWKS verified (oidc)']['ok'] is True


def test_the_limits_are_compared_as_numbers():
    probes = good()
    probes['limits'] = {'supergateway': '1.0', 'nginx': '3'}
    result = rows(probes)
    assert result['Exposure of %s <= 1.0' % SERVICE]['ok'] is False
    assert result['Exposure of nginx <= 3.0']['ok'] is True


@pytest.mark.parametrize('probes,message', [
    ([], 'expected the probes as a dict, got list'),
    ({'tls': []}, 'the probes lack'),
])
def test_bad_probes_name_the_problem(probes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        verify_checks(probes)
