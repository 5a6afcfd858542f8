"""The mcp_server role's PyPI path: a pinned server in a root-owned venv that speaks MCP on stdio."""
import json
import textwrap

import pytest

import playbook_run

PROBE_DIR = "/opt/mcpsec/pypi-probe"
PLAY = textwrap.dedent("""\
    - name: Install a PyPI MCP server with the mcp_server role
      hosts: mcpsec_gateways
      become: true
      gather_facts: false
      vars:
        # Shared facts (roles/common), also read by its handlers: no supergateway unit serves
        # this probe, so Restart supergateway finds none to restart.
        common_mcp_server_env_file: /etc/mcpsec/pypi-probe.env
        common_supergateway_service: mcpsec-pypi-probe
      roles:
        - role: mcpsec.gateway.mcp_server
          vars:
            mcp_server_source: pypi
            mcp_server_package: mcp-server-time
            mcp_server_version: "2026.10.19"
            mcp_server_executable: mcp-server-time
            mcp_server_install_dir: {probe_dir}
            mcp_server_env: {{TZ: UTC}}
    """).format(probe_dir=PROBE_DIR)


@pytest.fixture(scope="module")
def pypi_runs(tmp_path_factory):
    play = tmp_path_factory.mktemp("pypi") / "pypi.yml"
    play.write_text(PLAY)
    first = playbook_run.run_playbook(play)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    second = playbook_run.run_playbook(play)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    return first, second


def test_pypi_server_install_is_idempotent(pypi_runs):
    second = pypi_runs[1]
    assert playbook_run.recap(second.stdout).get("changed") == 0, second.stdout[-3000:]


def test_pypi_server_is_pinned_in_a_root_owned_venv(host, pypi_runs):
    venv = host.file(PROBE_DIR)
    assert venv.is_directory and venv.user == "root"
    out = host.run(f"{PROBE_DIR}/bin/pip show mcp-server-time").stdout
    assert "Version: 2026.10.19" in out


def test_pypi_server_speaks_mcp_on_stdio(host, pypi_runs):
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "probe", "version": "1"}}})
    res = host.run(f"printf '%s\\n' '{init}' | timeout 30 {PROBE_DIR}/bin/mcp-server-time")
    reply = json.loads(res.stdout.splitlines()[0])
    assert reply["id"] == 1 and "serverInfo" in reply["result"], res.stdout + res.stderr
    print(f"\n[verify] PyPI server over stdio: {reply['result']['serverInfo']}")


def test_pypi_env_file_is_root_only(host, pypi_runs):
    f = host.file("/etc/mcpsec/pypi-probe.env")
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
