"""Render the proxy role's njs files for one auth mode, the way the role does.

Usage: python3 render.py <src-root> <mode> <fixtures-dir>

The test policy goes through the collection's own expand_policy (pure Python),
then roles/proxy/templates/*.j2 are rendered with Jinja2 into /etc/nginx, next
to a plain-HTTP test server on 127.0.0.1:8080 that includes locations.conf.
MCPSEC_TEMPLATES overrides the template directory (development only).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import jinja2

src, mode, fixtures = sys.argv[1], sys.argv[2], sys.argv[3]
# plugin_utils is a namespace package: _policy imports its sibling modules relatively.
sys.path.insert(0, os.path.join(src, 'plugins'))
from plugin_utils import _policy, _servers  # noqa: E402
import pin_ref  # noqa: E402  (tests/njs, beside this file)

CONF = '/etc/nginx/mcpsec'
PASSWORDS = {'alice': 'alice-horse-battery-1', 'bob': 'bob-staple-correct-22', 'carol': 'carol-orbit-lantern-3'}
TOKENS = {name: 'tok-%s-Zq8vN3kLw5pR7tY2uX4mB6cD9eF1gH0j' % name
          for name in ('alice', 'bob', 'carol', 'dave', 'mallory')}
ROLES = {'admin': {'tools': ['*'], 'resources': ['*'], 'prompts': ['*'], 'servers': {'time': {'tools': ['*']}}},
         'reader': {'tools': ['echo', 'get-sum', 'slow-tool'], 'resources': ['demo://resource/static/document/*'],
                    'prompts': ['simple-prompt']},
         # the second MCP server (issue 20): granted there only, one tool
         'timeonly': {'servers': {'time': {'tools': ['echo'], 'resources': [], 'prompts': []}}}}

policy = {
    'public_url': 'https://mcp.test',
    'auth': {'mode': mode},
    'roles': ROLES,
    'allow_origins': ['https://claude.ai'],
    'sessions': {'max_per_user': 2},
    'rate_limits': {
        'per_ip': {'rate': '1000r/s', 'burst': 1000},
        'per_user': {'rate': '20r/s', 'burst': 200},
        'per_tool': {'slow-tool': {'calls': 3, 'per': '60s'}},
    },
}
if mode == 'basic':
    policy['users'] = {'alice': {'password': PASSWORDS['alice'], 'roles': ['admin']},
                       'bob': {'password': PASSWORDS['bob'], 'roles': ['reader']},
                       'carol': {'password': PASSWORDS['carol'], 'roles': []}}
    # per-IP limit exercised from a dedicated source address
    policy['rate_limits']['per_ip'] = {'rate': '20r/s', 'burst': 150}
    policy['rate_limits']['per_user'] = {'rate': '1000r/s', 'burst': 1000}
elif mode == 'bearer':
    policy['users'] = {'alice': {'token': TOKENS['alice'], 'roles': ['admin']},
                       'bob': {'token': TOKENS['bob'], 'roles': ['reader']},
                       'carol': {'token': TOKENS['carol'], 'roles': []},
                       'dave': {'token': TOKENS['dave'], 'roles': ['reader']},
                       'mallory': {'token': TOKENS['mallory'], 'roles': ['reader']},
                       'ada': {'token': TOKENS.setdefault('ada', 'tok-ada-Zq8vN3kLw5pR7tY2uX4mB6cD9eF1gH0j'),
                               'roles': ['admin']},
                       'tim': {'token': TOKENS.setdefault('tim', 'tok-tim-Zq8vN3kLw5pR7tY2uX4mB6cD9eF1gH0j'),
                               'roles': ['timeonly']}}
else:
    fx = json.load(open(os.path.join(fixtures, 'fixtures.json')))
    policy['auth']['oidc'] = {'issuer': fx['issuer'], 'algorithms': ['RS256', 'ES256'],
                              'roles_claim': 'realm_access.roles', 'scopes_supported': ['mcp:tools'],
                              'required_scopes': ['mcp:tools'], 'scope_roles': {'mcp:admin': ['admin']},
                              'leeway_seconds': 60, 'ca_file': os.path.join(fixtures, 'ca.pem')}

# MCPSEC_VARIANT (bearer mode): 'hostcap' renders a small host session cap and more users
# (N concurrent initializes of many subjects admit exactly the cap); 'stores' renders the
# limit zones at nginx's smallest size (32k) so that the cases can fill each one.
VARIANT = os.environ.get('MCPSEC_VARIANT', '')
MAX_SESSIONS_TOTAL = 1000
if mode == 'bearer':
    # frank, grace: the review cases (http_cases.review_cases); hal: the multiserver host cap case
    for name in ('erin', 'frank', 'grace', 'hal'):
        policy['users'][name] = {'token': TOKENS.setdefault(name, 'tok-%s-Zq8vN3kLw5pR7tY2uX4mB6cD9eF1gH0j' % name),
                                 'roles': ['reader']}
if VARIANT:
    for i in range(200 if VARIANT == 'stores' else 30):
        name = 'u%d' % i
        TOKENS[name] = 'tok-%s-Zq8vN3kLw5pR7tY2uX4mB6cD9eF1gH0j' % name
        policy['users'][name] = {'token': TOKENS[name], 'roles': ['reader']}
    policy['rate_limits']['per_user'] = {'rate': '1000r/s', 'burst': 5000}
if VARIANT == 'hostcap':
    MAX_SESSIONS_TOTAL = 5
if VARIANT == 'stores':
    policy['rate_limits']['per_tool'] = {'slow-tool': {'calls': 100000, 'per': '1h'}}
TINY_ZONES = ('mcpsec_sessions', 'mcpsec_counters', 'mcpsec_toolslots') if VARIANT == 'stores' else ()

if os.environ.get('MCPSEC_BENCH'):
    # bench/: measure the enforcement path, not the limiter
    policy['rate_limits']['per_ip'] = {'rate': '999999r/s', 'burst': 100000}
    policy['rate_limits']['per_user'] = {'rate': '999999r/s', 'burst': 100000}
    policy['sessions']['max_per_user'] = 1000

# Tool pinning (issue 22), bearer mode: the time server pins three tools (pin_ref.py).
if mode == 'bearer':
    policy['tool_pins'] = {'time': dict(pin_ref.PINS)}

# The MCP servers, expanded by the collection's own expand_servers (as roles/common does): the
# default one at /mcp on 8000 (tests/njs/upstream.py), and "time" at /time/mcp on 8008 (a second
# upstream). The host cap (max_sessions_total) is the filter's: proxy_max_sessions_total for the
# default server, the capacity of its slice for "time" (4).
_PACKAGE = {'package': 'mcp-test-server', 'version': '1.0.0', 'executable': 'mcp-test-server'}
SERVERS = _servers.expand_servers(
    {'default': dict(_PACKAGE), 'time': dict(_PACKAGE, port=8008, max_sessions=4)}, {},
    {'user': 'mcp', 'group': 'mcp', 'home': '/var/lib/mcpsec', 'env_file': '/etc/mcpsec/mcp-server.env',
     'install_dir': '/opt/mcpsec/mcp-server', 'unit': 'mcpsec-supergateway', 'base_port': 8000, 'instances': 1,
     'max_sessions': 1000, 'session_memory_mb': 16, 'session_tasks': 2, 'max_sessions_total': MAX_SESSIONS_TOTAL})
mcpsec = _policy.expand_policy(policy, SERVERS)

search = [os.path.join(src, 'roles', 'proxy', 'templates')]
if os.environ.get('MCPSEC_TEMPLATES'):
    search.insert(0, os.environ['MCPSEC_TEMPLATES'])
env = jinja2.Environment(loader=jinja2.FileSystemLoader(search), keep_trailing_newline=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=False)
env.filters['to_json'] = json.dumps


def combine(base, other, recursive=False):
    """Ansible's combine filter, for the dicts policy.json.j2 merges."""
    out = dict(base)
    for k, v in other.items():
        out[k] = combine(out[k], v, True) if recursive and isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


