// Generate keys, JWKS documents and JWTs for tests/njs (node, run inside the test container).
// Usage: node gen_fixtures.js <out-dir> <issuer> <audience>
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const [out, issuer, audience] = process.argv.slice(2);

const b64u = (b) => Buffer.from(b).toString('base64url');
const rsa1 = crypto.generateKeyPairSync('rsa', {modulusLength: 2048});
const rsa2 = crypto.generateKeyPairSync('rsa', {modulusLength: 2048});   // published later (rotation)
const rogue = crypto.generateKeyPairSync('rsa', {modulusLength: 2048});  // never published
const ec1 = crypto.generateKeyPairSync('ec', {namedCurve: 'P-256'});
const jwk = (kp, kid, alg) => Object.assign(kp.publicKey.export({format: 'jwk'}), {kid, alg, use: 'sig'});

const jwks = {keys: [jwk(rsa1, 'rsa-1', 'RS256'), jwk(ec1, 'ec-1', 'ES256')]};
const jwksRotated = {keys: jwks.keys.concat([jwk(rsa2, 'rsa-2', 'RS256')])};

const now = Math.floor(Date.now() / 1000);
function sign(header, claims, how) {
  const input = b64u(JSON.stringify(header)) + '.' + b64u(JSON.stringify(claims));
  let sig;
  if (how.rsa) sig = crypto.sign('sha256', Buffer.from(input), how.rsa.privateKey);
  else if (how.ec) sig = crypto.sign('sha256', Buffer.from(input), {key: how.ec.privateKey, dsaEncoding: how.der ? 'der' : 'ieee-p1363'});
  else if (how.hmac !== undefined) sig = crypto.createHmac('sha256', how.hmac).update(input).digest();
  else sig = Buffer.alloc(0);
  return input + '.' + b64u(sig);
}
const base = (extra) => Object.assign({iss: issuer, aud: audience, sub: 'user-1', exp: now + 3600, iat: now,
                                       scope: 'openid mcp:tools', realm_access: {roles: ['reader']}}, extra || {});
const without = (claim, extra) => { const c = base(extra); delete c[claim]; return c; };
const RS = (kid) => ({alg: 'RS256', typ: 'JWT', kid: kid || 'rsa-1'});
const ES = (kid) => ({alg: 'ES256', typ: 'JWT', kid: kid || 'ec-1'});
const pem = rsa1.publicKey.export({type: 'spki', format: 'pem'});

