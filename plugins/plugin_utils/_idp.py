# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The IdP preflight's verdict (roles/proxy/tasks/idp_preflight.yml): what the identity
provider answered this host, judged the way njs judges it at run time.

The inputs are the expanded policy's ``njs_policy.oidc`` and the results of two
``ansible.builtin.uri`` fetches (the discovery document, skipped when ``jwks_uri`` is set; the
JWKS). No Ansible imports."""

from __future__ import annotations

import json

from collections.abc import Mapping, Sequence


def _document(result):
    """The JSON object a fetch returned: njs parses the body whatever its Content-Type (the uri
    module only JSON ones); anything but an object is {}."""
    if not isinstance(result, Mapping):
        return {}
    doc = result.get('json')
    if doc is None:
        content = result.get('content')
        if not isinstance(content, str) or not content.strip().startswith('{'):
            return {}
        try:
            doc = json.loads(content)
        except ValueError:
            return {}
    return doc if isinstance(doc, Mapping) else {}


def jwks_url(oidc, discovery):
    """auth.oidc.jwks_uri, else the discovery document's jwks_uri (None when neither)."""
    return oidc.get('jwks_uri') or _document(discovery).get('jwks_uri')


def _usable(key, algorithms):
    if not isinstance(key, Mapping):
        return False
    if key.get('kty') == 'RSA':
        return any(str(alg).startswith('RS') for alg in algorithms)
    return key.get('kty') == 'EC' and key.get('crv') == 'P-256' and 'ES256' in algorithms


def _answer(result):
    """'' when a fetch got 200, else what went wrong."""
    result = result if isinstance(result, Mapping) else {}
    return '' if result.get('status', -1) == 200 else str(result.get('msg') or 'no answer')


def _problem(oidc, discovery, jwks):
    """What makes the IdP unusable from this host, or None."""
    url = jwks_url(oidc, discovery)
    if oidc.get('jwks_uri') is None:
        failed = _answer(discovery)
        if failed:
            return '%s: %s' % (oidc['discovery_url'], failed)
        issuer = _document(discovery).get('issuer')
        if issuer != oidc['issuer']:
            return '%s: issuer is %s, expected %s (auth.oidc.issuer)' % (
                oidc['discovery_url'], 'missing' if issuer is None else issuer, oidc['issuer'])
    if not isinstance(url, str) or not url.startswith('https://'):
        return '%s: jwks_uri is %s, not an https URL' % (oidc['discovery_url'], url)
    failed = _answer(jwks)
    if failed:
        return '%s: %s' % (url, failed)
    keys = _document(jwks).get('keys')
    keys = keys if isinstance(keys, Sequence) and not isinstance(keys, str) else []
    algorithms = list(oidc.get('algorithms') or [])
    if not any(_usable(key, algorithms) for key in keys):
        return '%s: no key usable with %s' % (url, ', '.join(algorithms))
    return None


def verdict(oidc, discovery, jwks, ca_file=None):
    """{ok, detail, jwks_url}: detail names what failed, or what was verified with which CAs."""
    if not isinstance(oidc, Mapping) or not all(k in oidc for k in ('issuer', 'discovery_url')):
        raise ValueError('oidc: expected the expanded policy\'s njs_policy.oidc (auth.mode oidc)')
    problem = _problem(oidc, discovery, jwks)
    url = jwks_url(oidc, discovery)
    detail = problem or '%s verified with %s' % (url, ca_file or 'the system CAs')
    return {'ok': problem is None, 'detail': detail, 'jwks_url': url}
