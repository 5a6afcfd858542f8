"""A stdio MCP server with everything the server scenarios of @modelcontextprotocol/conformance
0.1.16 exercise (tools incl. logging, progress, sampling and elicitation; resources under test://
incl. templates and subscribe; prompts test_*; completion).

The Molecule scenario `conformance` runs it behind supergateway with the Python SDK from PyPI,
pinned by the mcp_server role (mcp_server_source: pypi, mcp_server_package: mcp): only the
`mcp` package is imported. Each expectation below is the one the suite's dist/index.js checks.
"""
from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.stdio import stdio_server

# A 1x1 red PNG and a 1-sample 8 kHz mono WAV, both valid files.
PNG_1X1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
WAV = base64.b64encode(
    b"RIFF" + (37).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    + b"data" + (1).to_bytes(4, "little") + b"\x80").decode()

SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}

TOOLS = [
    types.Tool(name="test_simple_text", description="Returns a simple text response", inputSchema=NO_ARGS),
    types.Tool(name="test_image_content", description="Returns a PNG image", inputSchema=NO_ARGS),
    types.Tool(name="test_audio_content", description="Returns a WAV audio clip", inputSchema=NO_ARGS),
    types.Tool(name="test_embedded_resource", description="Returns an embedded resource", inputSchema=NO_ARGS),
    types.Tool(name="test_multiple_content_types", description="Returns text, image and resource",
               inputSchema=NO_ARGS),
    types.Tool(name="test_tool_with_logging", description="Sends three log notifications while it runs",
               inputSchema=NO_ARGS),
    types.Tool(name="test_tool_with_progress", description="Reports progress 0, 50, 100 of 100",
               inputSchema=NO_ARGS),
    types.Tool(name="test_error_handling", description="Always fails with isError", inputSchema=NO_ARGS),
    types.Tool(name="test_sampling", description="Asks the client's LLM (sampling/createMessage)",
               inputSchema={"type": "object", "properties": {"prompt": {"type": "string"}},
                            "required": ["prompt"]}),
    types.Tool(name="test_elicitation", description="Asks the user (elicitation/create)",
               inputSchema={"type": "object", "properties": {"message": {"type": "string"}},
                            "required": ["message"]}),
    types.Tool(name="test_elicitation_sep1034_defaults", description="Elicitation with defaults (SEP-1034)",
               inputSchema=NO_ARGS),
    types.Tool(name="test_elicitation_sep1330_enums", description="Elicitation with enum schemas (SEP-1330)",
               inputSchema=NO_ARGS),
    types.Tool(name="test_reconnection", description="Answers on its stream (a stdio server cannot close "
               "the HTTP stream: the SSE resume check then reports INFO)", inputSchema=NO_ARGS),
    types.Tool(name="json_schema_2020_12_tool", description="Tool with JSON Schema 2020-12 features",
               inputSchema={
                   "$schema": SCHEMA_2020_12,
                   "type": "object",
                   "$defs": {"address": {"type": "object",
                                         "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                   "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                   "additionalProperties": False,
               }),
]

SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    },
}
SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": [{"const": "value1", "title": "First Option"},
                                                     {"const": "value2", "title": "Second Option"},
                                                     {"const": "value3", "title": "Third Option"}]},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                       "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                             {"const": "value2", "title": "Second Choice"},
                                                             {"const": "value3", "title": "Third Choice"}]}},
    },
}

RESOURCES = [
    types.Resource(uri="test://static-text", name="static-text", description="A static text resource",
                   mimeType="text/plain"),
    types.Resource(uri="test://static-binary", name="static-binary", description="A static PNG resource",
                   mimeType="image/png"),
    types.Resource(uri="test://watched-resource", name="watched-resource",
                   description="A resource clients may subscribe to", mimeType="text/plain"),
]
TEMPLATES = [
    types.ResourceTemplate(uriTemplate="test://template/{id}/data", name="template-data",
                           description="Data for an id", mimeType="application/json"),
]
PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(name="test_prompt_with_arguments", description="A prompt with two arguments",
                 arguments=[types.PromptArgument(name="arg1", description="First test argument", required=True),
                            types.PromptArgument(name="arg2", description="Second test argument", required=True)]),
    types.Prompt(name="test_prompt_with_embedded_resource", description="A prompt embedding a resource",
                 arguments=[types.PromptArgument(name="resourceUri", description="URI of the resource to embed",
                                                 required=True)]),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]

server: Server = Server("mcpsec-conformance-fixture", version="1.0.0")
subscriptions: set[str] = set()


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


@server.list_tools()
async def list_tools() -> list[types.Tool]:
    return TOOLS


async def _log_steps(ctx) -> None:
    for i, message in enumerate(["Tool execution started", "Tool processing data", "Tool execution completed"]):
        if i:
            await asyncio.sleep(0.05)
        await ctx.session.send_log_message(level="info", data=message, logger="conformance",
                                           related_request_id=ctx.request_id)


async def _progress_steps(ctx) -> None:
    token = ctx.meta.progressToken if ctx.meta else None
    for i, value in enumerate([0, 50, 100]):
        if i:
            await asyncio.sleep(0.05)
        if token is not None:
            await ctx.session.send_progress_notification(token, value, total=100,
                                                         related_request_id=ctx.request_id)


