"""The MCP wire helpers every HTTP test shares: JSON-RPC builders, the JSON-or-SSE answer,
error code and reason extraction, and a raw-socket client for what httpx cannot send.

One meaning per name, used by the Molecule verifiers (tests/lib/enforcement.py, httpx) and by
the njs cases (tests/njs/http, raw sockets from chosen loopback addresses). Every reader
takes a response with ``headers.get``, ``text`` and ``json()`` (raising ValueError):
an ``httpx.Response`` or a :class:`RawResponse`. Standard library only: the njs test
container runs it with Debian's python3.
"""
from __future__ import annotations

import json
import socket

PROTOCOL_VERSION = "2025-06-18"
MODERN_VERSION = "2026-07-28"


# ---------------------------------------------------------------- requests

def rpc(method: str, params: dict | None = None, id_=1) -> dict:
    """A JSON-RPC message; id_ None makes it a notification."""
    msg: dict = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        msg["id"] = id_
    if params is not None:
        msg["params"] = params
    return msg


def tool_call(name: str, arguments: dict | None = None, id_=1) -> dict:
    return rpc("tools/call", {"name": name, "arguments": arguments or {}}, id_)


def initialize(client: str = "t", id_=1, version: str = PROTOCOL_VERSION, **params) -> dict:
    p = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}
    p.update(params)
    return rpc("initialize", p, id_)


def modern(method: str, params: dict | None, id_=1, version: str = MODERN_VERSION) -> dict:
    """A request in the 2026-07-28 format: no session, the version and capabilities in _meta."""
    p = dict(params or {})
    p["_meta"] = {"io.modelcontextprotocol/protocolVersion": version,
                  "io.modelcontextprotocol/clientCapabilities": {}}
    return rpc(method, p, id_)


def encode(body) -> bytes:
    """The bytes sent for a body: a message is JSON-encoded, bytes and text go as they are."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


# ---------------------------------------------------------------- answers

def json_or_sse(r) -> dict:
    """The JSON-RPC answer in a response, JSON or an SSE stream (its one response event); {} if none."""
    if (r.headers.get("content-type") or "").startswith("text/event-stream"):
        msgs = [json.loads(line[5:].strip()) for line in r.text.splitlines() if line.startswith("data:")]
        answers = [m for m in msgs if "result" in m or "error" in m]
        return answers[0] if len(answers) == 1 else {}
    try:
        doc = r.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def error_of(r) -> dict:
    """The JSON-RPC error object of an answer ({} when it has none)."""
    return json_or_sse(r).get("error") or {}


def message_of(r) -> str:
    """The whole JSON-RPC error message ("Bad Request: batch")."""
    return error_of(r).get("message") or ""


def reason_of(r) -> str:
    """The enforcement point's reason from its JSON-RPC error ("Bad Request: batch" -> "batch")."""
    message = message_of(r)
    return message.split(": ", 1)[1] if ": " in message else message


def rpc_code(r):
    return error_of(r).get("code")


def is_rpc_error(r, id_=None) -> bool:
    """A JSON-RPC 2.0 error answer carrying this id."""
    doc = json_or_sse(r)
    return doc.get("jsonrpc") == "2.0" and "error" in doc and doc.get("id") == id_


def listed(r, key: str, field: str):
    """The names in a list answer (JSON or SSE) and its nextCursor."""
    res = json_or_sse(r).get("result") or {}
    return [i.get(field) for i in res.get(key, [])], res.get("nextCursor")


def session_id(r):
    return r.headers.get("mcp-session-id")


# ---------------------------------------------------------------- raw client

class RawHeaders:
    """Response headers in order, names lower-cased; get/get_list as httpx.Headers."""

    def __init__(self, pairs):
        self.pairs = pairs

    def get_list(self, name: str) -> list:
        return [v for k, v in self.pairs if k == name.lower()]

    def get(self, name: str, default=None):
        values = self.get_list(name)
        return ", ".join(values) if values else default

    def __contains__(self, name) -> bool:
        return bool(self.get_list(name))

    def __repr__(self):
        return repr(self.pairs)


class RawResponse:
    """What came back on a raw connection, read like an httpx.Response."""

    def __init__(self, status_code: int, headers: list, content: bytes):
        self.status_code, self.headers, self.content = status_code, RawHeaders(headers), content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)

    def __repr__(self):
        return "%s %r %r" % (self.status_code, self.headers, self.content[:300])


def request_bytes(method: str, path: str, headers, body: bytes | None, host: str = "mcp.test") -> bytes:
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + host, "Connection: close"]
    names = [k.lower() for k, _v in headers]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b"")


def _dechunk(rest: bytes) -> bytes:
    out = b""
    while rest:
        size_line, _s, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return out


def exchange(raw: bytes, port: int, src: str = "127.0.0.1", timeout: float = 15) -> RawResponse:
    """Send raw bytes to 127.0.0.1:port from the loopback address src; read until closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    s.sendall(raw)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head, _sep, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else 0
    pairs = []
    for line in lines[1:]:
        k, _s, v = line.partition(":")
        pairs.append((k.strip().lower(), v.strip()))
    if ("transfer-encoding", "chunked") in pairs:
        rest = _dechunk(rest)
    return RawResponse(status, pairs, rest)
