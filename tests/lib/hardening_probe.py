"""Helpers for the hardening drills: exposure scores, a second test host, raw MCP sessions, the unit's cgroup."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import httpx

import gateway_probe as gp

# systemd-analyze security: "→ Overall exposure level for nginx.service: 2.4 OK :-)"
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def exposure(host, unit: str) -> float:
    out = host.run(f"systemd-analyze security --no-pager {shlex.quote(unit)}")
    match = _EXPOSURE.search(out.stdout + out.stderr)
    if not match:
        raise AssertionError(f"no exposure score for {unit}: {out.stdout[-500:]}{out.stderr[-500:]}")
    return float(match.group(1))


def docker(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=timeout)


def published(container: str, port: int) -> str:
    """host:port on the controller that Docker publishes the container's port on."""
    out = docker("port", container, f"{port}/tcp").stdout.split()
    if not out:
        raise RuntimeError(f"{container}:{port} is not published")
    return out[0].replace("0.0.0.0", "127.0.0.1")


class ProbeHost:
    """A throwaway second test host (same image, same Docker network) the run creates and removes."""

    def __init__(self, gateway: str):
        fmt = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        self.network = docker("inspect", "-f", fmt, gateway).stdout.split()[0]
        self.image = docker("inspect", "-f", "{{.Config.Image}}", gateway).stdout.strip()
        self.name = f"mcpsec-probe-{uuid.uuid4().hex[:8]}"

    def start(self) -> "ProbeHost":
        docker("run", "-d", "--rm", "--name", self.name, "--network", self.network,
               "--entrypoint", "sleep", self.image, "infinity")
        self.ip = gp.container_ip(self.name)
        return self

    def stop(self) -> None:
        docker("rm", "-f", self.name, check=False)

    def python(self, code: str, timeout: int = 60) -> subprocess.CompletedProcess:
        return docker("exec", self.name, "python3", "-c", code, check=False, timeout=timeout)

    def tcp_open(self, address: str, port: int) -> bool:
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_INET6 if ':' in %r else socket.AF_INET)\n"
                "s.settimeout(3)\n"
                "sys.exit(0 if s.connect_ex((%r, %d)) == 0 else 1)\n") % (address, address, port)
        return self.python(code).returncode == 0

    def http_status(self, url: str) -> int | None:
        """Status of a GET from the probe (TLS unverified: the probe only asks "does it answer")."""
        code = ("import ssl,urllib.request,urllib.error\n"
                "ctx=ssl._create_unverified_context()\n"
                "class N(urllib.request.HTTPRedirectHandler):\n"
                "  def redirect_request(self,*a,**k): return None\n"
                "o=urllib.request.build_opener(N,urllib.request.HTTPSHandler(context=ctx))\n"
                "try:\n  print(o.open(%r,timeout=5).status)\n"
                "except urllib.error.HTTPError as e:\n  print(e.code)\n") % url
        out = self.python(code)
        return int(out.stdout.strip()) if out.stdout.strip().isdigit() else None

    def serve_tcp(self, port: int) -> None:
        """A listener on the probe that answers one line to anything that connects."""
        docker("exec", "-d", self.name, "python3", "-c",
               "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
               f"s.bind(('0.0.0.0',{port}));s.listen(8)\n"
               "while True:\n c,_=s.accept();c.sendall(b'mcpsec-probe-ok\\n');c.close()\n")
        time.sleep(1)


@contextmanager
def probe_host(gateway: str) -> Iterator[ProbeHost]:
    probe = ProbeHost(gateway).start()
    try:
        yield probe
    finally:
        probe.stop()


# Settings of a unit's [Service] section that describe its sandbox (what systemd-run can re-create).
_NOT_SANDBOX = {"Type", "ExecStart", "ExecStartPre", "ExecStop", "ExecReload", "Restart", "RestartSec",
                "TimeoutStopSec", "KillMode", "EnvironmentFile", "Environment", "OOMPolicy", "PIDFile"}


