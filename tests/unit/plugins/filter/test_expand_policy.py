# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.mcpsec.gateway.plugins.plugin_utils import _policy_check
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy import (
    PolicyError,
    expand_policy,
    policy_errors,
)

PASSWORD = 'Vq8#kL2!pZ9w-alice'
PASSWORD_BOB = 'tR4$mN7&xB1q-bob'
TOKEN = '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e'
TOKEN_2 = '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d'
SECRETS = (PASSWORD, PASSWORD_BOB, TOKEN, TOKEN_2)

ROLES = {'admin': {'tools': ['*']}, 'reader': {'tools': ['echo', 'get-sum']}}


def basic(**extra):
    policy = {
        'public_url': 'https://mcp.example.com',
        'auth': {'mode': 'basic'},
        'users': {'alice': {'password': PASSWORD, 'roles': ['admin']}},
        'roles': copy.deepcopy(ROLES),
    }
    policy.update(extra)
    return policy


def bearer(**extra):
    policy = {
        'public_url': 'https://mcp.example.com',
        'auth': {'mode': 'bearer'},
        'users': {'ci-bot': {'token': TOKEN, 'roles': ['reader']}},
        'roles': copy.deepcopy(ROLES),
    }
    policy.update(extra)
    return policy


def oidc(**oidc_extra):
    conf = {'issuer': 'https://idp.example.com/realms/main'}
    conf.update(oidc_extra)
    return {
        'public_url': 'https://mcp.example.com',
        'auth': {'mode': 'oidc', 'oidc': conf},
        'roles': copy.deepcopy(ROLES),
    }


def with_user(policy, name, spec):
    policy['users'][name] = spec
    return policy


def with_auth(policy, **auth):
    policy['auth'].update(auth)
    return policy


# ---------------------------------------------------------------------------- the contract

CONTRACT_INPUT = {
    'public_url': 'https://mcp.example.com',
    'auth': {'mode': 'basic'},
    'users': {'alice': {'password': PASSWORD, 'roles': ['admin']},
              'bob': {'password': PASSWORD_BOB, 'roles': ['reader']}},
    'roles': {'admin': {'tools': ['*']}, 'reader': {'tools': ['echo', 'get-sum']}},
    'rate_limits': {
        'per_ip': {'rate': '20r/s', 'burst': 40},
        'per_user': {'rate': '10r/s', 'burst': 20},
        'per_tool': {'trigger-long-running-operation': {'calls': 3, 'per': '60s'}},
    },
    'sessions': {'max_per_user': 10},
    'allow_origins': ['https://claude.ai'],
    'allow_cidrs': ['0.0.0.0/0', '::/0'],
    'metrics_allow_cidrs': ['127.0.0.1/32', '::1/128'],
}

NONE_V2 = {'tools_all': False, 'tools': [], 'resources_all': False, 'resources': [],
           'prompts_all': False, 'prompts': []}
ADMIN_V2 = dict(NONE_V2, tools_all=True)

DEFAULT_SERVER_OUT = {
    'name': 'default', 'path': '/mcp', 'resource': 'https://mcp.example.com/mcp',
    'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource',
    'resource_metadata_paths': ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp'],
    'resource_metadata': {'resource': 'https://mcp.example.com/mcp', 'scopes_supported': [],
                          'bearer_methods_supported': ['header']},
    'upstream': 'mcpsec_backend', 'instances': 1, 'max_sessions_total': None,
}

CONTRACT_OUTPUT = {
    'servers': [DEFAULT_SERVER_OUT],
    'public_url': 'https://mcp.example.com',
    'server_name': 'mcp.example.com',
    'server_name_kind': 'dns',
    'port': 443,
    'resource': 'https://mcp.example.com/mcp',
    'mcp_path': '/mcp',
    'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource',
    'resource_metadata_paths': ['/.well-known/oauth-protected-resource',
                                '/.well-known/oauth-protected-resource/mcp'],
    'resource_metadata': {'resource': 'https://mcp.example.com/mcp', 'scopes_supported': [],
                          'bearer_methods_supported': ['header']},
    'auth_mode': 'basic',
    'htpasswd_users': [{'name': 'alice', 'password': PASSWORD}, {'name': 'bob', 'password': PASSWORD_BOB}],
    'token_users': [],
    'allow_cidrs': ['0.0.0.0/0', '::/0'],
    'allow_cidrs_ipv4': ['0.0.0.0/0'],
    'allow_cidrs_ipv6': ['::/0'],
    'metrics_allow_cidrs': ['127.0.0.1/32', '::1/128'],
    'oidc_ca_file': None,
    'limit_req_zones': [
        {'name': 'mcpsec_per_ip', 'key': '$mcpsec_client_key', 'rate': '20r/s', 'size': '10m'},
        {'name': 'mcpsec_per_user', 'key': '$mcpsec_server $mcpsec_subject', 'rate': '10r/s', 'size': '10m'},
    ],
    'limit_req': [
        {'zone': 'mcpsec_per_ip', 'burst': 40, 'nodelay': True},
        {'zone': 'mcpsec_per_user', 'burst': 20, 'nodelay': True},
    ],
    'limit_conn_zones': [
        {'name': 'mcpsec_conn_per_ip', 'key': '$mcpsec_client_key', 'size': '10m'},
        {'name': 'mcpsec_conn_per_user', 'key': '$mcpsec_server $mcpsec_subject', 'size': '10m'},
    ],
    'limit_conn': [
        {'zone': 'mcpsec_conn_per_ip', 'connections': 64},
        {'zone': 'mcpsec_conn_per_user', 'connections': 32},
    ],
    'limit_req_retry_after': 1,
    'njs_policy': {
        'version': 3,
        'auth_mode': 'basic',
        'resource': 'https://mcp.example.com/mcp',
        'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource',
        'scope': '',
        'users': {'alice': ['admin'], 'bob': ['reader']},
        'roles': {'admin': ADMIN_V2, 'reader': dict(NONE_V2, tools=['echo', 'get-sum'])},
        'servers': {'default': {
            'path': '/mcp', 'resource': 'https://mcp.example.com/mcp',
            'resource_metadata_url': 'https://mcp.example.com/.well-known/oauth-protected-resource',
            'audiences': ['https://mcp.example.com/mcp'],
            'roles': {'admin': ADMIN_V2, 'reader': dict(NONE_V2, tools=['echo', 'get-sum'])},
            'upstream': 'mcpsec_backend', 'instances': 1, 'max_sessions_total': None, 'tool_pinning': None}},
        'tool_limits': {'trigger-long-running-operation': {'calls': 3, 'window': 60}},
        'allow_origins': ['https://claude.ai'],
        'max_sessions_per_user': 10,
        'max_sessions_total': None,
        'refusal_limit': {'count': 300, 'window': 60},
        'auth_failure_limit': {'count': 50, 'window': 60},
        'oidc': None,
    },
}


