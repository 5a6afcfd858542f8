"""Real MCP clients against a gateway, case by case, recording what each client's user sees.

Clients (installed by molecule/clients/prepare.yml under .cache/clients): mcp-remote over
stdio, run with the command, args and env of the Claude Desktop entry that
tests/lib/client_configs.py renders (and scripts/demo.sh prints); the MCP Inspector CLI; fastmcp's
client; the official Python SDK (this venv); Claude Code. Credentials reach every client through
its environment or a 0600 file, never its command line, except Claude Code: its documented
`claude mcp add --header` takes the header as an argument, and the test runs that line as
printed, so the test credential is on that one short-lived process's command line (the
docs/clients.md warns users of the same).
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import queue
import shlex
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import client_configs
import mcpsec_client

ROOT = Path(__file__).resolve().parents[2]
CLIENTS_DIR = ROOT / ".cache" / "clients"
NODE = CLIENTS_DIR / "node22" / "node_modules" / "node" / "bin" / "node"
NPM_BIN = CLIENTS_DIR / "npm" / "node_modules" / ".bin"
MCP_REMOTE_JS = CLIENTS_DIR / "npm" / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
INSPECTOR_JS = CLIENTS_DIR / "npm" / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
FASTMCP_PY = CLIENTS_DIR / "venv" / "bin" / "python"
# Claude Code's npm package ships its native binary in a per-platform optional dependency.
CLAUDE_CODE = (CLIENTS_DIR / "npm" / "node_modules" / "@anthropic-ai"
               / f"claude-code-linux-{'arm64' if platform.machine() in ('aarch64', 'arm64') else 'x64'}" / "claude")
FASTMCP_CASE = ROOT / "tests" / "clients" / "fastmcp_case.py"
TIMEOUT = 90


@dataclass
class Case:
    name: str          # list tools | allowed tool | denied tool | denied resource | denied prompt | wrong credentials
    auth: str          # the Authorization header value the client is configured with
    action: str        # list | call | read (a resource) | prompt (prompts/get)
    tool: str | None = None   # the tool, resource URI or prompt name


@dataclass
class Seen:
    ok: bool           # the client reported success
    message: str       # what its user reads


def one_line(text: str, limit: int = 600) -> str:
    return " ".join(str(text).split())[:limit]


def require_installed() -> None:
    missing = [str(p) for p in (NODE, MCP_REMOTE_JS, INSPECTOR_JS, FASTMCP_PY, CLAUDE_CODE) if not p.exists()]
    if missing:
        raise RuntimeError("clients not installed (run molecule prepare -s clients): " + ", ".join(missing))


def node_env(home: str, ca_file: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": f"{NODE.parent}:/usr/bin:/bin", "HOME": home, "NODE_EXTRA_CA_CERTS": ca_file,
           "NO_COLOR": "1", "LANG": "C.UTF-8"}
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------- mcp-remote
class StdioPeer:
    """A JSON-RPC peer over a child's stdin/stdout (newline-delimited), as Claude Desktop talks to it."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink(line.rstrip("\n"))
        if sink.__name__ == "put":
            sink(None)

    def send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def wait(self, msg_id: int, timeout: float = TIMEOUT) -> dict | None:
        """The response to msg_id; None when the child exited first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to request {msg_id} within {timeout}s; stderr: {self.stderr[-5:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                return None
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("id") == msg_id and ("result" in msg or "error" in msg):
                return msg
            if "method" in msg and "id" in msg:      # a server request (roots/list, ping): refuse politely
                self.send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "not supported"}})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def mcp_remote_fatal(stderr: list[str]) -> str:
    """The error mcp-remote logs before it exits (what Claude Desktop's MCP log shows):
    from its "Fatal error:" line up to the stack trace."""
    for i, line in enumerate(stderr):
        if "Fatal error" in line:
            text = [line.split("Fatal error:", 1)[-1]]
            for more in stderr[i + 1:]:
                if more.lstrip().startswith("at "):
                    break
                text.append(more)
            return one_line(" ".join(text))
    tail = [s for s in stderr if "Error" in s or "error" in s]
    return one_line(tail[-1] if tail else (stderr[-1] if stderr else "(no output)"))


def desktop_entry(url: str, auth: str, ca_file: str) -> dict:
    cfg = client_configs.claude_desktop("mcpsec", url, auth, ca_file)
    return cfg["mcpServers"]["mcpsec"]


def run_mcp_remote(url: str, ca_file: str, case: Case) -> Seen:
    entry = desktop_entry(url, case.auth, ca_file)
    # `npx -y mcp-remote@0.15.1 ARGS...`: the same package, pinned and installed by prepare.yml.
    assert entry["command"] == "npx" and entry["args"][:2] == ["-y", client_configs.MCP_REMOTE], entry
    pkg = json.loads((MCP_REMOTE_JS.parents[1] / "package.json").read_text())
    assert "mcp-remote@" + pkg["version"] == client_configs.MCP_REMOTE, pkg["version"]
    with tempfile.TemporaryDirectory() as home:
        peer = StdioPeer([str(NODE), str(MCP_REMOTE_JS)] + entry["args"][2:], node_env(home, ca_file, entry["env"]))
        try:
            peer.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "claude-desktop-stand-in", "version": "1"}}})
            init = peer.wait(1)
            if init is None or "error" in init:
                peer.close()
                return Seen(False, one_line(init["error"]["message"]) if init else mcp_remote_fatal(peer.stderr))
            peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            if case.action == "list":
                peer.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
            elif case.action == "read":
                peer.send({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": case.tool}})
            elif case.action == "prompt":
                peer.send({"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"name": case.tool}})
            else:
                args = {"message": "hi from mcp-remote"} if case.tool == "echo" else {}
                peer.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                           "params": {"name": case.tool, "arguments": args}})
            resp = peer.wait(2)
            if resp is None:
                return Seen(False, mcp_remote_fatal(peer.stderr))
            return _seen_from_response(resp)
        finally:
            peer.close()


def _seen_from_response(resp: dict) -> Seen:
    if "error" in resp:
        return Seen(False, one_line(resp["error"].get("message", resp["error"])))
    result = resp["result"]
    if "tools" in result:
        names = sorted(t["name"] for t in result["tools"])
        return Seen(True, f"{len(names)} tools: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}")
    text = " ".join(c.get("text", "") for c in result.get("content", []))
    return Seen(not result.get("isError", False), one_line(text))


# --------------------------------------------------------------------------- Inspector CLI
def run_inspector(url: str, ca_file: str, case: Case) -> Seen:
    with tempfile.TemporaryDirectory() as home:
        config = Path(home) / "mcp.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"mcpServers": {"mcpsec": {"type": "streamable-http", "url": url,
                                                 "headers": {"Authorization": case.auth}}}}, fh)
        # --stored-auth-only: the Inspector's own advice for non-interactive runs (it would
        # otherwise start interactive OAuth on any 401 and fail for want of a TTY).
        argv = [str(NODE), str(INSPECTOR_JS), "--cli", "--config", str(config), "--server", "mcpsec",
                "--stored-auth-only", "--connect-timeout", "75000"]   # its 30 s default, under a loaded CI machine's scenarios, timed out once
        if case.action == "list":
            argv += ["--method", "tools/list"]
        elif case.action == "read":
            argv += ["--method", "resources/read", "--uri", case.tool]
        elif case.action == "prompt":
            argv += ["--method", "prompts/get", "--prompt-name", case.tool]
        else:
            argv += ["--method", "tools/call", "--tool-name", case.tool]
            if case.tool == "echo":
                argv += ["--tool-arg", "message=hi from the inspector"]
        p = subprocess.run(argv, env=node_env(home, ca_file, {"MCP_INSPECTOR_SECRET_STORE": "memory"}),
                           capture_output=True, text=True,
                           timeout=TIMEOUT, check=False)
    out = p.stdout.strip()
    if p.returncode == 0 and out:
        try:
            data = json.loads(out)
        except ValueError:
            return Seen(True, one_line(out))
        if "tools" in data:
            names = sorted(t["name"] for t in data["tools"])
            return Seen(True, f"{len(names)} tools: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}")
        text = " ".join(c.get("text", "") for c in data.get("content", []))
        return Seen(not data.get("isError", False), one_line(text))
    # A failure is one JSON envelope on stderr: {"error": {"code": ..., "message": ...}}.
    for line in reversed(p.stderr.splitlines()):
        if line.startswith("{"):
            try:
                err = json.loads(line)["error"]
            except (ValueError, KeyError, TypeError):
                continue
            return Seen(False, one_line(f"{err.get('code')}: {err.get('message')}"))
    return Seen(False, one_line(p.stderr.strip()[-600:] or out or f"exit {p.returncode}"))


# --------------------------------------------------------------------------- fastmcp
def run_fastmcp(url: str, ca_file: str, case: Case) -> Seen:
    argv = [str(FASTMCP_PY), str(FASTMCP_CASE), url, ca_file, case.action] + ([case.tool] if case.tool else [])
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "MCPSEC_AUTH": case.auth, "LANG": "C.UTF-8"}
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return Seen(False, one_line(f"fastmcp driver failed (exit {p.returncode}): {p.stderr[-400:]}"))
    data = json.loads(lines[-1])
    return Seen(bool(data["ok"]), one_line(data["message"]))


# --------------------------------------------------------------------------- Claude Code
def run_claude_code(url: str, ca_file: str, case: Case) -> Seen:
    """The `claude mcp add` line the demo prints, run as printed (its `export` lines become the
    environment), then `claude mcp get`: Claude Code's health check connects (initialize,
    tools/list) and shows the status and, on failure, the issue its user reads. Claude Code
    calls tools only inside a model conversation, which needs an Anthropic account: the
    cases here are the connection and wrong credentials."""
    printed = client_configs.claude_code("mcpsec", url, case.auth, ca_file).splitlines()
    env_extra = {}
    for line in printed[:-1]:
        assignment = shlex.split(line, comments=True)
        assert assignment[0] == "export" and "=" in assignment[1], line
        key, value = assignment[1].split("=", 1)
        env_extra[key] = value
    argv = shlex.split(printed[-1])
    assert argv[:3] == ["claude", "mcp", "add"], argv
    with tempfile.TemporaryDirectory() as home:
        # No traffic beyond the gateway: no telemetry, error reporting or update checks.
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "NO_COLOR": "1", "LANG": "C.UTF-8",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", **env_extra}
        added = subprocess.run([str(CLAUDE_CODE)] + argv[1:], cwd=home, env=env, capture_output=True,
                               text=True, timeout=TIMEOUT, check=False)
        if added.returncode != 0:
            return Seen(False, one_line(f"claude mcp add failed: {added.stderr or added.stdout}"))
        p = subprocess.run([str(CLAUDE_CODE), "mcp", "get", "mcpsec"], cwd=home, env=env, capture_output=True,
                           text=True, timeout=TIMEOUT, check=False)
    fields = {}
    for line in p.stdout.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep and key in ("Status", "Issue"):
            fields[key] = value
    status = fields.get("Status", f"(no status: exit {p.returncode}: {p.stderr[-300:]})")
    message = status + (f" - {fields['Issue']}" if "Issue" in fields else "")
    return Seen("Connected" in status and "Issue" not in fields, one_line(message))


# --------------------------------------------------------------------------- configs as the editors read them
def editor_config_case(client: str, url: str, case: Case) -> tuple[str, str]:
    """The URL and Authorization value a Cursor or VS Code user gets from the configuration the
    demo prints, read the way the editor reads it (Cursor: mcpServers.<name>.url/headers;
    VS Code: servers.<name> of type http, ${input:...} replaced by the value the user enters
    once). Neither editor can be installed here (not in the reachable package registries):
    fastmcp's client then speaks for the editor with exactly these values."""
    if client == "cursor":
        entry = json.loads(client_configs.render("cursor", name="mcpsec", url=url, auth=case.auth, ca_file=None))
        server = entry["mcpServers"]["mcpsec"]
        assert set(server) == {"url", "headers"}, server
        return server["url"], server["headers"]["Authorization"]
    entry = json.loads(client_configs.render("vscode", name="mcpsec", url=url, auth=case.auth, ca_file=None))
    server = entry["servers"]["mcpsec"]
    assert server["type"] == "http", server
    inputs = {i["id"]: case.auth for i in entry["inputs"] if i["type"] == "promptString" and i["password"]}
    header = server["headers"]["Authorization"]
    assert header.startswith("${input:") and header[8:-1] in inputs, header
    return server["url"], inputs[header[8:-1]]


