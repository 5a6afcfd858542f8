"""mcpsec_policy over several MCP servers (issue 20): grants per server, resources, audiences."""
from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy import (
    PolicyError, expand_policy, policy_errors,
)

SERVERS = [
    {'name': 'default', 'path': '/mcp', 'upstream': 'mcpsec_backend', 'instances': 2, 'session_capacity': 32},
    {'name': 'time', 'path': '/time/mcp', 'upstream': 'mcpsec_backend_time', 'instances': 1, 'session_capacity': 8},
]
POLICY = {
    'public_url': 'https://mcp.example.com',
    'auth': {'mode': 'bearer'},
    'users': {'alice': {'token': 'q7ZpL2xW9rT4vB8nK3mC6yH1dF5gJ0sA', 'roles': ['admin']},
              'bob': {'token': 'u3RkE8wQ1zN6tY4pV9bM2cX7hL5jG0fD', 'roles': ['timeonly']}},
    'roles': {
        'admin': {'tools': ['*'], 'servers': {'time': {'tools': ['*']}}},
        'timeonly': {'servers': {'time': {'tools': ['get_current_time'], 'resources': [], 'prompts': []}}},
        'reader': {'tools': ['echo']},
    },
}
NONE = {'tools_all': False, 'tools': [], 'resources_all': False, 'resources': [], 'prompts_all': False, 'prompts': []}


def policy(**changes):
    out = copy.deepcopy(POLICY)
    out.update(changes)
    return out


def oidc_policy(**oidc):
    return policy(auth={'mode': 'oidc', 'oidc': dict({'issuer': 'https://idp.example.com/realms/main'}, **oidc)},
                  users={})


def test_each_server_gets_its_own_grants_resource_and_limits():
    out = expand_policy(POLICY, SERVERS)
    njs = out['njs_policy']
    assert njs['version'] == 3 and list(njs['servers']) == ['default', 'time']
    time = njs['servers']['time']
    assert time['roles']['timeonly'] == dict(NONE, tools=['get_current_time'])
    assert time['roles']['admin'] == dict(NONE, tools_all=True)
    assert time['roles']['reader'] == NONE      # top-level keys mean default only
    default = njs['servers']['default']
    assert default['roles']['timeonly'] == NONE and default['roles']['reader'] == dict(NONE, tools=['echo'])
    assert time['resource'] == 'https://mcp.example.com/time/mcp'
    assert time['resource_metadata_url'] == 'https://mcp.example.com/.well-known/oauth-protected-resource/time/mcp'
    assert time['audiences'] == ['https://mcp.example.com/time/mcp']
    assert (time['upstream'], time['instances'], time['max_sessions_total']) == ('mcpsec_backend_time', 1, 8)
    assert default['resource'] == 'https://mcp.example.com/mcp' and default['max_sessions_total'] == 32
    # The top level still describes the default server.
    assert njs['roles'] == default['roles'] and njs['resource'] == default['resource']
    paths = {s['name']: s['resource_metadata_paths'] for s in out['servers']}
    assert paths == {'default': ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp'],
                     'time': ['/.well-known/oauth-protected-resource/time/mcp']}
    assert out['servers'][1]['resource_metadata']['resource'] == 'https://mcp.example.com/time/mcp'
    assert [z['key'] for z in out['limit_req_zones']] == ['$mcpsec_client_key', '$mcpsec_server $mcpsec_subject']
    assert 'q7ZpL2xW9rT4vB8nK3mC6yH1dF5gJ0sA' not in json.dumps(njs)


def test_without_servers_one_default_server_at_mcp():
    out = expand_policy(policy(roles={'admin': {'tools': ['*']}, 'timeonly': {}}))
    assert [s['name'] for s in out['servers']] == ['default'] and out['mcp_path'] == '/mcp'


def test_oidc_audience_per_server_unless_one_is_set():
    out = expand_policy(oidc_policy(), SERVERS)['njs_policy']
    assert out['oidc']['audience'] is None
    assert out['servers']['default']['audiences'] == ['https://mcp.example.com/mcp']
    assert out['servers']['time']['audiences'] == ['https://mcp.example.com/time/mcp']
    one = expand_policy(oidc_policy(audience='api://mcp'), SERVERS)['njs_policy']
    assert one['oidc']['audience'] == 'api://mcp'
    assert [one['servers'][n]['audiences'] for n in ('default', 'time')] == [['api://mcp'], ['api://mcp']]


@pytest.mark.parametrize('roles, servers, expected', [
    ({'r': {'servers': {'github': {'tools': ['*']}}}}, SERVERS,
     'mcpsec_policy.roles.r.servers.github: names no server of this host; define it in mcp_servers (servers here: default, time)'),
    ({'r': {'tools': ['echo']}}, SERVERS[1:],
     'mcpsec_policy.roles.r: its tools/resources/prompts grant on the server named default, which this host does not serve'),
    ({'r': {'tools': ['echo'], 'servers': {'default': {'tools': ['x']}}}}, SERVERS,
     'mcpsec_policy.roles.r.servers.default: grants on the default server twice'),
    ({'r': {'servers': {'Bad_Name': {}}}}, SERVERS, "mcpsec_policy.roles.r.servers.Bad_Name: server name 'Bad_Name' is invalid"),
    ({'r': {'servers': {'time': {'tool': ['x']}}}}, SERVERS, "mcpsec_policy.roles.r.servers.time.tool: unknown key"),
    ({'r': {'servers': {'time': {'tools': 'x'}}}}, SERVERS, 'mcpsec_policy.roles.r.servers.time.tools'),
    ({'r': {'servers': ['time']}}, SERVERS, 'mcpsec_policy.roles.r.servers: expected a mapping'),
])
def test_bad_server_grants_are_named(roles, servers, expected):
    bad = policy(roles=roles, users={})
    errors = policy_errors(bad, servers)
    assert any(e.startswith(expected) for e in errors), errors
    with pytest.raises(PolicyError):
        expand_policy(bad, servers)


