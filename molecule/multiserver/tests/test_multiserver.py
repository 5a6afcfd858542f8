"""Several MCP servers on one host, a sandbox each (issue 20), on a converged host.

Two servers: `default` (the everything server from npm, at /mcp, user mcp) and `time` (from
PyPI, at /time/mcp, user mcp-time). Every boundary is proven by an attempt from the other
side: run as the other server's account or inside its unit's sandbox, from the other
server's path, with the other server's session. One `[verify] <case>: <result>` line each.
"""
from __future__ import annotations

import asyncio
import json
import re
import shlex
import time

import httpx
import pytest

import enforcement as enf
import gateway_probe as gp
import hardening_probe as hp
import mcpsec_client
import playbook_run

ROOT = playbook_run.ROOT
SECRETS = ROOT / ".cache" / "multiserver"
USERS = ("alice", "bob", "carol")
DEFAULT = {"name": "default", "user": "mcp", "unit": "mcpsec-supergateway", "env": "/etc/mcpsec/mcp-server.env",
           "path": "/mcp", "marker": "demo-env-marker-7f3a", "process": "mcp-server-everything"}
TIME = {"name": "time", "user": "mcp-time", "unit": "mcpsec-sg-time", "env": "/etc/mcpsec/servers/time.env",
        "path": "/time/mcp", "marker": "time-env-marker-91c2", "process": "mcp-server-time"}
SERVERS = (DEFAULT, TIME)
# Every method a client may send, as (case, HTTP method, JSON-RPC body or None).
METHODS = (
    ("initialize", "POST", enf.rpc("initialize", {"protocolVersion": enf.PROTOCOL_VERSION, "capabilities": {},
                                                  "clientInfo": {"name": "ms", "version": "1"}})),
    ("tools/list", "POST", enf.rpc("tools/list")),
    ("tools/call", "POST", enf.tool_call("get_current_time", {"timezone": "UTC"})),
    ("tools/call echo", "POST", enf.tool_call("echo", {"message": "x"})),
    ("resources/list", "POST", enf.rpc("resources/list")),
    ("resources/read", "POST", enf.rpc("resources/read", {"uri": "demo://resource/static/document/architecture.md"})),
    ("resources/templates/list", "POST", enf.rpc("resources/templates/list")),
    ("prompts/list", "POST", enf.rpc("prompts/list")),
    ("prompts/get", "POST", enf.rpc("prompts/get", {"name": "simple-prompt"})),
    ("completion/complete", "POST", enf.rpc("completion/complete", {
        "ref": {"type": "ref/prompt", "name": "simple-prompt"}, "argument": {"name": "a", "value": "b"}})),
    ("ping", "POST", enf.rpc("ping")),
    ("GET stream", "GET", None),
    ("DELETE", "DELETE", None),
)


@pytest.fixture(scope="module")
def gws(host):
    ca = gp.ca_file_from(host)
    base = "https://localhost:" + hp.published(host.backend.get_hostname(), 443).rsplit(":", 1)[1]
    creds = {u: {"Authorization": "Bearer " + (SECRETS / f"{u}-token").read_text(encoding="utf-8").strip()}
             for u in USERS}
    return {s["name"]: enf.Gateway(base + s["path"], ca, creds, label=f"{s['name']}: ") for s in SERVERS} | {
        "base": base, "ca": ca}


def port_of(host, unit: str) -> int:
    env = hp.unit_value(host, unit, "Environment")
    match = re.search(r"MCPSEC_INSTANCE_PORT=(\d+)", env)
    assert match, f"{unit}: no MCPSEC_INSTANCE_PORT in {env!r}"
    return int(match.group(1))


