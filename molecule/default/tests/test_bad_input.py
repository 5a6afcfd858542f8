"""Bad input never reaches a running host: the run stops in pre_tasks, naming the key and the fix."""
import pytest

import playbook_run

WATCHED = ["/etc/nginx/mcpsec/policy.json", "/etc/nginx/mcpsec/htpasswd",
           "/etc/nftables.conf", "/etc/mcpsec/mcp-server.env"]


def _fingerprint(host):
    return {p: host.run(f"sha256sum {p}").stdout.split()[0] for p in WATCHED}


@pytest.mark.parametrize("extra_vars,expected", [
    ({"mcpsec_policy": {"public_url": "https://localhost:18443", "auth": {"mode": "basic"},
                        "users": {"alice": {"password": "a-long-enough-password", "roles": ["admn"]}},
                        "roles": {"admin": {"tools": ["*"]}}}},
     "mcpsec_policy.users.alice.roles[0]: role 'admn' is not defined (defined: admin"),
    ({"mcpsec_policy": {"public_url": "http://localhost:18443", "auth": {"mode": "basic"},
                        "users": {}, "roles": {}}},
     "mcpsec_policy.public_url: public_url must use https"),
    ({"common_supergateway_port": "not-a-port"}, "common_supergateway_port"),
    ({"mcp_server_source": "docker"}, "value of mcp_server_source must be one of: npm, pypi"),
], ids=["undefined-role", "http-url", "mistyped-port", "bad-choice"])
def test_bad_input_stops_before_the_host_changes(host, extra_vars, expected):
    before = _fingerprint(host)
    run = playbook_run.run_playbook(playbook_run.ROOT / "playbooks" / "site.yml", extra_vars=extra_vars, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert expected in out, out[-3000:]
    assert playbook_run.recap(run.stdout).get("changed", 0) == 0, out[-3000:]
    assert _fingerprint(host) == before
    assert host.service("nginx").is_running
    print(f"\n[verify] bad input {list(extra_vars)} stopped before any change: {expected!r}")
