# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validate and expand ``mcp_servers``: the MCP servers a gateway host serves (issue 20).

``mcp_servers`` maps a server name to what ``mcp_server_*`` describes for one server today
(source, package, version, executable, args, env), its session budgets and its path. Without
it, the ``mcp_server_*`` variables describe one server named ``default`` at ``/mcp`` laid out
exactly as before (user ``mcp``, the one env file, the ``mcpsec-supergateway`` units), so an
existing inventory converges unchanged.

Every other server gets a sandbox of its own: a system user ``mcp-<name>`` with its own home,
its own root-owned env file, its own template unit and slice, and its own block of loopback
ports. The expansion decides all of that here, once; the roles render what it says.

Errors are collected like the policy's: ``<key path>: <problem>; <fix>``. Secret values (the
``env`` values) never appear in a message. No Ansible imports."""

from __future__ import annotations

import re
import shlex

from collections.abc import Mapping

from ._policy_check import PolicyError, _Ctx, _key, _show, _type_name
from ._units import UnitError, size_mib

__all__ = ('expand_servers', 'server_errors', 'DEFAULT_SERVER')

ROOT = 'mcp_servers'
DEFAULT_SERVER = 'default'
DEFAULT_PATH = '/mcp'
SERVER_KEYS = ('source', 'package', 'version', 'executable', 'args', 'env', 'path', 'instances',
               'max_sessions', 'session_memory_mb', 'session_tasks', 'port')
NAME_RE = re.compile(r'^[a-z][a-z0-9-]{0,30}$')
# Names that would read as one of the gateway's own paths or accounts.
RESERVED_NAMES = frozenset(('health', 'metrics', 'register', 'authorize', 'token', 'mcpsec', 'well-known',
                            'nginx', 'root', 'www-data'))
# Paths the gateway answers itself (exact, or as a prefix).
RESERVED_PATHS = ('/health', '/.well-known/', '/_mcpsec/', '/register', '/authorize', '/token', '/metrics')
PATH_RE = re.compile(r'^(/[A-Za-z0-9._~-]+)+$')
PACKAGE_RE = {'npm': re.compile(r'^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$'),
              'pypi': re.compile(r'^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$')}
# An exact version: digits and dots first, then what semver/PEP 440 allow; never a range.
VERSION_RE = re.compile(r'^[0-9]+(\.[0-9]+)*([.+-]?[A-Za-z0-9]+([.-][A-Za-z0-9]+)*)?$')
EXECUTABLE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')
ENV_KEY_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,127}$')
# Each server's instances get a block of this many loopback ports (the most instances a server may have).
PORT_BLOCK = 8
MAX_INSTANCES = 8
# The default server keeps what common_supergateway_instances allowed before (up to 64).
MAX_DEFAULT_INSTANCES = 64
# What supergateway itself takes per instance, before any session (roles/common).
BASE_TASKS = 64
BASE_MEMORY_MB = 256


def _legacy(legacy):
    """The server the mcp_server_* variables describe (the layout before mcp_servers)."""
    return dict((key, legacy[key]) for key in ('source', 'package', 'version', 'executable', 'args', 'env')
                if key in legacy)


def _check_package(ctx, path, spec, source):
    package = ctx.string(_key(path, 'package'), spec.get('package'),
                         'name the package, e.g. "@modelcontextprotocol/server-slack" or "mcp-server-time"')
    if package is not None and source in PACKAGE_RE and not PACKAGE_RE[source].match(package):
        ctx.err(_key(path, 'package'), '%s is not a %s package name' % (_show(package), source),
                'write the name exactly as the registry lists it')
        package = None
    version = ctx.string(_key(path, 'version'), spec.get('version'), 'write the exact version, quoted, e.g. "2025.4.25"')
    if version is not None and not VERSION_RE.match(version):
        ctx.err(_key(path, 'version'), '%s is not an exact version' % _show(version),
                'pin one exact version (no range, no "latest"), e.g. "1.2.3"')
        version = None
    executable = ctx.string(_key(path, 'executable'), spec.get('executable'),
                            'name the executable the package installs, e.g. mcp-server-slack')
    if executable is not None and not EXECUTABLE_RE.match(executable):
        ctx.err(_key(path, 'executable'), '%s is not a file name' % _show(executable),
                'give the name inside node_modules/.bin or the venv\'s bin, without a path')
        executable = None
    return package, version, executable


def _check_args(ctx, path, value):
    if value is None:
        return []
    items = ctx.seq(path, value, '["--flag", "value"]')
    if items is None:
        return None
    ok = True
    for index, item in enumerate(items):
        if not isinstance(item, str):
            ctx.err('%s[%d]' % (path, index), 'expected a string, got %s' % _type_name(item), 'quote the argument')
            ok = False
    return list(items) if ok else None


def _check_env(ctx, path, value):
    """The environment: names checked, values only for their type (they are secrets)."""
    if value is None:
        return {}
    if ctx.undefined(path, value):
        return None
    if not isinstance(value, Mapping):
        ctx.err(path, 'expected a mapping, got %s' % _type_name(value), 'write NAME: value pairs')
        return None
    ok = True
    for name in value:
        if not isinstance(name, str) or not ENV_KEY_RE.match(name):
            ctx.err(_key(path, name), 'is not an environment variable name',
                    'use letters, digits and _, not starting with a digit')
            ok = False
            continue
        item = value[name]
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            ctx.err(_key(path, name), 'expected a string, got %s' % _type_name(item), 'quote the value')
            ok = False
        elif '\n' in str(item) or '\x00' in str(item):
            ctx.err(_key(path, name), 'holds a line break or NUL', 'an environment value is one line')
            ok = False
    return dict((k, str(v)) for k, v in value.items()) if ok else None


def _check_path(ctx, path, value, name):
    where = _key(path, 'path')
    if value is None:
        return '/%s/mcp' % name
    text = ctx.string(where, value, 'write an absolute URL path, e.g. /%s/mcp' % name)
    if text is None:
        return None
    if not PATH_RE.match(text) or '/../' in text + '/' or '/./' in text + '/':
        ctx.err(where, '%s is not a plain absolute path' % _show(text),
                'use /segment/segment of [A-Za-z0-9._~-], no dot segments, no trailing slash')
        return None
    for reserved in RESERVED_PATHS:
        if text == reserved.rstrip('/') or text.startswith(reserved.rstrip('/') + '/'):
            ctx.err(where, '%s is under %s, which the gateway answers itself' % (_show(text), reserved.rstrip('/')),
                    'choose another path, e.g. /%s/mcp' % name)
            return None
    return text


def _default_path(ctx, path, value):
    """The default server is the one at /mcp, where clients of earlier releases connect."""
    if value is not None and value != DEFAULT_PATH:
        ctx.err(_key(path, 'path'), 'the server named default is always at %s, got %s' % (DEFAULT_PATH, _show(value)),
                'remove path here, or serve the server under another name to give it a path of its own')
        return None
    return DEFAULT_PATH


def _budgets(ctx, path, spec, defaults, legacy_layout=False):
    limits = {'instances': (1, MAX_DEFAULT_INSTANCES if legacy_layout else MAX_INSTANCES), 'max_sessions': (1, 1024),
              'session_memory_mb': (16, 65536), 'session_tasks': (2, 4096)}
    result = {}
    for key, (low, high) in limits.items():
        value = spec.get(key, defaults.get(key))
        if key == 'instances' and key not in spec and not legacy_layout and isinstance(value, int):
            value = min(value, MAX_INSTANCES)
        result[key] = ctx.integer(_key(path, key), value, low, high)
    return result


def _one(ctx, name, spec, defaults, legacy_layout):
    path = _key(ROOT, name)
    if not NAME_RE.match(name):
        ctx.err(path, 'server name %s is invalid' % _show(name),
                'use 1-31 characters from [a-z0-9-], starting with a letter')
        return None
    if name in RESERVED_NAMES:
        ctx.err(path, 'server name %s is reserved' % _show(name), 'choose another name')
        return None
    spec = ctx.mapping(path, spec, SERVER_KEYS, 'a mapping describing the server')
    if spec is None:
        return None
    source = spec.get('source', 'npm')
    if source not in ('npm', 'pypi'):
        ctx.err(_key(path, 'source'), 'must be npm or pypi, got %s' % _show(source),
                'write source: npm (a Node.js package) or source: pypi (a Python package)')
        source = None
    package, version, executable = _check_package(ctx, path, spec, source)
    server = {
        'name': name, 'source': source, 'package': package, 'version': version, 'executable': executable,
        'args': _check_args(ctx, _key(path, 'args'), spec.get('args')),
        'env': _check_env(ctx, _key(path, 'env'), spec.get('env')),
        'path': _default_path(ctx, path, spec.get('path')) if legacy_layout
        else _check_path(ctx, path, spec.get('path'), name),
        'port': spec.get('port'),
    }
    server.update(_budgets(ctx, path, spec, defaults, legacy_layout))
    if server['port'] is not None:
        server['port'] = ctx.integer(_key(path, 'port'), server['port'], 1024, 65535 - MAX_INSTANCES)
    if legacy_layout and server['port'] is not None and server['port'] != defaults.get('base_port'):
        # What knew the one server before (verify.yml, the supergateway role's checks) finds
        # the default server at common_supergateway_port.
        ctx.err(_key(path, 'port'), 'the default server listens on common_supergateway_port (%s)'
                % defaults.get('base_port'), 'remove port here, or set common_supergateway_port instead')
        server['port'] = None
    if any(value is None for key, value in server.items() if key != 'port'):
        return None
    return server


def _layout(server, legacy_layout, defaults):
    """Who the server runs as and where its files, units and ports are."""
    name = server['name']
    if legacy_layout:
        server.update({
            'user': defaults['user'], 'home': defaults['home'], 'env_file': defaults['env_file'],
            'install_dir': defaults['install_dir'], 'unit': defaults['unit']})
    else:
        server.update({
            'user': 'mcp-%s' % name, 'home': '/var/lib/mcpsec/servers/%s' % name,
            'env_file': '/etc/mcpsec/servers/%s.env' % name,
            'install_dir': '/opt/mcpsec/servers/%s' % name,
            'unit': 'mcpsec-sg-%s' % name})
    # systemd reads each '-' of a slice name as a level of nesting: mcpsec-sg-a-b.slice would sit
    # inside server a's slice, under its limits. A server's own slice is therefore named with its
    # '-' as '_' (no server name holds '_'): every server's slice sits directly under mcpsec-sg.slice.
    server['slice'] = (server['unit'] if legacy_layout else 'mcpsec-sg-' + name.replace('-', '_')) + '.slice'
    return server


def _block(server):
    """How many ports a server's block holds: PORT_BLOCK, or more for a default server with more instances."""
    return max(PORT_BLOCK, server['instances'])


