"""The TLS tier: ACME issuance from pebble through nginx, the Mozilla profiles, renewal by
certbot.service with a reload, failure handling, and the provided and selfsigned modes."""
import base64
import os
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import enforcement as enf
import tls_probe as tp

# The tls tier alone (role + acme_issue, as site.yml runs them): the re-converges stay short.
TLS_ONLY = Path(__file__).resolve().parents[1] / "tls_only.yml"

NAME = "mcp.example.com"   # inventories/prod's public_url
HTTPS = 38443
HTTP = 38080
LIVE = f"/etc/letsencrypt/live/{NAME}"
SERVED_CERT = "/etc/mcpsec/tls/fullchain.pem"
SERVED_KEY = "/etc/mcpsec/tls/privkey.pem"
PEBBLE_CA = "/etc/pebble/ca.pem"


def pebble_pem(host, what: str) -> str:
    """pebble's current root or intermediate from its management API (both change on every start)."""
    return host.check_output(f"curl -fsS --cacert {PEBBLE_CA} https://localhost:15000/{what}/0")


def master_pid(host) -> str:
    return host.check_output("cat /run/nginx.pid").strip()


def served_serial() -> int:
    return tp.served_leaf(HTTPS, NAME).serial_number


def lineage_serial(host) -> int:
    return x509.load_pem_x509_certificate(host.file(f"{LIVE}/cert.pem").content).serial_number


@pytest.fixture(scope="module")
def pebble_root(host):
    return tp.write_temp(pebble_pem(host, "roots"))


@pytest.fixture(scope="module")
def pki():
    return tp.make_test_pki(NAME)


# --- acme ----------------------------------------------------------------------------------

