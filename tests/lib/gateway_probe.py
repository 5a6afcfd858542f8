"""Probes the tests run from the controller against a test host they created."""
from __future__ import annotations

import json
import socket
import subprocess
import tempfile
from pathlib import Path

import httpx


def container_ip(name: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    if not out:
        raise RuntimeError(f"container {name} has no IP address")
    return out


def tcp_open(address: str, port: int, timeout: float = 3.0) -> bool:
    """True when a TCP handshake completes; False on refusal or silence (a drop)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def ca_file_from(host, path: str = "/etc/mcpsec/tls/fullchain.pem") -> str:
    """Copy the served certificate from the test host so clients can verify it."""
    pem = host.file(path).content_string
    tmp = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    tmp.write(pem)
    tmp.close()
    return tmp.name


def http(ca_file: str) -> httpx.Client:
    return httpx.Client(verify=ca_file, timeout=15.0, follow_redirects=False)


INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "mcpsec-probe", "version": "1"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def read_json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def demo_password(user: str) -> str:
    root = Path(__file__).resolve().parents[2]
    return (root / ".cache" / "demo" / f"{user}-password").read_text(encoding="utf-8").strip()
