"""Raw-HTTP probes of the njs enforcement point on a converged gateway (Molecule auth/oidc).

Every case prints one line, ``[verify] <case>: <status>``, so that the scenario output
lists what was checked and what the gateway answered. The traffic goes to the scenario's
published loopback port only.
"""
from __future__ import annotations

import concurrent.futures
import gzip
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
from mcp_wire import (PROTOCOL_VERSION, encode, initialize, json_or_sse, modern,  # noqa: F401 (verifiers: enf.*)
                      reason_of, rpc, rpc_code, tool_call)

AUDIT_FIELDS = ("time", "client", "subject", "roles", "method", "tool", "decision", "reason",
                "status", "bytes", "request_time", "upstream_time")


def show(case: str, status) -> None:
    print(f"[verify] {case}: {status}", flush=True)


@dataclass
class Gateway:
    """One gateway under test: its MCP URL, the CA that signed its certificate, and the users."""
    url: str
    ca_file: str
    credentials: dict[str, dict[str, str]]   # user -> extra request headers (Authorization)
    label: str = ""
    sessions: dict[str, str] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self.ca_file, timeout=30.0, follow_redirects=False)

    def headers(self, user: str | None, sid: str | None = None, extra: dict | None = None) -> dict:
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "MCP-Protocol-Version": PROTOCOL_VERSION}
        if user is not None:
            h.update(self.credentials[user])
        if sid:
            h["Mcp-Session-Id"] = sid
        h.update(extra or {})
        return h

    def post(self, user: str | None, body, *, sid: str | None = None, extra: dict | None = None,
             client: httpx.Client | None = None) -> httpx.Response:
        content = encode(body)
        if client is not None:
            return client.post(self.url, content=content, headers=self.headers(user, sid, extra))
        with self.client() as c:
            return c.post(self.url, content=content, headers=self.headers(user, sid, extra))

    def session(self, user: str) -> str:
        """A raw MCP session for user (initialize + initialized), reused across cases."""
        if user in self.sessions:
            return self.sessions[user]
        r = self.post(user, initialize("mcpsec-verify"))
        assert r.status_code == 200, f"initialize as {user}: {r.status_code} {r.text[:200]}"
        sid = r.headers["mcp-session-id"]
        r = self.post(user, rpc("notifications/initialized", id_=None), sid=sid)
        assert r.status_code in (200, 202), f"initialized as {user}: {r.status_code}"
        self.sessions[user] = sid
        return sid

    def case(self, case: str, r: httpx.Response, expected: int) -> httpx.Response:
        reason = reason_of(r) if r.status_code >= 400 else ""
        show(f"{self.label}{case}", f"{r.status_code}{' ' + reason if reason else ''}")
        assert r.status_code == expected, f"{case}: expected {expected}, got {r.status_code} {r.text[:300]}"
        return r


def burst(gw: Gateway, users: list[str], per_user: int) -> dict[str, list[int]]:
    """per_user concurrent pings per user on each user's own session; the statuses per user."""
    sids = {u: gw.session(u) for u in users}
    jobs = [(u, i) for i in range(per_user) for u in users]
    out: dict[str, list[int]] = {u: [] for u in users}
    with gw.client() as c, concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {pool.submit(gw.post, u, rpc("ping", id_=i + 1), sid=sids[u], client=c): u for u, i in jobs}
        for f in concurrent.futures.as_completed(futures):
            out[futures[f]].append(f.result().status_code)
    return out


# ---------------------------------------------------------------- fail-closed bodies

