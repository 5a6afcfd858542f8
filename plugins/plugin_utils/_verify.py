# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The security checklist's verdicts (what the common role's verify entry point prints).

The task file gathers the probes (registered results of uri, command, stat, mcp_tools) and
hands them over unchanged; every PASS/FAIL judgement is made here, one function per row kind.
Pure Python on purpose: no Ansible imports, so the unit tests import it directly.
"""

from __future__ import annotations

import re

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._audit import parse_lines, split_lines
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._nft import input_exposure

_NEGOTIATED = re.compile(r'(Protocol *: *|New, )TLSv1')
_NO_CIPHER = re.compile(r'Cipher is \(NONE\)')
_CLIENT_SIDE = re.compile(r'no protocols available|unsupported protocol')
_ERROR_LINE = re.compile(r'[^\n]*(error|alert)[^\n]*')
_ALERT = re.compile(r'alert [a-z ]+')
_SCORE = re.compile(r'Overall exposure level for [^:]+: *([0-9.]+)')


def _row(name, ok, detail):
    return {'name': name, 'ok': bool(ok), 'detail': str(detail).strip()}


def _status(result):
    """A uri result's status, -1 when the probe gave none."""
    return (result or {}).get('status', -1)


def redirect_row(result, want_location):
    location = (result or {}).get('location') or ''
    ok = (_status(result) in (301, 308) and location.startswith('https://')
          and (not want_location or location == want_location))
    return _row('HTTP redirects to HTTPS', ok, '%s -> %s' % ((result or {}).get('status', 'no answer'), location or '-'))


def tls_row(result):
    """One openssl s_client probe: item.accept says whether the server must accept the version."""
    text = (result.get('stdout') or '') + (result.get('stderr') or '')
    rc = result.get('rc')
    negotiated = rc == 0 and bool(_NEGOTIATED.search(text)) and not _NO_CIPHER.search(text)
    if result['item']['accept']:
        error = _ERROR_LINE.search(text)
        detail = 'handshake ok' if negotiated else 'handshake failed: %s' % (error.group(0) if error else 'rc %s' % rc)
        return _row(result['item']['name'], negotiated, detail)
    client_side = bool(_CLIENT_SIDE.search(text)) and 'alert' not in text
    if negotiated:
        detail = 'accepted by the server'
    elif client_side:
        detail = 'the local openssl cannot offer it: inconclusive'
    else:
        alert = _ALERT.search(text)
        detail = 'refused by the server' + (' (%s)' % alert.group(0) if alert else '')
    return _row(result['item']['name'], not negotiated and not client_side, detail)


def auth_rows(noauth, health):
    challenge = (noauth or {}).get('www_authenticate') or ''
    return [
        # One challenge per mode: Basic (basic), Bearer realm (bearer), Bearer resource_metadata (oidc).
        _row('401 and a challenge without credentials',
             _status(noauth) == 401 and re.match(r'(Basic|Bearer) ', challenge),
             '%s, WWW-Authenticate: %s' % ((noauth or {}).get('status', 'no answer'), challenge or '(none)')),
        _row('Health endpoint answers 200', _status(health) == 200, (health or {}).get('status', 'no answer')),
    ]


def audit_row(result, path):
    if (result or {}).get('rc', 1) != 0:
        return _row('Audit log lines are JSON', False, (result or {}).get('stderr', 'cannot read %s' % path))
    entries, invalid = parse_lines(split_lines(result.get('stdout') or ''))
    return _row('Audit log lines are JSON', entries and invalid == 0,
                '%d lines, %d not JSON' % (len(entries) + invalid, invalid))


def env_row(name, stat, path):
    stat = stat or {}
    if not stat.get('exists'):
        return _row(name, False, '%s is missing' % path)
    ok = stat.get('pw_name') == 'root' and stat.get('gr_name') == 'root' and stat.get('mode') == '0600'
    return _row(name, ok, '%s %s:%s %s' % (path, stat.get('pw_name'), stat.get('gr_name'), stat.get('mode')))


def exposure_scores(results):
    """unit -> the overall `systemd-analyze security` score, None when none was printed."""
    scores = {}
    for result in results or []:
        match = _SCORE.search(result.get('stdout') or '')
        scores[result['item']] = float(match.group(1)) if match else None
    return scores


def exposure_row(unit, score, limit):
    limit = float(limit)
    return _row('Exposure of %s <= %s' % (unit, limit), score is not None and score <= limit,
                score if score is not None else 'no score')


def listening(ss_stdout, port):
    """The distinct local addresses of `ss -H -t -l -n` listening on the port, in order."""
    found = []
    for address in re.findall(r'(\S+:%s)\s' % re.escape(str(port)), ss_stdout or ''):
        if address not in found:
            found.append(address)
    return found


def listen_row(name, ss_stdout, port):
    found = listening(ss_stdout, port)
    return _row(name, found, ' '.join(found) or 'nothing listens on %s' % port)


