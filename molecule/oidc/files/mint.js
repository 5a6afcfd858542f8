// Mint a JWT for the tests with any claims and a chosen (mis)signing.
// Usage: node mint.js <keys.json> '<spec JSON>'
// spec: {claims: {...}, exp_in: 3600|null (null: no exp), nbf_in, alg: RS256|ES256|none|HS256,
//        kid (header kid; default the key's), key: rsa|ec|rogue, tamper: {claim: value}}
'use strict';
const crypto = require('crypto');
const fs = require('fs');

const keys = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const spec = JSON.parse(process.argv[3]);
const b64u = (b) => Buffer.from(b).toString('base64url');
const now = Math.floor(Date.now() / 1000);

const claims = Object.assign({iat: now}, spec.claims || {});
if (spec.exp_in !== null) claims.exp = now + (spec.exp_in === undefined ? 3600 : spec.exp_in);
if (spec.nbf_in !== undefined) claims.nbf = now + spec.nbf_in;
const alg = spec.alg || 'RS256';
const jwk = keys[spec.key || (alg === 'ES256' ? 'ec' : 'rsa')];
const header = {alg, typ: 'JWT', kid: spec.kid || jwk.kid};
const input = b64u(JSON.stringify(header)) + '.' + b64u(JSON.stringify(claims));
const privateKey = crypto.createPrivateKey({key: jwk, format: 'jwk'});
let sig;
if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), privateKey);
else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), {key: privateKey, dsaEncoding: 'ieee-p1363'});
else if (alg === 'HS256') {
  // the classic confusion attack: HMAC keyed with the RSA public key (PEM)
  const pem = crypto.createPublicKey(privateKey).export({type: 'spki', format: 'pem'});
  sig = crypto.createHmac('sha256', pem).update(input).digest();
} else sig = Buffer.alloc(0);
let token = input + '.' + b64u(sig);
if (spec.tamper) {
  const parts = token.split('.');
  parts[1] = b64u(JSON.stringify(Object.assign({}, claims, spec.tamper)));
  token = parts.join('.');
}
process.stdout.write(token);
