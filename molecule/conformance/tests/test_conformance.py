"""The official MCP conformance suite, directly against supergateway and through the gateway.

Both runs use the runner installed by prepare.yml on the test host (Node 22 from npm,
@modelcontextprotocol/conformance pinned) against tests/conformance/fixture_server.py.
The gateway must make the server more conformant, never less.
"""
import json

import pytest

RUNNER = "/opt/mcpsec-conformance/run_suite.sh"
DIRECT = "http://127.0.0.1:8000/mcp"
GATEWAY = "https://localhost:46443/mcp"
# dns-rebinding-protection refuses non-localhost URLs; 127.0.0.1 is in tls_extra_sans.
GATEWAY_LOOPBACK = "https://127.0.0.1:46443/mcp"
SERVICE = "mcpsec-supergateway"
# The active suite of conformance 0.1.16 has 30 server scenarios.
MIN_SCENARIOS = 30


def _restart_backend(host) -> None:
    """A clean slate per run: the runner never closes its sessions (one child each)."""
    host.run_test(f"systemctl restart '{SERVICE}@*.service'")
    host.run_expect([0], "for i in $(seq 1 50); do curl -fsS -o /dev/null http://127.0.0.1:8000/healthz "
                         "&& exit 0; sleep 0.2; done; exit 1")


def _suite(host, url: str, *extra: str) -> dict:
    run = host.run(" ".join([RUNNER, url, *extra]))
    assert run.rc == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, run.stderr[-3000:]
    return json.loads(lines[-1])


def _table(title: str, results: dict) -> str:
    width = max(len(s) for s in results) if results else 10
    rows = [f"[verify] conformance {title}", f"  {'scenario'.ljust(width)}  result  checks"]
    for scenario in sorted(results):
        r = results[scenario]
        total = r["passed"] + r["failed"]
        verdict = "pass" if r["failed"] == 0 else "FAIL"
        rows.append(f"  {scenario.ljust(width)}  {verdict:6}  {r['passed']}/{total}"
                    + (f" ({r['warnings']} warnings)" if r["warnings"] else "")
                    + ("".join(f"\n      - {f}" for f in r["failures"])))
    passed = sum(r["passed"] for r in results.values())
    total = sum(r["passed"] + r["failed"] for r in results.values())
    ok = sum(1 for r in results.values() if r["failed"] == 0)
    rows.append(f"  scenarios passed {ok}/{len(results)}, checks passed {passed}/{total}")
    return "\n".join(rows)


@pytest.fixture(scope="module")
def runs(host):
    # The gateway keeps each session bound to its subject for proxy_session_idle_timeout:
    # the sessions an earlier verify left open would count against sessions.max_per_user.
    # A restart of nginx empties that state (a reload would keep it).
    host.run_test("systemctl restart nginx")
    _restart_backend(host)
    direct = _suite(host, DIRECT)
    _restart_backend(host)
    gateway = _suite(host, GATEWAY, "--auth")
    # The same scenario against the loopback address (as a local client would use it).
    rebinding = _suite(host, GATEWAY_LOOPBACK, "--auth", "--scenario", "dns-rebinding-protection")
    _restart_backend(host)
    print("\n" + _table(f"direct: supergateway on the loopback ({DIRECT})", direct))
    print(_table(f"through the gateway ({GATEWAY}, bearer credentials)", gateway))
    print(_table(f"through the gateway, DNS rebinding ({GATEWAY_LOOPBACK})", rebinding))
    return {"direct": direct, "gateway": gateway, "rebinding": rebinding}


def test_the_suite_ran_every_scenario(runs):
    assert len(runs["direct"]) >= MIN_SCENARIOS, sorted(runs["direct"])
    assert set(runs["gateway"]) == set(runs["direct"])
    assert set(runs["rebinding"]) == {"dns-rebinding-protection"}


def test_every_scenario_passing_directly_passes_through_the_gateway(runs):
    lost = {s: runs["gateway"][s]["failures"] for s, r in runs["direct"].items()
            if r["failed"] == 0 and runs["gateway"][s]["failed"]}
    assert not lost, lost
    # Not a vacuous comparison: the fixture passes the suite directly, but for the one
    # scenario supergateway alone fails.
    failing_directly = sorted(s for s, r in runs["direct"].items() if r["failed"])
    assert failing_directly == ["dns-rebinding-protection"], failing_directly


def test_dns_rebinding_protection_passes_through_the_gateway(runs):
    for run in ("gateway", "rebinding"):
        result = runs[run]["dns-rebinding-protection"]
        assert result["failed"] == 0 and result["passed"] == 2, (run, result)


def test_a_foreign_host_is_refused_at_the_mcp_endpoint(host):
    """Without any Origin (a non-browser client), a Host that is not the gateway's gets 421."""
    out = host.check_output(
        "curl -sk -o /dev/null -w '%{http_code}' -H 'Host: evil.example.com' "
        "-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' "
        "--data '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}' https://127.0.0.1:46443/mcp")
    known = host.check_output(
        "curl -sk -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
        "-H 'Accept: application/json, text/event-stream' "
        "--data '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}' https://localhost:46443/mcp")
    print(f"\n[verify] POST /mcp with Host evil.example.com -> {out}; with Host localhost (no credentials) -> {known}")
    assert out == "421"
    assert known == "401"