env.filters['combine'] = combine
env.filters['bool'] = lambda v: v if isinstance(v, bool) else str(v).strip().lower() in ('1', 'true', 'yes', 'on')
env.filters['to_nice_json'] = lambda v, indent=4, **kw: json.dumps(v, indent=indent, **kw)
env.tests['search'] = lambda value, pattern: re.search(pattern, value) is not None
variables = {
    '__mcpsec': mcpsec, '__mcpsec_servers': SERVERS, 'ansible_managed': 'Rendered by tests/njs/render.py',
    'proxy_conf_dir': CONF, 'proxy_backend_address': '127.0.0.1',
    'proxy_backend_instances': 1, 'proxy_backend_path': '/mcp', 'proxy_client_max_body_size': '100k', 'proxy_read_timeout': '3600s',
    'proxy_audit_log': '/var/log/nginx/mcpsec-audit.log', 'proxy_hsts_max_age': 63072000,
    'ansible_facts': {'dns': {'nameservers': ['127.0.0.153']}},
    # roles/proxy/defaults/main.yml
    'proxy_session_idle_timeout': '24h', 'proxy_resolvers': [],
    'proxy_audit_log_buffer': os.environ.get('MCPSEC_AUDIT_BUFFER', ''), 'proxy_audit_log_flush': '1s',
    'proxy_audit_syslog': '',
    'proxy_basic_auth_cache_ttl': '5m',
    'proxy_list_response_max_size': '2m', 'proxy_list_read_timeout': '120s',
    # the MCP metrics (njs/metrics.js) on the loopback status server
    'proxy_observability_enabled': os.environ.get('MCPSEC_OBSERVABILITY', 'on') != 'off',
    'common_stub_status_port': 8081, 'common_supergateway_health_path': '/healthz',
}


