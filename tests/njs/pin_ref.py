"""The tool digest of issue 22 in its Python reference form (json.dumps with sorted keys and no
whitespace is RFC 8785 for ASCII definitions): what the njs tests expect the gateway to compute."""
import hashlib
import json

MEMBERS = ('name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations')


def tool_digest(tool):
    keep = dict((k, tool[k]) for k in MEMBERS if k in tool)
    text = json.dumps(keep, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    return 'sha256:' + hashlib.sha256(text.encode()).hexdigest()


# What the time server of the rendered configuration (tests/njs/policy.yml, bearer mode) pins: echo and
# get-sum as tests/njs/upstream.py lists them, late-tool as the pin cases (tests/njs/http/test_pins.py) list it.
PIN_TOOLS = {'echo': {'name': 'echo', 'inputSchema': {'type': 'object'}},
             'get-sum': {'name': 'get-sum', 'inputSchema': {'type': 'object'}},
             'late-tool': {'name': 'late-tool', 'title': 'Late', 'description': 'on the second page',
                           'inputSchema': {'type': 'object', 'properties': {'n': {'type': 'number'}}}}}
PINS = dict((n, tool_digest(t)) for n, t in PIN_TOOLS.items())


if __name__ == '__main__':
    # tests/njs/render.yml: the pins the rendered policy carries
    print(json.dumps(PINS, sort_keys=True))
