# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Is a TCP port reachable through the host's nftables input hook? (``nft -j list ruleset``)

Pure Python on purpose: no Ansible imports, so the unit tests import it directly.

A packet reaches a local socket only when every base chain on the input hook accepts it, so
the port is closed when at least one input base chain for each address family has policy
``drop`` and no rule in it (or in a chain it jumps to) may accept a new TCP connection to the
port from another host. The analysis is conservative: a rule is taken to accept the port
unless one of its matches provably excludes it (loopback interface only, connection states
without ``new``, another protocol, a port set without the port).
"""

from __future__ import annotations

import json

# Protocols whose header fields imply the packet is not TCP.
_NOT_TCP_PAYLOADS = {'udp', 'icmp', 'icmpv6', 'sctp', 'dccp', 'udplite', 'esp', 'ah', 'comp', 'igmp'}
_FAMILY_COVERS = {'inet': ('ipv4', 'ipv6'), 'ip': ('ipv4',), 'ip6': ('ipv6',)}


class NftError(ValueError):
    """The input is not an nftables JSON ruleset."""


def _values(right):
    """The literal values on the right of a match, or None when they cannot be listed."""
    if isinstance(right, dict) and 'set' in right:
        right = right['set']
    if isinstance(right, list):
        out = []
        for item in right:
            vals = _values(item)
            if vals is None:
                return None
            out.extend(vals)
        return out
    if isinstance(right, dict) and 'range' in right:
        low, high = right['range']
        return [('range', low, high)]
    if isinstance(right, (str, int)):
        return [right]
    return None


def _port_member(port, right):
    vals = _values(right)
    if vals is None:
        return None
    for val in vals:
        if isinstance(val, tuple):
            try:
                if int(val[1]) <= port <= int(val[2]):
                    return True
            except (TypeError, ValueError):
                return None
        elif str(val) == str(port):
            return True
    return False


def _excludes(match, port):
    """True when this match alone keeps new TCP connections to ``port`` from other hosts out."""
    op = match.get('op', '==')
    left = match.get('left')
    right = match.get('right')
    positive = op in ('==', 'in')
    if not isinstance(left, dict):
        return False
    if 'meta' in left:
        key = left['meta'].get('key')
        if key in ('iif', 'iifname'):
            vals = _values(right)
            return positive and vals is not None and all(str(v) == 'lo' for v in vals)
        if key == 'l4proto':
            vals = _values(right)
            if vals is None:
                return False
            tcp = any(str(v) in ('tcp', '6') for v in vals)
            return (positive and not tcp) or (op == '!=' and tcp)
        return False
    if 'ct' in left and left['ct'].get('key') == 'state':
        vals = _values(right)
        if vals is None:
            return False
        new = any(str(v) in ('new', 'untracked') for v in vals)
        return (positive and not new) or (op == '!=' and new)
    if 'payload' in left:
        proto = left['payload'].get('protocol')
        field = left['payload'].get('field')
        if proto in _NOT_TCP_PAYLOADS:
            return True
        if (proto, field) in (('ip', 'protocol'), ('ip6', 'nexthdr')):
            vals = _values(right)
            if vals is None:
                return False
            tcp = any(str(v) in ('tcp', '6') for v in vals)
            return (positive and not tcp) or (op == '!=' and tcp)
        if proto in ('tcp', 'th') and field == 'dport':
            member = _port_member(port, right)
            if member is None:
                return False
            return (positive and not member) or (op == '!=' and member)
    return False


def _verdict(expr):
    for key in ('accept', 'drop', 'reject', 'jump', 'goto', 'return', 'queue'):
        if key in expr:
            return key, expr[key]
    return None, None


def _describe(rule):
    return '%s %s %s handle %s: %s' % (
        rule.get('family'), rule.get('table'), rule.get('chain'), rule.get('handle'),
        json.dumps(rule.get('expr', []), sort_keys=True, separators=(',', ':')))


def _accepting_rules(rules_by_chain, key, port, seen):
    """Rules in chain ``key`` (and the chains it jumps to) that may accept ``port``."""
    if key in seen:
        return []
    seen = seen | {key}
    found = []
    for rule in rules_by_chain.get(key, []):
        exprs = rule.get('expr') or []
        excluded = False
        for expr in exprs:
            if not isinstance(expr, dict):
                continue
            if 'match' in expr and _excludes(expr['match'], port):
                excluded = True
                break
            verdict, arg = _verdict(expr)
            if verdict is None:
                continue
            if verdict == 'accept':
                found.append(_describe(rule))
            elif verdict in ('jump', 'goto') and isinstance(arg, dict):
                found.extend(_accepting_rules(rules_by_chain, (key[0], key[1], arg.get('target')), port, seen))
            break
        if excluded:
            continue
    return found


def input_exposure(ruleset, port):
    """What the input hook does with new TCP connections to ``port`` from other hosts."""
    if isinstance(ruleset, str):
        try:
            ruleset = json.loads(ruleset)
        except ValueError as exc:
            raise NftError('not JSON: %s' % exc) from None
    if not isinstance(ruleset, dict) or not isinstance(ruleset.get('nftables'), list):
        raise NftError("expected the output of 'nft -j list ruleset' (an object with an 'nftables' list)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise NftError('port: expected 1..65535, got %r' % (port,))

    chains = []
    rules_by_chain = {}
    for item in ruleset['nftables']:
        if not isinstance(item, dict):
            continue
        if 'chain' in item:
            chains.append(item['chain'])
        elif 'rule' in item:
            rule = item['rule']
            rules_by_chain.setdefault((rule.get('family'), rule.get('table'), rule.get('chain')), []).append(rule)

    report = []
    blocked = {'ipv4': False, 'ipv6': False}
    for chain in chains:
        if chain.get('hook') != 'input' or chain.get('family') not in _FAMILY_COVERS:
            continue
        key = (chain.get('family'), chain.get('table'), chain.get('name'))
        accepting = _accepting_rules(rules_by_chain, key, port, frozenset())
        policy = chain.get('policy', 'accept')
        blocks = policy == 'drop' and not accepting
        if blocks:
            for family in _FAMILY_COVERS[chain['family']]:
                blocked[family] = True
        report.append({
            'family': key[0], 'table': key[1], 'chain': key[2], 'policy': policy,
            'accepting_rules': accepting, 'blocks': blocks,
        })
    return {
        'port': port,
        'input_chains': report,
        'policy_drop': bool(report) and all(c['policy'] == 'drop' for c in report),
        'accepting_rules': [r for c in report for r in c['accepting_rules']],
        'blocked': blocked,
        'closed': blocked['ipv4'] and blocked['ipv6'],
    }