def test_contract_example_expands_exactly():
    assert expand_policy(CONTRACT_INPUT) == CONTRACT_OUTPUT


def test_njs_policy_keys_are_sorted_and_secret_free():
    njs = expand_policy(CONTRACT_INPUT)['njs_policy']
    assert list(njs) == sorted(njs)
    assert list(njs['roles']) == sorted(njs['roles'])
    text = json.dumps(njs)
    for secret in SECRETS:
        assert secret not in text


def test_input_is_not_modified():
    policy = copy.deepcopy(CONTRACT_INPUT)
    expand_policy(policy)
    assert policy == CONTRACT_INPUT


def test_defaults_are_safe():
    out = expand_policy({'public_url': 'https://mcp.example.com', 'auth': {'mode': 'basic'}})
    assert out['htpasswd_users'] == []
    assert out['njs_policy']['users'] == {}
    assert out['njs_policy']['roles'] == {}
    assert out['njs_policy']['tool_limits'] == {}
    assert out['njs_policy']['allow_origins'] == []
    assert out['njs_policy']['max_sessions_per_user'] == 10
    assert out['allow_cidrs'] == ['0.0.0.0/0', '::/0']
    assert out['metrics_allow_cidrs'] == ['127.0.0.1/32', '::1/128']
    assert out['limit_req_zones'][0]['rate'] == '20r/s'
    assert out['limit_req'][1]['burst'] == 20
    assert out['limit_conn'] == [{'zone': 'mcpsec_conn_per_ip', 'connections': 64},
                                 {'zone': 'mcpsec_conn_per_user', 'connections': 32}]
    # per-address zones key IPv6 clients by /64 (the map in njs_http.conf.j2)
    assert out['limit_req_zones'][0]['key'] == out['limit_conn_zones'][0]['key'] == '$mcpsec_client_key'


def test_user_without_roles_gets_no_tool():
    out = expand_policy(with_user(basic(), 'carol', {'password': PASSWORD_BOB}))
    assert out['njs_policy']['users']['carol'] == []


def test_oidc_defaults():
    out = expand_policy(oidc())
    assert out['auth_mode'] == 'oidc'
    assert out['htpasswd_users'] == [] and out['token_users'] == []
    assert out['oidc_ca_file'] == '/etc/ssl/certs/ca-certificates.crt'
    assert out['resource_metadata'] == {
        'resource': 'https://mcp.example.com/mcp',
        'authorization_servers': ['https://idp.example.com/realms/main'],
        'scopes_supported': [],
        'bearer_methods_supported': ['header'],
    }
    # No audience set: none for every server; each accepts its own resource URL.
    assert out['njs_policy']['servers']['default']['audiences'] == ['https://mcp.example.com/mcp']
    assert out['njs_policy']['oidc'] == {
        'issuer': 'https://idp.example.com/realms/main',
        'audience': None,
        'jwks_uri': None,
        'discovery_url': 'https://idp.example.com/realms/main/.well-known/openid-configuration',
        'algorithms': ['RS256', 'ES256'],
        'subject_claim': 'sub',
        'roles_claim': ['roles'],
        'leeway': 60,
        'required_scopes': [],
        'scope_roles': {},
    }
    assert list(out['njs_policy']['oidc']) == sorted(out['njs_policy']['oidc'])
    assert out['njs_policy']['scope'] == ''
    assert out['njs_policy']['users'] == {}


def test_oidc_everything_set():
    out = expand_policy(oidc(issuer='https://tenant.auth0.com/', audience='api://mcp',
                             jwks_uri='https://tenant.auth0.com/.well-known/jwks.json',
                             algorithms=['ES256', 'ES256'], subject_claim='preferred_username',
                             roles_claim='realm_access.roles', scopes_supported=['mcp:tools', 'openid', 'mcp:tools'],
                             leeway_seconds=0, ca_file='/etc/ssl/idp.pem'))
    conf = out['njs_policy']['oidc']
    assert conf['issuer'] == 'https://tenant.auth0.com/'  # kept exactly: it must equal "iss"
    assert conf['discovery_url'] == 'https://tenant.auth0.com/.well-known/openid-configuration'
    assert conf['audience'] == 'api://mcp'
    assert conf['algorithms'] == ['ES256']
    assert conf['roles_claim'] == ['realm_access', 'roles']
    assert conf['subject_claim'] == 'preferred_username'
    assert conf['leeway'] == 0
    assert out['njs_policy']['scope'] == 'mcp:tools openid'
    assert out['resource_metadata']['scopes_supported'] == ['mcp:tools', 'openid']
    assert out['oidc_ca_file'] == '/etc/ssl/idp.pem'


def test_bearer_expands_token_users():
    out = expand_policy(bearer())
    assert out['token_users'] == [{'name': 'ci-bot', 'token': TOKEN}]
    assert out['htpasswd_users'] == []
    assert out['njs_policy']['users'] == {'ci-bot': ['reader']}


# ---------------------------------------------------------------------------- valid table