def test_certificate_was_issued_by_pebble_and_is_served(host):
    assert host.file(SERVED_CERT).is_symlink
    assert host.file(SERVED_CERT).linked_to == f"/etc/letsencrypt/archive/{NAME}/fullchain1.pem" \
        or host.file(SERVED_CERT).linked_to.startswith(f"/etc/letsencrypt/archive/{NAME}/fullchain")
    chain = tp.served_chain_in_host(host, NAME)
    intermediate = x509.load_pem_x509_certificate(pebble_pem(host, "intermediates").encode())
    leaf = chain[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    print(f"\n[verify] served chain: leaf {sans} <- {' <- '.join(tp.cn(c.subject) for c in chain[1:])}")
    print(f"[verify] leaf issuer: {tp.cn(leaf.issuer)} (pebble's intermediate: {tp.cn(intermediate.subject)})")
    assert sans == [NAME]
    assert leaf.issuer == intermediate.subject
    assert len(chain) >= 2 and chain[1].public_bytes(serialization.Encoding.DER) == \
        intermediate.public_bytes(serialization.Encoding.DER)
    assert leaf.serial_number == lineage_serial(host)


SLACK_TOOLS = {"slack_list_channels", "slack_post_message", "slack_reply_to_thread", "slack_add_reaction",
               "slack_get_channel_history", "slack_get_thread_replies", "slack_get_users", "slack_get_user_profile"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def prod_secret(name: str) -> str:
    """A vault value host_vars generated beside Molecule's inventory for this run."""
    return (Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".prod-secrets" / name).read_text(encoding="utf-8").strip()


def test_prod_inventory_serves_the_slack_server_with_its_roles(host, pebble_root):
    """inventories/prod as shipped: Slack's server (npm, pinned) behind the gateway, the ACME
    certificate verified under the public name, each role's tools as its policy grants them."""
    ctx = ssl.create_default_context(cafile=pebble_root)
    seen = {}
    with httpx.Client(verify=ctx, timeout=30.0) as c:
        for user in ("alice", "bob"):
            gw = enf.Gateway(url=f"https://127.0.0.1:{HTTPS}/mcp", ca_file=pebble_root,
                             credentials={user: {"Authorization": basic(user, prod_secret(f"{user}-password"))}})
            ext = {"sni_hostname": NAME}

            def post(body, sid=None, gw=gw, user=user):
                return c.post(gw.url, json=body, headers={**gw.headers(user, sid), "Host": NAME}, extensions=ext)

            r = post(enf.rpc("initialize", {"protocolVersion": enf.PROTOCOL_VERSION, "capabilities": {},
                                            "clientInfo": {"name": "mcpsec-verify", "version": "1"}}))
            assert r.status_code == 200, f"initialize as {user}: {r.status_code} {r.text[:300]}"
            server = enf.json_or_sse(r)["result"]["serverInfo"]
            sid = r.headers["mcp-session-id"]
            assert post(enf.rpc("notifications/initialized", id_=None), sid).status_code in (200, 202)
            tools = {t["name"] for t in enf.json_or_sse(post(enf.rpc("tools/list", id_=2), sid))["result"]["tools"]}
            seen[user] = tools
            enf.show(f"prod inventory: {user} initialize -> {server.get('name')} {server.get('version')}; "
                     f"tools/list", f"{len(tools)}: {sorted(tools)}")
            if user == "bob":
                denied = post(enf.tool_call("slack_post_message", {"channel_id": "C0", "text": "x"}, id_=3), sid)
                enf.show("prod inventory: bob (reader) tools/call slack_post_message", denied.status_code)
                assert denied.status_code == 403
            post_delete = c.delete(gw.url, headers={**gw.headers(user, sid), "Host": NAME}, extensions=ext)
            assert post_delete.status_code in (200, 204), post_delete.status_code
    assert seen["alice"] == SLACK_TOOLS
    assert seen["bob"] == {"slack_list_channels", "slack_get_channel_history"}


def test_intermediate_profile_is_mozilla_compliant(pebble_root):
    verdict = tp.sslyze("intermediate", HTTPS, NAME, pebble_root)
    print(f"\n[verify] sslyze --mozilla_config=intermediate (acme certificate): rc={verdict.returncode}: {verdict.summary}")
    assert verdict.compliant, verdict.output[-3000:]


def test_port_80_redirects_everything_but_the_acme_challenge(host):
    token = "mcpsec-probe-token"
    webroot = "/var/lib/mcpsec/acme-challenge/.well-known/acme-challenge"
    host.run(f"echo probe-{token} > {webroot}/{token}")
    try:
        challenge = httpx.get(f"http://127.0.0.1:{HTTP}/.well-known/acme-challenge/{token}", timeout=10)
        missing = httpx.get(f"http://127.0.0.1:{HTTP}/.well-known/acme-challenge/none", timeout=10)
    finally:
        host.run(f"rm -f {webroot}/{token}")
    other = httpx.get(f"http://127.0.0.1:{HTTP}/mcp?x=1", timeout=10)
    known = httpx.get(f"http://127.0.0.1:{HTTP}/.well-known/oauth-protected-resource", timeout=10)
    print(f"\n[verify] port 80: /mcp -> {other.status_code} {other.headers.get('location')}; "
          f"/.well-known/oauth-protected-resource -> {known.status_code}; challenge file -> {challenge.status_code}; "
          f"missing challenge -> {missing.status_code}")
    assert other.status_code == 301 and other.headers["location"] == f"https://{NAME}/mcp?x=1"
    assert known.status_code == 301
    assert challenge.status_code == 200 and challenge.text.strip() == f"probe-{token}"
    assert missing.status_code == 404


def test_https_headers_hsts_always_and_no_version(pebble_root):
    with httpx.Client(verify=False, timeout=10) as c:
        r = c.get(f"https://127.0.0.1:{HTTPS}/nothing-here", headers={"Host": NAME})
    print(f"\n[verify] {r.status_code} carries Strict-Transport-Security: {r.headers.get('strict-transport-security')}; "
          f"Server: {r.headers.get('server')}")
    assert r.headers["strict-transport-security"].startswith("max-age=63072000")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers.get("server") == "nginx"


def test_renewal_is_certbot_timer_with_our_ca_and_reload_hook(host):
    assert host.service("certbot.timer").is_enabled and host.service("certbot.timer").is_running
    dropin = host.file("/etc/systemd/system/certbot.service.d/mcpsec.conf").content_string
    assert f"REQUESTS_CA_BUNDLE={PEBBLE_CA}" in dropin
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/mcpsec-reload-nginx")
    assert hook.mode == 0o755 and "systemctl reload nginx" in hook.content_string
    assert "restart" not in hook.content_string.replace("a restart is never needed", "")
    assert "REQUESTS_CA_BUNDLE" in host.check_output("systemctl show -p Environment certbot.service")


def test_forced_renewal_by_certbot_service_reloads_without_restart(host):
    before_serial, before_pid = served_serial(), master_pid(host)
    host.check_output("cp -p /etc/letsencrypt/cli.ini /root/cli.ini.mcpsec-test && "
                      "echo 'force-renewal = True' >> /etc/letsencrypt/cli.ini")
    try:
        started = time.monotonic()
        run = host.run("systemctl start certbot.service")
        took = time.monotonic() - started
    finally:
        host.check_output("mv /root/cli.ini.mcpsec-test /etc/letsencrypt/cli.ini")
    assert run.rc == 0, host.run("journalctl -u certbot.service -n 30 --no-pager").stdout
    after_serial = before_serial
    for _attempt in range(20):
        after_serial = served_serial()
        if after_serial != before_serial:
            break
        time.sleep(0.5)
    after_pid = master_pid(host)
    print(f"\n[verify] systemctl start certbot.service (force-renewal) took {took:.1f}s")
    print(f"[verify] served serial before renewal: {before_serial:x}")
    print(f"[verify] served serial after renewal:  {after_serial:x}")
    print(f"[verify] nginx master PID before/after: {before_pid} / {after_pid}")
    assert after_serial != before_serial
    assert after_serial == lineage_serial(host)
    assert after_pid == before_pid


def test_acme_failure_fails_the_play_and_nginx_keeps_its_certificate(host):
    before_serial, before_pid = served_serial(), master_pid(host)
    # Nothing listens on 14001 (loopback): a directory change forces an issuance that cannot succeed.
    run = tp.converge(playbook=TLS_ONLY, extra_vars={"tls_acme_directory_url": "https://localhost:14001/dir"})
    out = run.stdout + run.stderr
    line = next((ln for ln in out.splitlines() if "certbot could not issue" in ln), "")
    lines = out.splitlines()
    at = next((i for i, ln in enumerate(lines) if "unexpected error" in ln or "rror:" in ln and "certbot could not" not in ln), None)
    cause = " ".join(ln.strip() for ln in lines[at:at + 2]) if at is not None else ""
    print(f"\n[verify] ACME failure: rc={run.returncode}; {line.strip()[:200]}")
    print(f"[verify] certbot said: {cause.strip()[:300]}")
    assert run.returncode != 0
    assert "certbot could not issue" in out and "14001" in out
    assert served_serial() == before_serial and master_pid(host) == before_pid
    assert host.file(SERVED_CERT).linked_to.startswith(f"/etc/letsencrypt/archive/{NAME}/")
    print(f"[verify] after the failure nginx still serves serial {before_serial:x} (master PID {before_pid})")


# --- provided ------------------------------------------------------------------------------

def test_provided_key_that_does_not_match_is_refused_before_anything_is_written(host, pki):
    before_serial = served_serial()
    before_link = host.file(SERVED_CERT).linked_to
    run = tp.converge(extra_vars={"tls_mode": "provided", "tls_provided_certificate": pki.cert_pem,
                                  "tls_provided_private_key": pki.other_key_pem}, tags="tls")
    out = run.stdout + run.stderr
    print(f"\n[verify] provided mismatched key: rc={run.returncode}; "
          f"{'refused: the private key does not belong to the certificate' if 'does not belong' in out else out[-500:]}")
    assert run.returncode != 0 and "does not belong to the certificate" in out
    assert "PRIVATE KEY" not in out
    assert host.file(SERVED_CERT).linked_to == before_link and served_serial() == before_serial


def test_provided_certificate_with_modern_profile(host, pki):
    run = tp.converge(playbook=TLS_ONLY, extra_vars={"tls_mode": "provided", "tls_profile": "modern",
                                                     "tls_provided_certificate": pki.cert_pem,
                                                     "tls_provided_private_key": pki.key_pem})
    assert run.returncode == 0, run.stdout[-4000:]
    assert "PRIVATE KEY" not in run.stdout + run.stderr
    key = host.file(SERVED_KEY)
    assert not key.is_symlink and (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert not host.file(SERVED_CERT).is_symlink
    assert served_serial() == pki.serial
    verdict = tp.sslyze("modern", HTTPS, NAME, tp.write_temp(pki.ca_pem))
    print(f"\n[verify] provided certificate served (serial {pki.serial:x}), key root:root 0600")
    print(f"[verify] sslyze --mozilla_config=modern (provided ECDSA certificate): rc={verdict.returncode}: {verdict.summary}")
    assert verdict.compliant, verdict.output[-3000:]
    # certbot's lineage is untouched by leaving acme.
    assert host.file(f"{LIVE}/cert.pem").exists


# --- selfsigned, then back to acme ----------------------------------------------------------

def test_selfsigned_mode(host):
    run = tp.converge(playbook=TLS_ONLY, extra_vars={"tls_mode": "selfsigned"})
    assert run.returncode == 0, run.stdout[-4000:]
    leaf = tp.served_leaf(HTTPS, NAME)
    print(f"\n[verify] selfsigned: served subject={tp.cn(leaf.subject)} issuer={tp.cn(leaf.issuer)}")
    assert leaf.issuer == leaf.subject
    key = host.file(SERVED_KEY)
    assert (key.user, key.mode) == ("root", 0o600)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in host.file("/etc/mcpsec/tls/nginx-tls.conf").content_string


def test_back_to_acme_serves_the_lineage_again_without_issuing(host):
    archived = host.check_output(f"ls /etc/letsencrypt/archive/{NAME}/ | grep -c '^cert'")
    run = tp.converge(playbook=TLS_ONLY)
    assert run.returncode == 0, run.stdout[-4000:]
    assert host.check_output(f"ls /etc/letsencrypt/archive/{NAME}/ | grep -c '^cert'") == archived
    assert served_serial() == lineage_serial(host)
    assert "Issue with certbot certonly --webroot ()" in run.stdout  # the issue task was skipped
    print(f"\n[verify] back to acme: served the existing lineage again, no issuance ({archived} certificates in total)")