def body_cases(gw: Gateway, user: str, body_limit_bytes: int = 100 * 1024) -> None:
    """Each bypass class the enforcement point refuses, with the status it must give."""
    sid = gw.session(user)
    echo = tool_call("echo", {"message": "x"})
    raw_echo = json.dumps(echo)
    cases = [
        ("body JSON array (batch)", json.dumps([echo]), None, 400),
        ("body duplicate key", '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call",'
                               '"params":{"name":"get-env","arguments":{}}}', None, 400),
        ("body duplicate key, \\u-escaped", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":'
                                            '{"name":"echo","\\u006eame":"get-env","arguments":{}}}', None, 400),
        ("body invalid JSON", raw_echo[:-3], None, 400),
        ("body invalid UTF-8", raw_echo.replace('"x"', '"\xff\xfe"').encode("latin-1"), None, 400),
        ("Content-Encoding: gzip", gzip.compress(raw_echo.encode()), {"Content-Encoding": "gzip"}, 400),
        ("Content-Encoding: identity", raw_echo, {"Content-Encoding": "identity"}, 400),
        ("Content-Type: text/plain", raw_echo, {"Content-Type": "text/plain"}, 415),
        ("Content-Type charset=iso-8859-1", raw_echo,
         {"Content-Type": "application/json; charset=iso-8859-1"}, 415),
        ("body over the limit", json.dumps(tool_call("echo", {"message": "a" * (body_limit_bytes + 4096)})),
         None, 413),
        ("Mcp-Method header disagrees with the body", raw_echo, {"Mcp-Method": "tools/list"}, 400),
        ("Mcp-Name header disagrees with the body", raw_echo,
         {"Mcp-Method": "tools/call", "Mcp-Name": "get-env"}, 400),
        ("Origin not in allow_origins", raw_echo, {"Origin": "https://evil.example"}, 403),
        ("Origin in allow_origins", raw_echo, {"Origin": "https://claude.ai"}, 200),
        ("Mcp-Method/Mcp-Name headers agreeing with the body", raw_echo,
         {"Mcp-Method": "tools/call", "Mcp-Name": "echo"}, 200),
        ("unknown MCP-Protocol-Version", raw_echo, {"MCP-Protocol-Version": "1999-01-01"}, 400),
    ]
    with gw.client() as c:
        for name, body, extra, expected in cases:
            gw.case(name, gw.post(user, body, sid=sid, extra=extra, client=c), expected)


# ---------------------------------------------------------------- roles and sessions

REFILL_S = 4.0


def refilled() -> None:
    """The scenarios run small limit_req buckets (per IP 5r/s burst 12, per user 4r/s
    burst 8) so that bursts are testable. A group of cases that expects its calls to
    pass starts once earlier groups' buckets have refilled, however fast those ran."""
    time.sleep(REFILL_S)


def role_cases(gw: Gateway, reader: str, admin: str, step_up: bool = False) -> None:
    """step_up: the 403 carries the oidc insufficient_scope challenge (no challenge elsewhere:
    no token with more scope exists in basic or bearer mode)."""
    refilled()
    r = gw.case(f"roles: reader {reader} calls get-env", gw.post(reader, tool_call("get-env"), sid=gw.session(reader)), 403)
    if step_up:
        assert "insufficient_scope" in r.headers.get("www-authenticate", ""), r.headers
    else:
        assert "www-authenticate" not in r.headers, r.headers
    assert 'tool "get-env" is not permitted' in r.json()["error"]["message"], r.text
    gw.case(f"roles: admin {admin} calls get-env", gw.post(admin, tool_call("get-env"), sid=gw.session(admin)), 200)
    gw.case(f"roles: reader {reader} calls echo", gw.post(reader, tool_call("echo", {"message": "hi"}),
                                                          sid=gw.session(reader)), 200)
    # \u-escaped names are authorised as the tool they decode to.
    escaped_get_env = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"\\u0067et-env","arguments":{}}}'
    gw.case(f"\\u-escaped tool name \\u0067et-env as reader {reader} (is get-env)",
            gw.post(reader, escaped_get_env, sid=gw.session(reader)), 403)
    escaped_echo = ('{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"\\u0065cho",'
                    '"arguments":{"message":"decoded"}}}')
    r = gw.case(f"\\u-escaped tool name \\u0065cho as reader {reader} (is echo)",
                gw.post(reader, escaped_echo, sid=gw.session(reader)), 200)
    assert "decoded" in r.text


