"""The fleet: a load balancer (role lb) in front of two gateways with two supergateway
instances each. Every request goes through the load balancer (127.0.0.1:49443).
One `[verify]` line per case."""
from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import httpx
import httpx2
import pytest
import testinfra
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

import gateway_probe as gp
import hardening_probe as hp
import playbook_run

ROOT = Path(__file__).resolve().parents[3]
URL = "https://localhost:49443/mcp"
LB, GW1, GW2 = "mcpsec-fleet-lb", "mcpsec-fleet-gw1", "mcpsec-fleet-gw2"
GATEWAYS = (GW1, GW2)
AUDIT = "/var/log/nginx/mcpsec-audit.log"
LIMIT = 150          # lb_rate_limit_requests per 10 s (molecule.yml)
ANON_LIMIT = 40      # lb_rate_limit_anonymous_requests per 10 s and source address (molecule.yml)
PERIOD = 10.0


def rate_slack(limit: int, took: float) -> int:
    """What HAProxy's rate may admit beyond the limit in a burst of `took` seconds: its
    http_req_rate is a sliding estimate (the previous period's count weighted by what is left
    of it), so a burst that crosses a period boundary gets up to limit * took / period more."""
    return int(limit * took / PERIOD) + 1


def password(user: str) -> str:
    return (ROOT / ".cache" / "fleet" / f"{user}-password").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def hosts():
    return {name: testinfra.get_host(f"docker://{name}") for name in (LB, GW1, GW2)}


@pytest.fixture(scope="module")
def ca(hosts):
    return gp.ca_file_from(hosts[LB], "/etc/haproxy/mcpsec/lb.pem")


def audit(host) -> list[dict]:
    return gp.read_json_lines(host.run(f"cat {AUDIT} 2>/dev/null || true").stdout)


def owner(sid: str | None) -> tuple[str, int] | None:
    """(host, instance) a routed session id names."""
    if not sid or sid.count(".") != 3:
        return None
    host, instance, _backend, _mac = sid.split(".")
    return host, int(instance)


def lb_state(hosts) -> dict[str, tuple[int, int]]:
    """HAProxy's view of each gateway: (operational state 2=up 0=down, admin state bits)."""
    out = hosts[LB].run("echo 'show servers state mcpsec_gateways' | socat stdio /run/haproxy/admin.sock").stdout
    state = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 7 and f[1] == "mcpsec_gateways":
            state[f[3]] = (int(f[5]), int(f[6]))
    return state