def child_pid(host, server: dict) -> int:
    """A live MCP server child of the server's instance 0 (a session holds it)."""
    pids = hp.cgroup_pids(host, f"{server['unit']}@0.service")
    for pid in sorted(pids):
        cmd = host.run(f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout
        if server["process"] in cmd:
            return pid
    raise AssertionError(f"no {server['process']} child in {server['unit']}@0: {pids}")


def as_user(host, user: str, command: str):
    return host.run(f"runuser -u {user} -- {command}")


def request(gw: enf.Gateway, user: str, verb: str, body, sid: str | None = None) -> httpx.Response:
    with gw.client() as c:
        if verb == "POST":
            return c.post(gw.url, content=json.dumps(body), headers=gw.headers(user, sid))
        headers = gw.headers(user, sid)
        headers.pop("Content-Type")
        if verb == "GET":
            headers["Accept"] = "text/event-stream"
        return c.request(verb, gw.url, headers=headers)


# ---------------------------------------------------------------- the layout

@pytest.mark.parametrize("server", SERVERS, ids=lambda s: s["name"])
def test_each_server_runs_as_its_own_user_with_its_own_env_file(host, server):
    unit = f"{server['unit']}@0.service"
    assert host.service(unit).is_running
    user = hp.unit_value(host, unit, "User")
    f = host.file(server["env"])
    enf.show(f"{server['name']}: {unit} runs as", f"{user}; {server['env']} {f.user}:{f.group} {oct(f.mode)}")
    assert user == server["user"]
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    assert server["marker"] in f.content_string
    slice_ = hp.unit_value(host, unit, "Slice")
    assert slice_ == f"{server['unit']}.slice", slice_
    pid = int(hp.unit_value(host, unit, "MainPID"))
    owner = host.run(f"stat -c %U /proc/{pid}").stdout.strip()
    assert owner == server["user"], owner


# ---------------------------------------------------------------- 2. the sandbox, attempted from the other side

@pytest.mark.parametrize("attacker,victim", [(TIME, DEFAULT), (DEFAULT, TIME)], ids=["time->default", "default->time"])
def test_a_server_cannot_read_another_servers_env_file(host, attacker, victim):
    as_account = as_user(host, attacker["user"], f"cat {victim['env']}")
    in_sandbox = hp.run_in_sandbox_of(host, f"{attacker['unit']}@0.service", f"/bin/cat {victim['env']}")
    enf.show(f"{attacker['name']} reads {victim['name']}'s env file (as {attacker['user']})",
             f"rc={as_account.rc} {as_account.stderr.strip()[:80]}")
    enf.show(f"{attacker['name']} reads {victim['name']}'s env file (inside its unit's sandbox)",
             f"rc={in_sandbox.rc} {in_sandbox.stderr.strip()[:80]}")
    for result in (as_account, in_sandbox):
        assert result.rc != 0 and victim["marker"] not in result.stdout
    # The check can fail: root reads it.
    assert victim["marker"] in host.run(f"cat {victim['env']}").stdout


@pytest.fixture(scope="module")
def live_sessions(gws):
    """A session at each server (alice is granted on both), so that each has a live child."""
    return {s["name"]: gws[s["name"]].session("alice") for s in SERVERS}


@pytest.mark.parametrize("attacker,victim", [(TIME, DEFAULT), (DEFAULT, TIME)], ids=["time->default", "default->time"])
def test_a_server_cannot_signal_or_ptrace_another_servers_processes(host, gws, live_sessions, attacker, victim):
    pids = [int(hp.unit_value(host, f"{victim['unit']}@0.service", "MainPID")), child_pid(host, victim)]
    ptrace = ("python3 -c 'import ctypes,sys; libc=ctypes.CDLL(None,use_errno=True); "
              "r=libc.ptrace(16,int(sys.argv[1]),0,0); print(r, ctypes.get_errno()); sys.exit(0 if r==0 else 1)'")
    for pid in pids:
        kill0 = as_user(host, attacker["user"], f"kill -0 {pid}")
        term = as_user(host, attacker["user"], f"kill -TERM {pid}")
        trace = as_user(host, attacker["user"], f"{ptrace} {pid}")
        boxed = hp.run_in_sandbox_of(host, f"{attacker['unit']}@0.service", f"/bin/kill -TERM {pid}")
        enf.show(f"{attacker['name']} ({attacker['user']}) vs {victim['name']} pid {pid}",
                 f"kill -0 rc={kill0.rc}, kill -TERM rc={term.rc}, ptrace attach {trace.stdout.strip() or trace.rc}, "
                 f"kill from its sandbox rc={boxed.rc}")
        assert kill0.rc != 0 and term.rc != 0 and trace.rc != 0 and boxed.rc != 0
        assert host.run(f"test -d /proc/{pid}").rc == 0, f"pid {pid} of {victim['name']} died"
    # Still serving: the session's next call answers.
    r = request(gws[victim["name"]], "alice", "POST", enf.rpc("tools/list", id_=7), live_sessions[victim["name"]])
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize("attacker", SERVERS, ids=lambda s: s["name"])
def test_no_server_account_reaches_any_backend_port(host, attacker):
    ports = {s["name"]: port_of(host, f"{s['unit']}@0.service") for s in SERVERS}
    probe = ("python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(3); "
             "sys.exit(0 if s.connect_ex((\"127.0.0.1\", int(sys.argv[1]))) == 0 else 1)'")
    for name, port in ports.items():
        attempt = as_user(host, attacker["user"], f"{probe} {port}")
        control = host.run(f"{probe} {port}")
        enf.show(f"{attacker['user']} connects to {name}'s port {port}", f"rc={attempt.rc} (root: rc={control.rc})")
        assert attempt.rc != 0, f"{attacker['user']} reached {name}'s backend on {port}"
        assert control.rc == 0, f"root cannot reach {name} on {port}: the probe proves nothing"
    assert ports["default"] != ports["time"]


# ---------------------------------------------------------------- 3. policy per server

@pytest.mark.parametrize("user,server", [("bob", DEFAULT), ("carol", TIME)], ids=["bob@default", "carol@time"])
def test_a_user_granted_nothing_on_a_server_is_refused_every_method_there(gws, user, server):
    gw = gws[server["name"]]
    # A session id the user holds elsewhere proves nothing here; the unknown one must not pass either.
    for case, verb, body in METHODS:
        r = request(gw, user, verb, body)
        gw.case(f"{user} {case}", r, 403)


def test_lists_at_a_server_show_only_its_grant(gws):
    tools = {}
    for user, server in (("bob", TIME), ("alice", TIME), ("carol", DEFAULT), ("alice", DEFAULT)):
        gw = gws[server["name"]]
        sid = gw.session(user)
        r = request(gw, user, "POST", enf.rpc("tools/list", id_=11), sid)
        assert r.status_code == 200, r.text[:300]
        names = sorted(t["name"] for t in enf.json_or_sse(r)["result"]["tools"])
        tools[(user, server["name"])] = names
        enf.show(f"{user} tools/list at {server['name']}", names)
    assert tools[("bob", "time")] == ["get_current_time"]
    assert set(tools[("alice", "time")]) >= {"get_current_time", "convert_time"}
    assert tools[("carol", "default")] == ["echo"]
    assert "echo" in tools[("alice", "default")] and "get_current_time" not in tools[("alice", "default")]
    r = request(gws["time"], "bob", "POST", enf.tool_call("convert_time", {
        "source_timezone": "UTC", "time": "12:00", "target_timezone": "UTC"}, id_=12), gws["time"].session("bob"))
    gws["time"].case("bob tools/call convert_time (not granted)", r, 403)
    r = request(gws["time"], "bob", "POST", enf.tool_call("get_current_time", {"timezone": "UTC"}, id_=13),
                gws["time"].session("bob"))
    gws["time"].case("bob tools/call get_current_time", r, 200)


# ---------------------------------------------------------------- 4. each server its own protected resource

def test_a_session_id_of_one_server_is_unknown_at_another(gws):
    sid = gws["default"].session("alice")
    at_other = request(gws["time"], "alice", "POST", enf.rpc("tools/list", id_=21), sid)
    forged = sid[:-4] + ("0000" if not sid.endswith("0000") else "1111")
    unknown = request(gws["time"], "alice", "POST", enf.rpc("tools/list", id_=21), forged)
    enf.show("alice's default session id at /time/mcp", f"{at_other.status_code} {at_other.text.strip()[:120]}")
    enf.show("an unknown session id at /time/mcp", f"{unknown.status_code} {unknown.text.strip()[:120]}")
    assert at_other.status_code == 404 and unknown.status_code == 404
    assert at_other.text == unknown.text
    # ... and still good where it was issued.
    assert request(gws["default"], "alice", "POST", enf.rpc("tools/list", id_=22), sid).status_code == 200


def test_each_server_path_challenges_a_request_without_credentials(gws):
    # (bearer mode has no RFC 9728 metadata: the per-server resource in the challenge is an njs OIDC case)
    with httpx.Client(verify=gws["ca"], timeout=15) as c:
        for server in SERVERS:
            r = c.post(gws["base"] + server["path"], json=enf.rpc("tools/list"), headers=gp.MCP_HEADERS)
            enf.show(f"401 at {server['path']}", r.headers.get("www-authenticate", "")[:160])
            assert r.status_code == 401


def test_audit_lines_name_the_server(host, gws):
    request(gws["time"], "alice", "POST", enf.rpc("ping", id_=31), gws["time"].session("alice"))
    request(gws["default"], "alice", "POST", enf.rpc("ping", id_=31), gws["default"].session("alice"))
    lines = gp.read_json_lines(host.run("tail -n 200 /var/log/nginx/mcpsec-audit.log").stdout)
    servers = {(line.get("server"), line.get("subject")) for line in lines}
    enf.show("audit servers seen", sorted(s for s in servers if s[0]))
    assert ("time", "alice") in servers and ("default", "alice") in servers
    assert ("default", "bob") in servers  # bob's refusals at /mcp are recorded where they happened


# ---------------------------------------------------------------- 2. slices: one server full, the other unaffected

def _call_default(gws, rid: int) -> int:
    r = request(gws["default"], "alice", "POST", enf.tool_call("echo", {"message": f"m{rid}"}, id_=rid),
                gws["default"].session("alice"))
    return r.status_code


def test_a_full_slice_takes_nothing_from_another_server(host, gws):
    slice_ = f"{TIME['unit']}.slice"
    tasks_max = int(hp.unit_value(host, slice_, "TasksMax"))
    before = int(hp.unit_value(host, f"{DEFAULT['unit']}@0.service", "MainPID"))
    # Tasks: threads until the slice refuses more, held for a while.
    filler = ("python3 -c 'import threading,time\n"
              "n=0\n"
              "try:\n"
              "    while n < 100000:\n"
              "        threading.Thread(target=time.sleep, args=(40,), daemon=True).start(); n+=1\n"
              "except Exception as e:\n"
              "    print(\"refused after\", n, type(e).__name__, flush=True)\n"
              "time.sleep(30)'")
    host.run(f"systemd-run --quiet --collect --unit=ms-fill-tasks --slice={slice_} --uid={TIME['user']} "
             f"-p TasksMax=infinity /bin/sh -c {shlex.quote(filler)}")
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            current = int(hp.unit_value(host, slice_, "TasksCurrent") or 0)
            if current >= tasks_max - 2:
                break
            time.sleep(0.5)
        enf.show(f"{slice_} tasks (max {tasks_max})", current)
        assert current >= tasks_max - 2, f"the filler did not fill {slice_}: {current}/{tasks_max}"
        codes = [_call_default(gws, 100 + i) for i in range(10)]
        fresh = request(gws["default"], "carol", "POST", METHODS[0][2])
        enf.show("default: 10 tools/call and a new session while time's slice is full",
                 f"{sorted(set(codes))}, initialize {fresh.status_code}")
        assert codes == [200] * 10 and fresh.status_code == 200
        starved = request(gws["time"], "alice", "POST", METHODS[0][2])
        enf.show("time: a new session while its own slice is full", f"{starved.status_code} {enf.reason_of(starved)}")
    finally:
        host.run("systemctl stop ms-fill-tasks 2>/dev/null; systemctl reset-failed ms-fill-tasks 2>/dev/null; true")
    # Memory: more than the slice's MemoryMax; the kernel ends it inside the slice.
    mem_max = int(hp.unit_value(host, slice_, "MemoryMax"))
    hog = f"python3 -c 'b=bytearray({mem_max + 256 * 1024 * 1024}); import time; time.sleep(20)'"
    out = host.run(f"timeout 60 systemd-run --quiet --wait --collect --slice={slice_} --uid={TIME['user']} "
                   f"-p MemorySwapMax=0 /bin/sh -c {shlex.quote(hog)}; echo rc=$?")
    codes = [_call_default(gws, 200 + i) for i in range(5)]
    after = int(hp.unit_value(host, f"{DEFAULT['unit']}@0.service", "MainPID"))
    enf.show(f"{slice_}: allocating {mem_max + 256 * 1024 * 1024} bytes (MemoryMax {mem_max})",
             f"{out.stdout.strip()[-40:]}; default calls {sorted(set(codes))}, default MainPID {before}->{after}")
    assert "rc=0" not in out.stdout
    assert codes == [200] * 5 and after == before
    # Time recovers once its slice is free again.
    deadline = time.time() + 30
    while True:
        ok = request(gws["time"], "bob", "POST", METHODS[0][2])
        if ok.status_code == 200 or time.time() > deadline:
            break
        time.sleep(1)
    enf.show("time: a new session after the filler left", f"{ok.status_code} {enf.reason_of(ok)}")
    assert ok.status_code == 200


# ---------------------------------------------------------------- 5. health per server

def _health(gws) -> httpx.Response:
    with httpx.Client(verify=gws["ca"], timeout=15) as c:
        return c.get(gws["base"] + "/health")


def test_health_names_the_server_that_is_down(host, gws):
    up = _health(gws)
    enf.show("/health, both up", f"{up.status_code} {up.text.strip()}")
    # (pinned: the tool pinning server of test_tool_pins.py)
    assert up.status_code == 200 and up.json()["servers"] == {"default": "up", "pinned": "up", "time": "up"}
    host.run(f"systemctl stop {TIME['unit']}@0.service")
    try:
        down = _health(gws)
        codes = [_call_default(gws, 300 + i) for i in range(5)]
        enf.show("/health, time stopped", f"{down.status_code} {down.text.strip()}; default calls {sorted(set(codes))}")
        assert down.status_code == 503 and down.json()["servers"] == {"default": "up", "pinned": "up", "time": "down"}
        assert codes == [200] * 5
        r = request(gws["time"], "bob", "POST", METHODS[0][2])
        enf.show("/time/mcp initialize while time is stopped", r.status_code)
        assert r.status_code == 503
    finally:
        host.run(f"systemctl start {TIME['unit']}@0.service")
    deadline = time.time() + 30
    while (back := _health(gws)).status_code != 200 and time.time() < deadline:
        time.sleep(1)
    enf.show("/health, time started again", f"{back.status_code} {back.text.strip()}")
    assert back.status_code == 200


# ---------------------------------------------------------------- a real client through each path

@pytest.mark.parametrize("server,user,tool,args", [
    (DEFAULT, "carol", "echo", {"message": "hello"}), (TIME, "bob", "get_current_time", {"timezone": "UTC"})],
    ids=["default", "time"])
def test_a_real_mcp_client_works_at_each_path(gws, server, user, tool, args):
    gw = gws[server["name"]]
    token = gw.credentials[user]["Authorization"].split(" ", 1)[1]
    trip = asyncio.run(mcpsec_client.round_trip(gw.url, calls=[(tool, args)], bearer=token, ca_file=gws["ca"]))
    enf.show(f"python SDK client at {server['path']} as {user}",
             f"{trip.server_name} (MCP {trip.protocol_version}) tools {trip.tools}; {trip.results}"[:300])
    assert trip.tools and all(not r["is_error"] for r in trip.results), trip.results


# ---------------------------------------------------------------- 5. operations per server

def test_verify_playbook_checks_every_server(host):
    env = playbook_run.ansible_env()
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"
    import subprocess
    r = subprocess.run(["ansible-playbook", "-i", playbook_run.inventory(), "playbooks/verify.yml"], env=env,
                       capture_output=True, text=True, timeout=300, cwd=playbook_run.ROOT, check=False)
    rows = [json.loads(m) for m in re.findall(r'^\s*("(?:RESULT|PASS|FAIL) .*?")\s*,?\s*$', r.stdout, re.M)]
    print("\n[verify] ansible-playbook playbooks/verify.yml\n" + "\n".join(rows))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    time_rows = [row for row in rows if "time" in row or "mcpsec-sg-time@0" in row or ":8008" in row or " 8008" in row]
    assert len(time_rows) >= 4 and all(row.startswith("PASS") for row in time_rows), time_rows
    assert all(row.startswith(("RESULT", "PASS")) for row in rows)
    assert host.service("mcpsec-sg-time@0.service").is_running   # (the host fixture orders this case in the file)


def test_rotating_one_servers_secrets_restarts_only_that_server(host):
    units = {s["name"]: f"{s['unit']}@0.service" for s in SERVERS}
    before = {name: hp.unit_value(host, unit, "MainPID") for name, unit in units.items()}
    servers = {"time": {"source": "pypi", "package": "mcp-server-time", "version": "2026.10.19",
                        "executable": "mcp-server-time", "args": ["--local-timezone", "UTC"],
                        "env": {"MCPSEC_TIME_MARKER": "time-env-marker-rotated"}, "instances": 1,
                        "max_sessions": 6, "session_memory_mb": 128, "session_tasks": 16},
               # the third server (tool pinning, test_tool_pins.py) stays as host_vars has it
               "pinned": {"source": "pypi", "package": "mcpsec-pin-fixture", "version": "1.0.0",
                          "executable": "mcpsec-pin-fixture", "args": ["--tools", "/etc/mcpsec-pin-fixture/tools.json"],
                          "instances": 1, "max_sessions": 6, "session_memory_mb": 96, "session_tasks": 8}}
    run = playbook_run.run_playbook(ROOT / "playbooks" / "rotate.yml", verbosity=1,
                                    extra_vars={"ms_servers": servers, "rotate_servers": ["time"],
                                                "rotate_scope": ["mcp_server_env"]})
    # at -v, Ansible prints every task's result: no server's secret may be among them
    leaked = [m for m in (DEFAULT["marker"], "time-env-marker-rotated", TIME["marker"]) if m in run.stdout + run.stderr]
    assert not leaked, f"secrets in rotate.yml -v output: {leaked}"
    after = {name: hp.unit_value(host, unit, "MainPID") for name, unit in units.items()}
    # the report, in the yaml callback's form ("servers_restarted:\n  - time") or as JSON
    report = re.search(r'servers_restarted"?:\s*((?:\[[^\]]*\])|(?:\s*- [\w-]+)+)', run.stdout)
    enf.show("rotate.yml -e rotate_servers=[time]", f"rc={run.returncode}, servers_restarted "
             f"[{report.group(1).strip() if report else '?'}], MainPID default {before['default']}->{after['default']}, "
             f"time {before['time']}->{after['time']}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "time-env-marker-rotated" in host.run(f"cat {TIME['env']}").stdout
    assert DEFAULT["marker"] in host.run(f"cat {DEFAULT['env']}").stdout
    assert after["default"] == before["default"] and after["time"] != before["time"]
    assert report and "time" in report.group(1) and "default" not in report.group(1)


# ---------------------------------------------------------------- last: back to one server, today's layout

def test_zz_removing_a_server_converges_back_to_the_single_server_layout(host, gws):
    run = playbook_run.run_playbook(ROOT / "playbooks" / "site.yml", extra_vars={"ms_time_served": False})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    recap = playbook_run.recap(run.stdout)
    # Nothing of the time server runs, has failed or has a unit file left (systemd may still
    # list a removed unit as "not-found inactive" until it forgets it: that is no unit).
    units = host.run("systemctl list-units --all --no-legend --plain 'mcpsec-sg-time*' "
                     "| grep -v -E ' not-found +inactive ' | grep -c . || true").stdout.strip()
    listed = host.run("systemctl list-units --all --no-legend --plain 'mcpsec-sg-time*'").stdout.strip()
    templates = host.run("(ls /etc/systemd/system; systemctl list-unit-files --no-legend 'mcpsec-sg-time*') "
                         "| grep -c '^mcpsec-sg-time' || true").stdout.strip()
    procs = host.run("ps -eo user= | grep -cx mcp-time || true").stdout.strip()
    r = request(gws["default"], "carol", "POST", METHODS[0][2])
    gone = request(gws["time"], "bob", "POST", METHODS[0][2])
    enf.show("converge without mcp_servers", f"changed={recap.get('changed')}; time units {units} ({listed or '-'}), unit files "
             f"{templates}, mcp-time processes {procs}; /mcp initialize {r.status_code}, /time/mcp {gone.status_code}")
    assert units == "0" and templates == "0" and procs == "0"
    assert r.status_code == 200 and gone.status_code == 404
    assert host.service("mcpsec-supergateway@0.service").is_running
    assert hp.unit_value(host, "mcpsec-supergateway@0.service", "User") == "mcp"
    assert host.file("/etc/mcpsec/mcp-server.env").mode == 0o600
