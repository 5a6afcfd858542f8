"""An identity provider the gateway host cannot use stops the converge before nginx changes.

The proxy role fetches discovery and the JWKS from the gateway host with auth.oidc.ca_file
before it renders anything; playbooks/verify.yml reports the same check as a PASS/FAIL line.
The policy is this scenario's own (molecule.yml), with only the issuer replaced.
"""
import copy
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

import playbook_run

SCENARIO = Path(__file__).resolve().parents[1] / "molecule.yml"
# Nothing listens on port 9 of the test host: the connection is refused at once.
UNREACHABLE = "https://127.0.0.1:9"
WATCHED = ["/etc/nginx/mcpsec/policy.json", "/etc/nginx/mcpsec/locations.conf",
           "/etc/nginx/conf.d/mcpsec-http.conf", "/etc/nginx/sites-available/mcpsec.conf"]


def _policy(issuer: str | None = None) -> dict:
    host_vars = yaml.safe_load(SCENARIO.read_text())["provisioner"]["inventory"]["host_vars"]["mcpsec-oidc"]
    policy = copy.deepcopy(host_vars["mcpsec_policy"])
    if issuer:
        policy["auth"]["oidc"]["issuer"] = issuer
    return policy


def _run(playbook: str, extra: dict | None = None) -> subprocess.CompletedProcess:
    cmd = ["ansible-playbook", "-i", playbook_run.inventory(), f"playbooks/{playbook}"]
    vars_file = None
    if extra:
        fd, vars_file = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(extra, f)
        cmd += ["-e", "@" + vars_file]
    try:
        return subprocess.run(cmd, env=playbook_run.ansible_env(), capture_output=True, text=True,
                              timeout=600, cwd=playbook_run.ROOT, check=False)
    finally:
        if vars_file:
            os.unlink(vars_file)


def _fingerprint(host) -> dict:
    return {p: host.run(f"sha256sum {p}").stdout.split()[0] for p in WATCHED}


def _verify_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "IdP discovery and JWKS verified" in line]
    assert lines, output[-3000:]
    # The YAML callback prints the table as a list: "- PASS ..." or "- 'FAIL ...".
    return lines[0].strip().lstrip("-").strip().strip("'\",")


def test_unreachable_issuer_stops_the_converge_before_nginx_changes(host):
    before = _fingerprint(host)
    master = host.run("cat /run/nginx.pid").stdout.strip()
    run = _run("site.yml", {"mcpsec_policy": _policy(UNREACHABLE)})
    out = run.stdout + run.stderr
    message = next((line.strip() for line in out.splitlines() if "auth.oidc: the identity provider" in line), "")
    print(f"\n[verify] converge with issuer {UNREACHABLE}: rc={run.returncode}, "
          f"recap {playbook_run.recap(run.stdout)}\n[verify]   {message}")
    assert run.returncode != 0, out[-3000:]
    assert f"{UNREACHABLE}/.well-known/openid-configuration" in message, out[-3000:]
    assert "Connection refused" in message, out[-3000:]
    assert playbook_run.recap(run.stdout).get("changed", 0) == 0, out[-3000:]
    assert _fingerprint(host) == before
    assert host.run("cat /run/nginx.pid").stdout.strip() == master
    assert host.service("nginx").is_running


@pytest.mark.parametrize("issuer,verdict", [(None, "PASS"), (UNREACHABLE, "FAIL")], ids=["reachable", "unreachable"])
def test_verify_playbook_reports_the_identity_provider(issuer, verdict):
    run = _run("verify.yml", {"mcpsec_policy": _policy(issuer)} if issuer else None)
    line = _verify_line(run.stdout)
    print(f"\n[verify] verify.yml, issuer {issuer or 'as configured'}: {line}")
    assert line.startswith(verdict), line
    if verdict == "PASS":
        assert run.returncode == 0, run.stdout[-3000:]
    else:
        # The callback wraps the long detail: the error is on the row's next line.
        assert run.returncode != 0 and "verify failed: IdP discovery and JWKS verified (oidc)" in run.stdout, line
        assert "Connection refused" in " ".join(run.stdout.split()), run.stdout[-3000:]
