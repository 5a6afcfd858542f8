// The test identity provider: oauth2-mock-server over HTTPS on loopback, publishing
// the RSA and EC keys of keys.json. Its token endpoint (client_credentials) takes
// "aud" natively; "sub" and "roles" (comma-separated) are added from the form.
import { readFileSync } from 'node:fs';
import { OAuth2Server } from 'oauth2-mock-server';

const dir = process.env.IDP_DIR;
const keys = JSON.parse(readFileSync(`${dir}/keys.json`, 'utf8'));
const server = new OAuth2Server(`${dir}/idp-key.pem`, `${dir}/idp-cert.pem`);
await server.issuer.keys.add(keys.rsa);
await server.issuer.keys.add(keys.ec);
server.issuer.url = process.env.IDP_ISSUER;
server.service.on('beforeTokenSigning', (token, req) => {
  const body = req.body || {};
  if (typeof body.sub === 'string') token.payload.sub = body.sub;
  if (typeof body.roles === 'string') token.payload.roles = body.roles.split(',').filter(Boolean);
});
await server.start(Number(process.env.IDP_PORT), '127.0.0.1');
console.log(`test IdP ${server.issuer.url} on 127.0.0.1:${process.env.IDP_PORT}`);
