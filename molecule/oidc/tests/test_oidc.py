"""auth.mode oidc against the loopback IdP (oauth2-mock-server, prepare.yml).

Valid RS256 and ES256 tokens (and one issued by the IdP's own token endpoint) work with
the real MCP client; every forged or out-of-policy token is 401 with the challenge; the
shared enforcement cases run with roles taken from the token. One `[verify]` line per case.
"""
import asyncio
import base64
import json
import shlex

import pytest

import enforcement as enf
import gateway_probe as gp
import mcpsec_client

URL = "https://localhost:30443/mcp"
ISSUER = "https://127.0.0.1:9443"
AUDIENCE = URL
IDP_DIR = "/opt/mcpsec-idp"
ROLES = {"alice": ["admin"], "bob": ["reader"], "carol": [], "dave": ["admin"]}
SESSION_CAP = 6
ATTACKS = [
    ("expired", {"exp_in": -3600}),
    ("not yet valid (nbf in 1 h)", {"nbf_in": 3600}),
    ("wrong iss", {"claims": {"iss": ISSUER + "/evil"}}),
    ("wrong aud", {"claims": {"aud": "https://other.example/mcp"}}),
    ("no exp", {"exp_in": None}),
    ("alg none", {"alg": "none"}),
    ("HS256 signed with the RSA public key", {"alg": "HS256", "kid": "rsa-1"}),
    ("unknown kid", {"kid": "no-such-key", "key": "rogue"}),
    ("tampered payload (roles raised to admin)", {"tamper": {"roles": ["admin"]}}),
    ("signed by an unpublished key (published kid)", {"key": "rogue"}),
    ("ES256 token naming the RSA kid", {"alg": "ES256", "key": "ec", "kid": "rsa-1"}),
]


def mint(host, spec: dict, sub: str = "bob", roles: list | None = None, scope: str | None = "openid mcp:tools") -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles if roles is not None else ["reader"]}
    if scope is not None:
        claims["scope"] = scope
    claims.update(spec.get("claims", {}))
    spec = dict(spec, claims=claims)
    out = host.run(f"node {IDP_DIR}/mint.js {IDP_DIR}/keys.json {shlex.quote(json.dumps(spec))}")
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def tokens(host):
    """Valid tokens per user: alice RS256 admin, bob ES256 reader, carol RS256 with no role,
    dave RS256 admin; every one carries the required scope mcp:tools."""
    return {
        "alice": mint(host, {"alg": "RS256"}, "alice", ROLES["alice"]),
        "bob": mint(host, {"alg": "ES256"}, "bob", ROLES["bob"]),
        "carol": mint(host, {"alg": "RS256"}, "carol", ROLES["carol"]),
        "dave": mint(host, {"alg": "RS256"}, "dave", ROLES["dave"]),
    }


@pytest.fixture(scope="module")
def gw(host, tokens):
    return enf.Gateway(url=URL, ca_file=gp.ca_file_from(host), label="oidc: ",
                       credentials={u: {"Authorization": f"Bearer {t}"} for u, t in tokens.items()})


def test_idp_runs_on_loopback_only(host):
    sock = host.socket("tcp://127.0.0.1:9443")
    assert sock.is_listening
    assert not host.socket("tcp://0.0.0.0:9443").is_listening
    disc = json.loads(host.run(f"curl -fsS --cacert {IDP_DIR}/ca.pem {ISSUER}/.well-known/openid-configuration").stdout)
    jwks = json.loads(host.run(f"curl -fsS --cacert {IDP_DIR}/ca.pem {disc['jwks_uri']}").stdout)
    kinds = sorted(f"{k['kid']}:{k['kty']}:{k['alg']}" for k in jwks["keys"])
    enf.show(f"oidc: IdP {disc['issuer']} publishes", ", ".join(kinds))
    assert disc["issuer"] == ISSUER and kinds == ["ec-1:EC:ES256", "rsa-1:RSA:RS256"]
    assert all("d" not in k for k in jwks["keys"])


def test_resource_metadata_names_the_issuer(gw):
    with gw.client() as c:
        r = c.get("https://localhost:30443/.well-known/oauth-protected-resource")
    doc = r.json()
    enf.show("oidc: RFC 9728 metadata authorization_servers", f"{r.status_code} {doc.get('authorization_servers')}")
    assert r.status_code == 200 and doc["authorization_servers"] == [ISSUER] and doc["resource"] == AUDIENCE


@pytest.mark.parametrize("user,alg,calls", [
    ("alice", "RS256", [("echo", {"message": "rs256 ok"}), ("get-env", {})]),
    ("bob", "ES256", [("echo", {"message": "es256 ok"}), ("get-sum", {"a": 2, "b": 3})]),
])
def test_valid_tokens_pass_with_the_real_client(gw, tokens, user, alg, calls):
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    trip = asyncio.run(mcpsec_client.round_trip(URL, calls=calls, bearer=tokens[user], ca_file=gw.ca_file))
    res = ", ".join(f"{r['tool']}={'error' if r['is_error'] else 'ok'}" for r in trip.results)
    enf.show(f"oidc: valid {alg} token ({user}, roles {ROLES[user]}), real MCP client: {len(trip.tools)} tools, {res}",
             "ok")
    assert not any(r["is_error"] for r in trip.results)
    assert calls[0][1]["message"] in trip.results[0]["text"]


