# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""inventories/prod deploys what it says: the Slack server, pinned, with an ACME certificate,
its policy valid once the vault example's placeholders are filled in."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._policy import expand_policy, policy_errors

ROOT = Path(__file__).resolve().parents[2]
GROUP = ROOT / "inventories" / "prod" / "group_vars" / "mcpsec_gateways"


def _vars() -> tuple[dict, dict]:
    return (yaml.safe_load((GROUP / "main.yml").read_text(encoding="utf-8")),
            yaml.safe_load((GROUP / "vault.yml.example").read_text(encoding="utf-8")))


def test_it_deploys_the_slack_server_pinned_with_acme():
    main, vault = _vars()
    assert main["mcp_server_package"] == "@modelcontextprotocol/server-slack"
    assert main["mcp_server_version"][0].isdigit() and main["mcp_server_executable"] == "mcp-server-slack"
    assert main["tls_mode"] == "acme"
    granted = set(main["mcpsec_policy"]["roles"]["reader"]["tools"])
    assert granted and all(t.startswith("slack_") for t in granted)
    # every secret the inventory uses has a placeholder in the vault example
    used = {v.split("vault_", 1)[1].split()[0].rstrip("}") for v in yaml.safe_dump(main).split("{{ ")[1:]}
    assert {"vault_" + u for u in used} <= set(vault), (used, set(vault))


def test_its_policy_is_valid_with_the_vault_filled_in():
    main, _vault = _vars()
    text = yaml.safe_dump(main["mcpsec_policy"])
    for name in ("vault_alice_password", "vault_bob_password"):
        text = text.replace("{{ %s }}" % name, "Vq8#kL2!pZ9w-%s" % name)
    policy = yaml.safe_load(text)
    assert policy_errors(policy) == []
    assert expand_policy(policy)["auth_mode"] == "basic"


def test_the_playbooks_parse_against_it():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"))
    for playbook in ("site.yml", "lb.yml", "verify.yml"):
        r = subprocess.run(["ansible-playbook", "--syntax-check", "-i", str(ROOT / "inventories" / "prod"),
                            str(ROOT / "playbooks" / playbook)], capture_output=True, text=True, env=env, check=False)
        assert r.returncode == 0, r.stdout[-1000:] + r.stderr[-1000:]
