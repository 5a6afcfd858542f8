#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mcp_tools
short_description: List an MCP server's tools over loopback and compare them with their pins
version_added: 0.2.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Opens one MCP session to a server's supergateway instance on the gateway host (Streamable
    HTTP on a loopback port, no credentials; the nftables rules let root through), sends
    C(initialize) and C(notifications/initialized), lists every C(tools/list) page and ends the
    session with C(DELETE).
  - Computes each tool's digest (C(sha256:) and the SHA-256 of the RFC 8785 canonical JSON of its
    C(name), C(title), C(description), C(inputSchema), C(outputSchema) and C(annotations)), the
    digest the gateway holds a tool to (see C(docs/tool-pinning.md)).
  - Compares them with O(pins) - each tool C(new), C(unchanged), C(changed) (with a unified diff of
    the reviewed definition in O(definitions) against the listed one) or C(removed) - and returns
    the pins and definitions of what the server lists now. Changes nothing on the host.
options:
  url:
    description: The instance's Streamable HTTP endpoint, for example C(http://127.0.0.1:8000/mcp).
    type: str
    required: true
  pins:
    description: The current pins of this server, tool name to C(sha256:<hex>).
    type: dict
    default: {}
  definitions:
    description: The reviewed definitions kept with the pins, tool name to definition; used for the diffs.
    type: dict
    default: {}
  server:
    description: The server's name, put before each tool's name in RV(lines) and RV(drift_lines).
    type: str
  mode:
    description: The server's pinning mode; in V(enforce) a listed tool without a pin counts as drift.
    type: str
    choices: [enforce, report]
    default: enforce
  protocol_version:
    description: The MCP protocol version to initialize with.
    type: str
    default: "2025-06-18"
  timeout:
    description: Seconds to wait for each HTTP answer.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes anything.
  platform:
    platforms: posix
seealso:
  - plugin: mcpsec.gateway.expand_policy
    plugin_type: filter
"""

EXAMPLES = r"""
- name: List the time server's tools and compare them with its pins
  mcpsec.gateway.mcp_tools:
    url: http://127.0.0.1:8008/mcp
    pins: "{{ mcpsec_tool_pins.time | default({}) }}"
    definitions: "{{ mcpsec_tool_definitions.time | default({}) }}"
  register: time_tools
"""

RETURN = r"""
report:
  description: One entry per tool listed or pinned - C(tool), C(status) (new, unchanged, changed, removed), C(pin), C(digest) and for a changed tool C(diff).
  returned: success
  type: list
  elements: dict
lines:
  description: The report as text lines, a changed tool's diff indented below it.
  returned: success
  type: list
  elements: str
drift:
  description: The entries that are drift - a changed tool, and in enforce mode a tool without a pin.
  returned: success
  type: list
  elements: dict
drift_lines:
  description: "One line per drift entry: C(<server>/<tool> <status>: pin <pin>, server <digest>)."
  returned: success
  type: list
  elements: str
pins:
  description: The pins of what the server lists now, tool name to digest.
  returned: success
  type: dict
definitions:
  description: The definitions the digests cover, tool name to definition, to keep with the pins for the next review.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcpsec.gateway.plugins.module_utils._jcs import JcsError
from ansible_collections.mcpsec.gateway.plugins.module_utils._pin_tools import (
    McpError, compare, drift, drift_lines, list_tools, new_pins, report_lines,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            pins=dict(type='dict', default={}),
            definitions=dict(type='dict', default={}),
            server=dict(type='str'),
            mode=dict(type='str', choices=['enforce', 'report'], default='enforce'),
            protocol_version=dict(type='str', default='2025-06-18'),
            timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        tools = list_tools(p['url'], p['timeout'], p['protocol_version'])
        report = compare(tools, p['pins'], p['definitions'])
        pins, definitions = new_pins(tools)
    except (McpError, JcsError, ValueError) as exc:
        module.fail_json(msg='cannot list the tools at %s: %s' % (p['url'], exc))
    drifted = drift(report, p['mode'])
    module.exit_json(changed=False, report=report, lines=report_lines(report, p['server']), drift=drifted,
                     drift_lines=drift_lines(drifted, p['server']), pins=pins, definitions=definitions)


if __name__ == '__main__':
    main()
