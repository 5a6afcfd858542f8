"""auth.mode basic and bearer: what the enforcement point lets through and what it refuses.

A real MCP client (the official Python SDK) where a client is meant to succeed; raw HTTP
for the attacks. One `[verify] <case>: <status>` line per case.
"""
import asyncio
import base64

import pytest

import enforcement as enf
import gateway_probe as gp
import mcpsec_client
import playbook_run

SECRETS = playbook_run.ROOT / ".cache" / "auth"
USERS = ("alice", "bob", "carol", "dave")
SESSION_CAP = 6
HOSTS = {
    "mcpsec-auth-basic": {"mode": "basic", "port": 27443},
    "mcpsec-auth-bearer": {"mode": "bearer", "port": 29443},
}


def secret(mode: str, user: str) -> str:
    kind = "password" if mode == "basic" else "token"
    return (SECRETS / f"{user}-{kind}").read_text(encoding="utf-8").strip()


def authorization(mode: str, user: str, value: str | None = None) -> str:
    value = value if value is not None else secret(mode, user)
    if mode == "basic":
        return "Basic " + base64.b64encode(f"{user}:{value}".encode()).decode()
    return f"Bearer {value}"


@pytest.fixture(scope="module")
def target(host):
    name = host.backend.get_hostname()
    conf = HOSTS[name]
    mode = conf["mode"]
    gw = enf.Gateway(
        url=f"https://localhost:{conf['port']}/mcp",
        ca_file=gp.ca_file_from(host),
        credentials={u: {"Authorization": authorization(mode, u)} for u in USERS},
        label=f"{mode}: ",
    )
    return mode, gw


def test_real_client_as_admin_and_reader(target):
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    mode, gw = target
    for user, calls in (("alice", [("echo", {"message": "hi from alice"}), ("get-env", {})]),
                        ("bob", [("echo", {"message": "hi from bob"}), ("get-sum", {"a": 2, "b": 3})])):
        kw = {"basic": (user, secret(mode, user))} if mode == "basic" else {"bearer": secret(mode, user)}
        trip = asyncio.run(mcpsec_client.round_trip(gw.url, calls=calls, ca_file=gw.ca_file, **kw))
        results = ", ".join(f"{r['tool']}={'error' if r['is_error'] else 'ok'}" for r in trip.results)
        enf.show(f"{gw.label}real MCP client as {user}: {len(trip.tools)} tools, {results}", "ok")
        assert not any(r["is_error"] for r in trip.results)
    assert "hi from bob" in trip.results[0]["text"] and "5" in trip.results[1]["text"]


def test_authentication_failures_are_401_with_challenge(target):
    mode, gw = target
    init = enf.rpc("initialize", {"protocolVersion": enf.PROTOCOL_VERSION, "capabilities": {},
                                  "clientInfo": {"name": "probe", "version": "1"}})
    wrong = "Wr0ngSecretValue" + "x9" * 20
    cases = [
        ("no credentials", {}),
        (f"wrong {'password' if mode == 'basic' else 'token'} for alice",
         {"Authorization": authorization(mode, "alice", wrong)}),
        ("the other scheme", {"Authorization": ("Bearer " + wrong) if mode == "basic"
                              else authorization("basic", "alice", secret(mode, "alice"))}),
    ]
    if mode == "basic":
        cases.append(("unknown user mallory", {"Authorization": authorization(mode, "mallory", secret(mode, "alice"))}))
    with gw.client() as c:
        for name, hdrs in cases:
            h = gw.headers(None, extra=hdrs)
            r = c.post(gw.url, json=init, headers=h)
            challenge = r.headers.get("www-authenticate", "")
            enf.show(f"{gw.label}auth: {name}", f"{r.status_code} challenge={'yes' if challenge else 'no'}")
            # No RFC 9728 pointer in basic/bearer mode: no authorization server exists to discover.
            want = 'Basic realm="mcpsec"' if mode == "basic" else 'Bearer realm="mcpsec"'
            assert r.status_code == 401 and challenge.startswith(want), (r.status_code, r.headers)
            assert "resource_metadata" not in challenge, r.headers


def test_reader_lists_exactly_its_tools_with_the_real_client(target):
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    mode, gw = target
    kw = {"basic": ("bob", secret(mode, "bob"))} if mode == "basic" else {"bearer": secret(mode, "bob")}
    trip = asyncio.run(mcpsec_client.round_trip(gw.url, calls=[], ca_file=gw.ca_file, **kw))
    enf.show(f"{gw.label}real MCP client as bob (reader): tools/list", ", ".join(trip.tools))
    assert trip.tools == ["echo", "get-sum"]


def test_real_client_in_auto_mode_falls_back_to_a_session(target):
    """The SDK's default mode probes 2026-07-28 (server/discover); the gateway's -32022
    sends it to the initialize handshake."""
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    mode, gw = target
    kw = {"basic": ("alice", secret(mode, "alice"))} if mode == "basic" else {"bearer": secret(mode, "alice")}
    version, tools = asyncio.run(mcpsec_client.auto_round_trip(gw.url, ca_file=gw.ca_file, **kw))
    enf.show(f"{gw.label}real MCP client, mode=auto: negotiated {version}, {len(tools)} tools", "ok")
    assert version == "2025-11-25" and "echo" in tools


def test_every_method_is_authorised(target):
    _mode, gw = target
    enf.method_cases(gw, reader="bob", noroles="carol", admin="alice")


def test_2026_07_28_requests_start_no_server_process(host, target):
    _mode, gw = target
    enf.modern_cases(gw, host, "bob", SESSION_CAP)


def test_fail_closed_bodies(target):
    _mode, gw = target
    enf.body_cases(gw, "alice")


def test_roles_and_escaped_tool_names(target):
    _mode, gw = target
    enf.role_cases(gw, reader="bob", admin="alice")


def test_session_bound_to_its_subject(target):
    _mode, gw = target
    enf.session_cases(gw, owner="alice", other="bob")


def test_per_tool_limit(target):
    _mode, gw = target
    enf.tool_limit_cases(gw, "alice", "dave")


def test_per_user_and_per_ip_bursts(host, target):
    _mode, gw = target
    enf.burst_cases(gw, noisy="bob", quiet="alice", crowd=["alice", "bob", "dave"],
                    per_user_burst=40, per_ip_each=8)
    enf.other_address_unaffected(gw, host, "dave")


def test_audit_log(host, target):
    mode, gw = target
    secrets = [secret(mode, u) for u in USERS]
    enf.audit_cases(gw, host, secrets)
