# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The IdP preflight's verdict (roles/proxy/tasks/idp_preflight.yml, the idp_preflight filter):
each case the Jinja program it replaces told apart, with the same messages."""

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mcpsec.gateway.plugins.filter.idp_preflight import idp_preflight

ISSUER = 'https://idp.example.com/realms/main'
DISCOVERY_URL = ISSUER + '/.well-known/openid-configuration'
JWKS = ISSUER + '/protocol/openid-connect/certs'
OIDC = {'issuer': ISSUER, 'discovery_url': DISCOVERY_URL, 'jwks_uri': None, 'algorithms': ['RS256', 'ES256']}
RSA = {'kty': 'RSA', 'n': 'x', 'e': 'AQAB'}
EC = {'kty': 'EC', 'crv': 'P-256', 'x': 'x', 'y': 'y'}


def ok(doc, as_text=False):
    """A uri result with status 200; as_text: a body the uri module did not parse (not a JSON Content-Type)."""
    return {'status': 200, 'content': json.dumps(doc)} if as_text else {'status': 200, 'json': doc}


DISCOVERED = ok({'issuer': ISSUER, 'jwks_uri': JWKS})
UNREACHABLE = {'status': -1, 'msg': 'Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] '
                                    'Connection refused>'}


@pytest.mark.parametrize('oidc, discovery, jwks, ok_, detail', [
    (OIDC, DISCOVERED, ok({'keys': [RSA]}), True, JWKS + ' verified with /etc/mcpsec/idp-ca.pem'),
    (OIDC, ok({'issuer': ISSUER, 'jwks_uri': JWKS}, True), ok({'keys': [EC]}, True), True, JWKS + ' verified with'),
    # discovery unreachable / not 200 (TLS errors included: the uri module's msg)
    (OIDC, UNREACHABLE, {}, False, DISCOVERY_URL + ': Status code was -1 and not [200]: Request failed'),
    (OIDC, {}, {}, False, DISCOVERY_URL + ': no answer'),
    (OIDC, {'status': 404, 'msg': 'HTTP Error 404: Not Found'}, {}, False, DISCOVERY_URL + ': HTTP Error 404: Not Found'),
    # wrong or missing issuer
    (OIDC, ok({'issuer': 'https://evil.example.com', 'jwks_uri': JWKS}), {}, False,
     DISCOVERY_URL + ': issuer is https://evil.example.com, expected ' + ISSUER + ' (auth.oidc.issuer)'),
    (OIDC, ok({'jwks_uri': JWKS}), {}, False, DISCOVERY_URL + ': issuer is missing, expected ' + ISSUER),
    (OIDC, {'status': 200, 'content': '<html>login</html>'}, {}, False, DISCOVERY_URL + ': issuer is missing'),
    (OIDC, {'status': 200, 'content': '{broken'}, {}, False, DISCOVERY_URL + ': issuer is missing'),
    # no (https) JWKS URL
    (OIDC, ok({'issuer': ISSUER}), {}, False, DISCOVERY_URL + ': jwks_uri is None, not an https URL'),
    (OIDC, ok({'issuer': ISSUER, 'jwks_uri': 'http://idp.example.com/certs'}), {}, False,
     DISCOVERY_URL + ': jwks_uri is http://idp.example.com/certs, not an https URL'),
    # JWKS unreachable, or no usable key
    (OIDC, DISCOVERED, UNREACHABLE, False, JWKS + ': Status code was -1'),
    (OIDC, DISCOVERED, ok({'keys': []}), False, JWKS + ': no key usable with RS256, ES256'),
    (OIDC, DISCOVERED, ok({'keys': 'none'}), False, JWKS + ': no key usable with RS256, ES256'),
    (OIDC, DISCOVERED, ok(['not', 'an', 'object']), False, JWKS + ': no key usable'),
    (OIDC, DISCOVERED, ok({'keys': [{'kty': 'EC', 'crv': 'P-384'}, {'kty': 'oct'}, 'x']}), False, JWKS + ': no key usable'),
    (dict(OIDC, algorithms=['ES256']), DISCOVERED, ok({'keys': [RSA]}), False, JWKS + ': no key usable with ES256'),
    (dict(OIDC, algorithms=['RS256']), DISCOVERED, ok({'keys': [EC]}), False, JWKS + ': no key usable with RS256'),
    # jwks_uri configured: no discovery (its task skipped), the issuer is not fetched
    (dict(OIDC, jwks_uri=JWKS), {'skipped': True}, ok({'keys': [RSA]}), True, JWKS + ' verified with'),
])
def test_verdicts(oidc, discovery, jwks, ok_, detail):
    got = idp_preflight(oidc, discovery, jwks, ca_file='/etc/mcpsec/idp-ca.pem')
    assert got['ok'] is ok_ and got['detail'].startswith(detail), got


def test_without_a_ca_file_the_system_cas_are_named():
    got = idp_preflight(OIDC, DISCOVERED, ok({'keys': [RSA]}))
    assert got == {'ok': True, 'detail': JWKS + ' verified with the system CAs', 'jwks_url': JWKS}


@pytest.mark.parametrize('oidc, discovery, url', [
    (OIDC, DISCOVERED, JWKS), (OIDC, ok({'issuer': ISSUER, 'jwks_uri': JWKS}, True), JWKS), (OIDC, {}, None),
    (dict(OIDC, jwks_uri='https://other/certs'), DISCOVERED, 'https://other/certs'),
])
def test_the_jwks_url_to_fetch_before_the_jwks_is_fetched(oidc, discovery, url):
    assert idp_preflight(oidc, discovery)['jwks_url'] == url


def test_no_oidc_section_is_named():
    with pytest.raises(AnsibleFilterError, match='idp_preflight: oidc: expected'):
        idp_preflight(None, {})
