# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: seconds
short_description: The seconds in a duration such as C(500ms), C(60s), C(5m), C(24h), C(7d)
version_added: 0.3.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Parses a duration with the collection's one duration grammar (C(plugins/plugin_utils/_units.py),
    the same the policy and the audit summary use), so that playbooks and templates receive a
    number and parse nothing themselves.
  - The grammar is N followed by a unit of C(ms), C(s), C(m), C(h), C(d) or C(w) (blanks around
    allowed); an integer is seconds. O(units) narrows the units a key accepts, O(bare) lets digits
    alone mean seconds (nginx times).
  - "A value that does not parse, or lies outside O(minimum)..O(maximum), fails with
    C(<key>: <problem>; <fix>)."
positional: _input, key
options:
  _input:
    description: The duration.
    type: raw
    required: true
  key:
    description: The variable the duration comes from, named in the error.
    type: str
    required: true
  units:
    description: The units this key accepts.
    type: list
    elements: str
    default: [s, m, h, d, w]
  minimum:
    description: The shortest accepted duration, in seconds.
    type: float
    default: 1
  maximum:
    description: The longest accepted duration, in seconds; unset is unbounded.
    type: float
  bare:
    description: Whether digits without a unit are seconds (as in an nginx time).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Wait out one audit log flush interval (nginx time)
  ansible.builtin.wait_for:
    timeout: "{{ (common_audit_log_flush | mcpsec.gateway.seconds('common_audit_log_flush', units=['ms', 's', 'm'],
                  minimum=0, bare=true)) + 1 }}"

- name: Find the files written to within the report's window
  ansible.builtin.find:
    paths: /var/log/nginx
    age: "-{{ audit_window | mcpsec.gateway.seconds('audit_window') }}s"
"""

RETURN = r"""
_value:
  description: The seconds, an integer (a float only for a fraction of a second, e.g. C(500ms) is C(0.5)).
  type: float
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._units import (
    DURATION_UNITS,
    UnitError,
    parse_duration,
)


def seconds(value, key, units=None, minimum=1, maximum=None, bare=False):
    units = ('s', 'm', 'h', 'd', 'w') if units is None else tuple(units)
    unknown = [u for u in units if u not in DURATION_UNITS]
    if unknown or not units:
        raise AnsibleFilterError('seconds: units must be some of %s, got %s' % (', '.join(DURATION_UNITS), list(units)))
    try:
        return parse_duration(value, key, units=units, minimum=minimum, maximum=maximum, bare=bool(bare))
    except UnitError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule(object):
    def filters(self):
        return {'seconds': seconds}
