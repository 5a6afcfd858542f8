"""Client configurations for a gateway: the ones scripts/demo.sh prints and docs/clients.md shows.

    python tests/lib/client_configs.py --client claude-desktop --url https://localhost:8443/mcp \
        --mode basic --user alice --secret-file .cache/demo/alice-password --ca-file .cache/demo/ca.pem

Clients: claude-desktop (mcp-remote over stdio), claude-code (`claude mcp add`), cursor,
vscode. molecule/clients runs the claude-desktop entry exactly as printed (command, args and
env) through mcp-remote and the claude-code lines as printed through Claude Code; it reads the
cursor and vscode files as those editors do and drives their values with fastmcp (the editors
themselves cannot be installed there; see docs/clients.md for what is tested).
"""
from __future__ import annotations

import argparse
import base64
import json
import shlex
import sys

MCP_REMOTE = "mcp-remote@0.15.1"
CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")


def authorization(mode: str, user: str | None, secret: str) -> str:
    """The Authorization header value for auth.mode basic (user + password) or bearer (token)."""
    if mode == "basic":
        if not user:
            raise ValueError("auth.mode basic needs a user name")
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    if mode == "bearer":
        return f"Bearer {secret}"
    raise ValueError(f"no static configuration for auth.mode {mode!r} (oidc clients sign in through the IdP)")


def claude_desktop(name: str, url: str, auth: str, ca_file: str | None) -> dict:
    # The header value travels in env: Claude Desktop on Windows splits args at spaces,
    # and mcp-remote expands ${MCPSEC_AUTH} itself.
    env = {"MCPSEC_AUTH": auth}
    if ca_file:
        env["NODE_EXTRA_CA_CERTS"] = ca_file
    return {"mcpServers": {name: {
        "command": "npx",
        "args": ["-y", MCP_REMOTE, url, "--header", "Authorization:${MCPSEC_AUTH}"],
        "env": env,
    }}}


def cursor(name: str, url: str, auth: str) -> dict:
    return {"mcpServers": {name: {"url": url, "headers": {"Authorization": auth}}}}


def vscode(name: str, url: str, auth: str) -> dict:
    # VS Code prompts once for the header value and keeps it in its secret storage.
    return {
        "inputs": [{"type": "promptString", "id": f"{name}-authorization", "password": True,
                    "description": f"Authorization header for {name} (e.g. {auth.split(' ')[0]} ...)"}],
        "servers": {name: {"type": "http", "url": url,
                           "headers": {"Authorization": "${input:%s-authorization}" % name}}},
    }


def claude_code(name: str, url: str, auth: str, ca_file: str | None) -> str:
    cmd = ["claude", "mcp", "add", "--transport", "http", name, url, "--header", f"Authorization: {auth}"]
    line = " ".join(shlex.quote(c) for c in cmd)
    if ca_file:
        line = f"export NODE_EXTRA_CA_CERTS={shlex.quote(ca_file)}   # before starting claude\n{line}"
    return line


def render(client: str, *, name: str, url: str, auth: str, ca_file: str | None) -> str:
    if client == "claude-desktop":
        return json.dumps(claude_desktop(name, url, auth, ca_file), indent=2)
    if client == "claude-code":
        return claude_code(name, url, auth, ca_file)
    if client == "cursor":
        return json.dumps(cursor(name, url, auth), indent=2)
    if client == "vscode":
        return json.dumps(vscode(name, url, auth), indent=2)
    raise ValueError(f"unknown client {client!r}: choose one of {', '.join(CLIENTS)}")


WHERE = {
    "claude-desktop": "Claude Desktop (claude_desktop_config.json), through mcp-remote",
    "claude-code": "Claude Code (streamable HTTP with a static header)",
    "cursor": "Cursor (~/.cursor/mcp.json or .cursor/mcp.json)",
    "vscode": "VS Code (.vscode/mcp.json)",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--client", required=True, help=", ".join(CLIENTS))
    p.add_argument("--name", default="mcpsec")
    p.add_argument("--url", required=True)
    p.add_argument("--mode", default="basic", choices=["basic", "bearer"])
    p.add_argument("--user")
    p.add_argument("--secret-file", required=True, help="the password (basic) or token (bearer)")
    p.add_argument("--ca-file")
    a = p.parse_args(argv)
    if a.client not in CLIENTS:
        p.error(f"--client {a.client!r}: choose one of {', '.join(CLIENTS)}")
    with open(a.secret_file, encoding="utf-8") as fh:
        auth = authorization(a.mode, a.user, fh.read().strip())
    print(f"[demo] {WHERE[a.client]}:")
    print(render(a.client, name=a.name, url=a.url, auth=auth, ca_file=a.ca_file))
    if a.client == "vscode":
        print(f"(VS Code asks for the header value once; enter: {auth})")
    if a.client in ("cursor", "vscode", "claude-code") and a.ca_file:
        print(f"(The gateway's certificate is self-signed: trust {a.ca_file} in the client's "
              "environment, e.g. NODE_EXTRA_CA_CERTS for Node-based clients, or use a certificate "
              "from a CA it already trusts.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
