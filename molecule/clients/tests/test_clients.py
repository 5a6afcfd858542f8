"""Real clients through the gateway: what each one's user reads, per auth mode, and a browser.

Prints the table client x case -> message seen ("[verify] ..." lines) for basic, then
re-converges the host in bearer mode and prints it again; then headless Chromium loads a
page from an allowed and from another origin. Each message must name the real reason.
"""
import base64
import functools
import http.server
import json
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

import client_configs
import clients_matrix as cm
import gateway_probe as gp
import playbook_run

URL = "https://localhost:47443/mcp"
SECRETS = playbook_run.ROOT / ".cache" / "clients" / "secrets"
PAGE_ORIGIN_PORT = 47501        # in allow_origins
OTHER_ORIGIN_PORT = 47502       # not in allow_origins
# bob's role grants tools only: any resource or prompt is refused.
DENIED_RESOURCE = "demo://resource/dynamic/text/1"
# What the user must read per case, beyond the client's own wording.
REASON = {
    "basic": ("HTTP Basic authentication", "username", "password"),
    "bearer": ("static bearer tokens", "token"),
}


def secret(mode: str, user: str) -> str:
    kind = "password" if mode == "basic" else "token"
    return (SECRETS / f"{user}-{kind}").read_text(encoding="utf-8").strip()


def cases(mode: str) -> list[cm.Case]:
    bob = client_configs.authorization(mode, "bob", secret(mode, "bob"))
    wrong = client_configs.authorization(mode, "alice", "Wr0ng" + secret(mode, "alice")[5:])
    return [cm.Case("connect", bob, "list"), cm.Case("list tools", bob, "list"), cm.Case("allowed tool", bob, "call", "echo"),
            cm.Case("denied tool", bob, "call", "get-env"),
            cm.Case("denied resource", bob, "read", DENIED_RESOURCE),
            cm.Case("denied prompt", bob, "prompt", "simple-prompt"),
            cm.Case("wrong credentials", wrong, "call", "echo")]


def check(mode: str, client: str, case: str, seen: cm.Seen) -> None:
    msg = seen.message
    assert "resource_metadata" not in msg and "HTTP 404): {\"error\":\"not_found\"}" not in msg, msg
    if case == "connect":
        # Claude Code's health check (initialize, tools/list) as `claude mcp get` shows it
        assert seen.ok and "Connected" in msg, msg
    elif case == "list tools":
        # bob's role allows echo and get-sum: the gateway filters the list to those
        assert seen.ok and msg.startswith("2 tools: echo, get-sum"), msg
    elif case == "allowed tool":
        assert seen.ok and "Echo: hi from" in msg, msg
    elif case == "denied tool":
        # The gateway's 403, or, for a client that checks the name against tools/list first
        # (the MCP Inspector CLI), its own "not found": the gateway lists only allowed tools.
        assert not seen.ok and ("get-env" in msg and "is not permitted for this user" in msg
                                or client.startswith("MCP Inspector") and "Tool 'get-env' not found" in msg), msg
    elif case == "denied resource":
        assert not seen.ok and DENIED_RESOURCE in msg and "is not permitted for this user" in msg, msg
    elif case == "denied prompt":
        assert not seen.ok and "simple-prompt" in msg and "is not permitted for this user" in msg, msg
    else:
        assert not seen.ok and all(word in msg for word in REASON[mode]), msg


def oauth_walk(mode: str, ca_file: str) -> None:
    """The gateway's own answers: a challenge without resource_metadata, and the OAuth
    discovery/registration paths refused with the mode's reason."""
    with gp.http(ca_file) as c:
        r = c.post(URL, json=gp.INITIALIZE, headers=gp.MCP_HEADERS)
        challenge = r.headers.get("www-authenticate", "")
        print(f"\n[verify] {mode}: 401 challenge: {challenge}")
        assert r.status_code == 401 and "resource_metadata" not in challenge, r.headers
        assert challenge.startswith("Basic realm=" if mode == "basic" else "Bearer realm="), challenge
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                     "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/register"):
            r = c.request("POST" if path == "/register" else "GET", "https://localhost:47443" + path)
            body = r.json()
            print(f"[verify] {mode}: {path} -> {r.status_code} {body['error']}")
            assert r.status_code == 404 and body["error"] == "no_oauth", (path, r.text)
            assert all(word in body["error_description"] for word in REASON[mode]), body


def matrix(mode: str, ca_file: str) -> None:
    cm.require_installed()
    oauth_walk(mode, ca_file)
    rows, failures = [], []
    runs = [(client, run, case) for client, run in cm.CLIENTS.items() for case in cases(mode) if case.name != "connect"]
    runs += [(client, run, case) for client, run in cm.CONNECT_ONLY.items()
             for case in cases(mode) if case.name in ("connect", "wrong credentials")]
    for client, run, case in runs:
        seen = run(URL, ca_file, case)
        rows.append((client, case.name, seen))
        try:
            check(mode, client, case.name, seen)
        except AssertionError as exc:
            failures.append(f"{client} / {case.name}: {exc}")
    print("\n" + cm.table(rows, f"auth.mode {mode}: client x case -> message the user sees"), flush=True)
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def ca_file(host):
    return gp.ca_file_from(host)


def test_clients_basic(ca_file):
    matrix("basic", ca_file)