def test_a_role_granting_nothing_at_top_level_is_fine_without_a_default_server():
    only_time = policy(roles={'timeonly': POLICY['roles']['timeonly'], 'admin': {'servers': {'time': {'tools': ['*']}}}})
    out = expand_policy(only_time, SERVERS[1:])
    assert list(out['njs_policy']['servers']) == ['time'] and out['mcp_path'] == '/time/mcp'
    assert out['njs_policy']['roles'] == out['njs_policy']['servers']['time']['roles']


@pytest.mark.parametrize('servers, expected', [
    ([], 'servers: expected a non-empty list of servers, got a list'),
    ({'name': 'default'}, 'servers: expected a non-empty list of servers, got a mapping'),
    (['default'], 'servers[0]: is not a server (a mapping with name and path)'),
    ([{'name': 'time'}], 'servers[0]: is not a server (a mapping with name and path)'),
])
def test_a_servers_argument_of_the_wrong_shape_is_named(servers, expected):
    assert policy_errors(POLICY, servers) == [
        expected + '; pass the list mcp_servers | mcpsec.gateway.expand_servers(...) returns']


def test_an_empty_top_level_grant_needs_no_default_server():
    only_time = policy(roles={'timeonly': dict(POLICY['roles']['timeonly'], tools=[], prompts=[])},
                       users={'bob': POLICY['users']['bob']})
    assert policy_errors(only_time, SERVERS[1:]) == []


def test_every_role_is_listed_at_every_server_and_njs_policy_v3_is_exactly_this():
    """The document njs reads (docs/expanded-policy.md): two servers, a role granting only on one."""
    njs = expand_policy(oidc_policy(scope_roles={'mcp:admin': ['admin'], 'mcp:time': ['timeonly']}),
                        SERVERS)['njs_policy']
    admin, reader, timeonly = dict(NONE, tools_all=True), dict(NONE, tools=['echo']), dict(NONE, tools=['get_current_time'])
    assert njs == {
        'version': 3, 'auth_mode': 'oidc', 'scope': 'mcp:admin mcp:time', 'users': {}, 'tool_limits': {},
        'allow_origins': [], 'max_sessions_per_user': 10, 'max_sessions_total': 32,
        'refusal_limit': {'count': 300, 'window': 60}, 'auth_failure_limit': {'count': 50, 'window': 60},
        'oidc': {'issuer': 'https://idp.example.com/realms/main', 'audience': None, 'jwks_uri': None,
                 'discovery_url': 'https://idp.example.com/realms/main/.well-known/openid-configuration',
                 'algorithms': ['RS256', 'ES256'], 'subject_claim': 'sub', 'roles_claim': ['roles'], 'leeway': 60,
                 'required_scopes': [], 'scope_roles': {'mcp:admin': ['admin'], 'mcp:time': ['timeonly']}},
        # the default server, for an njs that reads only the top level (it cannot widen to another server)
        'resource': 'https://mcp.example.com/mcp',
        'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource',
        'roles': {'admin': admin, 'reader': reader, 'timeonly': NONE},
        'servers': {
            'default': {'path': '/mcp', 'resource': 'https://mcp.example.com/mcp',
                        'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource',
                        'audiences': ['https://mcp.example.com/mcp'],
                        'roles': {'admin': admin, 'reader': reader, 'timeonly': NONE},
                        'upstream': 'mcpsec_backend', 'instances': 2, 'max_sessions_total': 32,
                        'tool_pinning': None},
            'time': {'path': '/time/mcp', 'resource': 'https://mcp.example.com/time/mcp',
                     'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource/time/mcp',
                     'audiences': ['https://mcp.example.com/time/mcp'],
                     'roles': {'admin': admin, 'reader': NONE, 'timeonly': timeonly},
                     'upstream': 'mcpsec_backend_time', 'instances': 1, 'max_sessions_total': 8,
                     'tool_pinning': None},
        },
    }
    assert list(njs) == sorted(njs) and list(njs['servers']['time']) == sorted(njs['servers']['time'])


def test_the_filters_take_the_servers_argument():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mcpsec.gateway.plugins.filter.expand_policy import FilterModule as Expand
    from ansible_collections.mcpsec.gateway.plugins.filter.policy_errors import FilterModule as Errors

    expand = Expand().filters()['expand_policy']
    assert list(expand(POLICY, servers=SERVERS)['njs_policy']['servers']) == ['default', 'time']
    bad = policy(roles={'r': {'servers': {'github': {}}}}, users={})
    assert Errors().filters()['policy_errors'](bad, servers=SERVERS)[0].startswith('mcpsec_policy.roles.r.servers.github')
    with pytest.raises(AnsibleFilterError, match='roles.r.servers.github: names no server'):
        expand(bad, servers=SERVERS)
