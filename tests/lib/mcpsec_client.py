"""A real MCP client (the official Python SDK, streamable HTTP) for the demo and the tests.

Run as a script it connects to a gateway, lists the tools, calls one and prints both:

    python tests/lib/mcpsec_client.py --url https://localhost:8443/mcp \
        --user alice --password-file .cache/demo/alice-password --ca-file ca.pem
"""
from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client


@dataclass
class RoundTrip:
    server_name: str
    protocol_version: str
    tools: list[str]
    results: list[dict[str, Any]] = field(default_factory=list)


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    return ctx


def http_client(*, basic: tuple[str, str] | None = None, bearer: str | None = None,
                ca_file: str | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    auth = httpx2.BasicAuth(*basic) if basic else None
    return httpx2.AsyncClient(
        verify=_ssl_context(ca_file),
        auth=auth,
        headers=headers,
        timeout=httpx2.Timeout(30.0, read=120.0),
    )


def _result_text(result: Any) -> str:
    parts = []
    for item in getattr(result, "content", []) or []:
        text = getattr(item, "text", None)
        if text is not None:
            parts.append(text)
    return "\n".join(parts)


async def round_trip(url: str, *, calls: list[tuple[str, dict[str, Any]]] | None = None,
                     basic: tuple[str, str] | None = None, bearer: str | None = None,
                     ca_file: str | None = None) -> RoundTrip:
    """initialize → tools/list → each tools/call, in one session."""
    async with http_client(basic=basic, bearer=bearer, ca_file=ca_file) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                listed = await session.list_tools()
                trip = RoundTrip(
                    server_name=init.server_info.name if hasattr(init, "server_info") else init.serverInfo.name,
                    protocol_version=str(getattr(init, "protocol_version", None) or getattr(init, "protocolVersion", "")),
                    tools=sorted(t.name for t in listed.tools),
                )
                for name, arguments in calls or []:
                    result = await session.call_tool(name, arguments)
                    trip.results.append({
                        "tool": name,
                        "is_error": bool(getattr(result, "is_error", getattr(result, "isError", False))),
                        "text": _result_text(result),
                    })
                return trip


async def auto_round_trip(url: str, *, basic: tuple[str, str] | None = None, bearer: str | None = None,
                          ca_file: str | None = None) -> tuple[str, list[str]]:
    """The SDK's default connect (mode="auto": a 2026-07-28 server/discover probe, falling
    back to initialize): the protocol version it settled on, and the tools it lists."""
    async with http_client(basic=basic, bearer=bearer, ca_file=ca_file) as client:
        async with Client(streamable_http_client(url, http_client=client), mode="auto") as mcp:
            listed = await mcp.list_tools()
            return str(mcp.protocol_version), sorted(t.name for t in listed.tools)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--token-file")
    parser.add_argument("--ca-file")
    parser.add_argument("--call", default="echo", help="tool to call after listing")
    parser.add_argument("--message", default="hello through mcpsec")
    parser.add_argument("--args", help="the tool's arguments as a JSON object (instead of --message)")
    parser.add_argument("--json", action="store_true", help="print the round trip as JSON")
    args = parser.parse_args(argv)

    basic = None
    bearer = None
    if args.user and args.password_file:
        with open(args.password_file, encoding="utf-8") as fh:
            basic = (args.user, fh.read().strip())
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as fh:
            bearer = fh.read().strip()
    trip = asyncio.run(round_trip(args.url, calls=[(args.call, json.loads(args.args) if args.args else {"message": args.message})],
                                  basic=basic, bearer=bearer, ca_file=args.ca_file))
    if args.json:
        print(json.dumps(trip.__dict__, indent=2))
    else:
        print(f"Connected to {trip.server_name} (MCP {trip.protocol_version}) at {args.url}")
        print(f"Tools ({len(trip.tools)}): {', '.join(trip.tools)}")
        for res in trip.results:
            print(f"{res['tool']} -> {res['text']}{'  [error]' if res['is_error'] else ''}")
    return 0 if all(not r["is_error"] for r in trip.results) else 1


if __name__ == "__main__":
    sys.exit(main())
