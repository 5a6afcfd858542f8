"""Issue 21: the MCP metrics, the alert rules and the dashboard, against a real Prometheus.

Debian's prometheus (installed here by the test, never by the roles) scrapes the gateway's MCP
metrics (127.0.0.1:8081/metrics) and its nginx exporter every 3 s and evaluates the collection's
rule file every second, with every `for:` set to 0s (the only change: the shipped `for:`
durations are unit-tested by promtool in scripts/test.sh). Then a scripted mix: allowed and
denied tool calls, a token-guessing burst, the session cap filled and exceeded, a supergateway
instance stopped (`systemctl kill --signal=SIGSTOP`: it stays down until SIGCONT, where a killed
one is restarted by systemd within a second) and the audit file moved aside as a rotation
without a reopen would. Each metric must move as the mix says, each matching alert fire, and
every dashboard query return data. Everything is restored at the end (test_ops.py runs next).
"""
import json
import math
import re
import shlex
import time
from pathlib import Path

import pytest

import gateway_probe as gp

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "monitoring" / "prometheus" / "mcpsec.rules.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "mcpsec-gateway.json"
SECRETS = ROOT / ".cache" / "ops"
AUDIT = "/var/log/nginx/mcpsec-audit.log"
UNIT = "mcpsec-supergateway"
GUESSES = 120       # over 2 x 50 (the per-address failed-authentication limit a minute): >= 20 throttled
PROM_CONFIG = """\
global: {scrape_interval: 3s, scrape_timeout: 3s, evaluation_interval: 1s}
rule_files: [/etc/prometheus/mcpsec.rules.yml]
scrape_configs:
  - job_name: mcpsec
    static_configs: [{targets: ["127.0.0.1:8081"]}]
  - job_name: mcpsec_nginx
    static_configs: [{targets: ["127.0.0.1:9113"]}]
"""
EXPECTED_ALERTS = ["McpsecAuthFailureFlood", "McpsecRefusalFlood", "McpsecServerErrors",
                   "McpsecSessionsNearCap", "McpsecBackendInstanceDown", "McpsecAuditLogNotWritten"]
# The burst runs on the host from its own loopback address: no other client's limits are touched.
GUESS_SCRIPT = """
import http.client, json, ssl
ctx = ssl._create_unverified_context()   # the host talking to itself: the certificate is not the test
out = []
for i in range(%d):
    c = http.client.HTTPSConnection("127.0.0.1", 443, context=ctx, source_address=("127.0.0.77", 0), timeout=10)
    c.request("POST", "/mcp", body='{"jsonrpc":"2.0","id":1,"method":"ping"}', headers={
        "Authorization": "Bearer guess-%%04d-%%s" %% (i, "x" * 40), "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    out.append(c.getresponse().status)
    c.close()
print(json.dumps(out))
""" % GUESSES


def verify(line: str) -> None:
    print("[verify] " + line)


def token(user: str) -> str:
    return (SECRETS / f"{user}-token").read_text(encoding="utf-8").strip()


def prom(host, query: str) -> list:
    """An instant query through Prometheus's HTTP API on the test host: its result list."""
    r = host.run("curl -sf --get http://127.0.0.1:9090/api/v1/query --data-urlencode " + shlex.quote("query=" + query))
    assert r.rc == 0, f"query {query!r}: {r.stderr}"
    body = json.loads(r.stdout)
    assert body["status"] == "success", body
    return body["data"]["result"]


def value(host, query: str) -> float:
    """The one value of a query that sums to a single series (0 when it returns nothing)."""
    res = prom(host, query)
    assert len(res) <= 1, f"{query} returned {len(res)} series"
    return float(res[0]["value"][1]) if res else 0.0


def firing_alerts(host) -> list:
    r = host.run("curl -sf http://127.0.0.1:9090/api/v1/alerts")
    assert r.rc == 0, r.stderr
    return [a for a in json.loads(r.stdout)["data"]["alerts"] if a["state"] == "firing"]


def firing(host) -> set:
    return {a["labels"]["alertname"] for a in firing_alerts(host)}