@server.call_tool()
async def call_tool(name: str, arguments: dict[str, Any]):
    ctx = server.request_context
    if name == "test_simple_text":
        return [text("This is a simple text response for testing.")]
    if name == "test_image_content":
        return [types.ImageContent(type="image", data=PNG_1X1, mimeType="image/png")]
    if name == "test_audio_content":
        return [types.AudioContent(type="audio", data=WAV, mimeType="audio/wav")]
    if name == "test_embedded_resource":
        return [types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri="test://embedded-resource", mimeType="text/plain", text="This is an embedded resource content."))]
    if name == "test_multiple_content_types":
        return [text("Multiple content types test:"),
                types.ImageContent(type="image", data=PNG_1X1, mimeType="image/png"),
                types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
                    uri="test://mixed-content-resource", mimeType="application/json",
                    text=json.dumps({"test": "data", "value": 123})))]
    if name == "test_tool_with_logging":
        await _log_steps(ctx)
        return [text("Tool with logging executed successfully")]
    if name == "test_tool_with_progress":
        await _progress_steps(ctx)
        return [text("Tool with progress executed successfully")]
    if name == "test_error_handling":
        raise RuntimeError("This tool intentionally returns an error for testing")
    if name == "test_sampling":
        result = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=text(str(arguments["prompt"])))],
            max_tokens=100, related_request_id=ctx.request_id)
        answer = result.content.text if isinstance(result.content, types.TextContent) else str(result.content)
        return [text(f"LLM response: {answer}")]
    if name in ("test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums"):
        if name == "test_elicitation":
            message, schema = str(arguments["message"]), {
                "type": "object",
                "properties": {"username": {"type": "string", "description": "User's response"},
                               "email": {"type": "string", "description": "User's email address"}},
                "required": ["username", "email"]}
        elif name == "test_elicitation_sep1034_defaults":
            message, schema = "Please review and update the form fields with defaults", SEP1034_SCHEMA
        else:
            message, schema = "Please select options from the enum fields", SEP1330_SCHEMA
        result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        label = "User response" if name == "test_elicitation" else "Elicitation completed"
        return [text(f"{label}: action={result.action}, content={json.dumps(result.content or {})}")]
    if name == "test_reconnection":
        return [text("Reconnection test completed")]
    if name == "json_schema_2020_12_tool":
        return [text(f"JSON Schema 2020-12 tool called with {json.dumps(arguments, sort_keys=True)}")]
    raise ValueError(f"Unknown tool: {name}")


@server.list_resources()
async def list_resources() -> list[types.Resource]:
    return RESOURCES


@server.list_resource_templates()
async def list_resource_templates() -> list[types.ResourceTemplate]:
    return TEMPLATES


@server.read_resource()
async def read_resource(uri) -> list[ReadResourceContents]:
    uri = str(uri)
    if uri == "test://static-text":
        return [ReadResourceContents("This is the content of the static text resource.", "text/plain")]
    if uri == "test://static-binary":
        return [ReadResourceContents(base64.b64decode(PNG_1X1), "image/png")]
    if uri == "test://watched-resource":
        return [ReadResourceContents("Watched resource content.", "text/plain")]
    prefix, suffix = "test://template/", "/data"
    if uri.startswith(prefix) and uri.endswith(suffix) and len(uri) > len(prefix) + len(suffix):
        item = uri[len(prefix):-len(suffix)]
        body = {"id": item, "templateTest": True, "data": f"Data for ID: {item}"}
        return [ReadResourceContents(json.dumps(body, separators=(",", ":")), "application/json")]
    raise ValueError(f"Resource not found: {uri}")


@server.subscribe_resource()
async def subscribe_resource(uri) -> None:
    subscriptions.add(str(uri))


@server.unsubscribe_resource()
async def unsubscribe_resource(uri) -> None:
    subscriptions.discard(str(uri))


@server.list_prompts()
async def list_prompts() -> list[types.Prompt]:
    return PROMPTS


@server.get_prompt()
async def get_prompt(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    args = arguments or {}
    if name == "test_simple_prompt":
        messages = [types.PromptMessage(role="user", content=text("This is a simple prompt for testing."))]
    elif name == "test_prompt_with_arguments":
        messages = [types.PromptMessage(role="user", content=text(
            f"Prompt with arguments: arg1='{args.get('arg1', '')}', arg2='{args.get('arg2', '')}'"))]
    elif name == "test_prompt_with_embedded_resource":
        messages = [
            types.PromptMessage(role="user", content=types.EmbeddedResource(
                type="resource", resource=types.TextResourceContents(
                    uri=args.get("resourceUri", "test://example-resource"), mimeType="text/plain",
                    text="Embedded resource content for testing."))),
            types.PromptMessage(role="user", content=text("Please process the embedded resource above.")),
        ]
    elif name == "test_prompt_with_image":
        messages = [
            types.PromptMessage(role="user", content=types.ImageContent(type="image", data=PNG_1X1,
                                                                        mimeType="image/png")),
            types.PromptMessage(role="user", content=text("Please analyze the image above.")),
        ]
    else:
        raise ValueError(f"Unknown prompt: {name}")
    return types.GetPromptResult(description=name, messages=messages)


@server.completion()
async def complete(ref, argument: types.CompletionArgument, context) -> types.Completion:
    candidates = ["paris", "park", "party", "test", "testing"]
    values = [v for v in candidates if v.startswith(argument.value)]
    return types.Completion(values=values, total=len(values), hasMore=False)


@server.set_logging_level()
async def set_logging_level(level: types.LoggingLevel) -> None:
    # Every log line of this fixture is "info"; the level is accepted and answered with {}.
    return None


async def main() -> None:
    options = server.create_initialization_options(NotificationOptions())
    # The SDK always announces subscribe=false; this server does handle resources/subscribe.
    if options.capabilities.resources is not None:
        options.capabilities.resources.subscribe = True
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, options)


if __name__ == "__main__":
    asyncio.run(main())
