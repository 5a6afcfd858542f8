"""The walking skeleton end to end: a fresh Debian 13 host, the whole site, a real client."""
import asyncio

import httpx
import pytest

import gateway_probe as gp
import mcpsec_client

CONTAINER = "mcpsec-default"
URL = "https://localhost:18443/mcp"


@pytest.fixture(scope="module")
def ca_file(host):
    return gp.ca_file_from(host)


@pytest.mark.parametrize("unit", ["nginx", "mcpsec-supergateway@0", "mcpsec-supergateway@1", "nftables"])
def test_service_is_active_and_enabled(host, unit):
    svc = host.service(unit)
    assert svc.is_running, f"{unit} is not running"
    assert svc.is_enabled, f"{unit} is not enabled"


def test_env_file_is_root_only(host):
    f = host.file("/etc/mcpsec/mcp-server.env")
    assert f.exists
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


def test_htpasswd_is_not_world_readable_and_hashed(host):
    f = host.file("/etc/nginx/mcpsec/htpasswd")
    assert f.mode & 0o007 == 0, oct(f.mode)
    assert f.user == "root"
    content = f.content_string
    assert gp.demo_password("alice") not in content
    assert all(line.split(":", 1)[1].startswith(("$6$", "$2b$", "$2y$"))
               for line in content.splitlines() if line)


def test_mcp_user_has_no_login_shell(host):
    user = host.user("mcp")
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")


def test_real_mcp_client_lists_tools_and_echoes(ca_file):
    message = "hello from the walking skeleton"
    trip = asyncio.run(mcpsec_client.round_trip(
        URL, calls=[("echo", {"message": message})],
        basic=("alice", gp.demo_password("alice")), ca_file=ca_file))
    print(f"\n[verify] real MCP client: server={trip.server_name} protocol={trip.protocol_version}")
    print(f"[verify] tools listed through the gateway ({len(trip.tools)}): {', '.join(trip.tools)}")
    print(f"[verify] echo -> {trip.results[0]['text']}")
    assert "echo" in trip.tools
    assert not trip.results[0]["is_error"]
    assert message in trip.results[0]["text"]


def test_no_credentials_is_401(ca_file):
    with gp.http(ca_file) as c:
        r = c.post(URL, json=gp.INITIALIZE, headers=gp.MCP_HEADERS)
    assert r.status_code == 401
    assert "WWW-Authenticate" in r.headers


def test_wrong_password_is_401(ca_file):
    with gp.http(ca_file) as c:
        r = c.post(URL, json=gp.INITIALIZE, headers=gp.MCP_HEADERS, auth=("alice", "not-the-password-at-all"))
    assert r.status_code == 401


def test_unknown_user_is_401(ca_file):
    with gp.http(ca_file) as c:
        r = c.post(URL, json=gp.INITIALIZE, headers=gp.MCP_HEADERS, auth=("mallory", gp.demo_password("alice")))
    assert r.status_code == 401


def test_port_80_redirects_to_https():
    r = httpx.get("http://localhost:18080/mcp?x=1", follow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["location"] == "https://localhost:18443/mcp?x=1"


def test_health_reflects_backend(ca_file):
    with gp.http(ca_file) as c:
        r = c.get("https://localhost:18443/health")
    assert r.status_code == 200


def test_supergateway_port_is_closed_from_outside():
    ip = gp.container_ip(CONTAINER)
    # The probe can reach the host at all (else the next assertion proves nothing) ...
    assert gp.tcp_open(ip, 443), f"443 on {ip} should answer"
    # ... but supergateway's port, which it binds on every interface, does not.
    assert not gp.tcp_open(ip, 8000), f"supergateway's 8000 on {ip} is reachable from outside"
    print(f"\n[verify] from the controller: {ip}:443 open, {ip}:8000 closed")


def test_supergateway_listens_but_only_loopback_reaches_it(host):
    # supergateway has no bind flag: the unit's preload keeps it on loopback.
    assert host.socket("tcp://127.0.0.1:8000").is_listening
    assert not host.socket("tcp://0.0.0.0:8000").is_listening and not host.socket("tcp://:::8000").is_listening
    assert host.run("curl -fsS http://127.0.0.1:8000/healthz").stdout.strip() == "ok"


def test_the_bridge_patch_is_applied_and_answers_in_one_piece(host):
    """supergateway's SDK file is the patched one (SHA-256), and a quick call's answer leaves with
    its headers: a Content-Length, not headers flushed alone and a chunked body after them."""
    import hashlib
    from pathlib import Path

    import yaml
    patch = yaml.safe_load((Path(__file__).resolve().parents[3] / "roles" / "supergateway" / "vars"
                            / "bridge-4.0.0.yml").read_text(encoding="utf-8"))["__supergateway_bridge_patch"]
    for f in patch["files"]:
        found = hashlib.sha256(host.file(f"/opt/mcpsec/supergateway/{f['path']}").content).hexdigest()
        print(f"\n[verify] bridge patch: {f['path']} sha256 {found[:16]}... "
              f"({'patched' if found == f['patched_sha256'] else 'stock' if found == f['stock_sha256'] else 'unknown'})")
        assert found == f["patched_sha256"]
    # Straight to the backend as root (allowed on loopback), a session of its own, closed after.
    h = ("-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' "
         "-H 'MCP-Protocol-Version: 2025-06-18'")
    init = ('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
            '"capabilities":{},"clientInfo":{"name":"mcpsec-verify","version":"1"}}}')
    out = host.check_output(f"curl -sS -D - -o /dev/null {h} -d '{init}' http://127.0.0.1:8000/mcp")
    sid = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.lower().startswith("mcp-session-id:"))
    h += f" -H 'Mcp-Session-Id: {sid}'"
    try:
        host.check_output(f"curl -sS -o /dev/null {h} -d '{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}' "
                          "http://127.0.0.1:8000/mcp")
        # The patch sends an answer with its headers when it is ready within 50 ms: on a loaded
        # CI machine one call can miss that window; stock supergateway never answers in one piece.
        for attempt in range(1, 11):
            call = ('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"one piece"}}}'
                    % attempt)
            answer = host.check_output(f"curl -sS -i {h} -d '{call}' http://127.0.0.1:8000/mcp").replace("\r\n", "\n")
            head = answer.split("\n\n", 1)[0].lower() if "\n\n" in answer else answer.lower()
            if "content-length:" in head:
                break
    finally:
        host.run(f"curl -sS -o /dev/null -X DELETE {h} http://127.0.0.1:8000/mcp")
    print(f"[verify] backend tools/call echo: {'content-length' if 'content-length:' in head else 'chunked'} "
          f"(call {attempt}), {'Echo: one piece' in answer}")
    assert "content-length:" in head and "transfer-encoding: chunked" not in head
    assert "Echo: one piece" in answer
