"""Nothing one client does degrades another (issue 13), on a converged host.

The hostile traffic comes from tests/lib/hostile.py and tests/lib/chaos.py, copied into
the test host and run there, so that every request can come from its own loopback
source address (127.x.y.z, fd00::/64). One `[verify] <case>: <status>` line per case.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import tempfile

import pytest

import enforcement as enf
import playbook_run

ROOT = playbook_run.ROOT
SECRETS = ROOT / ".cache" / "isolation"
USERS = ("alice", "bob", "carol", "dave")
REMOTE = "/opt/mcpsec-iso"
TOKENS = "/root/iso-tokens.json"
NAME = "mcpsec-isolation"


def docker_cp(src: str, dest: str) -> None:
    subprocess.run(["docker", "cp", src, f"{NAME}:{dest}"], check=True, capture_output=True)


@pytest.fixture(scope="module")
def box(host):
    """The probes and the users' tokens (0600, never on a command line) inside the host."""
    host.run(f"install -d -m 0700 {REMOTE}")
    for name in ("hostile.py", "chaos.py"):
        docker_cp(str(ROOT / "tests" / "lib" / name), f"{REMOTE}/{name}")
    tokens = {u: (SECRETS / f"{u}-token").read_text(encoding="utf-8").strip() for u in USERS}
    fd, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(tokens, f)
        docker_cp(path, TOKENS)
    finally:
        os.unlink(path)
    assert host.run(f"chown root:root {TOKENS} && chmod 0600 {TOKENS}").rc == 0

    def run(case: str) -> dict:
        out = host.run(f"python3 {REMOTE}/hostile.py {case} --tokens {TOKENS}")
        assert out.rc == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    return run


# ---------------------------------------------------------------- 5. atomic session caps (first: a fresh host)

def test_session_caps_are_exact_under_concurrent_initializes(host, box):
    workers = int(host.run("pgrep -c -f '^nginx: worker process'").stdout.strip() or 0)
    enf.show("nginx worker processes (the races cross them)", workers)
    assert workers >= 2
    got = box("session-race")
    user, hcap = got["user"], got["host"]
    enf.show(f"session cap per subject (3): dave, {user['n']} concurrent initializes over both workers",
             f"{user['admitted']} admitted {user['answers']} closed={user['closed']}")
    enf.show(f"host session cap (8): {hcap['n']} concurrent initializes of 4 subjects over both workers",
             f"{hcap['admitted']} admitted {hcap['answers']} closed={hcap['closed']}")
    assert user["admitted"] == 3 and user["answers"].get("429 session_cap") == 6, user
    assert hcap["admitted"] == 8, hcap
    assert set(hcap["answers"]) <= {"200 ", "503 host_session_cap", "429 session_cap"}, hcap
    assert user["refused_without_retry_after"] == 0 and hcap["refused_without_retry_after"] == 0, got
    assert user["closed"] == [200] * 3 and hcap["closed"] == [200] * 8, got


# ---------------------------------------------------------------- 1. no desync, by construction

def test_health_answers_get_and_head_only(box):
    got = box("health-methods")
    for method, r in got.items():
        enf.show(f"/health {method}", f"{r['status']} allow={r['allow'] or '-'} json={'yes' if r['json'] is not None else 'no'}")
    assert got["GET"]["status"] == 200 and got["HEAD"]["status"] == 200, got
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = got[method]
        assert r["status"] == 405 and r["allow"] == "GET, HEAD", (method, r)
        assert r["json"] == {"error": "method_not_allowed", "allow": ["GET", "HEAD"]} and not r["html"], (method, r)


def location_blocks(conf: str) -> dict[str, str]:
    """{"location = /health": "<its body>", ...} from `nginx -T`, braces in quotes and comments skipped."""
    blocks, i, n = {}, 0, len(conf)
    while True:
        start = conf.find("location ", i)
        if start < 0:
            return blocks
        if conf[conf.rfind("\n", 0, start) + 1:start].strip():   # inside a comment or a word
            i = start + 1
            continue
        head_end = conf.find("{", start)
        depth, j, quote = 1, head_end + 1, None
        while j < n and depth:
            ch = conf[j]
            if quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "#":
                j = conf.find("\n", j)
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            j += 1
        blocks[" ".join(conf[start:head_end].split())] = conf[head_end + 1:j - 1]
        i = start + 1