def run_cursor_config(url: str, ca_file: str, case: Case) -> Seen:
    cfg_url, auth = editor_config_case("cursor", url, case)
    return run_fastmcp(cfg_url, ca_file, Case(case.name, auth, case.action, case.tool))


def run_vscode_config(url: str, ca_file: str, case: Case) -> Seen:
    cfg_url, auth = editor_config_case("vscode", url, case)
    return run_fastmcp(cfg_url, ca_file, Case(case.name, auth, case.action, case.tool))


# --------------------------------------------------------------------------- Python SDK
def run_python_sdk(url: str, ca_file: str, case: Case) -> Seen:
    async def go() -> Seen:
        client = mcpsec_client.http_client(ca_file=ca_file)
        client.headers["Authorization"] = case.auth
        async with client:
            async with mcpsec_client.streamable_http_client(url, http_client=client) as (read, write):
                async with mcpsec_client.ClientSession(read, write) as session:
                    await session.initialize()
                    if case.action == "list":
                        listed = await session.list_tools()
                        names = sorted(t.name for t in listed.tools)
                        return Seen(True, f"{len(names)} tools: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}")
                    if case.action == "read":
                        result = await session.read_resource(case.tool)
                        return Seen(True, one_line(str(result)[:200]))
                    if case.action == "prompt":
                        result = await session.get_prompt(case.tool)
                        return Seen(True, one_line(str(result)[:200]))
                    args = {"message": "hi from the Python SDK"} if case.tool == "echo" else {}
                    result = await session.call_tool(case.tool, args)
                    is_error = bool(getattr(result, "is_error", getattr(result, "isError", False)))
                    return Seen(not is_error, one_line(mcpsec_client._result_text(result)))
    try:
        return asyncio.run(asyncio.wait_for(go(), TIMEOUT))
    except BaseException as exc:  # the exception is what the SDK's user is shown
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return Seen(False, one_line(f"{type(exc).__name__}: {exc}"))


CLIENTS = {
    "mcp-remote 0.15.1 (Claude Desktop config)": run_mcp_remote,
    "MCP Inspector CLI 2.12.0": run_inspector,
    "fastmcp 4.2.3": run_fastmcp,
    "Python SDK (mcp 2.3.0)": run_python_sdk,
    "Cursor mcp.json as printed (via fastmcp)": run_cursor_config,
    "VS Code mcp.json as printed (via fastmcp)": run_vscode_config,
}
# Clients that only connect outside a model conversation: the connection and wrong credentials.
CONNECT_ONLY = {
    "Claude Code 2.1.332 (claude mcp add, as printed)": run_claude_code,
}


def table(rows: list[tuple[str, str, Seen]], title: str) -> str:
    out = [f"[verify] {title}", "| client | case | ok | message the user sees |", "| --- | --- | --- | --- |"]
    for client, case, seen in rows:
        out.append(f"| {client} | {case} | {'yes' if seen.ok else 'no'} | {seen.message.replace('|', '/')} |")
    return "\n".join(out)