def count_processes(host, pattern: str) -> int:
    out = host.run(f"pgrep -fc -- {pattern} || true")
    return int(out.stdout.strip() or 0)


def forbidden_challenge_ok(r: httpx.Response, step_up: bool) -> bool:
    """A 403's challenge: insufficient_scope in oidc mode (step_up), none in basic/bearer."""
    challenge = r.headers.get("www-authenticate", "")
    return 'error="insufficient_scope"' in challenge if step_up else challenge == ""


def method_cases(gw: Gateway, reader: str, noroles: str, admin: str, step_up: bool = False) -> None:
    """Issue 12: authorization over every method (one verify line per case). step_up: oidc."""
    refilled()
    r = gw.case(f"methods: {noroles} (roles grant nothing) initialize", gw.post(noroles, initialize("probe")), 403)
    assert forbidden_challenge_ok(r, step_up) and r.json()["id"] == 1, r.headers
    sid, asid = gw.session(reader), gw.session(admin)
    with gw.client() as c:
        r = gw.case(f"methods: {reader} resources/list (filtered)", gw.post(reader, rpc("resources/list", {}), sid=sid, client=c), 200)
        uris = [x["uri"] for x in json_or_sse(r)["result"]["resources"]]
        show(f"{gw.label}methods: {reader} sees resources", ", ".join(uris))
        assert uris and all(u.startswith("demo://resource/static/document/") for u in uris)
        r = gw.case(f"methods: {admin} resources/list (everything)", gw.post(admin, rpc("resources/list", {}), sid=asid, client=c), 200)
        assert any(not x["uri"].startswith("demo://resource/static/document/")
                   for x in json_or_sse(r)["result"]["resources"]) or len(json_or_sse(r)["result"]["resources"]) >= len(uris)
        r = gw.case(f"methods: {reader} resources/templates/list (filtered)",
                    gw.post(reader, rpc("resources/templates/list", {}), sid=sid, client=c), 200)
        show(f"{gw.label}methods: {reader} sees templates",
             ", ".join(x["uriTemplate"] for x in json_or_sse(r)["result"]["resourceTemplates"]) or "(none)")
        assert not json_or_sse(r)["result"]["resourceTemplates"]
        r = gw.case(f"methods: {reader} prompts/list (filtered)", gw.post(reader, rpc("prompts/list", {}), sid=sid, client=c), 200)
        names = [x["name"] for x in json_or_sse(r)["result"]["prompts"]]
        show(f"{gw.label}methods: {reader} sees prompts", ", ".join(names))
        assert names == ["simple-prompt"]
        doc = uris[0]
        r = gw.case(f"methods: {reader} resources/read {doc} (pattern allows)",
                    gw.post(reader, rpc("resources/read", {"uri": doc}), sid=sid, client=c), 200)
        assert json_or_sse(r)["result"]["contents"]
        r = gw.case(f"methods: {reader} resources/read demo://resource/dynamic/text/1 (pattern denies)",
                    gw.post(reader, rpc("resources/read", {"uri": "demo://resource/dynamic/text/1"}, 7), sid=sid, client=c), 403)
        assert r.json()["id"] == 7 and forbidden_challenge_ok(r, step_up), r.headers
        gw.case(f"methods: {reader} resources/subscribe outside the patterns",
                gw.post(reader, rpc("resources/subscribe", {"uri": "demo://resource/dynamic/text/1"}), sid=sid, client=c), 403)
        r = gw.case(f"methods: {reader} prompts/get simple-prompt",
                    gw.post(reader, rpc("prompts/get", {"name": "simple-prompt"}), sid=sid, client=c), 200)
        assert json_or_sse(r)["result"]["messages"]
        gw.case(f"methods: {reader} prompts/get args-prompt (not in the role)",
                gw.post(reader, rpc("prompts/get", {"name": "args-prompt", "arguments": {"city": "x"}}), sid=sid, client=c), 403)
        r = gw.case(f"methods: {reader} completion/complete ref to denied prompt completable-prompt",
                    gw.post(reader, rpc("completion/complete", {"ref": {"type": "ref/prompt", "name": "completable-prompt"},
                                                                "argument": {"name": "department", "value": "E"}}, 9),
                            sid=sid, client=c), 403)
        assert r.json()["id"] == 9
        gw.case(f"methods: {admin} completion/complete ref to completable-prompt",
                gw.post(admin, rpc("completion/complete", {"ref": {"type": "ref/prompt", "name": "completable-prompt"},
                                                           "argument": {"name": "department", "value": "E"}}), sid=asid, client=c), 200)
        r = gw.case(f"methods: {reader} unknown method tools/delete (never forwarded)",
                    gw.post(reader, rpc("tools/delete", {"name": "echo"}, 11), sid=sid, client=c), 400)
        assert rpc_code(r) == -32601 and r.json()["id"] == 11
        gw.case(f"methods: {reader} logging/setLevel in own session",
                gw.post(reader, rpc("logging/setLevel", {"level": "error"}), sid=sid, client=c), 200)
        gw.case(f"methods: {reader} sends a client response (sampling answer) into {admin}'s session",
                gw.post(reader, {"jsonrpc": "2.0", "id": 0,
                                 "result": {"role": "assistant", "model": "m", "content": {"type": "text", "text": "x"}}},
                        sid=asid, client=c), 404)
        gw.case(f"methods: {reader} notification without a session",
                gw.post(reader, rpc("notifications/initialized", None, None), client=c), 400)
        gw.case(f"methods: {reader} tasks/list outside a session", gw.post(reader, rpc("tasks/list", {}), client=c), 400)