def test_health_forwards_no_body_and_no_framing_header(host):
    blocks = location_blocks(host.run("nginx -T 2>/dev/null").stdout)
    health = blocks["location = /health"]
    wanted = ["proxy_pass_request_body off;", "proxy_pass_request_headers off;",
              'proxy_set_header Content-Length "";', 'proxy_set_header Transfer-Encoding "";', "proxy_method GET;"]
    missing = [w for w in wanted if w not in health]
    enf.show("/health location: no body, no client header, no Content-Length/Transfer-Encoding upstream",
             "ok" if not missing else f"missing {missing}")
    assert not missing
    # The template audit: every location that proxies without the body clears both framing headers.
    bodiless = [name for name, body in blocks.items() if "proxy_pass " in body and "proxy_pass_request_body off;" in body]
    offenders = [name for name in bodiless if 'proxy_set_header Content-Length "";' not in blocks[name]
                 or 'proxy_set_header Transfer-Encoding "";' not in blocks[name]]
    enf.show(f"locations proxying without a body ({', '.join(bodiless)}) clear Content-Length and Transfer-Encoding",
             "ok" if not offenders else f"not: {offenders}")
    assert "location = /health" in bodiless and "location = /metrics" in bodiless
    assert not offenders


def test_desync_pair_hostile_health_then_another_users_call(box):
    got = box("desync")
    assert "error" not in got, got
    for line, n in sorted(got["hostile"].items()):
        enf.show(f"desync: hostile GET /health {line}", f"x{n}")
    enf.show("desync: alice's tools/call right after each hostile request (same upstream keep-alive pool)",
             f"{got['victim_calls'] - len(got['victim_failures'])}/{got['victim_calls']} ok, "
             f"slowest {got['victim_slowest_s']} s")
    assert any(k.startswith("h2:") and "HTTP/2" in k for k in got["hostile"]), got["hostile"]
    assert got["victim_calls"] >= 40 and not got["victim_failures"], got["victim_failures"][:5]
    assert got["victim_slowest_s"] < 8.0


def test_health_is_rate_limited_per_address(box):
    got = box("health-rate")
    enf.show("/health: 60 at once from one address", got["burst"])
    enf.show("/health: 5 more from that address right away", f"{got['same_address_after']['statuses']} "
             f"Retry-After={got['same_address_after']['retry_after']}")
    enf.show("/health: another address", got["other_address_after"])
    assert got["burst"].get("429", 0) > 0 and got["burst"].get("200", 0) >= 20, got
    assert got["same_address_after"]["statuses"].count(429) >= 3 and got["same_address_after"]["retry_after"]
    assert got["same_address_after"]["json"] == {"error": "too_many_requests"}
    assert got["other_address_after"] == 200


# ---------------------------------------------------------------- 4. limits per address (/64) and subject

def test_ipv6_clients_are_keyed_by_their_64(host, box):
    for addr in ("fd00:1:2:3::a", "fd00:1:2:3::b", "fd00:1:2:4::a", "fd00:1:2:7::a", "fd00:1:2:5::a",
                 "fd00:1:2:5::b", "fd00:1:2:6::a"):
        out = host.run(f"ip -6 addr replace {addr}/64 dev lo nodad")
        assert out.rc == 0, out.stderr
    got = box("net64")
    for k, v in got.items():
        enf.show(f"/64 keying: {k}", v)
    # one allowance (burst 20 + refill) for one /64, two for two /64s or two IPv4 addresses
    one, two, v4 = (got["health_200_of_80_two_addresses_one_64"], got["health_200_of_80_two_64s"],
                    got["health_200_of_80_two_ipv4_addresses"])
    assert one >= 20 and two - one >= 15 and v4 - one >= 10, got
    fails = got["auth_failures_from_fd00:1:2:5::a"]
    assert set(fails) == {"401", "429"} and fails["429"] == 1 and 50 <= fails["401"] <= 100, got
    assert got["right_token_same_64_fd00:1:2:5::b"] == "429 auth_throttled", got
    assert got["right_token_other_64_fd00:1:2:6::a"] == "200 ", got


def test_concurrent_requests_are_capped_per_subject(box):
    got = box("conn-subject")
    enf.show("limit_conn per subject (4): dave, 6 concurrent long calls from two addresses",
             f"{got['statuses'].count(200)}x200 {got['statuses'].count(429)}x429 {got['reasons']}")
    assert got["statuses"] == [200] * 4 + [429] * 2, got


def test_concurrent_requests_are_capped_per_address(box):
    got = box("conn-address")
    enf.show("limit_conn per address (8): alice, carol, dave, 3 concurrent long calls each from one address",
             f"{got['statuses'].count(200)}x200 {got['statuses'].count(429)}x429 {got['reasons']}")
    enf.show("limit_conn per address: alice from another address meanwhile", got["other_address_after"])
    assert got["statuses"] == [200] * 8 + [429], got
    assert got["other_address_after"] == 200