def sandbox_properties(host, unit: str) -> list[str]:
    """The unit's sandbox as systemd-run -p arguments, read from the installed unit and drop-ins."""
    text = host.run(f"systemctl cat {shlex.quote(unit)}").stdout
    props, section, cont = [], None, ""
    for raw in text.splitlines():
        line = cont + raw.strip()
        cont = ""
        if line.endswith("\\"):
            cont = line[:-1] + " "
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line and line.split("=", 1)[0] not in _NOT_SANDBOX:
            props.append(line)
    return props


def run_in_sandbox_of(host, unit: str, command: str, timeout: int = 60):
    """Run a command as a transient unit with the same sandbox as `unit` (user, syscalls, caps, paths)."""
    args = " ".join(f"-p {shlex.quote(p)}" for p in sandbox_properties(host, unit))
    return host.run(f"timeout {timeout} systemd-run --quiet --wait --pipe --collect {args} -- {command}")


def cgroup_pids(host, unit: str) -> set[int]:
    """Processes of a unit (read from /proc: works on cgroup v1 and v2 hosts alike)."""
    name = unit if "." in unit else unit + ".service"
    out = host.run(f"grep -l -F '/{name}' /proc/[0-9]*/cgroup 2>/dev/null || true").stdout
    return {int(line.split("/")[2]) for line in out.split() if line.startswith("/proc/")}


def unit_value(host, unit: str, prop: str) -> str:
    return host.run(f"systemctl show -p {prop} --value {shlex.quote(unit)}").stdout.strip()


def sse_messages(text: str) -> list[dict]:
    """JSON-RPC messages in a streamable HTTP answer (SSE `data:` lines or a plain JSON body)."""
    text = text.strip()
    if text.startswith("{"):
        return [json.loads(text)]
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]


class RawSession:
    """One MCP session over plain HTTP, to see status codes and headers the SDK hides."""

    def __init__(self, client: httpx.Client, url: str, auth: tuple[str, str]):
        self.client, self.url, self.auth = client, url, auth
        self.sid: str | None = None
        self.responses: list[httpx.Response] = []

    def post(self, message: dict) -> httpx.Response:
        headers = dict(gp.MCP_HEADERS)
        if self.sid:
            headers["Mcp-Session-Id"] = self.sid
            headers["MCP-Protocol-Version"] = "2025-06-18"
        r = self.client.post(self.url, json=message, headers=headers, auth=self.auth)
        self.responses.append(r)
        return r

    def open(self) -> httpx.Response:
        r = self.post(gp.INITIALIZE)
        if r.status_code == 200:
            self.sid = r.headers.get("mcp-session-id")
            self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def call(self, method: str, params: dict | None = None, rid: int = 2) -> httpx.Response:
        return self.post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})

    def close(self) -> None:
        if self.sid:
            self.client.delete(self.url, headers={"Mcp-Session-Id": self.sid,
                                                  "MCP-Protocol-Version": "2025-06-18"}, auth=self.auth)
            self.sid = None


def run_site_tags(playbook, *, tags: str, extra_vars: dict | None = None,
                  timeout: int = 600) -> subprocess.CompletedProcess:
    """ansible-playbook against the scenario's host, limited to some tags (playbook_run has no tags)."""
    import playbook_run

    cmd = ["ansible-playbook", "-i", playbook_run.inventory(), str(playbook), "--tags", tags]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(cmd, env=playbook_run.ansible_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=playbook_run.ROOT, check=False)


def demo_password(host, user: str) -> str:
    """The demo password the host really has: gp.demo_password's file, or the one the
    Molecule inventory's relative demo_secrets_dir resolved to, checked against the htpasswd hash."""
    import os
    from pathlib import Path

    from passlib.apache import HtpasswdFile

    ht = HtpasswdFile.from_string(host.file("/etc/nginx/mcpsec/htpasswd").content_string)
    candidates = []
    try:
        candidates.append(gp.demo_password(user))
    except OSError:
        pass
    inv = os.environ.get("MOLECULE_INVENTORY_FILE")
    if inv:
        f = Path(inv).parent / ".." / ".." / ".cache" / "demo" / f"{user}-password"
        if f.exists():
            candidates.append(f.read_text(encoding="utf-8").strip())
    for pw in candidates:
        if ht.check_password(user, pw):
            return pw
    raise AssertionError(f"no demo password file matches {user}'s htpasswd entry")
