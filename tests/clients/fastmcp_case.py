"""One case with fastmcp's client (run with the venv prepare.yml made, .cache/clients/venv).

Usage: python fastmcp_case.py <url> <ca-file> <list|call|read|prompt> [tool, resource URI or prompt name]
The Authorization header value comes from the environment (MCPSEC_AUTH), never argv.
Prints one JSON line {"ok": bool, "message": str}: what the user of the client sees.
"""
import asyncio
import json
import os
import ssl
import sys

from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport


async def run(url, ca_file, action, tool):
    ctx = ssl.create_default_context(cafile=ca_file)
    transport = StreamableHttpTransport(url, headers={"Authorization": os.environ["MCPSEC_AUTH"]},
                                        verify=ctx)
    async with Client(transport, timeout=60) as client:
        if action == "list":
            tools = await client.list_tools()
            names = sorted(t.name for t in tools)
            return True, "%d tools: %s%s" % (len(names), ", ".join(names[:4]), ", ..." if len(names) > 4 else "")
        if action == "read":
            return True, str(await client.read_resource(tool))[:200]
        if action == "prompt":
            return True, str(await client.get_prompt(tool))[:200]
        result = await client.call_tool(tool, {"message": "hi from fastmcp"} if tool == "echo" else {},
                                        raise_on_error=False)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        return not result.is_error, text


def main():
    url, ca_file, action = sys.argv[1], sys.argv[2], sys.argv[3]
    tool = sys.argv[4] if len(sys.argv) > 4 else None
    try:
        ok, message = asyncio.run(run(url, ca_file, action, tool))
    except BaseException as exc:  # what the user is shown is whatever the client raised
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        ok, message = False, "%s: %s" % (type(exc).__name__, exc)
    print(json.dumps({"ok": ok, "message": message}))


if __name__ == "__main__":
    main()
