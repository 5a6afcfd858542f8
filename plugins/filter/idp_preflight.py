# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: idp_preflight
short_description: Judge what the identity provider answered this host (auth.mode oidc)
version_added: 0.3.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Judges the discovery document and the JWKS fetched from the gateway host the way njs judges
    them at run time - the discovery fetch answered 200, its C(issuer) is C(auth.oidc.issuer), the
    C(jwks_uri) (C(auth.oidc.jwks_uri), else the discovery document's) is an https URL, the JWKS
    fetch answered 200 and holds a key usable with C(auth.oidc.algorithms) (RSA for RS*, EC P-256
    for ES256).
  - A body is parsed as JSON whatever its Content-Type, as njs does.
  - Without O(jwks) (before the JWKS fetch) it still returns C(jwks_url), the URL to fetch.
positional: _input, discovery, jwks
options:
  _input:
    description: The expanded policy's C(njs_policy.oidc).
    type: dict
    required: true
  discovery:
    description: The C(ansible.builtin.uri) result of the discovery fetch (skipped or absent when jwks_uri is set).
    type: dict
  jwks:
    description: The C(ansible.builtin.uri) result of the JWKS fetch.
    type: dict
  ca_file:
    description: The CA file the fetches verified with (C(auth.oidc.ca_file)); named in the detail.
    type: str
"""

EXAMPLES = r"""
- name: Judge what the identity provider answered
  ansible.builtin.set_fact:
    __verdict: "{{ __mcpsec.njs_policy.oidc | mcpsec.gateway.idp_preflight(__discovery, __jwks, ca_file=__mcpsec.oidc_ca_file) }}"
"""

RETURN = r"""
_value:
  description:
    - C(ok) - whether njs could verify tokens with what this host was answered.
    - C(detail) - what failed (the URL and the reason), or which JWKS was verified with which CAs.
    - C(jwks_url) - the JWKS URL (auth.oidc.jwks_uri, else the discovery document's), or null.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.plugin_utils._idp import verdict


def idp_preflight(oidc, discovery=None, jwks=None, ca_file=None):
    try:
        return verdict(oidc, discovery, jwks, ca_file)
    except ValueError as exc:
        raise AnsibleFilterError('idp_preflight: %s' % exc) from None


class FilterModule(object):
    def filters(self):
        return {'idp_preflight': idp_preflight}