def _ports(ctx, servers, base):
    """Each server's first port: the default server's is base (common_supergateway_port), another's
    its own 'port', else the next free block of PORT_BLOCK (or of its instance count, when larger)
    from base, in order. Two blocks that overlap are an error named at the server whose port was
    written down (of two such, the later one)."""
    explicit = set(server['name'] for server in servers if server['port'] is not None)
    for server in servers:
        if server['name'] == DEFAULT_SERVER:
            server['port'] = base
    taken = [(server['port'], _block(server), server['name']) for server in servers if server['port'] is not None]
    cursor = base
    for server in servers:
        if server['port'] is None:
            size = _block(server)
            while any(start < cursor + size and cursor < start + length for start, length, _n in taken):
                cursor += PORT_BLOCK
            server['port'] = cursor
            taken.append((cursor, size, server['name']))
            cursor += size
    ordered = sorted(taken)
    for i, first in enumerate(ordered):
        for second in ordered[i + 1:]:
            if second[0] >= first[0] + first[1]:
                continue
            blamed, other = (first, second) if first[2] in explicit and second[2] not in explicit else (second, first)
            ctx.err(_key(_key(ROOT, blamed[2]), 'port'),
                    'its ports %d-%d overlap those of server %s (%d-%d)'
                    % (blamed[0], blamed[0] + blamed[1] - 1, _show(other[2]), other[0], other[0] + other[1] - 1),
                    'leave port unset, or choose a port outside %d-%d' % (other[0], other[0] + other[1] - 1))
    for server in servers:
        if server['port'] + server['instances'] - 1 > 65535:
            ctx.err(_key(_key(ROOT, server['name']), 'port'), 'its instances would listen beyond port 65535',
                    'choose a lower port or fewer instances')
        server['ports'] = [server['port'] + i for i in range(server['instances'])]