# --------------------------------------------------------------------------- browser
PAGE = """<!doctype html><meta charset="utf-8"><title>mcpsec browser client</title>
<pre id="out">running</pre>
<script>
(async () => {
  const out = document.getElementById('out');
  const url = %(url)s, auth = %(auth)s;
  const base = {'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream',
                'Authorization': auth};
  try {
    let r = await fetch(url, {method: 'POST', headers: base, body: JSON.stringify({jsonrpc: '2.0', id: 1,
      method: 'initialize', params: {protocolVersion: '2025-06-18', capabilities: {},
      clientInfo: {name: 'browser', version: '1'}}})});
    const sid = r.headers.get('Mcp-Session-Id');
    if (!r.ok || !sid) throw new Error('initialize: HTTP ' + r.status + ' session ' + sid);
    const h = Object.assign({'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18'}, base);
    await fetch(url, {method: 'POST', headers: h, body: JSON.stringify({jsonrpc: '2.0', method: 'notifications/initialized'})});
    r = await fetch(url, {method: 'POST', headers: Object.assign({'Mcp-Method': 'tools/list'}, h),
                          body: JSON.stringify({jsonrpc: '2.0', id: 2, method: 'tools/list', params: {}})});
    const text = await r.text();
    const line = text.split('\\n').find(l => l.startsWith('data: ')) || text;
    const tools = JSON.parse(line.replace(/^data: /, '')).result.tools.map(t => t.name);
    out.textContent = 'TOOLS ' + tools.length + ': ' + tools.join(',');
  } catch (e) {
    out.textContent = 'FAILED ' + e.name + ': ' + e.message;
  }
})();
</script>"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the verify output to the [verify] lines
        pass


def serve(directory: str, port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=directory)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def spki_hash(ca_file: str) -> str:
    """The pin Chromium takes in --ignore-certificate-errors-spki-list (trusts this key only)."""
    pub = subprocess.run(["openssl", "x509", "-in", ca_file, "-noout", "-pubkey"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True).stdout
    return base64.b64encode(digest).decode()


def chromium_dom(page_url: str, pin: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        argv = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--ignore-certificate-errors-spki-list={pin}",
                "--virtual-time-budget=15000", "--dump-dom", page_url]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    start = p.stdout.find('<pre id="out">')
    return p.stdout[start + len('<pre id="out">'):p.stdout.find("</pre>", start)] if start >= 0 else \
        f"(no page: exit {p.returncode}: {p.stderr[-300:]})"


def refused_preflights(host) -> int:
    """Audit lines of preflights the gateway refused (an Origin not in allow_origins)."""
    log = host.file("/var/log/nginx/mcpsec-audit.log").content_string
    return sum(1 for line in log.splitlines() if '"reason":"cors_origin"' in line)


def test_browser_allowed_origin_lists_tools_other_origin_fails(host, ca_file):
    page = PAGE % {"url": json.dumps(URL),
                   "auth": json.dumps(client_configs.authorization("basic", "bob", secret("basic", "bob")))}
    pin = spki_hash(ca_file)
    with tempfile.TemporaryDirectory() as site:
        Path(site, "index.html").write_text(page, encoding="utf-8")
        servers = [serve(site, PAGE_ORIGIN_PORT), serve(site, OTHER_ORIGIN_PORT)]
        try:
            allowed = chromium_dom(f"http://localhost:{PAGE_ORIGIN_PORT}/index.html", pin)
            before = refused_preflights(host)
            other = chromium_dom(f"http://127.0.0.1:{OTHER_ORIGIN_PORT}/index.html", pin)
            refused = refused_preflights(host) - before
        finally:
            for srv in servers:
                srv.shutdown()
    print(f"\n[verify] chromium, page from http://localhost:{PAGE_ORIGIN_PORT} (allowed): {allowed}")
    print(f"[verify] chromium, page from http://127.0.0.1:{OTHER_ORIGIN_PORT} (not allowed): {other}", flush=True)
    assert allowed.startswith("TOOLS ") and ",echo," in "," + allowed.split(": ", 1)[1] + ",", allowed
    print(f"[verify] chromium, other origin: the gateway refused {refused} preflight(s) (audit reason cors_origin)")
    # The browser failed because the gateway refused the origin (not, say, the certificate).
    assert other.startswith("FAILED TypeError") and refused >= 1, (other, refused)


def test_preflight_and_cors_headers(ca_file):
    with gp.http(ca_file) as c:
        pre = c.request("OPTIONS", URL, headers={"Origin": f"http://localhost:{PAGE_ORIGIN_PORT}",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization,content-type,mcp-session-id"})
        allow = {h.strip().lower() for h in pre.headers.get("access-control-allow-headers", "").split(",")}
        need = {"authorization", "content-type", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id"}
        print(f"\n[verify] preflight from the allowed origin: {pre.status_code}, allow-headers {sorted(allow)}")
        assert pre.status_code == 204 and need <= allow, pre.headers
        assert pre.headers["access-control-allow-origin"] == f"http://localhost:{PAGE_ORIGIN_PORT}"
        bad = c.request("OPTIONS", URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        print(f"[verify] preflight from https://evil.example: {bad.status_code}")
        assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
        r = c.post(URL, json=gp.INITIALIZE, headers={**gp.MCP_HEADERS, "Origin": f"http://localhost:{PAGE_ORIGIN_PORT}"})
        expose = {h.strip().lower() for h in r.headers.get("access-control-expose-headers", "").split(",")}
        print(f"[verify] 401 to the allowed origin: {r.status_code}, expose {sorted(expose)}")
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == f"http://localhost:{PAGE_ORIGIN_PORT}"
        assert {"mcp-session-id", "www-authenticate"} <= expose


# --------------------------------------------------------------------------- bearer, last
def test_clients_bearer(host):
    # The auth mode lives in the proxy role only (credentials, nginx and njs configuration).
    run = playbook_run.run_playbook(playbook_run.ROOT / "playbooks" / "site.yml", tags="proxy",
                                    extra_vars={"clients_auth_mode": "bearer"}, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    matrix("bearer", gp.ca_file_from(host))