def modern_call(i: int, name: str = "echo") -> tuple[dict, dict]:
    """A 2026-07-28 tools/call (no session) and the headers that name it."""
    body = modern("tools/call", {"name": name, "arguments": {"message": f"m{i}"}}, 1000 + i)
    return body, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name}


def burst_peak(gw: Gateway, host, user: str, process: str) -> tuple[int, int, list]:
    """25 concurrent stateless calls while the host's server processes are counted:
    the count before, its peak during the burst, and the answers (status, JSON-RPC code)."""
    before = count_processes(host, process)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], count_processes(host, process))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with gw.client() as c, concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
            calls = [modern_call(10 + i) for i in range(25)]

            def send(call: tuple[dict, dict]) -> tuple[int, object]:
                r = gw.post(user, call[0], extra=call[1], client=c)
                return r.status_code, rpc_code(r)

            statuses = list(pool.map(send, calls))
        time.sleep(0.5)
    finally:
        done.set()
        sampler.join()
    return before, peak[0], statuses


def modern_cases(gw: Gateway, host, user: str, cap: int, process: str = "mcp-server-everything") -> None:
    """Issue 12: 2026-07-28 requests get the same checks and never start a server process:
    a burst from one subject runs no more server processes than its cap (counted with
    pgrep on the host while the burst runs), and a subject at its cap is not admitted."""
    refilled()
    body, extra = modern_call(0)
    r = gw.post(user, body, extra=extra)
    data = (r.json().get("error") or {}).get("data") or {}
    show(f"{gw.label}2026-07-28: tools/call echo", f"{r.status_code} code {rpc_code(r)} supported {data.get('supported')}")
    assert r.status_code == 400 and rpc_code(r) == -32022 and "2025-11-25" in data["supported"]
    body, extra = modern_call(1)
    extra.pop("Mcp-Method")
    r = gw.post(user, body, extra=extra)
    show(f"{gw.label}2026-07-28: without Mcp-Method", f"{r.status_code} code {rpc_code(r)}")
    assert r.status_code == 400 and rpc_code(r) == -32020
    body, extra = modern_call(2, "get-env")
    extra["Mcp-Name"] = "echo"
    r = gw.post(user, body, extra=extra)
    show(f"{gw.label}2026-07-28: Mcp-Name echo for a get-env body", f"{r.status_code} code {rpc_code(r)}")
    assert r.status_code == 400 and rpc_code(r) == -32020
    body, extra = modern_call(3, "get-env")
    r = gw.post(user, body, extra=extra)
    show(f"{gw.label}2026-07-28: tools/call get-env (denied to the role)", r.status_code)
    assert r.status_code == 403

    before, peak, statuses = burst_peak(gw, host, user, process)
    show(f"{gw.label}2026-07-28: burst of 25 from {user}: server processes before {before}, peak {peak} (cap {cap})",
         f"{sorted(set(statuses))}")
    assert peak <= before and all(s in ((400, -32022), (429, None)) for s in statuses), (before, peak, statuses)

    # the subject at its session cap: one more stateless call is not admitted either
    opened = []
    for i in range(cap + 1):
        r = gw.post(user, initialize("cap", 2000 + i))
        if r.status_code != 200:
            break
        opened.append(r.headers["mcp-session-id"])
    show(f"{gw.label}2026-07-28: {user} at its session cap after {len(opened)} new sessions", f"{r.status_code} {reason_of(r)}")
    assert r.status_code == 429 and reason_of(r) == "session_cap"
    before = count_processes(host, process)
    body, extra = modern_call(99)
    r = gw.post(user, body, extra=extra)
    after = count_processes(host, process)
    show(f"{gw.label}2026-07-28: call from {user} at its cap", f"{r.status_code} code {rpc_code(r)}, processes {before} -> {after}")
    assert r.status_code == 400 and rpc_code(r) == -32022 and after <= before
    with gw.client() as c:
        for sid_ in opened:      # end them: the next cases need the slots
            c.delete(gw.url, headers={**gw.credentials[user], "Mcp-Session-Id": sid_})