def _capacity_error(ctx, server, key, problem, fix):
    """One error naming the slice's arithmetic, so the fix is visible without a calculator."""
    instances = server['instances']
    budget = 'common_supergateway_' if server['name'] == DEFAULT_SERVER else 'mcp_servers.%s.' % server['name']
    ctx.err(key, '%s: the slice %s holds %d sessions over its %d instances (%smax_sessions %d, TasksMax %d = %d '
            '(%d per instance) + %d per session, MemoryMax %s = %dM (%dM per instance) + %dM per session)'
            % (problem, server['slice'], server['session_capacity'], instances, budget, server['max_sessions'],
               server['tasks_max'], BASE_TASKS * instances, BASE_TASKS, server['session_tasks'], server['memory_max'],
               BASE_MEMORY_MB * instances, BASE_MEMORY_MB, server['session_memory_mb']), fix)


def _capacity(ctx, server, defaults):
    """session_capacity: the sessions the slice's limits hold; max_sessions_total: what the proxy
    admits (proxy_max_sessions_total for the default server, at most the capacity)."""
    default = server['name'] == DEFAULT_SERVER
    try:
        memory = size_mib(server['memory_max'], 'common_supergateway_memory_max')
    except UnitError as exc:
        ctx.err(exc.key, exc.problem, exc.fix)
        return
    instances = server['instances']
    by_memory = server['max_sessions'] if memory is None else (memory - BASE_MEMORY_MB * instances) // server['session_memory_mb']
    by_tasks = (server['tasks_max'] - BASE_TASKS * instances) // server['session_tasks']
    capacity = server['session_capacity'] = max(0, min(server['max_sessions'], by_tasks, by_memory))
    admitted = defaults.get('max_sessions_total') if default else None
    server['max_sessions_total'] = capacity if admitted is None else admitted
    if capacity < 1:
        key = ('common_supergateway_tasks_max' if by_tasks < 1 else 'common_supergateway_memory_max') if default \
            else _key(_key(ROOT, server['name']), 'max_sessions')
        _capacity_error(ctx, server, key, 'leaves no room for a session',
                        'raise it, or lower common_supergateway_instances' if default else 'raise it (1 or more)')
    elif admitted is not None and _admitted_problem(admitted, capacity):
        _capacity_error(ctx, server, 'proxy_max_sessions_total', _admitted_problem(admitted, capacity),
                        'set it to 1..%d, or leave it unset for %d, or raise common_supergateway_max_sessions (and '
                        'common_supergateway_tasks_max / common_supergateway_memory_max if you set them)'
                        % (capacity, capacity))


