// node --import <this file>: every HTTP request of the conformance runner to the gateway
// carries the gateway's credentials. The runner has no header option; its MCP client uses
// Node's fetch and its DNS-rebinding check undici's request(), and both send through the
// one undici global dispatcher set here.
//   MCPSEC_CONFORMANCE_ORIGIN  the origin the header is added for (no other origin gets it)
//   MCPSEC_CONFORMANCE_AUTH    the Authorization value (environment, never argv)
// It lives next to node_modules/undici (the runner's own dependency) so the import resolves.
import { Agent, setGlobalDispatcher } from 'undici';

const origin = process.env.MCPSEC_CONFORMANCE_ORIGIN;
const auth = process.env.MCPSEC_CONFORMANCE_AUTH;
if (!origin || !auth) {
  throw new Error('auth_preload.mjs: set MCPSEC_CONFORMANCE_ORIGIN and MCPSEC_CONFORMANCE_AUTH');
}
const wanted = new URL(origin).origin;
// The TLS name checked is the URL's host, whatever Host header a request sets (undici
// otherwise takes the server name from Host, and dns-rebinding-protection's forged Host
// would fail the handshake instead of reaching the gateway's Host check).
const servername = new URL(origin).hostname.replace(/^\[|\]$/g, '');

function withAuthorization(headers) {
  if (headers == null) return { authorization: auth };
  if (Array.isArray(headers)) {
    // Either a flat [name, value, ...] list or a list of [name, value] pairs.
    if (headers.length && Array.isArray(headers[0])) {
      return headers.filter((h) => String(h[0]).toLowerCase() !== 'authorization').concat([['authorization', auth]]);
    }
    const out = [];
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() !== 'authorization') out.push(headers[i], headers[i + 1]);
    }
    return out.concat(['authorization', auth]);
  }
  const out = {};
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase() !== 'authorization') out[name] = headers[name];
  }
  out.authorization = auth;
  return out;
}

class AuthorizingAgent extends Agent {
  dispatch(opts, handler) {
    let target = null;
    try {
      target = new URL(String(opts.origin)).origin;
    } catch {
      target = null;
    }
    if (target === wanted) {
      return super.dispatch({ ...opts, servername, headers: withAuthorization(opts.headers) }, handler);
    }
    return super.dispatch(opts, handler);
  }
}

setGlobalDispatcher(new AuthorizingAgent());
