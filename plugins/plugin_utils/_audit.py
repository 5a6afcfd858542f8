# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Summaries of the gateway's JSON audit log (one JSON object per line).

Pure Python on purpose: no Ansible imports, so the unit tests import it directly.

A line has (all optional) ``time`` (ISO 8601), ``client``, ``server`` (the MCP server
the request was for), ``subject``, ``roles``, ``method`` (the JSON-RPC method), ``tool``,
``decision``, ``reason``, ``status``, ``bytes``, ``request_time`` and ``upstream_time``.
Missing, empty or ``"-"`` fields are tolerated; a line that is not a JSON object is
counted as invalid, never fatal. A line without ``server`` (written before a host served
several servers) counts for the server named ``default``.

Lines end at ``\n`` only: nginx writes one line per request ending in ``\n``, and a
field may hold U+2028, U+2029, U+0085, ``\r``, ``\v`` or ``\f``, which
``str.splitlines()`` would treat as line ends (splitting one request into several
invalid lines).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

from ._units import UnitError, parse_duration

DEFAULT_SERVER = 'default'
# The counts a per-server summary keeps (the window and line counts are the log's, not a server's).
_SERVER_KEYS = ('total', 'status_counts', 'errors', 'error_rate', 'server_errors', 'server_error_rate',
                'top_users_429', 'top_users_403', 'top_tools', 'top_targets', 'top_methods', 'top_users',
                'decisions')


WINDOW_UNITS = ('s', 'm', 'h', 'd', 'w')


class AuditError(ValueError):
    """An argument of the summary is wrong (never raised for bad log lines)."""


