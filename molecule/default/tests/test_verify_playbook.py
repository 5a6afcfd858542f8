"""playbooks/verify.yml, the security checklist users run against production, passes here."""
import json
import re
import subprocess

import playbook_run

# Thresholds relaxed only through the playbook's variables, and only for hardening that is
# not merged yet; None means the playbook's own default applies.
RELAXED = {}


def run_verify(*extra: str, check: bool = False) -> subprocess.CompletedProcess:
    env = playbook_run.ansible_env()
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"
    cmd = ["ansible-playbook", "-i", playbook_run.inventory(), "playbooks/verify.yml", *extra]
    if RELAXED:
        cmd += ["-e", json.dumps(RELAXED)]
    if check:
        cmd.append("--check")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=playbook_run.ROOT, check=False)


def table(output: str) -> list[str]:
    return [json.loads(m) for m in re.findall(r'^\s*("(?:RESULT|PASS|FAIL) .*?")\s*,?\s*$', output, re.M)]


def test_verify_playbook_passes_and_changes_nothing():
    r = run_verify()
    rows = table(r.stdout)
    print("\n[verify] ansible-playbook playbooks/verify.yml\n" + "\n".join(rows))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert rows and all(row.startswith(("RESULT", "PASS")) for row in rows)
    assert playbook_run.recap(r.stdout)["changed"] == 0


def test_verify_playbook_is_check_mode_safe():
    r = run_verify(check=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert playbook_run.recap(r.stdout)["changed"] == 0
