# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validate and expand ``mcpsec_policy`` (see docs/policy.md, docs/expanded-policy.md).

Pure Python on purpose: no Ansible imports, so the unit tests import it directly and
the filter plugin is a thin adapter. Every problem is collected; ``PolicyError`` lists
them one per line as ``<key path>: <problem>; <fix>``. Secret values (passwords,
tokens) are never echoed, and neither is any value we cannot show to be harmless.

The work is split by concern: ``_policy_check`` (the check context and shared checks),
``_policy_auth``, ``_policy_access`` and ``_policy_limits`` (one validator per section),
and this module, which runs them in policy order and expands the result into everything
the roles and njs use, so that no template or njs code interprets the policy again.
"""

from __future__ import annotations

import ipaddress

from collections.abc import Mapping, Sequence

from ._policy_access import _roles
from ._policy_auth import _auth, _scope_roles, _users
from ._policy_check import ROOT, _MISSING, PolicyError, _Ctx, _origin, _split_url, _type_name
from ._policy_limits import (
    DEFAULT_ALLOW_CIDRS, DEFAULT_METRICS_CIDRS, _cidrs, _origins, _rate_limits, _retry_after, _sessions,
    window_limit,
)
from ._policy_pins import tool_pinning

__all__ = ('PolicyError', 'expand_policy', 'policy_errors')

TOP_KEYS = ('public_url', 'auth', 'users', 'roles', 'rate_limits', 'sessions',
            'allow_origins', 'allow_cidrs', 'metrics_allow_cidrs', 'tool_pins', 'tool_pinning')
ZONE_SIZE = '10m'
# IPv4 clients by address, IPv6 clients by their /64 (a map in njs_http.conf.j2):
# one IPv6 host usually holds a whole /64, so per-address keys would not limit it.
CLIENT_KEY = '$mcpsec_client_key'
MCP_PATH = '/mcp'
# Per-user limits count per MCP server: the same subject at two servers has two budgets.
USER_KEY = '$mcpsec_server $mcpsec_subject'
METADATA_PATH = '/.well-known/oauth-protected-resource'
# The njs_policy layout; njs refuses a document whose version it does not know.
NJS_POLICY_VERSION = 3
DEFAULT_SERVER = 'default'
GRANT_KEYS = ('tools', 'resources', 'prompts')


def _sorted(mapping):
    return dict((key, mapping[key]) for key in sorted(mapping))


def _public_url(ctx, top):
    """(public_url, host, port) or None."""
    raw_url = top.get('public_url', _MISSING)
    if raw_url is _MISSING or raw_url is None:
        ctx.err(ROOT + '.public_url', 'is required', 'set it to the https://host[:port] clients connect to')
        return None
    url = _split_url(ctx, ROOT + '.public_url', raw_url, False, 'public_url')
    if url is None:
        return None
    return _origin('https', url[1], url[2]), url[1], url[2] or 443


def _server_list(ctx, servers):
    """The servers the host serves (expand_servers' items), or the one default server at /mcp."""
    if servers is None:
        return [{'name': DEFAULT_SERVER, 'path': MCP_PATH, 'upstream': 'mcpsec_backend', 'instances': 1,
                 'session_capacity': None}]
    # Made by expand_servers, never written by hand: a wrong shape is the caller's bug, named.
    fix = 'pass the list mcp_servers | mcpsec.gateway.expand_servers(...) returns'
    if isinstance(servers, (str, bytes, Mapping)) or not isinstance(servers, Sequence) or not servers:
        ctx.err('servers', 'expected a non-empty list of servers, got %s' % _type_name(servers), fix)
        return None
    result = []
    for index, server in enumerate(servers):
        if not isinstance(server, Mapping) or not all(key in server for key in ('name', 'path')):
            ctx.err('servers[%d]' % index, 'is not a server (a mapping with name and path)', fix)
            return None
        name = str(server['name'])
        result.append({'name': name, 'path': str(server['path']),
                       'upstream': str(server.get('upstream') or ('mcpsec_backend' if name == DEFAULT_SERVER
                                                                  else 'mcpsec_backend_' + name)),
                       'instances': int(server.get('instances', 1)),
                       'session_capacity': server.get('max_sessions_total', server.get('session_capacity'))})
    return result


def _check_server_grants(ctx, roles, names):
    """Grants on servers the host does not serve, and top-level grants without a default server."""
    for role in sorted(roles):
        grants = roles[role]
        for server in sorted(grants['servers']):
            if server not in names:
                ctx.err('%s.roles.%s.servers.%s' % (ROOT, role, server), 'names no server of this host',
                        'define it in mcp_servers (servers here: %s) or remove the grant' % ', '.join(names))
        if DEFAULT_SERVER in grants['servers'] and grants['top_level']:
            ctx.err('%s.roles.%s.servers.%s' % (ROOT, role, DEFAULT_SERVER),
                    'grants on the default server twice (also the role\'s own tools/resources/prompts)',
                    'keep one: the top-level keys or servers.default')
        granted = any(grants[key]['all'] or grants[key]['items'] for key in GRANT_KEYS)
        if granted and DEFAULT_SERVER not in names:
            ctx.err('%s.roles.%s' % (ROOT, role),
                    'its tools/resources/prompts grant on the server named default, which this host does not serve',
                    'move them under roles.%s.servers.<name> (servers here: %s)' % (role, ', '.join(names)))


def _explicit_audience(policy):
    auth = policy.get('auth') if isinstance(policy, Mapping) else None
    oidc = auth.get('oidc') if isinstance(auth, Mapping) else None
    return isinstance(oidc, Mapping) and oidc.get('audience') is not None


def _validate(policy, servers=None, tool_pins=None):
    """Run every section's validator in policy order: (errors, sections or None)."""
    ctx = _Ctx()
    if policy is None:
        ctx.err(ROOT, 'is null', 'define mcpsec_policy with at least public_url and auth.mode (see docs/policy.md)')
        return ctx.errors, None
    top = ctx.mapping(ROOT, policy, TOP_KEYS)
    if top is None:
        return ctx.errors, None
    url = _public_url(ctx, top)
    resource = (url[0] if url else 'https://invalid') + MCP_PATH
    mode, oidc, _unused = _auth(ctx, top.get('auth', _MISSING), resource)
    roles = _roles(ctx, top.get('roles'))
    server_list = _server_list(ctx, servers)
    if roles is not None and server_list is not None:
        _check_server_grants(ctx, roles, [server['name'] for server in server_list])
    users = _users(ctx, top.get('users'), mode, roles)
    pinning = None if server_list is None else tool_pinning(
        ctx, top.get('tool_pins'), top.get('tool_pinning'), tool_pins, [server['name'] for server in server_list])
    if oidc is not None:
        oidc['scope_roles'] = _scope_roles(ctx, oidc, roles)
    sections = {
        'url': url, 'mode': mode, 'oidc': oidc, 'roles': roles, 'users': users, 'servers': server_list,
        'pinning': pinning,
        'explicit_audience': _explicit_audience(policy),
        'limits': _rate_limits(ctx, top.get('rate_limits')),
        'sessions': _sessions(ctx, top.get('sessions')),
        'origins': _origins(ctx, top.get('allow_origins')),
        'cidrs': _cidrs(ctx, ROOT + '.allow_cidrs', top.get('allow_cidrs'), DEFAULT_ALLOW_CIDRS, False),
        'metrics': _cidrs(ctx, ROOT + '.metrics_allow_cidrs', top.get('metrics_allow_cidrs'),
                          DEFAULT_METRICS_CIDRS, True),
    }
    if ctx.errors:
        return ctx.errors, None
    required = [value for key, value in sections.items() if key not in ('oidc', 'explicit_audience')]
    if None in required or (mode == 'oidc' and oidc is None) or (oidc is not None and oidc['scope_roles'] is None):
        # Every path that yields None has recorded an error; this is a safety net.
        return ['%s: could not be expanded; see the errors above' % ROOT], None
    return [], sections


def _advertised_scopes(oidc):
    """Every scope a token may need: the listed ones, the required ones, the granting ones."""
    scopes = []
    for scope in (oidc['scopes'] + oidc['required_scopes'] + list(oidc['scope_roles'])) if oidc else []:
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def _server_grants(grants, server):
    """What a role grants on one server: servers.<server>, or for default its top-level keys."""
    if server in grants['servers']:
        return grants['servers'][server]
    if server == DEFAULT_SERVER:
        return grants
    return dict((key, {'all': False, 'items': []}) for key in GRANT_KEYS)


def _njs_role(grants):
    role = {}
    for key in ('tools', 'resources', 'prompts'):
        role[key + '_all'] = grants[key]['all']
        role[key] = [str(item) for item in grants[key]['items']]
    return _sorted(role)


def _njs_oidc(oidc, explicit_audience):
    if not oidc:
        return None
    return _sorted({
        'issuer': str(oidc['issuer']),
        # One audience for every server when the operator set one, else none: each server
        # accepts only tokens for its own resource (servers.<name>.audiences).
        'audience': str(oidc['audience']) if explicit_audience else None,
        'jwks_uri': None if oidc['jwks_uri'] is None else str(oidc['jwks_uri']),
        'discovery_url': str(oidc['discovery_url']),
        'algorithms': list(oidc['algorithms']),
        'subject_claim': str(oidc['subject_claim']),
        'roles_claim': [str(s) for s in oidc['roles_claim']],
        'leeway': oidc['leeway'],
        'required_scopes': [str(s) for s in oidc['required_scopes']],
        'scope_roles': _sorted(dict((str(scope), [str(r) for r in granted])
                                    for scope, granted in oidc['scope_roles'].items())),
    })


def _resources(public_url, server):
    """(resource, metadata URL, metadata paths) of one server; default keeps today's."""
    path = server['path']
    if server['name'] == DEFAULT_SERVER:
        return public_url + MCP_PATH, public_url + METADATA_PATH, [METADATA_PATH, METADATA_PATH + MCP_PATH]
    return public_url + path, public_url + METADATA_PATH + path, [METADATA_PATH + path]


def _njs_server(s, server, resource, metadata_url):
    oidc = s['oidc']
    audiences = [str(oidc['audience'])] if (oidc and s['explicit_audience']) else [resource]
    capacity = server['session_capacity']
    return _sorted({
        'path': server['path'],
        'resource': resource,
        'resource_metadata_url': metadata_url,
        'audiences': audiences,
        'roles': _sorted(dict((str(name), _njs_role(_server_grants(spec, server['name'])))
                              for name, spec in s['roles'].items())),
        'upstream': server['upstream'],
        'instances': server['instances'],
        'max_sessions_total': None if capacity is None else int(capacity),
        # None, or {mode: enforce | report, pins: {tool: "sha256:<hex>"}} (njs/pins.js).
        'tool_pinning': s['pinning'][server['name']],
    })


def _njs_policy(s, first, servers, scopes):
    """The document njs enforces: every field present, no secret, keys sorted. The top-level
    roles, resource and resource_metadata_url describe the first server (default when served)."""
    return _sorted({
        'version': NJS_POLICY_VERSION,
        'auth_mode': s['mode'],
        'resource': first['resource'],
        'resource_metadata_url': first['resource_metadata_url'],
        'roles': first['roles'],
        'servers': servers,
        'scope': ' '.join(scopes),
        'users': _sorted(dict((str(name), [str(r) for r in user_roles]) for name, _s, user_roles in s['users'])),
        'tool_limits': _sorted(dict((str(tool), _sorted(spec)) for tool, spec in s['limits'][1].items())),
        'allow_origins': s['origins'],
        'max_sessions_per_user': s['sessions'],
        # what njs admits for the first server's view (its servers.<name>.max_sessions_total)
        'max_sessions_total': first['max_sessions_total'],
        # per client address (IPv6: /64), fixed windows; njs holds no defaults of its own
        'refusal_limit': window_limit(s['limits'][0]['per_ip']['refusals']),
        'auth_failure_limit': window_limit(s['limits'][0]['per_ip']['auth_failures']),
        'oidc': _njs_oidc(s['oidc'], s['explicit_audience']),
    })


def _family(cidrs, version):
    return [cidr for cidr in cidrs if ipaddress.ip_network(cidr).version == version]


def _expanded(s):
    public_url, host, port = s['url']
    mode, oidc, users = s['mode'], s['oidc'], s['users']
    zones = s['limits'][0]
    scopes = _advertised_scopes(oidc)
    servers, njs_servers = [], {}
    for server in s['servers']:
        resource, metadata_url, metadata_paths = _resources(public_url, server)
        metadata = {'resource': resource, 'scopes_supported': list(scopes), 'bearer_methods_supported': ['header']}
        if oidc:
            metadata['authorization_servers'] = [oidc['issuer']]
        njs_servers[server['name']] = _njs_server(s, server, resource, metadata_url)
        servers.append({
            'name': server['name'], 'path': server['path'], 'resource': resource,
            'resource_metadata_url': metadata_url, 'resource_metadata_paths': metadata_paths,
            'resource_metadata': _sorted(metadata), 'upstream': server['upstream'],
            'instances': server['instances'], 'max_sessions_total': njs_servers[server['name']]['max_sessions_total'],
        })
    first = servers[0]
    return {
        'servers': servers,
        'public_url': public_url,
        'server_name': host,
        'server_name_kind': _host_kind(host),
        'port': port,
        'resource': first['resource'],
        'mcp_path': first['path'],
        'resource_metadata_url': first['resource_metadata_url'],
        'resource_metadata_paths': first['resource_metadata_paths'],
        'resource_metadata': first['resource_metadata'],
        'auth_mode': mode,
        # Secrets keep the caller's object (an AnsibleUnsafe/tagged str stays one).
        'htpasswd_users': [{'name': str(n), 'password': p} for n, p, _r in users] if mode == 'basic' else [],
        'token_users': [{'name': str(n), 'token': t} for n, t, _r in users] if mode == 'bearer' else [],
        'allow_cidrs': s['cidrs'],
        'allow_cidrs_ipv4': _family(s['cidrs'], 4),
        'allow_cidrs_ipv6': _family(s['cidrs'], 6),
        'metrics_allow_cidrs': s['metrics'],
        'oidc_ca_file': str(oidc['ca_file']) if oidc else None,
        'limit_req_zones': [
            {'name': 'mcpsec_per_ip', 'key': CLIENT_KEY, 'rate': zones['per_ip']['rate'], 'size': ZONE_SIZE},
            {'name': 'mcpsec_per_user', 'key': USER_KEY, 'rate': zones['per_user']['rate'], 'size': ZONE_SIZE},
        ],
        'limit_req': [
            {'zone': 'mcpsec_per_ip', 'burst': zones['per_ip']['burst'], 'nodelay': True},
            {'zone': 'mcpsec_per_user', 'burst': zones['per_user']['burst'], 'nodelay': True},
        ],
        'limit_conn_zones': [
            {'name': 'mcpsec_conn_per_ip', 'key': CLIENT_KEY, 'size': ZONE_SIZE},
            {'name': 'mcpsec_conn_per_user', 'key': USER_KEY, 'size': ZONE_SIZE},
        ],
        'limit_conn': [
            {'zone': 'mcpsec_conn_per_ip', 'connections': zones['per_ip']['connections']},
            {'zone': 'mcpsec_conn_per_user', 'connections': zones['per_user']['connections']},
        ],
        'limit_req_retry_after': _retry_after(zones),
        'njs_policy': _njs_policy(s, njs_servers[first['name']], njs_servers, scopes),
    }


def _host_kind(host):
    """'ip' for an IPv4/IPv6 literal (certificates carry it as an IP SAN; ACME cannot issue it), else 'dns'."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return 'dns'
    return 'ip'


def policy_errors(policy, servers=None, tool_pins=None):
    """Return the list of problems (empty when the policy is valid); never raises."""
    return _validate(policy, servers, tool_pins)[0]


def expand_policy(policy, servers=None, tool_pins=None):
    """Return the expanded policy or raise :class:`PolicyError` listing every problem.

    ``servers``: the servers the host serves (expand_servers' items: name, path, upstream,
    instances, max_sessions_total or else session_capacity); without it, one server named default at /mcp.
    ``tool_pins``: the pins file playbooks/pin_tools.yml writes (mcpsec_tool_pins), merged
    into tool_pins; one server's pins come from one of the two."""
    errors, sections = _validate(policy, servers, tool_pins)
    if errors:
        raise PolicyError(errors)
    return _expanded(sections)