def wait_for(what: str, check, timeout: float = 60.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Mcp:
    """A client of the gateway from the controller (outside the host)."""

    def __init__(self, url: str, ca_file: str):
        self.url = url
        self.client = gp.http(ca_file)

    def post(self, secret: str, body: dict, sid: str | None = None):
        headers = dict(gp.MCP_HEADERS, Authorization=f"Bearer {secret}")
        if sid:
            headers["Mcp-Session-Id"] = sid
        return self.client.post(self.url, json=body, headers=headers)

    def initialize(self, secret: str):
        r = self.post(secret, gp.INITIALIZE)
        return r.status_code, r.headers.get("mcp-session-id")

    def call(self, secret: str, sid: str, tool: str, args: dict, id_: int):
        body = {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": tool, "arguments": args}}
        return self.post(secret, body, sid).status_code

    def delete(self, secret: str, sid: str):
        return self.client.delete(self.url, headers={"Authorization": f"Bearer {secret}", "Mcp-Session-Id": sid})


@pytest.fixture(scope="module")
def port(host) -> int:
    return int(host.ansible.get_variables().get("demo_https_port", 58443))


@pytest.fixture(scope="module")
def mcp(host, port):
    return Mcp(f"https://localhost:{port}/mcp", gp.ca_file_from(host))


@pytest.fixture(scope="module")
def prometheus(host):
    """Debian's prometheus on the test host, the collection's rules loaded with every for: 0s."""
    r = host.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus curl")
    assert r.rc == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rules, n = re.subn(r"(?m)^(\s+for:) \S+$", r"\1 0s", RULES.read_text(encoding="utf-8"))
    assert n == len(EXPECTED_ALERTS) + 1, f"{n} for: lines in {RULES}"
    for path, text in (("/etc/prometheus/mcpsec.rules.yml", rules), ("/etc/prometheus/prometheus.yml", PROM_CONFIG)):
        assert host.run(f"install -m 0644 /dev/null {path} && tee {path} >/dev/null <<'EOF'\n{text}EOF").rc == 0
    assert host.run("promtool check config /etc/prometheus/prometheus.yml").rc == 0
    assert host.run("systemctl restart prometheus").rc == 0
    wait_for("Prometheus ready", lambda: host.run("curl -sf http://127.0.0.1:9090/-/ready").rc == 0, timeout=60)
    wait_for("both scrapes up", lambda: value(host, 'sum(up{job=~"mcpsec|mcpsec_nginx"})') == 2, timeout=90)
    yield host
    host.run("systemctl stop prometheus")


def test_unauthenticated_scrapes_from_outside_the_host_are_impossible(host, mcp, port):
    """The loopback status server is not reachable from the network; on HTTPS /metrics/mcp is
    for metrics_allow_cidrs only (loopback by default): the controller gets 403, the host 200."""
    ip = gp.container_ip(host.backend.host)
    outside = gp.tcp_open(ip, 8081) or gp.tcp_open(ip, 9113)
    r = mcp.client.get(f"https://localhost:{port}/metrics/mcp")
    inside = host.run("curl -sk https://127.0.0.1/metrics/mcp")
    verify(f"outside: {ip}:8081 or :9113 open={outside}; https://localhost:{port}/metrics/mcp -> {r.status_code}; "
           f"inside the host: /metrics/mcp has mcpsec_requests_total={'mcpsec_requests_total' in inside.stdout}")
    assert not outside
    assert r.status_code == 403 and "mcpsec_" not in r.text
    assert inside.rc == 0 and "# TYPE mcpsec_requests_total counter" in inside.stdout


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, query) of every panel target, the template variables substituted."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["__inputs"][0]["name"] == "DS_PROMETHEUS"
    subs = {"$instance": ".*", "$server": ".*", "$__rate_interval": "1m", "$__range": "10m"}
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for k, v in subs.items():
                expr = expr.replace(k, v)
            assert "$" not in expr, f"{panel['title']}: unsubstituted variable in {expr}"
            out.append((panel["title"], expr))
    return out


def check_dashboard(host) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    empty = []
    for title, expr in queries:
        res = prom(host, expr)
        finite = [float(x["value"][1]) for x in res if math.isfinite(float(x["value"][1]))]
        verify(f"dashboard '{title}': {len(res)} series, {len(finite)} with a number: {expr}")
        if not finite:
            empty.append(title)
    assert not empty, f"dashboard panels without data: {empty}"


def traffic(host, mcp) -> dict:
    """Allowed and denied calls, a token-guessing burst, the session cap filled and exceeded."""
    alice, bob = token("alice"), token("bob")
    status, sid_b = mcp.initialize(bob)
    assert status == 200
    allowed = [mcp.call(bob, sid_b, "echo", {"message": f"m{i}"}, 10 + i) for i in range(5)]
    denied = [mcp.call(bob, sid_b, "get-tiny-image", {}, 20 + i) for i in range(4)]
    assert allowed == [200] * 5 and denied == [403] * 4, (allowed, denied)
    assert mcp.delete(bob, sid_b).status_code in (200, 204)
    r = host.run("python3 - <<'EOF'\n" + GUESS_SCRIPT + "EOF")
    guesses = json.loads(r.stdout)
    assert guesses.count(401) >= 50 and guesses.count(429) >= 20 and len(guesses) == GUESSES, guesses
    cap = int(value(host, 'mcpsec_sessions_limit{server="default"}'))
    assert 0 < cap < 10, f"the ops scenario's session cap is {cap}: it must be below alice's own cap (10)"
    sids = []
    for _session in range(cap):
        status, sid = mcp.initialize(alice)
        assert status == 200, status
        sids.append(sid)
    over = []
    for _attempt in range(20):   # spread over several scrapes: a series is seen growing
        over.append(mcp.initialize(bob)[0])
        time.sleep(0.3)
    assert over == [503] * 20, over
    return {"allowed": len(allowed), "denied": len(denied), "guesses": guesses, "cap": cap, "sids": sids,
            "over": len(over)}


# (what, query, how far the mix moves it): counters summed over every label not named.
MOVES = [
    ("mcpsec_requests_total allowed", 'sum(mcpsec_requests_total{decision="allow"})',
     lambda mix: mix["allowed"] + mix["cap"] + 2),     # + bob's initialize and DELETE
    ("mcpsec_requests_total denied tool_denied", 'sum(mcpsec_requests_total{reason="tool_denied"})',
     lambda mix: mix["denied"]),
    ("mcpsec_requests_total 503 host_session_cap", 'sum(mcpsec_requests_total{reason="host_session_cap",code="503"})',
     lambda mix: mix["over"]),
    ("mcpsec_tool_calls_total echo allow", 'sum(mcpsec_tool_calls_total{tool="echo",decision="allow"})',
     lambda mix: mix["allowed"]),
    ("mcpsec_tool_calls_total other deny", 'sum(mcpsec_tool_calls_total{tool="other",decision="deny"})',
     lambda mix: mix["denied"]),
    ("mcpsec_request_duration_seconds_count tools/call", 'sum(mcpsec_request_duration_seconds_count{method="tools/call"})',
     lambda mix: mix["allowed"] + mix["denied"]),
    ("mcpsec_auth_failures_total bearer", 'sum(mcpsec_auth_failures_total{mode="bearer"})',
     lambda mix: mix["guesses"].count(401)),
    ("mcpsec_limit_refusals_total auth_throttled", 'sum(mcpsec_limit_refusals_total{limit="auth_throttled"})',
     lambda mix: mix["guesses"].count(429)),
]


def check_metrics(host, base: dict, mix: dict, stopped: str) -> None:
    bad = []
    for name, q, want in MOVES:
        want = want(mix)
        got = value(host, q) - base[q]
        verify(f"{name}: +{got:g} (want +{want})")
        if got != want:
            bad.append((name, got, want))
    p95 = value(host, 'histogram_quantile(0.95, sum by (le) (mcpsec_request_duration_seconds_bucket{method="tools/call"}))')
    live = value(host, 'sum(mcpsec_sessions_active{server="default"})')
    up = {x["metric"]["backend"]: float(x["value"][1]) for x in prom(host, 'mcpsec_backend_up{server="default"}')}
    age = value(host, "time() - mcpsec_audit_log_last_write_timestamp_seconds")
    nginx = value(host, "sum(nginx_http_requests_total)")
    verify(f"mcpsec_request_duration_seconds p95 (tools/call): {p95:.4f}s")
    verify(f"mcpsec_sessions_active default: {live:g} of mcpsec_sessions_limit {mix['cap']}")
    verify(f"mcpsec_backend_up default: {up} (instance {stopped} stopped)")
    verify(f"mcpsec_audit_log_last_write_timestamp_seconds: {age:.0f}s old (the file moved aside)")
    verify(f"nginx_http_requests_total (exporter): {nginx:g}")
    assert not bad, bad
    assert 0 < p95 < 10 and live == mix["cap"] and age > 60 and nginx > 0
    assert up[stopped] == 0 and all(v == 1 for k, v in up.items() if k != stopped), up


def test_metrics_move_alerts_fire_and_every_dashboard_query_has_data(prometheus, mcp):
    host = prometheus
    base = {q: value(host, q) for _name, q, _want in MOVES}
    assert firing(host) == set(), firing(host)
    mix = traffic(host, mcp)
    time.sleep(7)                # two scrapes
    check_dashboard(host)
    instances = sorted(x["metric"]["backend"] for x in prom(host, 'mcpsec_backend_up{server="default"}'))
    stopped = instances[-1]
    unit = f"{UNIT}@{stopped}.service"
    held = AUDIT + ".held"
    assert host.run(f"systemctl kill --signal=SIGSTOP {unit}").rc == 0
    # a rotation without a reopen: nginx keeps writing the moved file, the path's copy goes stale
    assert host.run(f"mv {AUDIT} {held} && cp -p {held} {AUDIT}").rc == 0
    try:
        got = wait_for("every expected alert firing", lambda: set(EXPECTED_ALERTS) <= firing(host) and firing(host),
                       timeout=150, every=3)
        for alert in sorted(firing_alerts(host), key=lambda a: a["labels"]["alertname"]):
            labels = {k: v for k, v in alert["labels"].items() if k not in ("alertname", "job", "severity")}
            verify(f"alert {alert['labels']['alertname']}: firing, value {float(alert['value']):g}, {labels}: "
                   f"{alert['annotations']['summary']}")
        verify(f"alerts firing: {sorted(got)}")
        assert "McpsecMetricsDown" not in got
        check_metrics(host, base, mix, stopped)
    finally:
        host.run(f"systemctl kill --signal=SIGCONT {unit}")
        host.run(f"mv {held} {AUDIT}")
        for sid in mix["sids"]:
            mcp.delete(token("alice"), sid)
    wait_for("the instance back up", lambda: value(host, f'mcpsec_backend_up{{backend="{stopped}",server="default"}}') == 1)
    wait_for("the sessions ended", lambda: value(host, 'sum(mcpsec_sessions_active{server="default"})') == 0)
    verify(f"restored: instance {stopped} up, sessions 0, audit file back in place")