def test_token_from_the_idp_token_endpoint(host, gw):
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    out = host.run(f"curl -fsS --cacert {IDP_DIR}/ca.pem {ISSUER}/token -d grant_type=client_credentials "
                   f"--data-urlencode aud={AUDIENCE} -d sub=dave -d roles=reader -d scope=mcp:tools")
    token = json.loads(out.stdout)["access_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    trip = asyncio.run(mcpsec_client.round_trip(URL, calls=[("echo", {"message": "idp-issued"})],
                                                bearer=token, ca_file=gw.ca_file))
    enf.show(f"oidc: token from the IdP's token endpoint ({header['alg']}, kid {header['kid']}), real MCP client",
             "ok" if not trip.results[0]["is_error"] else "error")
    assert "idp-issued" in trip.results[0]["text"]


@pytest.mark.parametrize("name,spec", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_bad_tokens_are_401_with_challenge(host, gw, name, spec):
    token = mint(host, spec)
    init = enf.rpc("initialize", {"protocolVersion": enf.PROTOCOL_VERSION, "capabilities": {},
                                  "clientInfo": {"name": "probe", "version": "1"}})
    r = gw.post(None, init, extra={"Authorization": f"Bearer {token}"})
    challenge = r.headers.get("www-authenticate", "")
    enf.show(f"oidc: token {name}", f"{r.status_code} {enf.reason_of(r)} challenge={'yes' if challenge else 'no'}")
    assert r.status_code == 401
    assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge and "invalid_token" in challenge


def test_no_token_is_401_with_challenge(gw):
    r = gw.post(None, enf.rpc("ping"))
    challenge = r.headers.get("www-authenticate", "")
    enf.show("oidc: no token", f"{r.status_code} challenge={'yes' if challenge else 'no'}")
    assert r.status_code == 401 and "resource_metadata=" in challenge and 'scope="mcp:tools"' in challenge


def test_token_without_the_required_scope_is_403(host, gw):
    token = mint(host, {"alg": "RS256"}, "erin", ["admin"], scope="openid")
    init = enf.rpc("initialize", {"protocolVersion": enf.PROTOCOL_VERSION, "capabilities": {},
                                  "clientInfo": {"name": "probe", "version": "1"}})
    r = gw.post(None, init, extra={"Authorization": f"Bearer {token}"})
    challenge = r.headers.get("www-authenticate", "")
    enf.show("oidc: token without the required scope mcp:tools (roles admin)", f"{r.status_code} {challenge}")
    assert r.status_code == 403 and 'error="insufficient_scope"' in challenge and 'scope="mcp:tools"' in challenge
    assert r.json()["id"] == 1


def test_scope_grants_a_role(host, gw):
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    token = mint(host, {"alg": "ES256"}, "frank", [], scope="mcp:tools mcp:admin")
    trip = asyncio.run(mcpsec_client.round_trip(URL, calls=[("get-env", {})], bearer=token, ca_file=gw.ca_file))
    enf.show(f"oidc: scope mcp:admin grants admin (no roles claim): {len(trip.tools)} tools, get-env",
             "error" if trip.results[0]["is_error"] else "ok")
    assert not trip.results[0]["is_error"] and "get-env" in trip.tools


def test_reader_lists_exactly_its_tools_with_the_real_client(gw, tokens):
    enf.refilled()   # earlier cases may have drained the per-IP and per-user buckets
    trip = asyncio.run(mcpsec_client.round_trip(URL, calls=[], bearer=tokens["bob"], ca_file=gw.ca_file))
    enf.show("oidc: real MCP client as bob (reader): tools/list", ", ".join(trip.tools))
    assert trip.tools == ["echo", "get-sum"]


def test_every_method_is_authorised(gw):
    enf.method_cases(gw, reader="bob", noroles="carol", admin="alice", step_up=True)


def test_2026_07_28_requests_start_no_server_process(host, gw):
    enf.modern_cases(gw, host, "bob", SESSION_CAP)


def test_fail_closed_bodies(gw):
    enf.body_cases(gw, "alice")


def test_roles_from_the_token_and_escaped_tool_names(gw):
    enf.role_cases(gw, reader="bob", admin="alice", step_up=True)


def test_session_bound_to_its_subject(gw):
    enf.session_cases(gw, owner="alice", other="bob")


def test_per_tool_limit(gw):
    enf.tool_limit_cases(gw, "alice", "dave")


def test_per_user_and_per_ip_bursts(host, gw):
    enf.burst_cases(gw, noisy="bob", quiet="alice", crowd=["alice", "bob", "dave"],
                    per_user_burst=40, per_ip_each=8)
    enf.other_address_unaffected(gw, host, "dave")


def test_audit_log(host, gw, tokens):
    secrets = list(tokens.values()) + [t.split(".")[2] for t in tokens.values()]
    entries = enf.audit_cases(gw, host, secrets)
    subjects = sorted({e["subject"] for e in entries if e["subject"]})
    enf.show("oidc: audit subjects come from the token's sub", ", ".join(subjects))
    assert {"alice", "bob"} <= set(subjects)