def nobody_row(result):
    result = result or {}
    lines = result.get('stdout_lines') or []
    ok = result.get('rc', 1) == 0 and lines and not [line for line in lines if line.endswith(' open')]
    return _row('Only nginx and root reach the backend (nobody refused)', ok,
                ', '.join(lines) or result.get('stderr', 'no answer'))


def nft_exposure(result, port):
    """nft_input_exposure of the ruleset for the port, {} when `nft -j list ruleset` failed."""
    if (result or {}).get('rc', 1) != 0:
        return {}
    return input_exposure(result.get('stdout'), int(port))


def nft_row(result, port):
    # Closed: an input chain of the collection's (policy drop) accepts no new connection to the
    # port for either family; other tables (the host's own, policy accept) cannot reopen it.
    nft = nft_exposure(result, port)
    if nft:
        policies = []
        for chain in nft['input_chains']:
            if str(chain['policy']) not in policies:
                policies.append(str(chain['policy']))
        accepting = '; '.join(nft['accepting_rules']) or 'none'
        detail = 'input policy %s, accepting rules: %s' % ('/'.join(policies) or 'none', accepting)
    else:
        detail = 'nft failed: %s' % (result or {}).get('stderr', (result or {}).get('msg', '?'))
    return _row('nftables input drops %s' % port, nft.get('closed', False), detail)


def other_server_rows(result, probes, scores):
    """The rows of a server besides the default one: env file, exposure, listening, firewall.

    result: the stat of its env file, looped over the server (item: name, unit, port, env_file).
    """
    server = result['item']
    unit = server['unit'] + '@0'
    nft = nft_exposure(probes.get('nft'), server['port'])
    closed = nft.get('closed', False)
    return [
        env_row('Env file of %s is 0600 root:root' % server['name'], result.get('stat'), server['env_file']),
        exposure_row(unit, scores.get(unit), probes['limits']['supergateway']),
        listen_row('%s listens on %s' % (server['name'], server['port']), (probes.get('ss') or {}).get('stdout'),
                   server['port']),
        _row('nftables input drops %s' % server['port'], closed, 'input closed' if closed else 'open or unknown'),
    ]


def pin_row(result):
    """One pinned server's mcp_tools result: drift names the tool, its pin and the server's digest."""
    drift = result.get('drift') or []
    report = result.get('report') or []
    removed = [r['tool'] for r in report if r.get('status') == 'removed']
    answered = not result.get('failed', False) and 'drift' in result
    if not answered:
        detail = result.get('msg', 'no answer')
    elif drift:
        detail = '; '.join('%s %s: pin %s, server %s' % (d['tool'], d['status'], d.get('pin') or '-', d.get('digest'))
                           for d in drift)
    else:
        detail = '%d tools match their pins' % len([r for r in report if r.get('status') != 'removed'])
        if removed:
            detail += ', pinned but not listed: ' + ' '.join(removed)
    # item: the server's entry of njs_policy.servers ({key: name, value: {tool_pinning: {mode, pins}}}).
    item = result['item']
    name = 'Tools of %s match their pins (%s)' % (item['key'], item['value']['tool_pinning']['mode'])
    return _row(name, answered and not drift, detail)


def host_rows(probes, scores):
    """The rows of the default server and the host: audit, env file, exposures, listening, nobody, nft."""
    service, port, limits = probes['service'], probes['backend_port'], probes['limits']
    return [
        audit_row(probes.get('audit'), probes['audit_log']),
        env_row('Env file is 0600 root:root', probes.get('env'), probes['env_file']),
        exposure_row(service, scores.get(service), limits['supergateway']),
        exposure_row('nginx', scores.get('nginx'), limits['nginx']),
        listen_row('supergateway listens on %s' % port, (probes.get('ss') or {}).get('stdout'), port),
        nobody_row(probes.get('nobody')),
        nft_row(probes.get('nft'), port),
    ]


def checks(probes):
    """Every row of the checklist, in the order it is printed."""
    scores = exposure_scores(probes.get('exposure'))
    rows = [redirect_row(probes.get('redirect'), probes.get('want_location') or '')]
    rows += [tls_row(r) for r in probes.get('tls') or []]
    rows += auth_rows(probes.get('noauth'), probes.get('health'))
    if probes.get('idp') is not None:
        rows.append(_row('IdP discovery and JWKS verified (oidc)', probes['idp']['ok'], probes['idp']['detail']))
    rows += host_rows(probes, scores)
    for result in probes.get('others') or []:
        rows += other_server_rows(result, probes, scores)
    rows += [pin_row(r) for r in probes.get('pins') or [] if not r.get('skipped')]
    return rows


def table(rows):
    """The printed table: a header, then one 'PASS'/'FAIL' line per row."""
    lines = ['RESULT  %-42s %s' % ('CHECK', 'DETAIL')]
    lines += ['%-6s  %-42s %s' % ('PASS' if row['ok'] else 'FAIL', row['name'], row['detail']) for row in rows]
    return lines
