"""The loopback boundary, a firewall that coexists with the host's, and the backend's lifecycle
bound to nginx's (issues 19 and 23). Every boundary is proven by an attempt, never by
reading the ruleset. One `[verify]` line per case."""
import json
import time
from pathlib import Path

import pytest

import gateway_probe as gp
import hardening_probe as hp
import playbook_run

SITE = Path(playbook_run.ROOT) / "playbooks" / "site.yml"
SG_SLICE = "mcpsec-supergateway.slice"
SITE_RULE = """
table inet site {
  chain input {
    type filter hook input priority filter - 5; policy accept;
    tcp dport 18777 counter accept comment "site rule"
  }
}
"""
CONNECT = ("import errno, socket, sys\n"
           "fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
           "s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)\n"
           "try:\n    s.connect((sys.argv[1], int(sys.argv[2]))); print('open')\n"
           "except OSError as e:\n    print(errno.errorcode.get(e.errno, type(e).__name__))\n")


def ports(host) -> list[int]:
    n = int(json.loads(host.file("/etc/nginx/mcpsec/route.json").content_string)["instances"])
    return [8000 + i for i in range(n)]


def attempt(host, user: str | None, addr: str, port: int) -> str:
    """A TCP connect to addr:port as user (None: root), from inside the gateway host."""
    prefix = f"runuser -u {user} -- " if user else ""
    out = host.run(f"{prefix}python3 -c \"{CONNECT}\" {addr} {port}")
    return out.stdout.strip() or out.stderr.strip()


def gateway_call(gw, creds) -> int:
    with gp.http(gw["ca"]) as c:
        s = hp.RawSession(c, gw["mcp"], creds["alice"])
        assert s.open().status_code == 200
        r = s.call("tools/call", {"name": "echo", "arguments": {"message": "via nginx"}})
        s.close()
    return r.status_code