const t = {
  rs256_reader: sign(RS(), base(), {rsa: rsa1}),
  rs256_admin: sign(RS(), base({sub: 'admin-1', realm_access: {roles: ['admin']}}), {rsa: rsa1}),
  es256_reader: sign(ES(), base({sub: 'user-2'}), {ec: ec1}),
  rs256_aud_array: sign(RS(), base({sub: 'user-6', aud: ['other', audience]}), {rsa: rsa1}),
  rs256_noroles: sign(RS(), base({sub: 'user-3', realm_access: {}}), {rsa: rsa1}),
  rs256_proto_roles: sign(RS(), base({sub: 'user-4', realm_access: {roles: ['__proto__', 'constructor']}}), {rsa: rsa1}),
  rs256_nbf_past: sign(RS(), base({sub: 'user-7', nbf: now - 10}), {rsa: rsa1}),
  rs256_rotated: sign(RS('rsa-2'), base({sub: 'user-5'}), {rsa: rsa2}),
  // scopes: none (required mcp:tools missing), scp list instead of scope, a scope that grants a role
  rs256_noscope: sign(RS(), without('scope', {sub: 'user-8'}), {rsa: rsa1}),
  rs256_scp_list: sign(RS(), without('scope', {sub: 'user-9', scp: ['mcp:tools']}), {rsa: rsa1}),
  rs256_scope_admin: sign(RS(), base({sub: 'user-10', scope: 'mcp:tools mcp:admin', realm_access: {roles: []}}), {rsa: rsa1}),
  // issue 19 item 5: subjects that are not printable ASCII, long ones, and two that an escape
  // without surrogate pairs would merge (U+1F600 and U+F600)
  sub_jose: sign(RS(), base({sub: 'jos\u00e9'}), {rsa: rsa1}),
  sub_backslash: sign(RS(), base({sub: 'CONTOSO\\alice'}), {rsa: rsa1}),
  sub_300: sign(RS(), base({sub: 'x'.repeat(299) + 'a'}), {rsa: rsa1}),
  sub_300b: sign(RS(), base({sub: 'x'.repeat(299) + 'b'}), {rsa: rsa1}),
  sub_emoji: sign(RS(), base({sub: '\u{1F600}'}), {rsa: rsa1}),
  sub_f600: sign(RS(), base({sub: '\uF600'}), {rsa: rsa1}),
  expired: sign(RS(), base({exp: now - 3600}), {rsa: rsa1}),
  nbf_future: sign(RS(), base({nbf: now + 3600}), {rsa: rsa1}),
  wrong_iss: sign(RS(), base({iss: issuer + '-evil'}), {rsa: rsa1}),
  wrong_aud: sign(RS(), base({aud: 'https://other.example/mcp'}), {rsa: rsa1}),
  no_exp: sign(RS(), (() => { const c = base(); delete c.exp; return c; })(), {rsa: rsa1}),
  string_exp: sign(RS(), base({exp: String(now + 3600)}), {rsa: rsa1}),
  crlf_sub: sign(RS(), base({sub: 'evil\r\nX-Mcpsec-Subject: admin-1'}), {rsa: rsa1}),
  no_sub: sign(RS(), (() => { const c = base(); delete c.sub; return c; })(), {rsa: rsa1}),
  alg_none: sign({alg: 'none', typ: 'JWT', kid: 'rsa-1'}, base(), {}),
  alg_none_nokid: sign({alg: 'none', typ: 'JWT'}, base(), {}),
  hs256_pubkey_pem: sign({alg: 'HS256', typ: 'JWT', kid: 'rsa-1'}, base(), {hmac: pem}),
  hs256_empty_key: sign({alg: 'HS256', typ: 'JWT', kid: 'rsa-1'}, base(), {hmac: ''}),
  unknown_kid: sign(RS('nope'), base(), {rsa: rogue}),
  unpublished_key_known_kid: sign(RS('rsa-1'), base(), {rsa: rogue}),
  es256_with_rsa_kid: sign(ES('rsa-1'), base(), {ec: ec1}),
  rs256_with_ec_kid: sign(RS('ec-1'), base(), {rsa: rsa1}),
  es256_der_sig: sign(ES(), base(), {ec: ec1, der: true}),
  crit_header: sign(Object.assign(RS(), {crit: ['exp']}), base(), {rsa: rsa1}),
  bad_typ: sign(Object.assign(RS(), {typ: 'id_token+jwt'}), base(), {rsa: rsa1}),
};
// tampered: valid signature, payload changed afterwards (roles escalated)
{
  const parts = t.rs256_reader.split('.');
  parts[1] = b64u(JSON.stringify(base({realm_access: {roles: ['admin']}})));
  t.tampered_payload = parts.join('.');
}
// duplicate claim: signed, but "sub" twice in the payload JSON
{
  const h = b64u(JSON.stringify(RS()));
  const c = JSON.stringify(base()).replace('"sub":"user-1"', '"sub":"user-1","sub":"admin-1"');
  const input = h + '.' + b64u(c);
  t.duplicate_claim = input + '.' + b64u(crypto.sign('sha256', Buffer.from(input), rsa1.privateKey));
}
// many distinct unknown kids (for the refetch throttle)
t.unknown_kids = [];
for (let i = 0; i < 5; i++) t.unknown_kids.push(sign(RS('ghost-' + i), base(), {rsa: rogue}));

fs.writeFileSync(out + '/jwks.json', JSON.stringify(jwks));
fs.writeFileSync(out + '/jwks-rotated.json', JSON.stringify(jwksRotated));
fs.writeFileSync(out + '/openid-configuration', JSON.stringify({issuer, jwks_uri: issuer + '/protocol/openid-connect/certs'}));
// issue 19 item 1: what a WHATWG URL parser (as the MCP SDKs use) makes of each resource URI;
// unit.js holds njs's uri.uriProblem to it (null for an input the parser cannot read)
const uriInputs = [
  'demo://resource/static/document/a.md', 'demo://resource/dynamic/text/1', 'file:///exact.txt',
  'https://example.com/docs/a%20b.md', 'demo://resource/static/document/a.md?x=..#..', 'demo:opaque/path',
  'x://host/mid/y.md', 'https://example.com/', 'demo://resource/static/document/%C3%A9.md',
  'demo://resource/static/document/../../dynamic/text/1', 'demo://resource/static/document/%2e%2e/%2e%2e/dynamic/text/1',
  'demo://resource/static/document/%2E%2e/%2e%2E/dynamic/text/1', 'demo://resource/static/document/.%2E/.%2e/dynamic/text/1',
  'demo://resource/static/document/./a.md', 'demo://resource/static/document/..\\..\\dynamic/text/1',
  'https://example.com/docs/..\\..\\secret', 'demo://resource/static/document/..%2F..%2Fdynamic/text/1',
  'demo://resource/static/document/..%5c..%5cdynamic', 'demo://resource/static/document/\t../../dynamic/text/1',
  'demo://resource/static/document/\n../x', 'demo://resource/static/document/a b', 'demo://resource/static/document/\u00e9',
  'DEMO://resource/static/document/a.md', 'https://EXAMPLE.com/a', 'demo://resource/static/document/%61.md',
  'demo://resource/static/document/%zz', 'demo://resource/static/document/%2', 'demo:a/../b', 'no-scheme/a',
];
const uriCases = {};
for (const u of uriInputs) {
  try { uriCases[u] = new URL(u).href; } catch (e) { uriCases[u] = null; }
}
fs.writeFileSync(out + '/fixtures.json', JSON.stringify({issuer, audience, now, jwks, jwks_rotated: jwksRotated, tokens: t,
                                                         uri_cases: uriCases}, null, 1));
