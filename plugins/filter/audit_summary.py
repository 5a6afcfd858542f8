# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_summary
short_description: Summarise the gateway's JSON audit log over a time window
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Parses the JSON audit lines the proxy writes (one object per line) and counts, over a
    time window, the requests, the statuses, the error rate, the users with the most
    C(429) (rate limited) and C(403) (denied) answers, and the most called tools, over every
    line and per MCP server (the line's C(server) field; a line without it, written before
    the host served several servers, counts for C(default)).
  - A line ends at C(\n) only, never at U+2028, U+2029, U+0085 or other characters
    C(str.splitlines) treats as line ends (a logged field may contain them).
  - Tolerant of what it cannot read. A missing or empty field is skipped, a line that is not a
    JSON object is counted in C(invalid_lines), a line without a parsable C(time) is counted
    in C(untimed_lines) (and left out when a window is set). A request without a subject is
    charged to C(anonymous@<client>).
positional: _input
options:
  _input:
    description:
      - The log as one string, or as a list of strings (lines, or whole files concatenated
        in order); both are split at C(\n) only. Pass a command's C(stdout), not its
        C(stdout_lines), which Ansible splits with C(str.splitlines).
    type: raw
    required: true
  window:
    description:
      - Only lines from the last C(window) before O(until), e.g. C(15m), C(24h), C(7d), or
        an integer number of seconds. Ignored when O(since) is set.
    type: raw
  since:
    description: Only lines at or after this ISO 8601 time.
    type: str
  until:
    description: Only lines at or before this ISO 8601 time; default O(now).
    type: str
  now:
    description:
      - The current time, ISO 8601 (e.g. C(ansible_facts.date_time.iso8601) of the host that
        wrote the log). Default the controller's clock.
    type: str
  top:
    description: How many entries each ranking keeps.
    type: int
    default: 5
  max_lines:
    description: Keep only the newest (last) this many non-blank lines; default all.
    type: int
"""

EXAMPLES = r"""
- name: Read the audit log and its rotated copies, oldest first (zcat -f reads plain and .gz)
  ansible.builtin.command:
    argv: [zcat, -f, --, /var/log/nginx/mcpsec-audit.log.2.gz, /var/log/nginx/mcpsec-audit.log.1,
           /var/log/nginx/mcpsec-audit.log]
  register: __audit_cat
  changed_when: false

- name: Print the top users by 429 and 403, the top tools and the error rate
  ansible.builtin.debug:
    msg: "{{ (__audit_cat.stdout | mcpsec.gateway.audit_summary(window='24h', now=ansible_facts.date_time.iso8601,
              max_lines=200000)).report }}"
"""

RETURN = r"""
_value:
  description:
    - C(total), C(invalid_lines), C(untimed_lines), C(outside_window), C(since), C(until),
      C(first), C(last), C(status_counts) (status as a string to count), C(errors) and
      C(error_rate) (status >= 400), C(server_errors) and C(server_error_rate) (>= 500),
      C(top_users_429), C(top_users_403), C(top_tools), C(top_methods), C(top_users)
      (lists of C({name, count}), highest first, ties by name), C(decisions), C(servers) (a
      mapping from each server named in the counted lines, C(default) first, then by name, to
      its own C(total), C(status_counts), C(errors), C(error_rate), C(server_errors),
      C(server_error_rate), C(decisions) and rankings) and C(report) (the summary as lines for
      a terminal, one line per server at the end).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._audit import (
    AuditError,
    render,
    summarize,
)


def audit_summary(lines, window=None, since=None, until=None, now=None, top=5, max_lines=None):
    if lines is not None and not isinstance(lines, str) and not isinstance(lines, (list, tuple)):
        raise AnsibleFilterError('audit_summary: expected the log as a string or a list of lines, got %s'
                                 % type(lines).__name__)
    try:
        summary = summarize(lines, window=window, since=since, until=until, now=now, top=int(top),
                            max_lines=None if max_lines is None else int(max_lines))
    except (AuditError, TypeError, ValueError) as exc:
        raise AnsibleFilterError('audit_summary: %s' % exc) from None
    summary['report'] = render(summary)
    return summary


class FilterModule(object):
    def filters(self):
        return {'audit_summary': audit_summary}