def _admitted_problem(admitted, capacity):
    if isinstance(admitted, bool) or not isinstance(admitted, int):
        return 'expected an integer, got %s' % _type_name(admitted)
    if admitted < 1:
        return 'is %d, below 1' % admitted
    return None if admitted <= capacity else 'is %d, more than the slice holds' % admitted


def _finish(ctx, server, defaults):
    """Limits, capacity, command and upstream: what the units and nginx render."""
    default = server['name'] == DEFAULT_SERVER
    server['group'] = defaults.get('group', server['user']) if default else server['user']
    instances = server['instances']
    if default and 'memory_max' in defaults:
        server['memory_max'] = str(defaults['memory_max']).strip()
        tasks_max = defaults.get('tasks_max')
        if isinstance(tasks_max, bool) or not isinstance(tasks_max, int):
            ctx.err('common_supergateway_tasks_max', 'expected an integer, got %s' % _type_name(tasks_max),
                    'write the TasksMax of the default server\'s slice as a whole number')
            return server
        server['tasks_max'] = tasks_max
    else:
        server['memory_max'] = '%dM' % (BASE_MEMORY_MB * instances + server['max_sessions'] * server['session_memory_mb'])
        server['tasks_max'] = BASE_TASKS * instances + server['max_sessions'] * server['session_tasks']
    _capacity(ctx, server, defaults)
    bin_dir = server['install_dir'] + ('/node_modules/.bin' if server['source'] == 'npm' else '/bin')
    server['command'] = ' '.join(shlex.quote(part) for part in [bin_dir + '/' + server['executable']] + server['args'])
    # Kept as written: a name holds no '_', so '<upstream>_<i>' (an instance) never names another server.
    server['upstream'] = 'mcpsec_backend' if default else 'mcpsec_backend_' + server['name']
    return server