# ---------------------------------------------------------------- 8. host capacity

def test_session_capacity_and_idle_timeout_follow_the_supergateway_unit(host):
    policy = json.loads(host.file("/etc/nginx/mcpsec/policy.json").content_string)
    # The slice holds every instance (a base share of 64 tasks and 256 MiB each) and every session.
    unit = host.run("systemctl show -p TasksMax -p MemoryMax mcpsec-supergateway.slice").stdout.split()
    props = dict(p.split("=", 1) for p in unit)
    tasks, memory_mb = int(props["TasksMax"]), int(props["MemoryMax"]) // 1048576
    instances = len(host.run("systemctl list-units --plain --no-legend 'mcpsec-supergateway@*.service'")
                    .stdout.strip().splitlines())
    expected = min(32, (tasks - 64 * instances) // 16, (memory_mb - 256 * instances) // 128)
    enf.show(f"the unit holds {expected} sessions (TasksMax {tasks}, MemoryMax {memory_mb}M); "
             "policy.json max_sessions_total (proxy_max_sessions_total: 8)", policy.get("max_sessions_total"))
    assert expected == 32 and policy.get("max_sessions_total") == 8
    conf = host.run("nginx -T 2>/dev/null").stdout
    line = next(x for x in conf.splitlines() if "zone=mcpsec_sessions:" in x)
    enf.show("session bindings expire with supergateway's idle timeout (1800 s) + 60 s", line.strip())
    assert "timeout=1860s" in line


def test_host_session_cap_and_a_backend_restart_never_locks_anyone_out(box):
    got = box("host-cap")
    enf.show("host session cap (8): initialize answers while filling it",
             ", ".join(f"{u}={s}{' ' + r if r else ''}" for u, s, r, _ra in got["answers"]))
    enf.show("host session cap: bob's initialize at the cap", f"{got['full']['status']} {got['full']['reason']} "
             f"Retry-After={got['full']['retry_after']}")
    enf.show(f"supergateway restarted (healthy after {got['healthy_after_s']} s): bob's initialize",
             f"{got['after_restart']['status']} {got['after_restart']['reason'] or got['after_restart']['error']}")
    enf.show("a session from before the restart", got["stale_session_call"])
    assert got["full"]["status"] == 503 and got["full"]["reason"] == "host_session_cap" and got["full"]["retry_after"]
    assert any(s == 503 for _u, s, _r, _ra in got["answers"]), got["answers"]
    assert got["restart_rc"] == 0 and got["healthy_after_s"] >= 0
    assert got["after_restart"]["status"] == 200, got
    assert got["stale_session_call"] == 404


def test_refusals_are_limited_per_address(box):
    got = box("refusal-flood")
    enf.show("1,000 random session ids from one address", got["flood"])
    enf.show("an ordinary client at another address: call, 5 mistakes, call",
             f"{got['other_address']}, {got['a_few_mistakes']}, {got['after_mistakes']}")
    # 300 per address per clock minute: a flood crossing into the next minute gets up to 300 more
    n404 = got["flood"].get("404", 0)
    assert 300 <= n404 <= 600 and got["flood"].get("429", 0) == 1000 - n404, got
    assert got["other_address"] == 200 and got["a_few_mistakes"] == [404] * 5 and got["after_mistakes"] == 200


# ---------------------------------------------------------------- 7. audit report

def test_audit_report_reads_rotated_gz_copies_and_splits_at_newline_only(host):
    now = int(host.run("date -u +%s").stdout.strip())
    base = "/var/log/nginx/mcpsec-audit-iso.log"

    def lines(seconds_ago: int, n: int, tool: str) -> str:
        stamp = host.run(f"date -u -d @{now - seconds_ago} +%Y-%m-%dT%H:%M:%S+00:00").stdout.strip()
        entry = json.dumps({"time": stamp, "subject": "mallory", "method": "tools/call", "tool": "TOOL",
                            "decision": "deny", "status": 403})
        return "".join(entry.replace("TOOL", tool) + "\n" for _i in range(n))

    files = {  # path: (content, mtime seconds ago)
        base: (lines(60, 3, "a\u2028b"), 30),                                  # U+2028 inside a field
        base + ".1": (lines(600, 2, "c\u2029d\u0085e"), 500),
        base + ".2.gz": (lines(1800, 4, "gz-in-window"), 1700),
        base + ".3.gz": (lines(7300, 5, "gz-too-old"), 7200),                  # before the 1h window
    }
    try:
        for path, (content, age) in files.items():
            data = content.encode()
            if path.endswith(".gz"):
                data = gzip.compress(data)
            fd, tmp = tempfile.mkstemp()
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            docker_cp(tmp, path)
            os.unlink(tmp)
            assert host.run(f"chmod 0640 {path} && touch -d @{now - age} {path}").rc == 0
        env = playbook_run.ansible_env()
        env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"
        r = subprocess.run(["ansible-playbook", "-i", playbook_run.inventory(), "playbooks/audit_report.yml",
                            "-e", f"audit_log={base}", "-e", "audit_window=1h"],
                           env=env, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    finally:
        host.run(f"rm -f {base} {base}.1 {base}.2.gz {base}.3.gz")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    report = [line.strip().strip(",").strip('"') for line in r.stdout.split("\n")
              if line.strip().startswith(('"files', '"requests', '"top tools'))]
    for line in report:
        enf.show("audit report over rotated copies, 1h", line)
    text = "\n".join(report)
    assert "mcpsec-audit-iso.log.2.gz, mcpsec-audit-iso.log.1, mcpsec-audit-iso.log" in text
    assert "requests        9 (invalid lines 0, without time 0, outside window 0)" in text
    assert "gz-in-window=4" in text and "gz-too-old" not in text


# ---------------------------------------------------------------- issue 19: the second review

def test_resource_uris_are_authorised_in_the_form_the_server_resolves(box):
    got = box("uri")
    enf.show("bob (resources demo://resource/static/document/*): resources/list", ", ".join(got["listed"]) or "(none)")
    enf.show(f"bob: resources/read {got['allowed']}", got["allowed_read"])
    for key, value in got.items():
        if key.startswith("resources/"):
            enf.show(f"bob: {key}", value)
    assert got["listed"] and all(u.startswith("demo://resource/static/document/") for u in got["listed"]), got
    assert got["allowed_read"] == "200 contents", got
    refused = {k: v for k, v in got.items() if k.startswith("resources/")}
    assert refused and all(v.startswith("403") for v in refused.values()), refused


def test_one_answer_per_id_in_a_session(box):
    got = box("id-race")
    enf.show(f"tools/list and ping with one id in bob's session, {got['rounds']} races beside a 60 KB echo",
             json.dumps(got["answers"], sort_keys=True))
    enf.show("unfiltered tools lists seen by bob (role reader: echo, get-sum)", got["unfiltered_lists"])
    enf.show("requests refused while their id was in flight (400 id_in_flight)", got["refused_in_flight"])
    assert got["unfiltered_lists"] == 0, got
    assert got["refused_in_flight"] >= 1, got


def test_no_server_process_outside_a_counted_session(box):
    got = box("spawn")
    enf.show("60 initializes the backend would refuse only after spawning (Accept, Content-Type, params)",
             json.dumps(got["variants"], sort_keys=True))
    enf.show("MCP server processes before / after those 60", f"{got['before']} / {got['after_variants']}")
    enf.show("10 aborted initializes of dave (cap 3): MCP server processes after",
             f"{got['after_aborted']}; dave's next initialize: {got['dave_after_aborted']}")
    enf.show("nginx restart: MCP server processes after it",
             f"{got['after_restart']} (rc {got['nginx_restart_rc']}); dave then opens {got['dave_after_restart']}")
    enf.show("peak MCP server processes over the case (host session cap 8)", f"{got['peak']} in {got['samples']} samples")
    assert sum(got["variants"].values()) == 60 and all(k.split()[0] in ("400", "406", "415") for k in got["variants"]), got
    assert got["after_variants"] <= got["before"], got
    # The aborted initializes' sessions are bound and counted: as many server processes as dave
    # holds, and his cap (3) refuses the next one exactly when they fill it.
    held = got["after_aborted"] - got["after_variants"]
    assert 1 <= held <= 3, got
    assert got["dave_after_aborted"].startswith("429" if held == 3 else "200"), got
    assert got["nginx_restart_rc"] == 0 and got["after_restart"] == 0, got
    assert got["dave_after_restart"] == [200, 200, 200, 429], got
    assert got["peak"] <= 8, got


# ---------------------------------------------------------------- the chaos drill (last: it restarts things)

def test_chaos_drill(host, box):
    out = host.run(f"python3 {REMOTE}/chaos.py --tokens {TOKENS} --duration 120")
    for line in out.stdout.splitlines():
        if line.startswith("CHAOS"):
            print(line, flush=True)
    summary = [line for line in out.stdout.splitlines() if line.startswith("CHAOS well-behaved")]
    enf.show("chaos drill (120 s)", summary[0][6:] if summary else out.stderr[-500:])
    assert out.rc == 0, out.stdout[-3000:] + out.stderr[-2000:]