VALID = [
    ('url-port-kept', basic(public_url='https://mcp.example.com:8443'),
     {'public_url': 'https://mcp.example.com:8443', 'port': 8443, 'server_name': 'mcp.example.com',
      'resource': 'https://mcp.example.com:8443/mcp'}),
    ('url-default-port-dropped', basic(public_url='https://MCP.Example.com:443/'),
     {'public_url': 'https://mcp.example.com', 'port': 443, 'server_name': 'mcp.example.com'}),
    ('url-ipv6', basic(public_url='https://[2001:db8::1]:8443'),
     {'public_url': 'https://[2001:db8::1]:8443', 'server_name': '2001:db8::1', 'server_name_kind': 'ip',
      'port': 8443}),
    ('url-ipv4', basic(public_url='https://192.0.2.7'), {'server_name': '192.0.2.7', 'server_name_kind': 'ip'}),
    ('url-dns-with-digits', basic(public_url='https://10.example'), {'server_name_kind': 'dns'}),
    ('retry-after-per-minute', basic(rate_limits={'per_ip': {'rate': '7r/m'}, 'per_user': {'rate': '30r/m'}}),
     {'limit_req_retry_after': 9}),
    ('retry-after-per-second', basic(rate_limits={'per_ip': {'rate': '1r/s'}, 'per_user': {'rate': '600r/m'}}),
     {'limit_req_retry_after': 1}),
    ('rate-per-minute', basic(rate_limits={'per_ip': {'rate': '600r/m'}}),
     {'limit_req_zones': [
         {'name': 'mcpsec_per_ip', 'key': '$mcpsec_client_key', 'rate': '600r/m', 'size': '10m'},
         {'name': 'mcpsec_per_user', 'key': '$mcpsec_server $mcpsec_subject', 'rate': '10r/s', 'size': '10m'}],
      'limit_req': [{'zone': 'mcpsec_per_ip', 'burst': 40, 'nodelay': True},
                    {'zone': 'mcpsec_per_user', 'burst': 20, 'nodelay': True}]}),
    ('connections', basic(rate_limits={'per_ip': {'connections': 200}, 'per_user': {'connections': 1}}),
     {'limit_conn': [{'zone': 'mcpsec_conn_per_ip', 'connections': 200},
                     {'zone': 'mcpsec_conn_per_user', 'connections': 1}],
      'limit_req': [{'zone': 'mcpsec_per_ip', 'burst': 40, 'nodelay': True},
                    {'zone': 'mcpsec_per_user', 'burst': 20, 'nodelay': True}]}),
    ('address-limits', basic(rate_limits={'per_ip': {'refusals': '1000r/m', 'auth_failures': '5r/s'}}),
     {'njs_policy.refusal_limit': {'count': 1000, 'window': 60},
      'njs_policy.auth_failure_limit': {'count': 5, 'window': 1},
      'limit_conn': [{'zone': 'mcpsec_conn_per_ip', 'connections': 64},
                     {'zone': 'mcpsec_conn_per_user', 'connections': 32}]}),
    ('connections-keep-rate', basic(rate_limits={'per_ip': {'rate': '5r/s'}}),
     {'limit_conn': [{'zone': 'mcpsec_conn_per_ip', 'connections': 64},
                     {'zone': 'mcpsec_conn_per_user', 'connections': 32}]}),
    ('burst-zero', basic(rate_limits={'per_user': {'burst': 0}}),
     {'limit_req': [{'zone': 'mcpsec_per_ip', 'burst': 40, 'nodelay': True},
                    {'zone': 'mcpsec_per_user', 'burst': 0, 'nodelay': True}]}),
    ('windows', basic(rate_limits={'per_tool': {'a': {'calls': 1, 'per': '60s'}, 'b.c': {'calls': 2, 'per': '5m'},
                                                'd_e-f': {'calls': 3, 'per': '1h'}}}),
     {'njs_policy.tool_limits': {'a': {'calls': 1, 'window': 60}, 'b.c': {'calls': 2, 'window': 300},
                                 'd_e-f': {'calls': 3, 'window': 3600}}}),
    ('cidrs-normalised-and-deduplicated',
     basic(allow_cidrs=['10.0.0.0/8', '10.0.0.0/8', '2001:DB8:0:0::/32', '192.0.2.7']),
     {'allow_cidrs': ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32'],
      'allow_cidrs_ipv4': ['10.0.0.0/8', '192.0.2.7/32'], 'allow_cidrs_ipv6': ['2001:db8::/32']}),
    ('cidrs-ipv6-only', basic(allow_cidrs=['fd00::/8']), {'allow_cidrs_ipv4': [], 'allow_cidrs_ipv6': ['fd00::/8']}),
    ('metrics-cidrs-may-be-empty', basic(metrics_allow_cidrs=[]), {'metrics_allow_cidrs': []}),
    ('origins-normalised', basic(allow_origins=['HTTPS://Claude.AI', 'https://claude.ai:443',
                                                'http://localhost:6274']),
     {'njs_policy.allow_origins': ['https://claude.ai', 'http://localhost:6274']}),
    ('sessions', basic(sessions={'max_per_user': 1000}), {'njs_policy.max_sessions_per_user': 1000}),
    ('user-names', with_user(basic(), 'bob@example.com', {'password': PASSWORD_BOB, 'roles': ['reader', 'admin']}),
     {'njs_policy.users': {'alice': ['admin'], 'bob@example.com': ['reader', 'admin']}}),
    ('role-without-tools', basic(roles={'admin': {'tools': ['*']}, 'empty': None, 'none': {}}),
     {'njs_policy.roles': {'admin': ADMIN_V2, 'empty': NONE_V2, 'none': NONE_V2}}),
    ('role-resources-and-prompts',
     basic(roles={'admin': {'tools': ['*'], 'resources': ['*'], 'prompts': ['*']},
                  'reader': {'tools': ['echo', 'get-sum'], 'resources': ['demo://resource/static/document/*'],
                             'prompts': ['simple-prompt']}}),
     {'njs_policy.roles': {
         'admin': {'tools_all': True, 'tools': [], 'resources_all': True, 'resources': [],
                   'prompts_all': True, 'prompts': []},
         'reader': {'tools_all': False, 'tools': ['echo', 'get-sum'], 'resources_all': False,
                    'resources': ['demo://resource/static/document/*'], 'prompts_all': False,
                    'prompts': ['simple-prompt']}}}),
    ('resource-patterns-visible-ascii',
     basic(roles={'admin': {}, 'r': {'resources': ['file:///srv/*.txt', 'x', 'a*b*c', '~!@#$%^&()[]{}|\\;:\'",<>?`=+' + 'p' * 990]}}),
     {'njs_policy.roles.r.resources': ['file:///srv/*.txt', 'x', 'a*b*c',
                                       '~!@#$%^&()[]{}|\\;:\'",<>?`=+' + 'p' * 990]}),
    ('resources-empty-list', basic(roles={'admin': {}, 'r': {'resources': [], 'prompts': None}}), {'njs_policy.roles.r': NONE_V2}),
    ('oidc-scopes', dict(oidc(scopes_supported=['openid', 'mcp:tools'], required_scopes=['mcp:tools', 'mcp:read'],
                              scope_roles={'mcp:admin': ['admin'], 'mcp:read': ['reader', 'admin'],
                                           'openid': [], 'x': None})),
     {'njs_policy.oidc.required_scopes': ['mcp:tools', 'mcp:read'],
      'njs_policy.oidc.scope_roles': {'mcp:admin': ['admin'], 'mcp:read': ['reader', 'admin'], 'openid': [],
                                      'x': []},
      'resource_metadata.scopes_supported': ['openid', 'mcp:tools', 'mcp:read', 'mcp:admin', 'x'],
      'njs_policy.scope': 'openid mcp:tools mcp:read mcp:admin x'}),
    ('oidc-scopes-null', oidc(required_scopes=None, scope_roles=None),
     {'njs_policy.oidc.required_scopes': [], 'njs_policy.oidc.scope_roles': {},
      'resource_metadata.scopes_supported': []}),
    ('null-sections-take-defaults', basic(rate_limits=None, sessions=None, allow_origins=None),
     {'njs_policy.max_sessions_per_user': 10, 'njs_policy.allow_origins': []}),
    ('users-empty', basic(users={}), {'htpasswd_users': [], 'njs_policy.users': {}}),
    ('oidc-with-empty-users', dict(oidc(), users={}), {'auth_mode': 'oidc'}),
]