def session_cases(gw: Gateway, owner: str, other: str) -> None:
    refilled()
    sid = gw.session(owner)
    r = gw.post(other, tool_call("echo", {"message": "hijack"}), sid=sid)
    gw.case(f"session: {other} reuses {owner}'s session id (refused)", r, 404)
    gw.case(f"session: {owner} still uses it", gw.post(owner, tool_call("echo", {"message": "mine"}), sid=sid), 200)


# ---------------------------------------------------------------- limits

def tool_limit_cases(gw: Gateway, user: str, other: str, tool: str = "trigger-long-running-operation",
                     calls: int = 3, window_s: int = 60) -> None:
    refilled()
    sid = gw.session(user)
    args = {"duration": 1, "steps": 1}
    # The per-tool limit is a sliding window (mcpsec.js slidingAdmit): no call of this
    # tool by this user precedes these, so the first `calls` pass and the next is refused.
    with gw.client() as c:
        for i in range(1, calls + 2):
            expected = 200 if i <= calls else 429
            r = gw.post(user, tool_call(tool, args, i), sid=sid, client=c)
            gw.case(f"limits: {user} {tool} call {i} in {window_s} s", r, expected)
            if expected == 429:
                assert r.headers.get("retry-after"), r.headers
    gw.case(f"limits: other user {other} {tool} (unaffected)",
            gw.post(other, tool_call(tool, args), sid=gw.session(other)), 200)


