# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: check_mode_gap
short_description: Tell whether check mode skipped a change that later tasks need
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - In check mode a task that would install a package or create a key reports C(changed) and does
    nothing, so the tasks that need what it makes have nothing to preview against (on a fresh host
    C(nginx -t) finds no nginx). Those tasks skip on this lookup instead of failing.
  - Returns true when the run is in check mode and any of the named registered results is
    C(changed); false otherwise (a real run has made the change; an unknown name changed nothing).
  - The collection's one definition of that guard; every role uses it.
options:
  _terms:
    description: The names of registered results the task depends on.
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Ensure nginx and njs are installed
  ansible.builtin.apt:
    name: [nginx, libnginx-mod-http-js]
  register: __proxy_packages

- name: Ensure the nginx configuration is rendered, tested and activated
  ansible.builtin.import_tasks: configure.yml
  when: not lookup('mcpsec.gateway.check_mode_gap', '__proxy_packages')
"""

RETURN = r"""
_raw:
  description: One boolean, true when check mode skipped a change of a named result.
  type: list
  elements: bool
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def check_mode_gap(names, variables):
    """True when check mode is on and a registered result among names reports changed."""
    if not names:
        raise AnsibleLookupError('check_mode_gap: name the registered results the task needs')
    if not variables.get('ansible_check_mode'):
        return False
    for name in names:
        result = variables.get(name)
        if isinstance(result, dict) and result.get('changed'):
            return True
    return False


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [check_mode_gap(list(terms), variables or {})]
