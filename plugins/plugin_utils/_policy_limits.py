# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validators of the traffic sections: ``rate_limits``, ``sessions``, ``allow_origins``, the CIDR lists."""

from __future__ import annotations

import ipaddress

from ._policy_check import ROOT, _MISSING, _check_name, _check_origin, _idx, _key, _show
from ._units import UnitError, parse_duration, parse_rate


WINDOW_UNITS = ('s', 'm', 'h')
WINDOW_MAX = 86400
SESSIONS_MAX = 1000

RATE_KEYS = ('per_ip', 'per_user', 'per_tool')
ZONE_KEYS = ('rate', 'burst', 'connections')
# Per address only: what the proxy refuses itself (401/403/404) and failed
# authentications, counted by njs in fixed windows (a second or a minute).
ADDRESS_KEYS = ('refusals', 'auth_failures')
TOOL_LIMIT_KEYS = ('calls', 'per')
SESSION_KEYS = ('max_per_user',)

DEFAULT_ALLOW_CIDRS = ('0.0.0.0/0', '::/0')
DEFAULT_METRICS_CIDRS = ('127.0.0.1/32', '::1/128')
# connections: concurrent requests and streams (an HTTP/2 stream or an SSE response
# counts as long as it is open) that reach the backend, nginx limit_conn.
# refusals: an ordinary client's few mistakes never come near 300 a minute, a
# flood of random session ids meets it at once; auth_failures: a guesser gets
# 50 tries a minute per address (IPv6: per /64), then 429 even for the right one.
DEFAULT_ZONES = {
    'per_ip': {'rate': '20r/s', 'burst': 40, 'connections': 64, 'refusals': '300r/m', 'auth_failures': '50r/m'},
    'per_user': {'rate': '10r/s', 'burst': 20, 'connections': 32},
}
CONNECTIONS_MAX = 65535   # nginx limit_conn refuses more


def parse_network(text):
    """(network, None) for a CIDR; (None, the network meant) when host bits are set;
    (None, None) when text is no IP network. Shared with the cidr_families filter."""
    try:
        return ipaddress.ip_network(text, strict=True), None
    except ValueError:
        try:
            return None, ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None, None


def _cidrs(ctx, path, value, default, allow_empty):
    if value is None:
        return list(default)
    items = ctx.seq(path, value, '[10.0.0.0/8, "fd00::/8"]')
    if items is None:
        return None
    if not items and not allow_empty:
        ctx.err(path, 'is empty, so nobody could reach the gateway',
                "list at least one network; use ['0.0.0.0/0', '::/0'] to allow everyone")
        return None
    result = []
    for index, item in enumerate(items):
        ipath = _idx(path, index)
        if item is _MISSING:
            continue
        text = ctx.string(ipath, item, "write a CIDR such as '10.0.0.0/8'")
        if text is None:
            continue
        text = text.strip()
        net, fixed = parse_network(text)
        if net is None:
            if fixed is None:
                ctx.err(ipath, '%s is not an IP network' % _show(text),
                        "write a CIDR such as '10.0.0.0/8' or '2001:db8::/32'")
            else:
                ctx.err(ipath, '%s has host bits set' % _show(text), "use '%s'" % fixed)
            continue
        if str(net) not in result:
            result.append(str(net))
    return result


def _zone(ctx, path, raw, default, keys=ZONE_KEYS):
    result = dict(default)
    if raw is None:
        return result
    fields = ctx.mapping(path, raw, keys)
    if fields is None:
        return None
    ok = True
    for key in ('rate',) + tuple(k for k in keys if k in ADDRESS_KEYS):
        if fields.get(key) is None:
            continue
        text = ctx.string(path + '.' + key, fields[key], 'write a rate such as 10r/s or 600r/m')
        if text is None:
            ok = False
            continue
        try:
            parse_rate(text, path + '.' + key)
        except UnitError as exc:
            ctx.err(exc.key, exc.problem, exc.fix)
            ok = False
        else:
            result[key] = text.strip()
    if fields.get('burst') is not None:
        value = ctx.integer(path + '.burst', fields['burst'], 0)
        if value is None:
            ok = False
        else:
            result['burst'] = value
    if fields.get('connections') is not None:
        value = ctx.integer(path + '.connections', fields['connections'], 1, CONNECTIONS_MAX)
        if value is None:
            ok = False
        else:
            result['connections'] = value
    return result if ok else None


