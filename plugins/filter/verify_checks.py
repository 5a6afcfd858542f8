# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: verify_checks
short_description: Judge the security checklist's probes into PASS/FAIL rows
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Takes the registered results of the probes the common role's C(verify) entry point runs
    (what C(playbooks/verify.yml) runs) and returns one row per check, the printed table and the
    names of the failed checks. Every verdict is made here; the task file only gathers.
positional: _input
options:
  _input:
    description:
      - The probes, a dict. C(service) (the default server's instance 0 unit), C(backend_port),
        C(limits) (C(supergateway) and C(nginx), the highest accepted exposure scores), C(want_location)
        (the expected redirect target, empty for any https one), C(redirect), C(noauth), C(health)
        (uri results), C(tls) (the openssl s_client loop's results, each C(item) with C(name) and
        C(accept)), C(idp) (C({ok, detail}) or null when the policy is not oidc), C(audit) (the
        tail of the audit log), C(audit_log), C(env) (stat of the env file), C(env_file),
        C(exposure) (the systemd-analyze loop's results, C(item) the unit), C(ss), C(nobody),
        C(nft) (command results), C(others) (the stat loop over the other servers' env files, each
        C(item) the server's C(name), C(unit), C(port), C(env_file)) and C(pins) (the mcp_tools loop's
        results, each C(item) a server's entry of the njs policy, C(key) its name).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Evaluate the checklist
  ansible.builtin.set_fact:
    __verify: "{{ __probes | mcpsec.gateway.verify_checks }}"

- name: Print the checklist
  ansible.builtin.debug:
    msg: "{{ __verify.table }}"
"""

RETURN = r"""
_value:
  description:
    - C(checks) (each C(name), C(ok), C(detail)), C(table) (a header line, then C(PASS) or C(FAIL),
      the name and the detail per check) and C(failed) (the names of the failed checks).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._nft import NftError
from ansible_collections.mcpsec.gateway.plugins.plugin_utils._verify import checks, table


def verify_checks(probes):
    if not isinstance(probes, dict):
        raise AnsibleFilterError('verify_checks: expected the probes as a dict, got %s' % type(probes).__name__)
    try:
        rows = checks(probes)
    except KeyError as exc:
        raise AnsibleFilterError('verify_checks: the probes lack %s' % exc) from None
    except (NftError, TypeError, ValueError) as exc:
        raise AnsibleFilterError('verify_checks: %s' % exc) from None
    return {'checks': rows, 'table': table(rows), 'failed': [row['name'] for row in rows if not row['ok']]}


class FilterModule(object):
    def filters(self):
        return {'verify_checks': verify_checks}