def burst_cases(gw: Gateway, noisy: str, quiet: str, crowd: list[str], per_user_burst: int,
                per_ip_each: int) -> None:
    """per-user and per-IP limit_req bursts (nginx logs limit_req at warn, below Debian's
    error_log level, so the zone is told apart by who is refused instead):
    - per user: one user's burst beyond its per-user allowance is refused while another
      user at the same address still gets in;
    - per IP: several users each send no more than their own per-user allowance (the
      buckets are full after the pause), together more than the address's: only the
      per-IP zone can refuse them."""
    refilled()
    got = burst(gw, [noisy], per_user_burst)[noisy]
    show(f"{gw.label}limits: per-user burst, {per_user_burst} concurrent as {noisy}",
         f"{got.count(200)}x200 {got.count(429)}x429")
    assert got.count(429) > 0 and set(got) <= {200, 429}, got
    gw.case(f"limits: other user {quiet} right after {noisy}'s burst (unaffected)",
            gw.post(quiet, rpc("ping"), sid=gw.session(quiet)), 200)

    refilled()
    got_all = burst(gw, crowd, per_ip_each)
    statuses = [s for v in got_all.values() for s in v]
    show(f"{gw.label}limits: per-IP burst, {per_ip_each} concurrent each (within per-user) as "
         f"{', '.join(crowd)} from one address", f"{statuses.count(200)}x200 {statuses.count(429)}x429")
    assert statuses.count(429) > 0 and set(statuses) <= {200, 429}, got_all


def other_address_unaffected(gw: Gateway, host, user: str, port: int = 443) -> None:
    """Right after the per-IP burst, a client at another address (the host's loopback) still gets in."""
    sid = gw.session(user)
    time.sleep(0.3)   # the user's own per-user bucket regains a request; the address bucket is another one
    auth = gw.credentials[user]["Authorization"]
    body = json.dumps(rpc("ping", id_=99))
    cmd = ("curl -sk -o /dev/null -w '%{http_code}' "
           f"-H 'Authorization: {auth}' -H 'Content-Type: application/json' "
           "-H 'Accept: application/json, text/event-stream' "
           f"-H 'MCP-Protocol-Version: {PROTOCOL_VERSION}' -H 'Mcp-Session-Id: {sid}' "
           f"--data '{body}' https://127.0.0.1:{port}/mcp")
    out = host.run(cmd)
    status = out.stdout.strip()
    show(f"{gw.label}limits: {user} from another address (127.0.0.1 on the host) after the per-IP burst", status)
    assert status == "200", out


# ---------------------------------------------------------------- audit log

def audit_cases(gw: Gateway, host, secrets: list[str], path: str = "/var/log/nginx/mcpsec-audit.log") -> list[dict]:
    content = host.file(path).content_string
    lines = [line for line in content.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    show(f"{gw.label}audit: {len(parsed)} lines parse as JSON", "ok")
    missing = sorted({k for e in parsed for k in AUDIT_FIELDS if k not in e})
    show(f"{gw.label}audit: fields {', '.join(AUDIT_FIELDS)} on every line", "ok" if not missing else f"missing {missing}")
    assert not missing
    calls = [e for e in parsed if e["method"] == "tools/call" and e["decision"] == "allow" and e["status"] == 200]
    assert calls, "no allowed tools/call in the audit log"
    e = calls[-1]
    show(f"{gw.label}audit: an allowed tools/call line",
         json.dumps({k: e[k] for k in AUDIT_FIELDS}, sort_keys=False))
    assert e["subject"] and e["tool"] and e["roles"] and e["upstream_time"] not in ("", "-")
    denied = [e for e in parsed if e["decision"] == "deny"]
    assert all(d["reason"] for d in denied), [d for d in denied if not d["reason"]][:3]
    show(f"{gw.label}audit: denials with a reason",
         f"{len(denied)} ({', '.join(sorted({str(d['reason']) + '=' + str(d['status']) for d in denied}))})")
    leaked = [i for i, s in enumerate(secrets) if s and s in content]
    show(f"{gw.label}audit: no secret ({len(secrets)} checked) and no Authorization header in the log",
         "ok" if not leaked and "Basic " not in content and "Bearer " not in content else "LEAK")
    assert not leaked and "Basic " not in content and "Bearer " not in content
    return parsed
