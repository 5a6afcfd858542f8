"""Operations on a converged gateway: verify.yml, rotate.yml and audit_report.yml.

Every playbook runs as a user would run it (ansible-playbook against the scenario's
inventory); the assertions look at what a user would notice: the checklist's verdicts,
which credentials work, which services were restarted, the report's numbers.
"""
import json
import os
import re
import subprocess
import tempfile
import time

import pytest

import gateway_probe as gp
import playbook_run

ROOT = playbook_run.ROOT
URL = "https://localhost:58443/mcp"
SECRETS = ROOT / ".cache" / "ops"
ENV_FILE = "/etc/mcpsec/mcp-server.env"
FIXTURE_LOG = "/var/log/nginx/mcpsec-audit-fixture.log"


def run(playbook: str, *args: str, extra: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """ansible-playbook with scripts/env.sh's environment; secrets go in a 0600 vars file."""
    env = playbook_run.ansible_env()
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"
    cmd = ["ansible-playbook", "-i", playbook_run.inventory(), f"playbooks/{playbook}", *args]
    vars_file = None
    if extra:
        fd, vars_file = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(extra, f)
        cmd += ["-e", "@" + vars_file]
    if check:
        cmd.append("--check")
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    finally:
        if vars_file:
            os.unlink(vars_file)


def rows(output: str, first=("RESULT", "PASS", "FAIL")) -> list[str]:
    """The string items of a printed list (the checklist table, the audit report)."""
    pattern = r'^\s*("(?:%s)\b.*?")\s*,?\s*$' % "|".join(map(re.escape, first))
    return [json.loads(m) for m in re.findall(pattern, output, re.M)]


def debug_msg(output: str, task: str) -> dict:
    """The msg of a debug task, from the json result format."""
    start = output.index(f"TASK [{task}]")
    body = output[output.index("=> ", start) + 3:]
    return json.JSONDecoder().raw_decode(body)[0]["msg"]


def recap(r: subprocess.CompletedProcess) -> dict:
    return playbook_run.recap(r.stdout)


def token(user: str) -> str:
    """The scenario's bearer token for user (auth.mode: bearer in host_vars/mcpsec-ops.yml)."""
    return (SECRETS / f"{user}-token").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def ca_file(host):
    return gp.ca_file_from(host)


def initialize(ca_file: str, secret: str) -> int:
    headers = dict(gp.MCP_HEADERS, Authorization=f"Bearer {secret}")
    with gp.http(ca_file) as c:
        return c.post(URL, json=gp.INITIALIZE, headers=headers).status_code


def main_pid(host, unit: str) -> str:
    return host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()


# ---------------------------------------------------------------------------- verify.yml
def test_verify_passes_on_the_converged_host_and_changes_nothing():
    r = run("verify.yml")
    table = rows(r.stdout)
    print("\n[ops] ansible-playbook playbooks/verify.yml\n" + "\n".join(table))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    # the header and 14 checks, the loopback rule's among them (nobody refused at the backend)
    assert len(table) == 15 and not any(row.startswith("FAIL") for row in table)
    assert any(row.startswith("PASS    Only nginx and root reach the backend") for row in table)
    assert recap(r)["changed"] == 0


def test_verify_fails_naming_a_world_readable_env_file(host):
    assert host.run(f"chmod 0644 {ENV_FILE}").rc == 0
    try:
        r = run("verify.yml")
    finally:
        assert host.run(f"chmod 0600 {ENV_FILE}").rc == 0
    table = rows(r.stdout)
    print("\n[ops] verify.yml with the env file at 0644:\n" + "\n".join(t for t in table if t.startswith("FAIL")))
    assert r.returncode != 0
    assert "verify failed: Env file is 0600 root:root" in r.stdout
    # Row layout: "%-6s  %-42s %s" (result, check, detail).
    assert [t[8:50].strip() for t in table if t.startswith("FAIL")] == ["Env file is 0600 root:root"]


def test_verify_fails_naming_a_firewall_hole_for_supergateway(host):
    assert host.run("nft add rule inet mcpsec_filter input tcp dport 8000 accept").rc == 0
    try:
        r = run("verify.yml")
    finally:
        assert host.run("systemctl reload nftables").rc == 0
    failed = [t for t in rows(r.stdout) if t.startswith("FAIL")]
    print("\n[ops] verify.yml with 'tcp dport 8000 accept' added:\n" + "\n".join(failed))
    assert r.returncode != 0
    assert "verify failed: nftables input drops 8000" in r.stdout
    assert len(failed) == 1 and "tcp" in failed[0] and "8000" in failed[0]
    # Restored: the rule is gone again.
    assert "dport 8000" not in host.run("nft list chain inet mcpsec_filter input").stdout


# ---------------------------------------------------------------------------- rotate.yml
def test_rotate_token_then_server_secret_restarts_only_what_must(host, ca_file):
    """One token, then one server secret: each run reloads or restarts only what uses it."""
    old = token("alice")
    new = os.urandom(24).hex()
    new_key = "rotated-" + os.urandom(16).hex()
    env = {"MCPSEC_DEMO_MARKER": "demo-env-marker-7f3a", "MCPSEC_OPS_API_KEY": new_key}
    sg_pid = main_pid(host, "mcpsec-supergateway@0")
    nginx_pid = main_pid(host, "nginx")
    assert initialize(ca_file, old) == 200
    try:
        # 1. alice's token.
        r = run("rotate.yml", extra={"ops_alice_token": new})
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        report = debug_msg(r.stdout, "Report what the rotation changed (names, never values)")
        print("\n[ops] rotate.yml (alice's token):", json.dumps(report))
        assert report["users"] == {"added": [], "updated": ["alice"], "removed": []}
        assert report["mcp_server_env"] == {"added": [], "updated": [], "removed": []}
        # njs loads the token digests at (re)load; the MCP server's secrets did not change.
        assert report["nginx_reloaded"] is True and report["supergateway_restarted"] is False
        assert old not in r.stdout and new not in r.stdout
        assert initialize(ca_file, old) == 401
        assert initialize(ca_file, new) == 200
        assert initialize(ca_file, token("bob")) == 200
        assert main_pid(host, "mcpsec-supergateway@0") == sg_pid
        assert main_pid(host, "nginx") == nginx_pid     # a reload, not a restart

        again = run("rotate.yml", extra={"ops_alice_token": new})
        assert again.returncode == 0
        print("[ops] rotate.yml again:", {k: v for k, v in recap(again).items() if k in ("ok", "changed", "failed")})
        assert recap(again)["changed"] == 0

        # 2. A secret of the MCP server (alice keeps her new token).
        r = run("rotate.yml", extra={"ops_alice_token": new, "mcp_server_env": env})
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        report = debug_msg(r.stdout, "Report what the rotation changed (names, never values)")
        print("[ops] rotate.yml (MCPSEC_OPS_API_KEY):", json.dumps(report))
        assert report["mcp_server_env"] == {"added": [], "updated": ["MCPSEC_OPS_API_KEY"], "removed": []}
        assert report["users"] == {"added": [], "updated": [], "removed": []}
        assert report["supergateway_restarted"] is True and report["nginx_reloaded"] is False
        assert new_key not in r.stdout
        f = host.file(ENV_FILE)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
        assert f'MCPSEC_OPS_API_KEY="{new_key}"' in f.content_string
        assert main_pid(host, "mcpsec-supergateway@0") != sg_pid
        assert main_pid(host, "nginx") == nginx_pid
        assert initialize(ca_file, new) == 200
    finally:
        # Back to the inventory's secrets.
        back = run("rotate.yml")
        assert back.returncode == 0, back.stdout[-3000:]
    assert initialize(ca_file, old) == 200
    assert initialize(ca_file, new) == 401
    assert new_key not in host.file(ENV_FILE).content_string


def test_rotate_check_mode_reports_without_writing(host):
    before = host.file("/etc/nginx/mcpsec/tokens.json").sha256sum
    r = run("rotate.yml", extra={"ops_bob_token": os.urandom(24).hex()}, check=True)
    assert r.returncode == 0, r.stdout[-3000:]
    report = debug_msg(r.stdout, "Report what the rotation changed (names, never values)")
    assert report["users"]["updated"] == ["bob"]
    assert host.file("/etc/nginx/mcpsec/tokens.json").sha256sum == before


# ---------------------------------------------------------------------- audit_report.yml
def test_audit_report_counts_a_known_log(host):
    now = host.run("date -u +%s").stdout.strip()
    lines = []

    def entry(seconds_ago, **fields):
        # whole seconds as older lines have them, milliseconds as the gateway writes them now
        fmt = "%Y-%m-%dT%H:%M:%S.%3N+00:00" if seconds_ago % 2 else "%Y-%m-%dT%H:%M:%S+00:00"
        stamp = host.run(f"date -u -d @{int(now) - seconds_ago} +{fmt}").stdout.strip()
        lines.append(json.dumps(dict({"time": stamp}, **fields)))

    for i in range(5):
        entry(60 + i, client="10.9.0.1", subject="alice", method="tools/call", tool="echo",
              decision="allow", status=200, bytes=120, request_time=0.004, upstream_time="0.003")
    for i in range(3):
        entry(120 + i, client="10.9.0.2", subject="bob", method="tools/call", tool="printEnv",
              decision="deny", reason="tool_not_allowed", status=403)
    for i in range(4):
        entry(180 + i, client="10.9.0.3", subject="carol", method="tools/call", tool="get-sum",
              decision="limit", reason="per_tool", status=429)
    entry(200, client="10.9.0.2", subject="bob", method="tools/call", tool="echo", status=429)
    entry(210, client="10.9.0.9", status=401)                     # no subject, no method
    entry(220, client="10.9.0.1", subject="alice", method="tools/list", status=200)
    entry(2 * 86400, client="10.9.0.8", subject="old", tool="echo", status=403)   # outside the window
    lines.append("this line is not JSON")
    host.run(f"install -m 0640 -o www-data -g adm /dev/null {FIXTURE_LOG}")
    content = "\n".join(lines) + "\n"
    assert host.run(f"tee {FIXTURE_LOG} >/dev/null <<'EOF'\n{content}EOF").rc == 0
    try:
        r = run("audit_report.yml", "-e", f"audit_log={FIXTURE_LOG}", "-e", "audit_window=1h", "-e", "audit_top=3")
    finally:
        host.run(f"rm -f {FIXTURE_LOG}")
    report = rows(r.stdout, first=("audit log", "window", "requests", "error rate", "statuses", "top"))
    print("\n[ops] ansible-playbook playbooks/audit_report.yml -e audit_window=1h\n" + "\n".join(report))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    text = "\n".join(report)
    assert "requests        15 (invalid lines 1, without time 0, outside window 1)" in text
    assert "top users 429   carol=4, bob=1" in text
    assert "top users 403   bob=3" in text
    assert "top tools       echo=6, get-sum=4, printEnv=3" in text
    # 3 x 403 + 5 x 429 + 1 x 401 = 9 of 15
    assert "error rate      60.0% (9 of 15 with status >= 400; 0 >= 500)" in text
    assert recap(r)["changed"] == 0


def test_audit_lines_reach_the_journal_too(host, ca_file):
    """common_audit_syslog: every audit line also goes to syslog (here the journal, tag
    mcpsec_audit); the file keeps its line; the same escaped JSON in both."""
    marker = f"ops-syslog-{os.getpid()}"
    headers = dict(gp.MCP_HEADERS, Authorization=f"Bearer {token('alice')}")
    headers["User-Agent"] = marker
    with gp.http(ca_file) as c:
        status = c.post(URL, json=gp.INITIALIZE, headers=headers).status_code
    journal, in_file = [], []
    for _attempt in range(30):
        journal = [ln for ln in host.run("journalctl -t mcpsec_audit -o cat --no-pager -n 200").stdout.splitlines()
                   if marker in ln]
        in_file = [ln for ln in host.file("/var/log/nginx/mcpsec-audit.log").content_string.splitlines()
                   if marker in ln]
        if journal and in_file:
            break
        time.sleep(0.5)
    record = json.loads(journal[0]) if journal else {}
    print(f"\n[verify] common_audit_syslog: initialize {status}; journal (-t mcpsec_audit) lines {len(journal)}, "
          f"file lines {len(in_file)}; journal record: subject {record.get('subject')}, method {record.get('method')}, "
          f"time {record.get('time')}, trace id {record.get('trace_id')}")
    assert status == 200
    assert len(journal) == 1 and len(in_file) == 1
    assert json.loads(in_file[0]) == record
    assert record["user_agent"] == marker and record["method"] == "initialize" and record["subject"] == "alice"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", record["time"])
