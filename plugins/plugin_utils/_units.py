# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rates, durations and sizes: parsed here, once, and nowhere else (issue 24 item 1).

One grammar per concept; every caller receives numbers. A value that does not parse raises
:class:`UnitError`, whose message is ``<key>: <problem>; <fix>`` like every policy error.

- rate: ``N r/s`` or ``N r/m`` (nginx ``limit_req``), 1 <= N <= 999999, no blanks inside;
  -> ``(count, window seconds)``.
- duration: ``N<unit>`` with a unit of ms, s, m, h, d or w (blanks around N and the unit are
  allowed); a caller names the units it accepts and its bounds. A Python int is seconds; a
  string of digits alone is seconds only where the key is an nginx time (``bare=True``).
  -> seconds (an int, a float only below a whole second).
- size: a systemd size, ``N`` or ``N`` with K, M, G, T, P or E (1024-based, either case,
  a decimal fraction allowed), ``infinity`` or a percentage (of the host's memory);
  -> bytes, None for ``infinity`` and percentages (no byte count without the host).

No Ansible imports: the unit tests import this directly."""

from __future__ import annotations

import re

RATE_RE = re.compile(r'^([1-9][0-9]{0,5})r/([sm])$')
DURATION_RE = re.compile(r'^\s*([0-9]+)\s*(ms|s|m|h|d|w)?\s*$')
SIZE_RE = re.compile(r'^([0-9]+(?:\.[0-9]+)?)([KMGTPE]?)$')
PERCENT_RE = re.compile(r'^[0-9]+(?:\.[0-9]+)?%$')

RATE_WINDOWS = {'s': 1, 'm': 60}
DURATION_UNITS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
DURATION_EXAMPLES = {'ms': '500ms', 's': '60s', 'm': '5m', 'h': '1h', 'd': '7d', 'w': '1w'}
SIZE_UNITS = {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3, 'T': 1024 ** 4, 'P': 1024 ** 5, 'E': 1024 ** 6}


class UnitError(ValueError):
    """A rate, duration or size that does not parse: ``key``, ``problem`` and ``fix``."""

    def __init__(self, key, problem, fix):
        self.key, self.problem, self.fix = key, problem, fix
        super(UnitError, self).__init__('%s: %s; %s' % (key, problem, fix))


def _show(value, limit=80):
    """A (non-secret) value quoted for a message; escapes make control characters and look-alikes visible."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + '...'
    return "'%s'" % text.encode('unicode_escape').decode('ascii').replace("'", "\\'")


def _either(items):
    items = list(items)
    return items[0] if len(items) == 1 else ', '.join(items[:-1]) + ' or ' + items[-1]


def parse_rate(value, key):
    """(count, window seconds) of ``N r/s`` (window 1) or ``N r/m`` (window 60)."""
    match = RATE_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise UnitError(key, 'rate %s is not valid' % _show(value),
                        "write N r/s or N r/m with N >= 1, e.g. '10r/s' or '600r/m'")
    return int(match.group(1)), RATE_WINDOWS[match.group(2)]


def _duration_fix(units, bare):
    fix = 'write N followed by %s' % _either(units)
    if bare:
        fix += ' (N alone is seconds)'
    return fix + ', e.g. %s' % _either("'%s'" % DURATION_EXAMPLES[u] for u in units[:3])


def _whole(seconds):
    return int(seconds) if seconds == int(seconds) else seconds


def _human(seconds):
    """A bound for a message: 86400 -> '24h', 90 -> '90s', 0.5 -> '500ms'."""
    for unit in ('h', 'm', 's'):
        if seconds >= DURATION_UNITS[unit] and seconds % DURATION_UNITS[unit] == 0:
            return '%d%s' % (seconds // DURATION_UNITS[unit], unit)
    return '%dms' % round(seconds * 1000)


def parse_duration(value, key, units=('s', 'm', 'h', 'd', 'w'), minimum=1, maximum=None, bare=False):
    """Seconds in ``value``; ``units`` the ones this key accepts, ``bare`` whether digits alone
    (nginx time) are seconds; ``minimum``/``maximum`` in seconds (``maximum`` None: unbounded)."""
    units = [u for u in DURATION_UNITS if u in units]
    fix = _duration_fix(units, bare)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        example = _show(DURATION_EXAMPLES[units[0]])
        raise UnitError(key, 'expected a duration such as %s, got %s' % (example, type(value).__name__), fix)
    if isinstance(value, int):
        seconds = value
    else:
        match = DURATION_RE.match(value)
        unit = match.group(2) if match else None
        if not match or (unit is None and not bare) or (unit is not None and unit not in units):
            raise UnitError(key, 'duration %s is not valid' % _show(value), fix)
        seconds = _whole(int(match.group(1)) * DURATION_UNITS[unit or 's'])
    if seconds < minimum:
        raise UnitError(key, 'duration %s is shorter than %s' % (_show(value), _human(minimum)),
                        'use at least %s' % _human(minimum))
    if maximum is not None and seconds > maximum:
        raise UnitError(key, 'duration %s is longer than %s' % (_show(value), _human(maximum)),
                        'use at most %s' % _human(maximum))
    return seconds


def parse_size(value, key):
    """Bytes in a systemd size; None for ``infinity`` and percentages (no byte count without the host)."""
    text = str(value).strip().upper() if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    if text == 'INFINITY' or (text is not None and PERCENT_RE.match(text)):
        return None
    match = SIZE_RE.match(text) if text is not None else None
    if not match or ('.' in match.group(1) and not match.group(2)):
        raise UnitError(key, 'size %s is not valid' % _show(value),
                        "write bytes, or N with K, M, G or T (1024-based), e.g. '2G' or '1280M', or 'infinity'")
    number = match.group(1)
    if '.' in number:
        return int(float(number) * SIZE_UNITS[match.group(2)])
    return int(number) * SIZE_UNITS[match.group(2)]


def size_mib(value, key):
    """Whole MiB in a systemd size (rounded down); None for ``infinity`` and percentages."""
    size = parse_size(value, key)
    return None if size is None else size // (1024 ** 2)