def render(name, dest, mode_=0o644):
    with open(dest, 'w') as f:
        f.write(env.get_template(name).render(**variables))
    os.chmod(dest, mode_)


os.makedirs(CONF, exist_ok=True)
shutil.rmtree(CONF + '/njs', ignore_errors=True)
shutil.copytree(os.path.join(src, 'roles', 'proxy', 'files', 'njs'), CONF + '/njs')
render('policy.json.j2', CONF + '/policy.json')
for server in mcpsec['servers']:
    name = 'resource-metadata%s.json' % ('' if server['name'] == 'default' else '-' + server['name'])
    with open(os.path.join(CONF, name), 'w') as f:
        json.dump(server['resource_metadata'], f, indent=2, sort_keys=True)
with open(CONF + '/tokens.json', 'w') as f:
    json.dump(dict((u['name'], hashlib.sha256(u['token'].encode()).hexdigest())
                   for u in mcpsec['token_users']), f, sort_keys=True)
with open(CONF + '/htpasswd', 'w') as f:
    for u in mcpsec['htpasswd_users']:
        h = subprocess.run(['openssl', 'passwd', '-6', '-stdin'], input=u['password'].encode(),
                           capture_output=True, check=True).stdout.decode().strip()
        f.write('%s:%s\n' % (u['name'], h))
with open(CONF + '/route.json', 'w') as f:
    json.dump({'host': 'gw-test', 'instances': 1, 'address': '127.0.0.1', 'port': 8000, 'path': '/mcp',
               'servers': dict((sv['name'], {'upstream': sv['upstream'], 'instances': sv['instances'], 'port': sv['port']})
                               for sv in SERVERS)}, f)
with open(CONF + '/route_key.json', 'w') as f:
    json.dump({'key': 'test-route-key-Zq8vN3kLw5pR7tY2uX4mB6cD9eF1gH0j'}, f)
os.chmod(CONF + '/route_key.json', 0o600)
render('njs_http.conf.j2', '/etc/nginx/conf.d/mcpsec-http.conf')
if TINY_ZONES:
    with open('/etc/nginx/conf.d/mcpsec-http.conf') as f:
        text = f.read()
    for zone in TINY_ZONES:
        text, n = re.subn(r'zone=%s:[0-9]+[km]' % zone, 'zone=%s:32k' % zone, text)
        assert n == 1, zone
    with open('/etc/nginx/conf.d/mcpsec-http.conf', 'w') as f:
        f.write(text)
# Two workers, as on a 2-core host, whatever the container's CPU count: the concurrency
# cases must cross workers.
with open('/etc/nginx/nginx.conf') as f:
    text = f.read()
with open('/etc/nginx/nginx.conf', 'w') as f:
    f.write(re.sub(r'(?m)^worker_processes\s+[^;]+;', 'worker_processes 2;', text))
render('njs_locations.conf.j2', CONF + '/locations.conf')
render('stub-status.conf.j2', '/etc/nginx/conf.d/mcpsec-stub-status.conf')
render('security-headers.conf.j2', CONF + '/security-headers.conf')
with open('/etc/nginx/sites-enabled/mcpsec-test.conf', 'w') as f:
    f.write('''server {
    listen 127.0.0.1:8080 default_server;
    server_name mcp.test;
    include %(c)s/security-headers.conf;
    default_type application/json;
    include %(c)s/locations.conf;
    location / { return 404 '{"error":"not_found"}\\n'; }
}
''' % {'c': CONF})
json.dump({'passwords': PASSWORDS, 'tokens': TOKENS, 'expanded': {
    k: v for k, v in mcpsec.items() if k not in ('htpasswd_users', 'token_users')}},
    open('/opt/mcpsec-test/secrets-%s.json' % mode, 'w'), indent=1)