def _validate(servers, legacy, defaults):
    ctx = _Ctx()
    if servers is None or (isinstance(servers, Mapping) and len(servers) == 0):
        spec = _legacy(legacy)
        result = _one(ctx, DEFAULT_SERVER, spec, defaults, True)
        items = [result] if result is not None else []
        legacy_names = (DEFAULT_SERVER,)
    else:
        entries = ctx.names(ROOT, servers, 'MCP servers')
        if entries is None:
            return ctx.errors, None
        legacy_names = ()
        items = []
        for name, spec in sorted(entries, key=lambda e: (e[0] != DEFAULT_SERVER, e[0])):
            legacy_layout = name == DEFAULT_SERVER
            result = _one(ctx, name, spec, defaults, legacy_layout)
            if result is not None:
                items.append(result)
    seen = {}
    for server in items:
        if server['path'] in seen:
            ctx.err(_key(_key(ROOT, server['name']), 'path'),
                    'path %s is also the path of server %s' % (_show(server['path']), _show(seen[server['path']])),
                    'give every server a path of its own (default /<name>/mcp)')
        seen[server['path']] = server['name']
    if ctx.errors:
        return ctx.errors, None
    for server in items:
        _layout(server, server['name'] in legacy_names or server['name'] == DEFAULT_SERVER, defaults)
    _ports(ctx, items, defaults['base_port'])
    for server in items:
        _finish(ctx, server, defaults)
    return ctx.errors, (None if ctx.errors else items)


def server_errors(servers, legacy, defaults):
    """The problems in ``mcp_servers`` (or the ``mcp_server_*`` fallback), one per line."""
    return _validate(servers, legacy, defaults)[0]


def expand_servers(servers, legacy, defaults):
    """The servers as the roles render them, in order (``default`` first); PolicyError if invalid.

    ``legacy`` holds the ``mcp_server_*`` values without the prefix; ``defaults`` the session
    budgets (instances, max_sessions, session_memory_mb, session_tasks), ``base_port`` and the
    legacy layout (user, home, env_file, install_dir, unit)."""
    errors, items = _validate(servers, legacy, defaults)
    if errors:
        raise PolicyError(errors)
    return items
