"""The njs cases' view of the gateway under test: raw HTTP on 127.0.0.1:8080 from chosen
loopback addresses, the credentials of the mode, the checks a test makes, and the host
operations some cases need (reload nginx, restart the stand-in backend, the IdP)."""
import base64
import json
import os
import socket
import subprocess
import time

import mcp_wire
from mcp_wire import encode

AUDIT = '/var/log/nginx/mcpsec-audit.log'
RESOURCE_METADATA = 'https://mcp.test/.well-known/oauth-protected-resource'
TIME_PATH = '/time/mcp'     # the second MCP server of the rendered configuration (issue 20)
JSON_HEADERS = [('Content-Type', 'application/json'), ('Accept', 'application/json, text/event-stream')]
USERS = {'basic': ('alice', 'bob', 'carol'), 'bearer': ('alice', 'bob', 'carol'),
         'oidc': ('rs256_admin', 'rs256_reader', 'rs256_noroles')}
UPSTREAM_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'upstream.py')


class Checks:
    """Soft assertions: each check prints one line; a failed one names what was sent and what came back."""

    def __init__(self, label):
        self.label, self.failed = label, []

    def __call__(self, name, ok, detail=''):
        line = '%s - [%s] %s' % ('ok' if ok else 'not ok', self.label, name)
        if not ok:
            line += ' :: ' + str(detail)[:400]
            self.failed.append(line)
        print(line, flush=True)
        return ok


class Gateway:
    def __init__(self, mode, variant, fixtures_dir):
        self.mode, self.variant = mode, variant
        self.label = mode + ('/' + variant if variant else '')
        with open('/opt/mcpsec-test/secrets-%s.json' % mode) as f:
            self.secrets = json.load(f)
        with open(os.path.join(fixtures_dir, 'fixtures.json')) as f:
            self.fx = json.load(f)
        self.fixtures_dir = fixtures_dir
        self.users = dict(zip(('admin', 'reader', 'noroles'), USERS[mode]))
        self.mcp_requests = 0      # requests to an MCP location: the audit log has one line each
        self._next = 0

    def next_addresses(self, n):
        """n loopback addresses no other test has used (127.30.0.1 upwards)."""
        out = []
        while len(out) < n:
            self._next += 1
            host = self._next % 254 + 1
            out.append('127.%d.%d.%d' % (30 + self._next // (254 * 256), (self._next // 254) % 256, host))
        return out

    def next_address(self):
        return self.next_addresses(1)[0]

    def cred(self, user):
        if self.mode == 'basic':
            pair = '%s:%s' % (user, self.secrets['passwords'][user])
            return ('Authorization', 'Basic ' + base64.b64encode(pair.encode()).decode())
        if self.mode == 'bearer':
            return ('Authorization', 'Bearer ' + self.secrets['tokens'][user])
        return ('Authorization', 'Bearer ' + self.fx['tokens'][user])


class Client:
    """Requests from one source address (unless a call names another); remembers the sessions
    it opened and ends them in close()."""

    def __init__(self, gw, src):
        self.gw, self.src, self.opened = gw, src, []

    def http(self, method, path='/mcp', headers=(), body=None, src=None, port=8080, raw=None):
        if path in ('/mcp', TIME_PATH) and port == 8080:
            self.gw.mcp_requests += 1
        if raw is None:
            raw = mcp_wire.request_bytes(method, path, list(headers), None if body is None else encode(body))
        return mcp_wire.exchange(raw, port, src or self.src)

    def cred(self, user):
        return self.gw.cred(user)

    def post(self, user, body, extra=(), sid=None, ctype=True, src=None, path='/mcp'):
        headers = [self.cred(user)] if user is not None else []
        headers += JSON_HEADERS if ctype else []
        headers += [('Mcp-Session-Id', sid)] if sid else []
        return self.http('POST', path=path, headers=headers + list(extra), body=body, src=src)

    def initialize(self, user, src=None, path='/mcp', client='t', id_=1):
        r = self.post(user, mcp_wire.initialize(client, id_), src=src, path=path)
        sid = mcp_wire.session_id(r)
        if sid:
            self.opened.append((user, sid, src, path))
        return r, sid

    def delete_session(self, user, sid, src=None, path='/mcp'):
        return self.http('DELETE', path=path, headers=[self.cred(user), ('Mcp-Session-Id', sid)], src=src)

    def close(self):
        for user, sid, src, path in self.opened:
            self.delete_session(user, sid, src=src, path=path)
        self.opened = []


# ---------------------------------------------------------------- host operations

def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)


def wait_for_port(port, timeout=20.0):
    """Until something accepts on 127.0.0.1:port (a loaded machine starts Python slowly)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def nginx_workers():
    """{pid: cmdline} of the gateway nginx's worker processes (those shutting down included;
    not the IdP's, another nginx)."""
    with open('/run/nginx.pid') as f:
        master = f.read().strip()
    workers = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                cmdline = f.read()
            with open('/proc/%s/stat' % d) as f:
                ppid = f.read().rsplit(')', 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == master and cmdline.startswith(b'nginx: worker process'):
            workers[int(d)] = cmdline
    return workers


def reload_nginx(timeout=20.0):
    """nginx -s reload, then wait until the new configuration serves every new connection: a
    worker of it runs and every worker of the old one has exited or is shutting down (it has
    closed its listening sockets; one may linger over a connection an earlier case left open).
    A fixed sleep let a loaded machine answer with the old policy.json."""
    old = set(nginx_workers())
    sh('nginx -s reload')
    deadline = time.monotonic() + timeout
    while True:
        serving = [pid for pid, cmdline in nginx_workers().items() if b'shutting down' not in cmdline]
        if serving and not set(serving) & old:
            return
        if time.monotonic() > deadline:
            raise RuntimeError('nginx reload: the old workers %s still serve after %.0f s'
                               % (sorted(set(serving) & old), timeout))
        time.sleep(0.05)


def restart_gateway():
    """A restart (not a reload): every shared-dict zone starts empty (JWKS cache, stamps, sessions).
    `nginx -s stop` returns at once: wait until the old master has let go of its ports."""
    sh('pid=$(cat /run/nginx.pid); nginx -s stop; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; nginx')
    wait_for_port(8080)


def stop_upstream():
    """Stop the stand-in backend on 8000 (it may be our own child: reap it)."""
    with open('/run/mcpsec-upstream.pid') as f:
        pid = int(f.read().strip())
    os.kill(pid, 15)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        while os.path.exists('/proc/%d' % pid):
            time.sleep(0.1)


def start_upstream():
    proc = subprocess.Popen(['python3', UPSTREAM_PY, '8000'], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    with open('/run/mcpsec-upstream.pid', 'w') as f:
        f.write(str(proc.pid))
    wait_for_port(8000)


def restart_upstream():
    """The backend goes away and comes back without its sessions."""
    stop_upstream()
    start_upstream()


def audit_size():
    return len(open(AUDIT, 'rb').read())


def audit_lines_after(before, want, predicate):
    """The audit records written after byte offset `before` that match, once `want` of them are there
    (the bearer variant buffers the log for up to 1 s in each worker: on a loaded machine a
    worker's flush comes late, so up to 15 s)."""
    recs = []
    for _attempt in range(150):
        time.sleep(0.1)
        with open(AUDIT, 'rb') as f:
            recs = [json.loads(ln) for ln in f.read()[before:].splitlines() if ln.strip()]
        recs = [x for x in recs if predicate(x)]
        if len(recs) >= want:
            break
    return recs


def error_log():
    with open('/var/log/nginx/error.log', errors='replace') as f:
        return f.read()