def wait_lb(hosts, name: str, up: bool, limit: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if (lb_state(hosts).get(name, (-1, 0))[0] == 2) == up:
            return time.monotonic() - start
        time.sleep(0.3)
    raise AssertionError(f"{name} not {'up' if up else 'down'} on the load balancer within {limit} s")


def open_sessions(c, user: str, want, attempts: int = 40) -> list[hp.RawSession]:
    """Open sessions until want(list of owners) is true (bounded)."""
    sessions = []
    for _attempt in range(attempts):
        s = hp.RawSession(c, URL, (user, password(user)))
        assert s.open().status_code == 200
        sessions.append(s)
        if want([owner(x.sid) for x in sessions]):
            return sessions
    raise AssertionError(f"sessions did not spread as needed: {[owner(x.sid) for x in sessions]}")


# ---------------------------------------------------------------- containment

def test_instances_listen_on_loopback_ports_closed_to_the_fleet(hosts):
    for gw in GATEWAYS:
        h = hosts[gw]
        for n, port in ((0, 8000), (1, 8001)):
            assert h.service(f"mcpsec-supergateway@{n}").is_running
            assert h.run(f"curl -fsS http://127.0.0.1:{port}/healthz").stdout.strip() == "ok"
        assert not h.file("/etc/systemd/system/mcpsec-supergateway.service").exists
        key = h.file("/etc/nginx/mcpsec/route_key.json")
        assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    probe = {port: hosts[LB].run(f"timeout 3 bash -c '</dev/tcp/{GW1}/{port}'").rc == 0 for port in (443, 8000, 8001)}
    print(f"\n[verify] from the load balancer to {GW1}: {probe}")
    assert probe == {443: True, 8000: False, 8001: False}


# ---------------------------------------------------------------- routing

def test_many_sessions_every_call_lands_on_the_host_that_owns_it(hosts, ca):
    """12 sessions by the real MCP client, open at once, 3 tools/call each."""
    before = {gw: len(audit(hosts[gw])) for gw in GATEWAYS}
    ctx = ssl.create_default_context(cafile=ca)
    n_sessions, n_calls = 12, 3
    barrier: list[asyncio.Barrier] = []
    calls_by_host: dict[str, int] = {}
    seen: list[tuple[int, str | None, int]] = []

    async def one(i: int) -> tuple[str | None, list[str]]:
        user = ("alice", "bob")[i % 2]
        sids: list[str] = []

        async def on_response(response):
            sid = response.request.headers.get("mcp-session-id") or response.headers.get("mcp-session-id")
            seen.append((i, sid, response.status_code))
            if sid and sid not in sids:
                sids.append(sid)

        client = httpx2.AsyncClient(verify=ctx, auth=httpx2.BasicAuth(user, password(user)),
                                    timeout=httpx2.Timeout(30.0, read=60.0),
                                    event_hooks={"response": [on_response]})
        texts = []
        async with client:
            async with streamable_http_client(URL, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await barrier[0].wait()       # every session open before any call
                    for k in range(n_calls):
                        res = await session.call_tool("echo", {"message": f"s{i}-c{k}"})
                        texts.append(" ".join(getattr(c, "text", "") for c in res.content))
        return (sids[0] if sids else None), texts

    async def run_all():
        barrier.append(asyncio.Barrier(n_sessions))
        return await asyncio.wait_for(asyncio.gather(*[one(i) for i in range(n_sessions)]), 180)

    results = asyncio.run(run_all())
    owners = [owner(sid) for sid, _texts in results]
    for (sid, texts), i in zip(results, range(n_sessions)):
        assert owner(sid) is not None, sid
        assert len(texts) == n_calls and all(f"s{i}-c{k}" in texts[k] for k in range(n_calls)), texts
        host = owner(sid)[0]
        calls_by_host[host] = calls_by_host.get(host, 0) + n_calls
    # Every request inside a session carried the one id its session was given.
    for i, sid, status in seen:
        if sid:
            assert sid == results[i][0], (i, sid, status)
    got = {}
    for gw in GATEWAYS:
        lines = audit(hosts[gw])[before[gw]:]
        got[gw] = sum(1 for x in lines if x["method"] == "tools/call" and x["status"] == 200)
    print(f"\n[verify] {n_sessions} sessions: owners {sorted(set(owners))}; tools/call per host expected "
          f"{calls_by_host}, audited {got}")
    assert {o[0] for o in owners} == set(GATEWAYS), "sessions did not spread over both hosts"
    assert got == {gw: calls_by_host.get(gw, 0) for gw in GATEWAYS}


def test_gateways_see_the_real_client_address_not_the_lb(hosts):
    lb_ip = gp.container_ip(LB)
    clients = {x["client"] for gw in GATEWAYS for x in audit(hosts[gw])[-20:]}
    print(f"\n[verify] client addresses in the gateways' audit logs: {clients} (load balancer {lb_ip})")
    assert clients and lb_ip not in clients


def test_forged_proxy_header_from_a_non_lb_host_is_not_believed(hosts):
    """gw2 (not a load balancer) opens a PROXY v1 header claiming 203.0.113.9 to gw1."""
    script = (
        "import socket,ssl;s=socket.create_connection(('%s',443),5);"
        "s.sendall(b'PROXY TCP4 203.0.113.9 10.0.0.1 40000 443\\r\\n');"
        "c=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE;"
        "t=c.wrap_socket(s,server_hostname='localhost');"
        "t.sendall(b'POST /mcp HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n');"
        "print(t.recv(64).split(b' ')[1].decode())" % GW1)
    status = hosts[GW2].run(f'python3 -c "{script}"').stdout.strip()
    time.sleep(0.3)
    last = audit(hosts[GW1])[-1]
    print(f"\n[verify] forged PROXY header from {GW2}: status {status}, audited client {last['client']}")
    assert status == "401"
    assert last["client"] == gp.container_ip(GW2)


# The kill -9 of one instance (one host, its other instances unaffected) runs in the
# default scenario: test_drill_kill_9_one_instance_only_its_sessions_start_anew.

# ---------------------------------------------------------------- per-credential limit

def test_per_credential_limit_holds_across_both_hosts(hosts, ca):
    before = {gw: len(audit(hosts[gw])) for gw in GATEWAYS}
    total = LIMIT + 60
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    async def burst():
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(verify=ca, timeout=30, limits=limits,
                                     auth=("carol", password("carol"))) as c:
            sem = asyncio.Semaphore(8)

            async def one():
                async with sem:
                    r = await c.post(URL, json=body, headers=gp.MCP_HEADERS)
                    return r.status_code
            return await asyncio.gather(*[one() for _request in range(total)])

    start = time.monotonic()
    codes = asyncio.run(burst())
    took = time.monotonic() - start
    time.sleep(0.5)
    reached = {gw: sum(1 for x in audit(hosts[gw])[before[gw]:] if x["subject"] == "carol") for gw in GATEWAYS}
    limited = codes.count(429)
    print(f"\n[verify] carol sent {total} requests in {took:.1f} s: {limited} answered 429 by the load balancer; "
          f"reached the gateways {reached} (limit {LIMIT} per 10 s)")
    assert took < 10
    assert all(reached.values()), "the burst should reach both hosts"
    # One budget across both hosts: without it both would admit LIMIT (2 x 150 > the 210 sent).
    assert sum(reached.values()) <= LIMIT + rate_slack(LIMIT, took)
    assert limited >= total - LIMIT - rate_slack(LIMIT, took)
    # Another credential is not limited by carol's burst.
    with gp.http(ca) as c:
        s = hp.RawSession(c, URL, ("bob", password("bob")))
        assert s.open().status_code == 200
        s.close()


def burst(ca, total: int, headers_of) -> list[int]:
    """total POSTs through the load balancer, 8 at a time; headers_of(i) gives request i's headers."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    async def run():
        async with httpx.AsyncClient(verify=ca, timeout=30, limits=httpx.Limits(max_connections=8)) as c:
            sem = asyncio.Semaphore(8)

            async def one(i):
                async with sem:
                    r = await c.post(URL, json=body, headers={**gp.MCP_HEADERS, **headers_of(i)})
                    return r.status_code
            return await asyncio.gather(*[one(i) for i in range(total)])
    return asyncio.run(run())


def test_per_credential_key_is_normalised(hosts, ca):
    """One credential spelled four ways (scheme case, extra whitespace) is one budget."""
    import base64
    time.sleep(11)     # carol's window from the burst before is empty again
    token = base64.b64encode(f"carol:{password('carol')}".encode()).decode()
    spellings = [f"Basic {token}", f"basic {token}", f"Basic   {token}", f"BASIC  {token}"]
    before = {gw: len(audit(hosts[gw])) for gw in GATEWAYS}
    total = LIMIT + 60
    start = time.monotonic()
    codes = burst(ca, total, lambda i: {"Authorization": spellings[i % len(spellings)]})
    took = time.monotonic() - start
    time.sleep(0.5)
    reached = sum(len(audit(hosts[gw])) - before[gw] for gw in GATEWAYS)
    per = {repr(sp.replace(token, "T")): codes[i::len(spellings)].count(429) for i, sp in enumerate(spellings)}
    print(f"\n[verify] carol's credential spelled 4 ways ({total} requests in {took:.1f} s): "
          f"{codes.count(429)} answered 429 by the load balancer (per spelling {per}); {reached} reached the "
          f"gateways (limit {LIMIT} per 10 s for the one credential)")
    assert took < 10
    # One budget: four budgets (one per spelling, 52 requests each) would admit all 210.
    assert reached <= LIMIT + rate_slack(LIMIT, took)
    assert codes.count(429) >= total - LIMIT - rate_slack(LIMIT, took)


def test_requests_without_credentials_are_limited_per_address(hosts, ca):
    total = ANON_LIMIT + 30
    start = time.monotonic()
    codes = burst(ca, total, lambda i: {})
    took = time.monotonic() - start
    with gp.http(ca) as c:
        s = hp.RawSession(c, URL, ("bob", password("bob")))
        with_credentials = s.open().status_code
        s.close()
    print(f"\n[verify] {total} requests without credentials from one address: "
          f"{sorted(set(codes))}, {codes.count(429)} answered 429 (limit {ANON_LIMIT} per 10 s); "
          f"bob with credentials from the same address meanwhile -> {with_credentials}")
    assert codes.count(429) >= total - ANON_LIMIT - rate_slack(ANON_LIMIT, took)
    assert set(codes) <= {401, 429}
    assert with_credentials == 200


# ---------------------------------------------------------------- a host down

def test_one_host_stopped_its_sessions_start_anew_on_the_other(hosts, ca):
    with gp.http(ca) as c:
        sessions = open_sessions(c, "alice", lambda owners: owners.count((GW1, 0)) + owners.count((GW1, 1)) >= 2
                                 and sum(1 for o in owners if o and o[0] == GW2) >= 2)
        on1 = [s for s in sessions if owner(s.sid)[0] == GW1]
        on2 = [s for s in sessions if owner(s.sid)[0] == GW2]
        hosts[GW2].run("systemctl stop nginx")
        try:
            down_after = wait_lb(hosts, GW2, up=False)
            codes1 = [s.call("tools/list").status_code for s in on1]
            codes2 = [s.call("tools/list").status_code for s in on2]
            renewed = []
            for s in on2:          # what a client does on 404: a new session
                s.sid = None
                assert s.open().status_code == 200
                renewed.append((owner(s.sid), s.call("tools/list").status_code))
            trip = asyncio.run(mcpsec_round_trip(ca))
        finally:
            hosts[GW2].run("systemctl start nginx")
        up_after = wait_lb(hosts, GW2, up=True)
        print(f"\n[verify] nginx stopped on {GW2}: down on the load balancer after {down_after:.1f} s; "
              f"{GW1}'s sessions -> {codes1}, {GW2}'s -> {codes2}; re-opened -> {renewed}; real client "
              f"echo -> {trip}; back up {up_after:.1f} s after the start")
        for s in sessions:
            s.close()
    assert all(code == 200 for code in codes1)
    assert all(code == 404 for code in codes2)
    assert all(o[0] == GW1 and code == 200 for o, code in renewed)
    assert "while gw2 is down" in trip


async def mcpsec_round_trip(ca: str) -> str:
    import mcpsec_client
    trip = await mcpsec_client.round_trip(URL, calls=[("echo", {"message": "while gw2 is down"})],
                                          basic=("alice", password("alice")), ca_file=ca)
    return trip.results[0]["text"]


# ---------------------------------------------------------------- drain

def drain(state: str):
    return playbook_run.run_playbook(ROOT / "playbooks" / "drain.yml",
                                     extra_vars={"drain_host": GW1, "drain_state": state})


def test_drain_playbook_sends_no_new_session_to_the_drained_host(hosts, ca):
    with gp.http(ca) as c:
        old = open_sessions(c, "alice", lambda owners: (owners[-1] or ("", 0))[0] == GW1)[-1]
        run = drain("drain")
        rerun = drain("drain")
        try:
            drained = lb_state(hosts)[GW1]
            new = [hp.RawSession(c, URL, ("alice", password("alice"))) for _session in range(8)]
            statuses = [s.open().status_code for s in new]
            new_owners = [owner(s.sid) for s in new]
            old_status = old.call("tools/list").status_code
            for s in new:
                s.close()
        finally:
            ready = drain("ready")
        after = lb_state(hosts)[GW1]
        old_after = old.call("tools/list").status_code
        old.close()
    print(f"\n[verify] drain {GW1}: rc {run.returncode} changed {playbook_run.recap(run.stdout).get('changed')}, "
          f"again changed {playbook_run.recap(rerun.stdout).get('changed')}; state {drained}; 8 new sessions -> "
          f"{statuses} on {sorted({o[0] for o in new_owners if o})}; the session it held -> {old_status}; "
          f"ready: rc {ready.returncode}, state {after}, held session -> {old_after}")
    assert run.returncode == 0 and playbook_run.recap(run.stdout).get("changed") == 1, run.stdout + run.stderr
    assert rerun.returncode == 0 and playbook_run.recap(rerun.stdout).get("changed") == 0
    assert drained[1] & 8
    assert statuses == [200] * 8 and all(o and o[0] == GW2 for o in new_owners)
    assert old_status == 200
    assert ready.returncode == 0 and not after[1] & 8 and old_after == 200


def test_drain_playbook_refuses_an_unknown_host():
    run = playbook_run.run_playbook(ROOT / "playbooks" / "drain.yml",
                                    extra_vars={"drain_host": "no-such-gateway"})
    assert run.returncode != 0
    assert "no-such-gateway is not a server of mcpsec_gateways" in run.stdout


# ---------------------------------------------------------------- the load balancer converges once

def test_lb_converges_to_no_change():
    """The scenario's converge again, load balancer only (tag lb): nothing changes."""
    converge = Path(__file__).resolve().parents[1] / "converge.yml"
    run = playbook_run.run_playbook(converge, tags="lb")
    print(f"\n[verify] converge.yml --tags lb again: rc {run.returncode}, recap {playbook_run.recap(run.stdout)}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert playbook_run.recap(run.stdout).get("changed") == 0, run.stdout[-3000:]


# ---------------------------------------------------------------- upgrade from the single unit

def test_upgrade_from_the_single_unit_removes_it_and_converges_to_no_change(hosts):
    """gw2 as an earlier release left it: one mcpsec-supergateway.service holding port 8000."""
    h = hosts[GW2]
    old_unit = ("[Unit]\nDescription=single supergateway of an earlier release\n[Service]\n"
                "ExecStart=/usr/bin/python3 -m http.server 8000 --bind 127.0.0.1\n"
                "[Install]\nWantedBy=multi-user.target\n")
    h.run("systemctl disable --now mcpsec-supergateway@0.service")
    h.run(f"printf '%s' '{old_unit}' > /etc/systemd/system/mcpsec-supergateway.service")
    assert h.run("systemctl daemon-reload && systemctl enable --now mcpsec-supergateway.service").rc == 0
    # The scenario's converge (the gateways need the load balancer's facts), on gw2 only the
    # supergateway unit's tasks (tag supergateway_service: no package, host or server tasks).
    converge = Path(__file__).resolve().parents[1] / "converge.yml"
    first = playbook_run.run_playbook(converge, extra_vars={"mcpsec_target": GW2},
                                      limit=f"{GW2},{LB}", tags="supergateway_service")
    second = playbook_run.run_playbook(converge, extra_vars={"mcpsec_target": GW2},
                                       limit=f"{GW2},{LB}", tags="supergateway_service")
    state = h.run("systemctl is-active mcpsec-supergateway.service").stdout.strip()
    print(f"\n[verify] upgrade on {GW2}: first run rc {first.returncode} changed "
          f"{playbook_run.recap(first.stdout).get('changed')}, second changed "
          f"{playbook_run.recap(second.stdout).get('changed')}; old unit {state}")
    assert first.returncode == 0, first.stdout[-3000:]
    assert not h.file("/etc/systemd/system/mcpsec-supergateway.service").exists
    assert state in ("inactive", "unknown")
    assert h.service("mcpsec-supergateway@0").is_running and h.service("mcpsec-supergateway@0").is_enabled
    assert h.run("curl -fsS http://127.0.0.1:8000/healthz").stdout.strip() == "ok"
    assert second.returncode == 0 and playbook_run.recap(second.stdout).get("changed") == 0, second.stdout[-3000:]