def wait_healthy(gw, limit: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            with gp.http(gw["ca"]) as c:
                if c.get(gw["base"] + "/health", timeout=3).status_code == 200:
                    return
        except Exception:   # noqa: BLE001 - nginx may be between processes
            pass
        time.sleep(0.3)
    raise AssertionError(f"/health not 200 within {limit} s")


# ---------------------------------------------------------------- only nginx reaches the backend

def test_only_nginx_and_root_reach_the_backend(host, gw, creds):
    wait_healthy(gw, 60)
    seen = {}
    for port in ports(host):
        for user in ("nobody", "mcp"):
            for addr in ("127.0.0.1", "::1"):
                seen[f"{user}->{addr}:{port}"] = attempt(host, user, addr, port)
    nginx_user = {port: attempt(host, "www-data", "127.0.0.1", port) for port in ports(host)}
    root_health = {port: host.run(f"curl -fsS -m 3 http://127.0.0.1:{port}/healthz").stdout.strip()
                   for port in ports(host)}
    call = gateway_call(gw, creds)
    print(f"\n[verify] loopback boundary: {', '.join(f'{k} {v}' for k, v in seen.items())}; "
          f"www-data (nginx's workers) -> {nginx_user}; root's health probe -> {root_health}; "
          f"tools/call through nginx -> {call}")
    # ::1 is EADDRNOTAVAIL where the host has no IPv6 loopback (Docker's default), else refused.
    assert all(v == "ECONNREFUSED" for k, v in seen.items() if "127.0.0.1" in k), seen
    assert all(v in ("ECONNREFUSED", "EADDRNOTAVAIL") for v in seen.values()), seen
    assert all(v == "open" for v in nginx_user.values()), nginx_user
    assert all(v == "ok" for v in root_health.values()), root_health
    assert call == 200


def test_backend_listens_on_loopback_only(host):
    listening = host.run("ss -H -ltn").stdout
    ip = host.run("hostname -I").stdout.split()[0]
    seen = {}
    for port in ports(host):
        seen[port] = sorted({line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")})
    # As root (the firewall lets root through) to the host's own non-loopback address: only
    # the bind address decides.
    direct = {port: attempt(host, None, ip, port) for port in ports(host)}
    print(f"\n[verify] supergateway binds loopback only: listening {seen}; root -> {ip}:port {direct}")
    assert all(v == [f"127.0.0.1:{p}"] for p, v in seen.items()), seen
    assert all(v == "ECONNREFUSED" for v in direct.values()), direct


def test_firewall_off_warns(host):
    run = playbook_run.run_playbook(SITE, tags="host", check=True, extra_vars={"host_firewall_enabled": False})
    out = run.stdout + run.stderr
    warned = "WARNING: host_firewall_enabled is false" in out
    print(f"\n[verify] host_firewall_enabled false (check mode): rc {run.returncode}, warning shown: {warned}")
    assert run.returncode == 0, out[-3000:]
    assert warned, out[-3000:]


# ---------------------------------------------------------------- a firewall that coexists

def site_rule_matches(host) -> tuple[int, int]:
    """(packets before, after) of the site rule's counter around one connection to its port."""
    def packets() -> int:
        out = host.run("nft -j list table inet site")
        if out.rc != 0:
            return -1
        for item in json.loads(out.stdout)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return expr["counter"]["packets"]
        return -1
    before = packets()
    attempt(host, None, "127.0.0.1", 18777)
    return before, packets()


def our_table_holds(host) -> str:
    return attempt(host, "nobody", "127.0.0.1", 8000)


def test_site_rules_survive_converges_and_reloads(host):
    """The host's own /etc/nftables.conf, Debian-style (flush ruleset first), with a site rule."""
    own = "#!/usr/sbin/nft -f\nflush ruleset\n" + SITE_RULE
    assert host.run(f"printf '%s' '{own}' > /etc/nftables.conf").rc == 0
    assert host.run("systemctl reload nftables").rc == 0
    loaded = site_rule_matches(host)
    first = playbook_run.run_playbook(SITE, tags="host")
    after_first = site_rule_matches(host)
    second = playbook_run.run_playbook(SITE, tags="host")
    after_second = site_rule_matches(host)
    assert host.run("systemctl reload nftables").rc == 0
    after_reload = site_rule_matches(host)
    tables = sorted(set(host.run("nft list tables").stdout.split("\n")) - {""})
    conf = host.file("/etc/nftables.conf").content_string
    print(f"\n[verify] site rule (table inet site) before converge {loaded}, after converge "
          f"{after_first} (changed={playbook_run.recap(first.stdout).get('changed')}), after a second "
          f"{after_second} (changed={playbook_run.recap(second.stdout).get('changed')}), after "
          f"systemctl reload nftables {after_reload}; tables {tables}; nobody -> 8000 {our_table_holds(host)}")
    assert first.returncode == 0 and second.returncode == 0, (first.stdout + second.stdout)[-3000:]
    for before, after in (loaded, after_first, after_second, after_reload):
        assert before >= 0 and after == before + 1
    assert playbook_run.recap(second.stdout).get("changed") == 0
    assert conf.index("flush ruleset") < conf.index('include "/etc/nftables.d/mcpsec.nft"')
    assert "table inet mcpsec_filter" in tables and "table inet site" in tables
    assert 'tcp dport 18777 counter accept comment "site rule"' in conf
    assert conf.count('include "/etc/nftables.d/mcpsec.nft"') == 1
    assert our_table_holds(host) == "ECONNREFUSED"


def test_upgrade_from_the_whole_file_ruleset(host):
    """A host converged by earlier releases: /etc/nftables.conf was our template, whole."""
    ours = host.run("nft list table inet mcpsec_filter").stdout
    old = ("# Ansible managed\ntable inet mcpsec_filter\ndelete table inet mcpsec_filter\n\n" + ours)
    host.run("rm -f /etc/nftables.d/mcpsec.nft")
    assert host.run(f"printf '%s' '{old}' > /etc/nftables.conf && nft -f /etc/nftables.conf").rc == 0
    first = playbook_run.run_playbook(SITE, tags="host")
    second = playbook_run.run_playbook(SITE, tags="host")
    conf = host.file("/etc/nftables.conf").content_string
    c1, c2 = (playbook_run.recap(r.stdout).get("changed") for r in (first, second))
    print(f"\n[verify] upgrade from the whole-file /etc/nftables.conf: converge changed={c1}, again changed={c2}; "
          f"the file now includes mcpsec.nft and holds no inline table: "
          f"{'table inet mcpsec_filter {' not in conf}; nobody -> 8000 {our_table_holds(host)}")
    assert first.returncode == 0 and second.returncode == 0, (first.stdout + second.stdout)[-3000:]
    assert c1 and c1 > 0 and c2 == 0
    assert 'include "/etc/nftables.d/mcpsec.nft"' in conf and "table inet mcpsec_filter {" not in conf
    assert our_table_holds(host) == "ECONNREFUSED"


# ---------------------------------------------------------------- the backend lives and dies with nginx

def children(host) -> int:
    """MCP server processes: the slice's processes but the instances' own."""
    mains = {int(hp.unit_value(host, f"mcpsec-supergateway@{p - 8000}", "MainPID")) for p in ports(host)}
    return len(hp.cgroup_pids(host, SG_SLICE) - mains)


def open_sessions(gw, creds, n: int):
    c = gp.http(gw["ca"])
    sessions = []
    for _i in range(n):
        s = hp.RawSession(c, gw["mcp"], creds["bob"])
        assert s.open().status_code == 200
        assert s.call("tools/list").status_code == 200
        sessions.append(s)
        time.sleep(0.2)
    return c, sessions


@pytest.mark.parametrize("how", ["restart", "stop-start", "kill-9"])
def test_nginx_restart_ends_every_backend_session(host, gw, creds, how):
    wait_healthy(gw, 60)
    c, sessions = open_sessions(gw, creds, 3)
    before = children(host)
    if how == "restart":
        host.run("systemctl restart nginx")
    elif how == "stop-start":
        host.run("systemctl stop nginx")
        host.run("systemctl start nginx")
    else:
        host.run("kill -9 $(cat /run/nginx.pid)")
        time.sleep(1)
        host.run("systemctl start nginx")
    wait_healthy(gw, 60)
    after = children(host)
    old = [s.call("tools/list").status_code for s in sessions]
    fresh = hp.RawSession(c, gw["mcp"], creds["bob"])
    fresh_codes = (fresh.open().status_code, fresh.call("tools/list").status_code)
    fresh.close()
    c.close()
    print(f"\n[verify] nginx {how}: MCP server processes {before} -> {after} before any new session; "
          f"the old sessions -> {old}; a new session -> {fresh_codes}")
    assert before >= 3
    assert after == 0
    assert all(code == 404 for code in old)
    assert fresh_codes == (200, 200)


def test_nginx_reload_keeps_backend_sessions(host, gw, creds):
    wait_healthy(gw, 60)
    c, sessions = open_sessions(gw, creds, 2)
    before = children(host)
    assert host.run("systemctl reload nginx").rc == 0
    time.sleep(1)
    codes = [s.call("tools/list").status_code for s in sessions]
    after = children(host)
    print(f"\n[verify] nginx reload: the same session ids -> {codes}; MCP server processes {before} -> {after}")
    for s in sessions:
        s.close()
    c.close()
    assert codes == [200, 200]
    assert after == before
