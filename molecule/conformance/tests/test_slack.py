"""Second phase: the seed's own example, the Slack MCP server, behind the same gateway.

The mcp_server and supergateway roles are reconverged (tags mcp_server, supergateway) with
@modelcontextprotocol/server-slack from npm, pinned, and a made-up SLACK_BOT_TOKEN in
mcp_server_env (the vars file is 0600 and deleted; the token is never on a command line).
A real client (the official Python SDK, tests/lib/mcpsec_client.py) lists the tools
through the gateway and calls one; Slack's API is not reachable, so the answer is the
server's own error. Then the token is searched for in the responses, every log, the
journal and every process's arguments: only the 0600 env file may hold it.

No traffic leaves the test host: before the call the host's default routes are removed
(restored at the end), so the server's DNS lookup and connection to slack.com fail at once
with "network unreachable". A TLS connection must be established before the server sends
its Authorization header, so the token cannot reach the network. At the end the scenario's
own server is converged back (the env file then no longer holds the token).
"""
import asyncio
import json
import os
import secrets
import subprocess
import tempfile

import pytest

import gateway_probe as gp
import mcpsec_client
import playbook_run

URL = "https://localhost:46443/mcp"
SLACK_PACKAGE = "@modelcontextprotocol/server-slack"
SLACK_VERSION = "2025.4.25"
ENV_FILE = "/etc/mcpsec/mcp-server.env"
SERVICE = "mcpsec-supergateway@0"  # instance 0; every instance runs the same template unit
SLACK_TOOLS = {"slack_list_channels", "slack_post_message", "slack_reply_to_thread", "slack_add_reaction",
               "slack_get_channel_history", "slack_get_thread_replies", "slack_get_users",
               "slack_get_user_profile"}


def _reconverge(extra: dict) -> subprocess.CompletedProcess:
    fd, vars_file = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(extra, f)
        cmd = ["ansible-playbook", "-i", playbook_run.inventory(), "playbooks/site.yml",
               "--tags", "mcp_server,supergateway"] + (["-e", "@" + vars_file] if extra else [])
        return subprocess.run(cmd, env=playbook_run.ansible_env(), capture_output=True, text=True,
                              timeout=900, cwd=playbook_run.ROOT, check=False)
    finally:
        os.unlink(vars_file)


@pytest.fixture(scope="module")
def slack(host):
    token = "xoxb-" + secrets.token_hex(24)
    run = _reconverge({
        "mcp_server_source": "npm",
        "mcp_server_package": SLACK_PACKAGE,
        "mcp_server_version": SLACK_VERSION,
        "mcp_server_executable": "mcp-server-slack",
        "mcp_server_args": [],
        "mcp_server_install_dir": "/opt/mcpsec/mcp-server-slack",
        "mcp_server_env": {"SLACK_BOT_TOKEN": token, "SLACK_TEAM_ID": "T0MCPSEC01"},
    })
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert token not in out
    routes = {family: host.check_output(f"ip -j {family} route show default") for family in ("-4", "-6")}
    host.run_test("ip route del default || true")
    host.run_test("ip -6 route del default 2>/dev/null || true")
    assert host.check_output("ip route show default") == ""
    try:
        bearer = host.check_output("sed -n \"s/^MCPSEC_CONFORMANCE_AUTH='Bearer \\(.*\\)'$/\\1/p\" "
                                   "/opt/mcpsec-conformance/auth.env")
        trip = asyncio.run(mcpsec_client.round_trip(
            URL, bearer=bearer, ca_file=gp.ca_file_from(host),
            calls=[("slack_list_channels", {"limit": 5})]))
        yield {"token": token, "trip": trip, "bearer": bearer}
    finally:
        for family, raw in routes.items():
            for r in json.loads(raw or "[]"):
                if r.get("gateway"):
                    host.run(f"ip {family} route replace default via {r['gateway']} dev {r['dev']}")
        # Back to the scenario's own server (the inventory's values): a later `molecule verify`
        # finds the conformance fixture again, and the env file no longer holds the token.
        restored = _reconverge({})
        assert restored.returncode == 0, (restored.stdout + restored.stderr)[-3000:]


def test_slack_tools_are_listed_through_the_gateway(slack):
    trip = slack["trip"]
    print(f"\n[verify] slack: {trip.server_name} (MCP {trip.protocol_version}) through {URL}: "
          f"{len(trip.tools)} tools: {', '.join(trip.tools)}")
    assert SLACK_TOOLS <= set(trip.tools)


def test_a_call_gets_the_servers_own_error(slack):
    result = slack["trip"].results[0]
    print(f"[verify] slack: slack_list_channels -> {result['text']!r}")
    # server-slack answers a failed Slack API request with {"error": <message>} as text.
    assert json.loads(result["text"]).get("error"), result
    assert "fetch failed" in result["text"]


def test_the_token_is_only_in_the_env_file(host, slack):
    token = slack["token"]
    env = host.file(ENV_FILE)
    assert env.user == "root" and env.group == "root" and env.mode == 0o600
    # The searches read the token from a pattern file, never from their own arguments
    # (a grep naming the token would find itself among the process arguments).
    pattern = "/root/slack-token.pattern"
    host.run_test(f"umask 077; sed -n 's/^SLACK_BOT_TOKEN=\"\\(.*\\)\"$/\\1/p' {ENV_FILE} > {pattern}")
    assert host.file(pattern).content_string.strip() == token
    # The search finds the token where it is (so a miss elsewhere is meaningful).
    assert host.run(f"grep -c -F -f {pattern} {ENV_FILE}").stdout.strip() == "1"
    where = {
        "responses": token in json.dumps(slack["trip"].__dict__),
        "nginx and mcpsec logs": host.run(f"grep -r -l -F -f {pattern} /var/log/nginx /var/log/mcpsec").rc != 1,
        "journal": host.run(f"journalctl --no-pager -o cat | grep -c -F -f {pattern}").stdout.strip() != "0",
        "process arguments": host.run(
            f"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c -F -f {pattern}").stdout.strip() != "0",
        "unit files": host.run(f"systemctl cat {SERVICE} | grep -c -F -f {pattern}").stdout.strip() != "0",
        "other files under /etc": host.run(
            f"grep -r -l -F -f {pattern} --exclude={os.path.basename(ENV_FILE)} /etc").stdout.strip() != "",
    }
    host.run(f"rm -f {pattern}")
    print("[verify] slack: token found in the 0600 env file only: " + ", ".join(
        f"{k}: {'FOUND' if v else 'no'}" for k, v in where.items()))
    assert not any(where.values()), where
