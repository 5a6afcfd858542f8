"""Run ansible-playbook against the test host of the Molecule scenario under verify."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".cache" / "collections")
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    venv_bin = ROOT / ".venv" / "bin"
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '')}"
    return env


def inventory() -> str:
    inv = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inv:
        raise RuntimeError("MOLECULE_INVENTORY_FILE is not set: run under `molecule verify`")
    # Molecule's scenario inventory dir also holds the linked group_vars/host_vars.
    return str(Path(inv).parent)


def run_playbook(playbook: str | Path, *, extra_vars: dict | None = None, check: bool = False,
                 verbosity: int = 0, limit: str | None = None, tags: str | None = None,
                 timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = ["ansible-playbook", "-i", inventory(), str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    return subprocess.run(cmd, env=ansible_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP counters summed over hosts, e.g. {'changed': 0, 'failed': 0, ...}."""
    totals: dict[str, int] = {}
    for line in output.splitlines():
        if " : ok=" not in line:
            continue
        for key, value in re.findall(r"(\w+)=(\d+)", line):
            totals[key] = totals.get(key, 0) + int(value)
    return totals