def parse_time(value):
    """An aware datetime from an ISO 8601 string (``Z`` allowed); None when unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(('Z', 'z')):
        text = text[:-1] + '+00:00'
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def parse_window(value):
    """Seconds from ``90s``, ``15m``, ``24h``, ``7d``, ``1w`` or a plain integer of seconds."""
    try:
        return parse_duration(value, 'window', units=WINDOW_UNITS)
    except UnitError as exc:
        raise AuditError(str(exc)) from None


def _text(value):
    if value is None:
        return ''
    if isinstance(value, (dict, list)):
        return ''
    text = str(value).strip()
    return '' if text == '-' else text


def _status(value):
    try:
        status = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return status if 100 <= status <= 599 else None


def _who(entry):
    """The user a line is charged to: the subject, else the client address."""
    subject = _text(entry.get('subject'))
    if subject:
        return subject
    client = _text(entry.get('client'))
    return ('anonymous@' + client) if client else 'anonymous'


def _server(entry):
    """The MCP server a line is for: ``default`` when the line does not say (older lines)."""
    return _text(entry.get('server')) or DEFAULT_SERVER


def _top(counter, top):
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{'name': name, 'count': count} for name, count in ranked[:top]]


def split_lines(log):
    """The lines of a log given as one string or as a list of strings, split at ``\n`` only."""
    if log is None:
        return []
    if isinstance(log, str):
        return log.split('\n')
    lines = []
    for item in log:
        lines.extend(str(item).split('\n'))
    return lines


def parse_lines(lines):
    """(entries, invalid) from an iterable of text lines; blank lines are skipped."""
    entries = []
    invalid = 0
    for line in lines:
        if not isinstance(line, str):
            line = str(line)
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            invalid += 1
            continue
        if not isinstance(entry, dict):
            invalid += 1
            continue
        entries.append(entry)
    return entries, invalid


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AuditError('%s: expected a positive integer, got %r' % (name, value))
    return value


def _time_option(name, value):
    parsed = parse_time(value)
    if parsed is None:
        raise AuditError('%s: expected an ISO 8601 time, got %r' % (name, value))
    return parsed


def _bounds(window, since, until, now):
    """(since_dt or None, until_dt, bounded): the window the options describe."""
    now_dt = _time_option('now', now) if now is not None else datetime.now(timezone.utc)
    until_dt = _time_option('until', until) if until is not None else now_dt
    if since is not None:
        since_dt = _time_option('since', since)
    elif window is not None:
        since_dt = until_dt - timedelta(seconds=parse_window(window))
    else:
        since_dt = None
    return since_dt, until_dt, since_dt is not None or until is not None


class _Tally(object):
    """The counters of a summary, one entry at a time."""

    def __init__(self):
        self.statuses = Counter()
        self.rate_limited = Counter()
        self.forbidden = Counter()
        self.tools = Counter()
        self.targets = Counter()
        self.methods = Counter()
        self.decisions = Counter()
        self.users = Counter()
        self.untimed = self.outside = self.total = 0
        self.first = self.last = None

    def admit(self, when, since_dt, until_dt, bounded):
        """Whether an entry of time `when` counts, noting why not."""
        if when is None:
            self.untimed += 1
            return not bounded
        if bounded and ((since_dt is not None and when < since_dt) or when > until_dt):
            self.outside += 1
            return False
        self.first = when if self.first is None or when < self.first else self.first
        self.last = when if self.last is None or when > self.last else self.last
        return True

    def add(self, entry):
        self.total += 1
        status = _status(entry.get('status'))
        self.statuses[str(status) if status else 'unknown'] += 1
        who = _who(entry)
        self.users[who] += 1
        if status == 429:
            self.rate_limited[who] += 1
        elif status == 403:
            self.forbidden[who] += 1
        for counter, key in ((self.methods, 'method'), (self.tools, 'tool'), (self.decisions, 'decision')):
            value = _text(entry.get(key))
            if value:
                counter[value] += 1
        target_type, target = _text(entry.get('target_type')), _text(entry.get('target'))
        if target_type and target:
            self.targets['%s %s' % (target_type, target)] += 1

    def result(self, since_dt, until_dt, bounded, invalid, top):
        errors = sum(n for s, n in self.statuses.items() if s != 'unknown' and int(s) >= 400)
        server_errors = sum(n for s, n in self.statuses.items() if s != 'unknown' and int(s) >= 500)
        total = self.total
        return {
            'since': since_dt.isoformat() if since_dt else None,
            'until': until_dt.isoformat() if bounded else None,
            'total': total,
            'invalid_lines': invalid,
            'untimed_lines': self.untimed,
            'outside_window': self.outside,
            'first': self.first.isoformat() if self.first else None,
            'last': self.last.isoformat() if self.last else None,
            'status_counts': dict(sorted(self.statuses.items())),
            'errors': errors,
            'error_rate': round(errors / total, 4) if total else 0.0,
            'server_errors': server_errors,
            'server_error_rate': round(server_errors / total, 4) if total else 0.0,
            'top_users_429': _top(self.rate_limited, top),
            'top_users_403': _top(self.forbidden, top),
            'top_tools': _top(self.tools, top),
            'top_targets': _top(self.targets, top),
            'top_methods': _top(self.methods, top),
            'top_users': _top(self.users, top),
            'decisions': dict(sorted(self.decisions.items())),
        }


def summarize(lines, window=None, since=None, until=None, now=None, top=5, max_lines=None):
    """Counts over the lines whose ``time`` is in [since, until], in all and per MCP server.

    ``window`` (e.g. ``24h``) sets ``since = until - window``; ``until`` defaults to ``now``,
    which defaults to the current time. Without ``window`` and ``since`` every line counts,
    including lines without a parsable time. ``max_lines`` keeps only the last (newest)
    that many non-blank lines. ``servers`` maps each server named in the counted lines
    (``default`` first, then by name) to its own counts (``_SERVER_KEYS``).
    """
    lines = split_lines(lines)
    top = _positive('top', top)
    if max_lines is not None:
        lines = [line for line in lines if line.strip()][-_positive('max_lines', max_lines):]
    since_dt, until_dt, bounded = _bounds(window, since, until, now)
    entries, invalid = parse_lines(lines)
    tally = _Tally()
    per_server = {}
    for entry in entries:
        if tally.admit(parse_time(entry.get('time')), since_dt, until_dt, bounded):
            tally.add(entry)
            per_server.setdefault(_server(entry), _Tally()).add(entry)
    summary = tally.result(since_dt, until_dt, bounded, invalid, top)
    summary['servers'] = dict(
        (name, dict((key, value) for key, value in per_server[name].result(since_dt, until_dt, bounded, invalid, top)
                    .items() if key in _SERVER_KEYS))
        for name in sorted(per_server, key=lambda n: (n != DEFAULT_SERVER, n)))
    return summary


def render(summary):
    """The summary as a list of report lines for a terminal."""
    out = []
    if summary.get('since') or summary.get('until'):
        out.append('window          %s .. %s' % (summary.get('since') or '-', summary.get('until') or '-'))
    out.append('requests        %d (invalid lines %d, without time %d, outside window %d)' % (
        summary['total'], summary['invalid_lines'], summary['untimed_lines'], summary['outside_window']))
    out.append('error rate      %.1f%% (%d of %d with status >= 400; %d >= 500)' % (
        summary['error_rate'] * 100, summary['errors'], summary['total'], summary['server_errors']))
    out.append('statuses        %s' % (', '.join('%s=%d' % kv for kv in summary['status_counts'].items()) or '-'))
    for title, key in (('top users 429', 'top_users_429'), ('top users 403', 'top_users_403'),
                       ('top tools', 'top_tools'), ('top targets', 'top_targets'), ('top methods', 'top_methods')):
        ranked = summary.get(key, [])
        out.append('%-15s %s' % (title, _ranked(ranked)))
    servers = summary.get('servers') or {}
    if servers:
        out.append('%-15s %s' % ('servers', ', '.join('%s=%d' % (name, s['total']) for name, s in servers.items())))
    for name, s in servers.items():
        out.append('%-15s %d requests, error rate %.1f%% (%d >= 400, %d >= 500); 429 %s; 403 %s; tools %s' % (
            'server ' + name, s['total'], s['error_rate'] * 100, s['errors'], s['server_errors'],
            _ranked(s['top_users_429']), _ranked(s['top_users_403']), _ranked(s['top_tools'])))
    return out


def _ranked(ranked):
    return ', '.join('%s=%d' % (r['name'], r['count']) for r in ranked) or '-'