def _lookup(data, dotted):
    for part in dotted.split('.'):
        data = data[part]
    return data


@pytest.mark.parametrize('policy, expected', [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_policies(policy, expected):
    assert policy_errors(policy) == []
    out = expand_policy(policy)
    for key, value in expected.items():
        assert _lookup(out, key) == value


# ---------------------------------------------------------------------------- invalid table
# (id, policy, key path the error must start with, fragment the line must contain)

def _no_url():
    policy = basic()
    del policy['public_url']
    return policy


INVALID = [
    ('none', None, 'mcpsec_policy:', 'is null'),
    ('not-a-mapping', ['public_url'], 'mcpsec_policy:', 'expected a mapping, got a list'),
    ('string', 'https://mcp.example.com', 'mcpsec_policy:', 'got a string'),
    ('unknown-top-key', basic(alow_origins=[]), 'mcpsec_policy.alow_origins:', "did you mean 'allow_origins'?"),
    ('unknown-user-key', with_user(basic(), 'bob', {'pasword': PASSWORD_BOB}),
     'mcpsec_policy.users.bob.pasword:', "did you mean 'password'?"),
    ('unknown-role-key', basic(roles={'admin': {'tool': ['*']}}), 'mcpsec_policy.roles.admin.tool:',
     "did you mean 'tools'?"),
    ('unknown-oidc-key', oidc(isuer='https://x.example'), 'mcpsec_policy.auth.oidc.isuer:', "did you mean 'issuer'?"),
    ('unknown-rate-key', basic(rate_limits={'per_usr': {}}), 'mcpsec_policy.rate_limits.per_usr:',
     "did you mean 'per_user'?"),
    ('unknown-key-no-match', basic(zzz=1), 'mcpsec_policy.zzz:', 'allowed keys: public_url'),
    ('missing-url', _no_url(), 'mcpsec_policy.public_url:', 'is required'),
    ('http-url', basic(public_url='http://mcp.example.com'), 'mcpsec_policy.public_url:',
     "must use https, got 'http'; use 'https://mcp.example.com'"),
    ('url-with-path', basic(public_url='https://mcp.example.com/mcp'), 'mcpsec_policy.public_url:',
     "must not have a path (got '/mcp'); use 'https://mcp.example.com'"),
    ('url-with-query', basic(public_url='https://mcp.example.com/?a=b'), 'mcpsec_policy.public_url:',
     'query or fragment'),
    ('url-with-fragment', basic(public_url='https://mcp.example.com#x'), 'mcpsec_policy.public_url:',
     'query or fragment'),
    ('url-userinfo', basic(public_url='https://u:hunter2hunter2@mcp.example.com'), 'mcpsec_policy.public_url:',
     'must not contain user information'),
    ('url-bad-port', basic(public_url='https://mcp.example.com:99999'), 'mcpsec_policy.public_url:',
     'not a valid URL'),
    ('url-not-string', basic(public_url=443), 'mcpsec_policy.public_url:', 'expected a string, got an integer'),
    ('missing-auth', {'public_url': 'https://mcp.example.com'}, 'mcpsec_policy.auth:', 'is required'),
    ('missing-mode', basic(auth={}), 'mcpsec_policy.auth.mode:', 'is required'),
    ('bad-mode', basic(auth={'mode': 'basci'}), 'mcpsec_policy.auth.mode:', "did you mean 'basic'?"),
    ('oidc-block-with-basic', with_auth(basic(), oidc={'issuer': 'https://idp.example.com'}),
     'mcpsec_policy.auth.oidc:', "only used when auth.mode is 'oidc'"),
    ('oidc-missing-block', {'public_url': 'https://mcp.example.com', 'auth': {'mode': 'oidc'}},
     'mcpsec_policy.auth.oidc:', "is required when auth.mode is 'oidc'"),
    ('oidc-missing-issuer', {'public_url': 'https://mcp.example.com', 'auth': {'mode': 'oidc', 'oidc': {}}},
     'mcpsec_policy.auth.oidc.issuer:', 'is required'),
    ('oidc-http-issuer', oidc(issuer='http://idp.example.com'), 'mcpsec_policy.auth.oidc.issuer:', 'must use https'),
    ('oidc-http-jwks', oidc(jwks_uri='http://idp.example.com/jwks'), 'mcpsec_policy.auth.oidc.jwks_uri:',
     'must use https'),
    ('oidc-hs256', oidc(algorithms=['RS256', 'HS256']), 'mcpsec_policy.auth.oidc.algorithms[1]:',
     "'HS256' is not supported"),
    ('oidc-empty-algorithms', oidc(algorithms=[]), 'mcpsec_policy.auth.oidc.algorithms:', 'is empty'),
    ('oidc-leeway', oidc(leeway_seconds=301), 'mcpsec_policy.auth.oidc.leeway_seconds:', 'must be 0..300'),
    ('oidc-leeway-bool', oidc(leeway_seconds=True), 'mcpsec_policy.auth.oidc.leeway_seconds:',
     'expected an integer, got a boolean'),
    ('oidc-roles-claim-proto', oidc(roles_claim='realm_access.__proto__'), 'mcpsec_policy.auth.oidc.roles_claim:',
     "invalid segment '__proto__'"),
    ('oidc-scope-space', oidc(scopes_supported=['mcp tools']), 'mcpsec_policy.auth.oidc.scopes_supported[0]:',
     'not a valid OAuth scope token'),
    ('oidc-ca-relative', oidc(ca_file='certs/ca.pem'), 'mcpsec_policy.auth.oidc.ca_file:', 'absolute path'),
    ('oidc-with-users', dict(oidc(), users={'alice': {'roles': ['admin']}}), 'mcpsec_policy.users:',
     "must be empty when auth.mode is 'oidc'"),
    ('basic-missing-password', with_user(basic(), 'bob', {'roles': ['reader']}), 'mcpsec_policy.users.bob.password:',
     "is required when auth.mode is 'basic'"),
    ('bearer-missing-token', with_user(bearer(), 'bob', {'roles': ['reader']}), 'mcpsec_policy.users.bob.token:',
     "is required when auth.mode is 'bearer'"),
    ('basic-with-token', with_user(basic(), 'bob', {'password': PASSWORD_BOB, 'token': TOKEN}),
     'mcpsec_policy.users.bob.token:', "is not used when auth.mode is 'basic'"),
    ('bearer-with-password', with_user(bearer(), 'bob', {'password': PASSWORD_BOB}),
     'mcpsec_policy.users.bob.password:', 'remove it and set token instead'),
    ('password-short', with_user(basic(), 'bob', {'password': 'Sh0rt!pw'}), 'mcpsec_policy.users.bob.password:',
     'too short (8 characters, minimum 12)'),
    ('token-short', with_user(bearer(), 'bob', {'token': 'abcdef0123456789'}), 'mcpsec_policy.users.bob.token:',
     'minimum 32'),
    ('placeholder-changeme', with_user(basic(), 'bob', {'password': 'changeme1234'}),
     'mcpsec_policy.users.bob.password:', 'placeholder'),
    ('placeholder-CHANGE_ME', with_user(basic(), 'bob', {'password': 'CHANGE_ME-please'}),
     'mcpsec_policy.users.bob.password:', 'CHANGE_ME'),
    ('placeholder-password', with_user(basic(), 'bob', {'password': 'Password1234'}),
     'mcpsec_policy.users.bob.password:', 'placeholder'),
    ('placeholder-xxx', with_user(bearer(), 'bob', {'token': 'x' * 40}), 'mcpsec_policy.users.bob.token:',
     'placeholder'),
    ('placeholder-template', with_user(basic(), 'bob', {'password': '{{ vault_bob_password }}'}),
     'mcpsec_policy.users.bob.password:', 'template markers'),
    ('placeholder-angle', with_user(bearer(), 'bob', {'token': '<paste-the-token-for-bob-here-please>'}),
     'mcpsec_policy.users.bob.token:', '<placeholder>'),
    ('placeholder-TODO', with_user(basic(), 'bob', {'password': 'TODO-set-later-7'}),
     'mcpsec_policy.users.bob.password:', 'TODO'),
    ('secret-not-string', with_user(basic(), 'bob', {'password': 123456789012345}),
     'mcpsec_policy.users.bob.password:', 'expected a string, got an integer'),
    ('token-bad-charset', with_user(bearer(), 'bob', {'token': 'abc def ghi jkl mno pqr stu vwx yz0 123'}),
     'mcpsec_policy.users.bob.token:', 'Authorization: Bearer'),
    ('token-shared', with_user(bearer(), 'bob', {'token': TOKEN}), 'mcpsec_policy.users.bob.token:',
     "same token as user 'ci-bot'"),
    ('users-case-duplicate', with_user(basic(), 'Alice', {'password': PASSWORD_BOB}), 'mcpsec_policy.users.Alice:',
     "same as user 'alice' ignoring case"),
    ('user-name-bad', with_user(basic(), '-bob', {'password': PASSWORD_BOB}), 'mcpsec_policy.users.-bob:',
     'user name'),
    ('user-name-boolean', {'public_url': 'https://mcp.example.com', 'auth': {'mode': 'basic'},
                           'users': {True: {'password': PASSWORD}}},
     'mcpsec_policy.users.True:', 'YAML reads yes/no'),
    ('user-name-constructor', with_user(basic(), 'constructor', {'password': PASSWORD_BOB}),
     'mcpsec_policy.users.constructor:', 'reserved JavaScript property name'),
    ('user-undefined-role', with_user(basic(), 'alice', {'password': PASSWORD, 'roles': ['reader', 'admn']}),
     'mcpsec_policy.users.alice.roles[1]:', "role 'admn' is not defined (defined: admin, reader)"),
    ('user-duplicate-role', with_user(basic(), 'alice', {'password': PASSWORD, 'roles': ['admin', 'admin']}),
     'mcpsec_policy.users.alice.roles[1]:', "role 'admin' is listed twice"),
    ('user-roles-string', with_user(basic(), 'alice', {'password': PASSWORD, 'roles': 'admin'}),
     'mcpsec_policy.users.alice.roles:', 'expected a list, got a string'),
    ('users-list', basic(users=['alice']), 'mcpsec_policy.users:', 'expected a mapping of user names'),
    ('role-proto', basic(roles={'__proto__': {'tools': ['*']}}), 'mcpsec_policy.roles.__proto__:',
     'reserved JavaScript property name'),
    ('role-constructor', basic(roles={'admin': {'tools': ['*']}, 'constructor': {}}),
     'mcpsec_policy.roles.constructor:', 'reserved JavaScript property name'),
    ('role-name-digit', basic(roles={'admin': {'tools': ['*']}, '1st': {}}), 'mcpsec_policy.roles.1st:',
     'starting with a letter'),
    ('tool-lookalike', basic(roles={'admin': {'tools': ['\u0435cho']}}), 'mcpsec_policy.roles.admin.tools[0]:',
     'is not ASCII (U+0435 CYRILLIC SMALL LETTER IE'),
    ('tool-bad-chars', basic(roles={'admin': {'tools': ['get sum']}}), 'mcpsec_policy.roles.admin.tools[0]:',
     "tool name 'get sum' is invalid"),
    ('tool-too-long', basic(roles={'admin': {'tools': ['a' * 129]}}), 'mcpsec_policy.roles.admin.tools[0]:',
     'is invalid'),
    ('tool-duplicate', basic(roles={'admin': {'tools': ['echo', 'add', 'echo']}}),
     'mcpsec_policy.roles.admin.tools[2]:', "tool 'echo' is listed twice"),
    ('tool-star-and-names', basic(roles={'admin': {'tools': ['*', 'echo']}}), 'mcpsec_policy.roles.admin.tools:',
     "'*' already grants every tool"),
    ('resource-space', basic(roles={'r': {'resources': ['demo://a b']}}), 'mcpsec_policy.roles.r.resources[0]:',
     "resource pattern 'demo://a b' is invalid"),
    ('resource-control', basic(roles={'r': {'resources': ['demo://a\tb']}}), 'mcpsec_policy.roles.r.resources[0]:',
     'is invalid'),
    ('resource-empty', basic(roles={'r': {'resources': ['']}}), 'mcpsec_policy.roles.r.resources[0]:',
     'is invalid; use 1-1024 visible ASCII'),
    ('resource-too-long', basic(roles={'r': {'resources': ['a' * 1025]}}), 'mcpsec_policy.roles.r.resources[0]:',
     'is invalid'),
    ('resource-non-ascii', basic(roles={'r': {'resources': ['demo://caf\u00e9']}}),
     'mcpsec_policy.roles.r.resources[0]:', 'is not ASCII (U+00E9 LATIN SMALL LETTER E WITH ACUTE'),
    ('resource-duplicate', basic(roles={'r': {'resources': ['demo://*', 'x', 'demo://*']}}),
     'mcpsec_policy.roles.r.resources[2]:', "resource pattern 'demo://*' is listed twice"),
    ('resource-star-and-patterns', basic(roles={'r': {'resources': ['demo://*', '*']}}),
     'mcpsec_policy.roles.r.resources:', "'*' already grants every resource"),
    ('resource-string', basic(roles={'r': {'resources': 'demo://*'}}), 'mcpsec_policy.roles.r.resources:',
     'expected a list, got a string'),
    ('resource-not-string', basic(roles={'r': {'resources': [{'uri': 'x'}]}}), 'mcpsec_policy.roles.r.resources[0]:',
     'expected a string, got a mapping'),
    ('prompt-bad-chars', basic(roles={'r': {'prompts': ['simple prompt']}}), 'mcpsec_policy.roles.r.prompts[0]:',
     "prompt name 'simple prompt' is invalid"),
    ('prompt-lookalike', basic(roles={'r': {'prompts': ['\u0455imple']}}), 'mcpsec_policy.roles.r.prompts[0]:',
     'prompt name'),
    ('prompt-reserved', basic(roles={'r': {'prompts': ['toString']}}), 'mcpsec_policy.roles.r.prompts[0]:',
     'reserved JavaScript property name'),
    ('prompt-duplicate', basic(roles={'r': {'prompts': ['a', 'a']}}), 'mcpsec_policy.roles.r.prompts[1]:',
     "prompt 'a' is listed twice"),
    ('prompt-star-and-names', basic(roles={'r': {'prompts': ['*', 'a']}}), 'mcpsec_policy.roles.r.prompts:',
     "'*' already grants every prompt"),
    ('role-unknown-key', basic(roles={'r': {'resource': ['*']}}), 'mcpsec_policy.roles.r.resource:',
     "did you mean 'resources'?"),
    ('oidc-required-scope-space', oidc(required_scopes=['mcp tools']), 'mcpsec_policy.auth.oidc.required_scopes[0]:',
     'not a valid OAuth scope token'),
    ('oidc-required-scope-quote', oidc(required_scopes=['mcp"x']), 'mcpsec_policy.auth.oidc.required_scopes[0]:',
     'not a valid OAuth scope token'),
    ('oidc-required-scope-backslash', oidc(required_scopes=['a\\b']),
     'mcpsec_policy.auth.oidc.required_scopes[0]:', 'not a valid OAuth scope token'),
    ('oidc-required-scope-long', oidc(required_scopes=['s' * 129]), 'mcpsec_policy.auth.oidc.required_scopes[0]:',
     'not a valid OAuth scope token'),
    ('oidc-required-scope-empty', oidc(required_scopes=['']), 'mcpsec_policy.auth.oidc.required_scopes[0]:',
     'not a valid OAuth scope token'),
    ('oidc-required-scope-twice', oidc(required_scopes=['a', 'a']), 'mcpsec_policy.auth.oidc.required_scopes[1]:',
     "scope 'a' is listed twice"),
    ('oidc-required-scopes-string', oidc(required_scopes='mcp:tools'), 'mcpsec_policy.auth.oidc.required_scopes:',
     'expected a list, got a string'),
    ('oidc-required-scope-int', oidc(required_scopes=[1]), 'mcpsec_policy.auth.oidc.required_scopes[0]:',
     'expected a string, got an integer'),
    ('oidc-scope-roles-list', oidc(scope_roles=['mcp:admin']), 'mcpsec_policy.auth.oidc.scope_roles:',
     'expected a mapping of scopes to role lists'),
    ('oidc-scope-roles-bad-scope', oidc(scope_roles={'mcp admin': ['admin']}),
     'mcpsec_policy.auth.oidc.scope_roles["mcp admin"]:', 'not a valid OAuth scope token'),
    ('oidc-scope-roles-undefined-role', oidc(scope_roles={'mcp:admin': ['admn']}),
     'mcpsec_policy.auth.oidc.scope_roles["mcp:admin"][0]:', "role 'admn' is not defined (defined: admin, reader)"),
    ('oidc-scope-roles-twice', oidc(scope_roles={'mcp:admin': ['admin', 'admin']}),
     'mcpsec_policy.auth.oidc.scope_roles["mcp:admin"][1]:', "role 'admin' is listed twice"),
    ('oidc-scope-roles-string', oidc(scope_roles={'mcp:admin': 'admin'}),
     'mcpsec_policy.auth.oidc.scope_roles["mcp:admin"]:', 'expected a list, got a string'),
    ('required-scopes-with-basic', with_auth(basic(), oidc={'required_scopes': ['a']}), 'mcpsec_policy.auth.oidc:',
     "only used when auth.mode is 'oidc'"),
    ('tool-not-string', basic(roles={'admin': {'tools': [7]}}), 'mcpsec_policy.roles.admin.tools[0]:',
     'expected a string, got an integer'),
    ('rate-no-r', basic(rate_limits={'per_ip': {'rate': '10/s'}}), 'mcpsec_policy.rate_limits.per_ip.rate:',
     "rate '10/s' is not valid"),
    ('rate-zero', basic(rate_limits={'per_ip': {'rate': '0r/s'}}), 'mcpsec_policy.rate_limits.per_ip.rate:',
     "rate '0r/s' is not valid"),
    ('rate-no-number', basic(rate_limits={'per_user': {'rate': 'r/s'}}), 'mcpsec_policy.rate_limits.per_user.rate:',
     'not valid'),
    ('rate-per-hour', basic(rate_limits={'per_user': {'rate': '10r/h'}}),
     'mcpsec_policy.rate_limits.per_user.rate:', 'not valid'),
    ('burst-negative', basic(rate_limits={'per_ip': {'burst': -1}}), 'mcpsec_policy.rate_limits.per_ip.burst:',
     'must be >= 0'),
    ('burst-string', basic(rate_limits={'per_ip': {'burst': '40'}}), 'mcpsec_policy.rate_limits.per_ip.burst:',
     'expected an integer, got a string'),
    ('refusals-not-a-rate', basic(rate_limits={'per_ip': {'refusals': 300}}),
     'mcpsec_policy.rate_limits.per_ip.refusals:', 'expected a string, got an integer'),
    ('refusals-bad-rate', basic(rate_limits={'per_ip': {'refusals': '300/m'}}),
     'mcpsec_policy.rate_limits.per_ip.refusals:', "rate '300/m' is not valid"),
    ('refusals-zero', basic(rate_limits={'per_ip': {'refusals': '0r/m'}}),
     'mcpsec_policy.rate_limits.per_ip.refusals:', "rate '0r/m' is not valid"),
    ('auth-failures-bad-rate', basic(rate_limits={'per_ip': {'auth_failures': '50 per minute'}}),
     'mcpsec_policy.rate_limits.per_ip.auth_failures:', "write N r/s or N r/m"),
    ('auth-failures-per-user', basic(rate_limits={'per_user': {'auth_failures': '50r/m'}}),
     'mcpsec_policy.rate_limits.per_user.auth_failures:', 'unknown key'),
    ('connections-zero', basic(rate_limits={'per_ip': {'connections': 0}}),
     'mcpsec_policy.rate_limits.per_ip.connections:', 'must be 1..65535, got 0'),
    ('connections-over-nginx-max', basic(rate_limits={'per_user': {'connections': 65536}}),
     'mcpsec_policy.rate_limits.per_user.connections:', 'must be 1..65535'),
    ('connections-string', basic(rate_limits={'per_user': {'connections': '8'}}),
     'mcpsec_policy.rate_limits.per_user.connections:', 'expected an integer, got a string'),
    ('per-tool-star', basic(rate_limits={'per_tool': {'*': {'calls': 3, 'per': '60s'}}}),
     'mcpsec_policy.rate_limits.per_tool["*"]:', "not '*'"),
    ('per-tool-bad-name', basic(rate_limits={'per_tool': {'get sum': {'calls': 3, 'per': '60s'}}}),
     'mcpsec_policy.rate_limits.per_tool["get sum"]:', 'is invalid'),
    ('per-tool-window', basic(rate_limits={'per_tool': {'echo': {'calls': 3, 'per': '60'}}}),
     'mcpsec_policy.rate_limits.per_tool.echo.per:', "duration '60' is not valid; write N followed by s, m or h"),
    ('per-tool-window-day', basic(rate_limits={'per_tool': {'echo': {'calls': 3, 'per': '2d'}}}),
     'mcpsec_policy.rate_limits.per_tool.echo.per:', 'not valid'),
    ('per-tool-calls-zero', basic(rate_limits={'per_tool': {'echo': {'calls': 0, 'per': '1m'}}}),
     'mcpsec_policy.rate_limits.per_tool.echo.calls:', 'must be >= 1'),
    ('per-tool-missing-per', basic(rate_limits={'per_tool': {'echo': {'calls': 1}}}),
     'mcpsec_policy.rate_limits.per_tool.echo.per:', 'is required'),
    ('sessions-zero', basic(sessions={'max_per_user': 0}), 'mcpsec_policy.sessions.max_per_user:',
     'must be 1..1000'),
    ('sessions-too-many', basic(sessions={'max_per_user': 1001}), 'mcpsec_policy.sessions.max_per_user:',
     'must be 1..1000'),
    ('cidr-host-bits', basic(allow_cidrs=['10.1.2.3/8']), 'mcpsec_policy.allow_cidrs[0]:',
     "'10.1.2.3/8' has host bits set; use '10.0.0.0/8'"),
    ('cidr-v6-host-bits', basic(metrics_allow_cidrs=['::1/128', 'fd00::1/8']), 'mcpsec_policy.metrics_allow_cidrs[1]:',
     "use 'fd00::/8'"),
    ('cidr-garbage', basic(allow_cidrs=['10.0.0.0/33']), 'mcpsec_policy.allow_cidrs[0]:', 'is not an IP network'),
    ('cidr-empty', basic(allow_cidrs=[]), 'mcpsec_policy.allow_cidrs:', 'nobody could reach'),
    ('cidr-string', basic(allow_cidrs='10.0.0.0/8'), 'mcpsec_policy.allow_cidrs:', 'expected a list, got a string'),
    ('origin-http', basic(allow_origins=['http://claude.ai']), 'mcpsec_policy.allow_origins[0]:',
     "use 'https://claude.ai'"),
    ('origin-path', basic(allow_origins=['https://claude.ai/']), 'mcpsec_policy.allow_origins[0]:',
     "use 'https://claude.ai'"),
    ('origin-star', basic(allow_origins=['*']), 'mcpsec_policy.allow_origins[0]:', 'any web page'),
]


@pytest.mark.parametrize('policy, path, fragment', [v[1:] for v in INVALID], ids=[v[0] for v in INVALID])
def test_invalid_policies(policy, path, fragment):
    errors = policy_errors(policy)
    matching = [line for line in errors if line.startswith(path + ' ')]
    assert matching, 'no error for %s in %r' % (path, errors)
    assert any(fragment in line for line in matching), matching
    with pytest.raises(PolicyError) as caught:
        expand_policy(policy)
    assert caught.value.errors == errors
    text = str(caught.value)
    assert text.split('\n') == errors
    for secret in SECRETS + ('hunter2hunter2', 'Sh0rt!pw', 'abcdef0123456789', 'changeme1234', 'Password1234'):
        assert secret not in text


def test_contract_error_message_exactly():
    policy = with_user(basic(), 'alice', {'password': PASSWORD, 'roles': ['reader', 'admn']})
    assert policy_errors(policy) == [
        "mcpsec_policy.users.alice.roles[1]: role 'admn' is not defined (defined: admin, reader)"]


def test_all_errors_are_collected_one_per_line():
    policy = basic(public_url='http://mcp.example.com', alow_origins=[],
                   rate_limits={'per_ip': {'rate': '10/s', 'burst': -1}},
                   allow_cidrs=['10.1.2.3/8'])
    with_user(policy, 'Alice', {'password': 'changeme', 'roles': ['admn']})
    errors = policy_errors(policy)
    paths = [line.split(':', 1)[0] for line in errors]
    assert paths == [
        'mcpsec_policy.alow_origins',
        'mcpsec_policy.public_url',
        'mcpsec_policy.users.Alice',
        'mcpsec_policy.users.Alice.password',
        'mcpsec_policy.users.Alice.roles[0]',
        'mcpsec_policy.rate_limits.per_ip.rate',
        'mcpsec_policy.rate_limits.per_ip.burst',
        'mcpsec_policy.allow_cidrs[0]',
    ]
    for line in errors:
        assert '\n' not in line
        assert 'changeme' not in line


def test_every_error_line_has_a_path_a_problem_and_a_fix():
    for _id, policy, _path, _fragment in INVALID:
        for line in policy_errors(policy):
            assert line.startswith('mcpsec_policy')
            head, _sep, rest = line.partition(': ')
            assert rest, line
            assert ';' in rest or '(defined:' in rest, line


def test_lookalike_tool_name_is_escaped_in_message():
    line = policy_errors(basic(roles={'admin': {'tools': ['\u0435cho']}}))[0]
    assert '\\u0435cho' in line
    assert line.isascii()


def test_user_names_with_dots_are_quoted_in_paths():
    policy = with_user(basic(), 'bob@example.com', {'password': 'short'})
    assert policy_errors(policy)[0].startswith('mcpsec_policy.users["bob@example.com"].password: ')


class FakeUndefined(object):
    """Stands in for jinja2.Undefined without importing Jinja."""


FakeUndefined.__name__ = 'Undefined'


class FakeUnsafe(str):
    """Stands in for AnsibleUnsafeText / a 2.19 tagged str."""


def test_undefined_values_are_reported_with_their_path():
    policy = with_user(basic(), 'bob', {'password': FakeUndefined(), 'roles': ['reader']})
    errors = policy_errors(policy)
    assert errors == ['mcpsec_policy.users.bob.password: is undefined; '
                      'define the variable it refers to or remove the key']
    assert policy_errors(FakeUndefined())[0].startswith('mcpsec_policy: is undefined')


def test_unsafe_strings_are_accepted_and_secrets_keep_their_type():
    policy = basic(public_url=FakeUnsafe('https://mcp.example.com'))
    policy['users'] = {FakeUnsafe('alice'): {'password': FakeUnsafe(PASSWORD), 'roles': [FakeUnsafe('admin')]}}
    out = expand_policy(policy)
    assert out['public_url'].__class__ is str
    assert out['htpasswd_users'][0]['name'].__class__ is str
    assert out['htpasswd_users'][0]['password'].__class__ is FakeUnsafe
    assert list(out['njs_policy']['users'])[0].__class__ is str


class ExplodingDict(dict):
    def __getitem__(self, key):
        if key == 'password':
            raise RuntimeError('AnsibleUndefinedVariable')
        return dict.__getitem__(self, key)


def test_values_that_fail_to_template_are_reported():
    policy = with_user(basic(), 'bob', ExplodingDict(password='x', roles=[]))
    errors = policy_errors(policy)
    assert errors == ['mcpsec_policy.users.bob.password: cannot be evaluated (RuntimeError); '
                      'define the variables it refers to']


def test_placeholder_reason_accepts_random_secrets():
    assert _policy_check._placeholder_reason(PASSWORD) is None
    assert _policy_check._placeholder_reason(TOKEN) is None
    assert _policy_check._placeholder_reason('correct horse battery staple') is None
    assert _policy_check._placeholder_reason('ababababababab') is not None


def test_filter_plugin_raises_ansible_filter_error():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mcpsec.gateway.plugins.filter import expand_policy as plugin
    from ansible_collections.mcpsec.gateway.plugins.filter import policy_errors as plugin_errors

    filters = plugin.FilterModule().filters()
    assert filters['expand_policy'](CONTRACT_INPUT) == CONTRACT_OUTPUT
    with pytest.raises(AnsibleFilterError) as caught:
        filters['expand_policy'](with_user(basic(), 'bob', {'password': 'Sh0rt!pw'}))
    assert 'mcpsec_policy.users.bob.password: is too short' in str(caught.value)
    assert 'Sh0rt!pw' not in str(caught.value)
    assert plugin_errors.FilterModule().filters()['policy_errors'](CONTRACT_INPUT) == []
