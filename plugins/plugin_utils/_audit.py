# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Summaries of the gateway's JSON audit log (one JSON object per line).

Pure Python on purpose: no Ansible imports, so the unit tests import it directly.

A line has (all optional) ``time`` (ISO 8601), ``client``, ``subject``, ``roles``,
``method`` (the JSON-RPC method), ``tool``, ``decision``, ``reason``, ``status``,
``bytes``, ``request_time`` and ``upstream_time``. Missing, empty or ``"-"`` fields
are tolerated; a line that is not a JSON object is counted as invalid, never fatal.

Lines end at ``\n`` only: nginx writes one line per request ending in ``\n``, and a
field may hold U+2028, U+2029, U+0085, ``\r``, ``\v`` or ``\f``, which
``str.splitlines()`` would treat as line ends (splitting one request into several
invalid lines).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

_WINDOW = re.compile(r'^\s*(\d+)\s*([smhdw])\s*$')
_UNIT_SECONDS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


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
    if isinstance(value, bool):
        raise AuditError('window: expected a duration like 24h, got a boolean')
    if isinstance(value, int):
        if value <= 0:
            raise AuditError('window: must be positive, got %d' % value)
        return value
    match = _WINDOW.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise AuditError("window: expected N followed by s, m, h, d or w (e.g. '24h'), got %r" % (value,))
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


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


def summarize(lines, window=None, since=None, until=None, now=None, top=5, max_lines=None):
    """Counts over the lines whose ``time`` is in [since, until].

    ``window`` (e.g. ``24h``) sets ``since = until - window``; ``until`` defaults to ``now``,
    which defaults to the current time. Without ``window`` and ``since`` every line counts,
    including lines without a parsable time. ``max_lines`` keeps only the last (newest)
    that many non-blank lines.
    """
    lines = split_lines(lines)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise AuditError('top: expected a positive integer, got %r' % (top,))
    if max_lines is not None:
        if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
            raise AuditError('max_lines: expected a positive integer, got %r' % (max_lines,))
        lines = [line for line in lines if line.strip()][-max_lines:]

    now_dt = parse_time(now) if now is not None else datetime.now(timezone.utc)
    if now_dt is None:
        raise AuditError('now: expected an ISO 8601 time, got %r' % (now,))
    until_dt = now_dt
    if until is not None:
        until_dt = parse_time(until)
        if until_dt is None:
            raise AuditError('until: expected an ISO 8601 time, got %r' % (until,))
    since_dt = None
    if since is not None:
        since_dt = parse_time(since)
        if since_dt is None:
            raise AuditError('since: expected an ISO 8601 time, got %r' % (since,))
    elif window is not None:
        since_dt = until_dt - timedelta(seconds=parse_window(window))
    bounded = since_dt is not None or until is not None

    entries, invalid = parse_lines(lines)
    statuses = Counter()
    rate_limited = Counter()
    forbidden = Counter()
    tools = Counter()
    methods = Counter()
    decisions = Counter()
    users = Counter()
    untimed = 0
    outside = 0
    first = last = None
    total = 0
    for entry in entries:
        when = parse_time(entry.get('time'))
        if bounded:
            if when is None:
                untimed += 1
                continue
            if (since_dt is not None and when < since_dt) or when > until_dt:
                outside += 1
                continue
        elif when is None:
            untimed += 1
        if when is not None:
            first = when if first is None or when < first else first
            last = when if last is None or when > last else last
        total += 1
        status = _status(entry.get('status'))
        statuses[str(status) if status else 'unknown'] += 1
        who = _who(entry)
        users[who] += 1
        if status == 429:
            rate_limited[who] += 1
        elif status == 403:
            forbidden[who] += 1
        method = _text(entry.get('method'))
        if method:
            methods[method] += 1
        tool = _text(entry.get('tool'))
        if tool:
            tools[tool] += 1
        decision = _text(entry.get('decision'))
        if decision:
            decisions[decision] += 1

    errors = sum(n for s, n in statuses.items() if s != 'unknown' and int(s) >= 400)
    server_errors = sum(n for s, n in statuses.items() if s != 'unknown' and int(s) >= 500)
    return {
        'since': since_dt.isoformat() if since_dt else None,
        'until': until_dt.isoformat() if bounded else None,
        'total': total,
        'invalid_lines': invalid,
        'untimed_lines': untimed,
        'outside_window': outside,
        'first': first.isoformat() if first else None,
        'last': last.isoformat() if last else None,
        'status_counts': dict(sorted(statuses.items())),
        'errors': errors,
        'error_rate': round(errors / total, 4) if total else 0.0,
        'server_errors': server_errors,
        'server_error_rate': round(server_errors / total, 4) if total else 0.0,
        'top_users_429': _top(rate_limited, top),
        'top_users_403': _top(forbidden, top),
        'top_tools': _top(tools, top),
        'top_methods': _top(methods, top),
        'top_users': _top(users, top),
        'decisions': dict(sorted(decisions.items())),
    }


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
                       ('top tools', 'top_tools'), ('top methods', 'top_methods')):
        ranked = summary[key]
        out.append('%-15s %s' % (title, ', '.join('%s=%d' % (r['name'], r['count']) for r in ranked) or '-'))
    return out