def _window(ctx, path, raw):
    text = ctx.string(path, raw, 'write a window such as 60s, 5m or 1h')
    if text is None:
        return None
    try:
        return parse_duration(text, path, units=WINDOW_UNITS, maximum=WINDOW_MAX)
    except UnitError as exc:
        ctx.err(exc.key, exc.problem, exc.fix)
        return None


def _rate_limits(ctx, raw):
    path = ROOT + '.rate_limits'
    fields = {} if raw is None else ctx.mapping(path, raw, RATE_KEYS)
    if fields is None:
        return None
    zones = {}
    for name in ('per_ip', 'per_user'):
        zones[name] = _zone(ctx, path + '.' + name, fields.get(name), DEFAULT_ZONES[name],
                            ZONE_KEYS + ADDRESS_KEYS if name == 'per_ip' else ZONE_KEYS)
    tool_limits = {}
    pairs = ctx.names(path + '.per_tool', fields.get('per_tool'), 'tool names to {calls, per}')
    for tool, spec in pairs or []:
        tpath = _key(path + '.per_tool', tool)
        if tool == '*':
            ctx.err(tpath, "per-tool limits need a tool name, not '*'",
                    'use rate_limits.per_user to limit all calls of a user')
            continue
        valid = _check_name(ctx, tpath, tool, 'tool')
        limit = ctx.mapping(tpath, spec, TOOL_LIMIT_KEYS)
        if limit is None:
            continue
        calls = window = None
        for key in TOOL_LIMIT_KEYS:
            if limit.get(key) is None:
                ctx.err(tpath + '.' + key, 'is required',
                        'set calls (an integer >= 1)' if key == 'calls' else "set per, e.g. '60s'")
        if limit.get('calls') is not None:
            calls = ctx.integer(tpath + '.calls', limit['calls'], 1)
        if limit.get('per') is not None:
            window = _window(ctx, tpath + '.per', limit['per'])
        if valid and calls is not None and window is not None:
            tool_limits[tool] = {'calls': calls, 'window': window}
    return zones, tool_limits


def _sessions(ctx, raw):
    path = ROOT + '.sessions'
    fields = {} if raw is None else ctx.mapping(path, raw, SESSION_KEYS)
    if fields is None:
        return None
    if fields.get('max_per_user') is None:
        return 10
    return ctx.integer(path + '.max_per_user', fields['max_per_user'], 1, SESSIONS_MAX)


def _origins(ctx, raw):
    """allow_origins: normalised, deduplicated origins in the user's order."""
    origins = []
    if raw is None:
        return origins
    items = ctx.seq(ROOT + '.allow_origins', raw, '[https://claude.ai]')
    for index, item in enumerate(items or []):
        if item is _MISSING:
            continue
        origin = _check_origin(ctx, _idx(ROOT + '.allow_origins', index), item)
        if origin is not None and origin not in origins:
            origins.append(origin)
    return origins


def window_limit(rate):
    """{count, window} of a fixed-window limit written as a rate: '300r/m' -> 300 per 60 s."""
    count, window = parse_rate(rate, 'rate')
    return {'count': count, 'window': window}


def _retry_after(zones):
    """Seconds a client rejected by limit_req should wait: one request's worth of the slowest zone."""
    seconds = 1
    for zone in zones.values():
        count, window = parse_rate(zone['rate'], 'rate')
        seconds = max(seconds, -(-window // count))
    return seconds
