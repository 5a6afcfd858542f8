// Signing keys of the test IdP (run once by prepare.yml): the RSA and EC P-256 keys it
// publishes, and a "rogue" RSA key that reuses the RSA kid but is never published.
'use strict';
const crypto = require('crypto');
const fs = require('fs');

const out = process.argv[2];
const priv = (kp, kid, alg) => Object.assign(kp.privateKey.export({format: 'jwk'}), {kid, alg, use: 'sig'});
const keys = {
  rsa: priv(crypto.generateKeyPairSync('rsa', {modulusLength: 2048}), 'rsa-1', 'RS256'),
  ec: priv(crypto.generateKeyPairSync('ec', {namedCurve: 'P-256'}), 'ec-1', 'ES256'),
  rogue: priv(crypto.generateKeyPairSync('rsa', {modulusLength: 2048}), 'rsa-1', 'RS256'),
};
fs.writeFileSync(out, JSON.stringify(keys), {mode: 0o600});
