/*
 * respond: responses: JSON-RPC error bodies, challenges, the js_vars the audit log reads.
 */

import util from 'util.js';
import limits from 'limits.js';

var hasOwn = util.hasOwn;
var clip = util.clip;
var joinList = util.joinList;

var RPC_CODES = {400: -32600, 401: -32001, 403: -32003, 404: -32001, 405: -32600, 406: -32600, 413: -32600,
                 415: -32600,
                 429: -32029, 500: -32603, 502: -32603, 503: -32603, 504: -32603};

function rpcError(id, status, message) {
    var code = hasOwn(RPC_CODES, status) ? RPC_CODES[status] : -32603;
    return JSON.stringify({jsonrpc: '2.0', id: id === undefined ? null : id,
                           error: {code: code, message: message}});
}

function quoteParam(s) {
    return '"' + String(s).replace(/["\\]/g, '') + '"';
}

/* The scopes a client should ask for: the required ones when the policy has
 * any (least privilege: never the scopes that grant extra roles), else every
 * advertised scope. */
function challengeScope(policy) {
    if (policy.oidc !== null && policy.oidc.required_scopes.length > 0) {
        return joinList(policy.oidc.required_scopes, ' ');
    }
    return policy.scope;
}

/* `scope` overrides the scopes named (challengeScope by default). */
function bearerChallenge(policy, error, scope) {
    var c = 'Bearer ';
    if (error) {
        c += 'error=' + quoteParam(error) + ', ';
    }
    c += 'resource_metadata=' + quoteParam(policy.resource_metadata_url);
    var s = scope ? scope : challengeScope(policy);
    if (s) {
        c += ', scope=' + quoteParam(s);
    }
    return c;
}

/* What a client reads for each auth mode. The RFC 9728 pointer (resource_metadata) goes
 * only where an authorization server exists (oidc): in basic and bearer mode it sends
 * clients such as mcp-remote into OAuth discovery and registration that cannot succeed. */
var AUTH_HINTS = {
    basic: 'this gateway uses HTTP Basic authentication (no OAuth): check the username and password ' +
           'in your client config (header "Authorization: Basic <base64 of user:password>")',
    bearer: 'this gateway uses static bearer tokens (no OAuth): check the token in your client config ' +
            '(header "Authorization: Bearer <token>")',
    oidc: 'this gateway takes OAuth access tokens (JWT) from its OpenID Connect provider; ' +
          'see the authorization_servers in its /.well-known/oauth-protected-resource'
};

/* WWW-Authenticate values of a 401 for the policy's auth mode. */
function authChallenges(policy, tokenGiven) {
    var error = tokenGiven ? 'error="invalid_token"' : null;
    if (policy.auth_mode === 'basic') {
        return ['Basic realm="mcpsec", charset="UTF-8"'];
    }
    if (policy.auth_mode === 'bearer') {
        return ['Bearer realm="mcpsec"' + (error ? ', ' + error : '')];
    }
    return [bearerChallenge(policy, tokenGiven ? 'invalid_token' : null)];
}

/* Headers of a 403: step-up (insufficient_scope) only in oidc mode, where a token with
 * more scope can be obtained; elsewhere the JSON-RPC error says it all. */
function forbiddenHeaders(policy, scope) {
    return policy.auth_mode === 'oidc' ? {'WWW-Authenticate': bearerChallenge(policy, 'insufficient_scope', scope)} : null;
}

function unauthorizedMessage(policy, reason) {
    var hint = hasOwn(AUTH_HINTS, policy.auth_mode) ? AUTH_HINTS[policy.auth_mode] : '';
    return 'Unauthorized (' + reason + '): ' + hint;
}

/* Every character outside printable ASCII becomes \uXXXX text (a character
 * past U+FFFF its UTF-16 surrogate pair, so no two characters share a text)
 * before it reaches a variable the audit log reads: nginx's escape=json leaves
 * U+2028, U+2029 and U+0085 raw, which line-splitting readers take for line
 * ends. The backslash is escaped too, so the result decodes one way only. */
var UNPRINTABLE_RE = /[^\x20-\x5b\x5d-\x7e]/;
var UNPRINTABLE_ALL_RE = /[^\x20-\x5b\x5d-\x7e]/g;

function hex4(n) {
    return '\\u' + ('000' + n.toString(16)).slice(-4);
}

function escapeText(s) {
    if (!UNPRINTABLE_RE.test(s)) {
        return s;
    }
    return s.replace(UNPRINTABLE_ALL_RE, function (c) {
        var cp = c.codePointAt(0);
        if (cp > 0xffff) {
            cp -= 0x10000;
            return hex4(0xd800 + (cp >> 10)) + hex4(0xdc00 + (cp & 0x3ff));
        }
        return hex4(cp);
    });
}

/* The one form of an authenticated identity, used for every key (session
 * bindings, slots, route MACs, counters, limit zones), the audit log and the
 * backend's X-Mcpsec-Subject: its escapeText form, which is injective, or for
 * one longer than SUBJECT_MAX that form would take, '\h' and the base64url
 * SHA-256 of the subject (no escaped text holds a backslash before anything
 * but 'u', so the two forms never meet). Nothing is clipped. */
var SUBJECT_MAX = 128;

function subjectKey(s) {
    var e = escapeText(String(s));
    if (e.length <= SUBJECT_MAX) {
        return e;
    }
    return '\\h' + require('crypto').createHash('sha256').update(String(s)).digest('base64url');
}

function setVar(r, name, value) {
    r.variables[name] = value === null || value === undefined ? '' : escapeText(clip(value));
}

function send(r, status, reason, body, headers) {
    /* Every 4xx the proxy answers but 429 (400, 401, 403, 404, 405, 406, 413,
     * 415, ...) counts toward the client's refusal limit, which limits.gate
     * checks before the credential or the body is looked at; a store that
     * cannot count it refuses instead (fail closed). */
    if (status >= 400 && status < 500 && status !== 429 && !limits.countFor(r, 'refusals')) {
        status = 503;
        reason = 'counter_store_full';
        body = rpcError(null, 503, MESSAGES[503] + ': ' + reason);
        headers = {'Retry-After': '5'};
    }
    setVar(r, 'mcpsec_decision', 'deny');
    setVar(r, 'mcpsec_reason', reason);
    /* Cache-Control: no-store comes from the server's security headers */
    r.headersOut['Content-Type'] = 'application/json';
    if (headers) {
        var names = Object.keys(headers);
        for (var i = 0; i < names.length; i++) {
            r.headersOut[names[i]] = headers[names[i]];
        }
    }
    r.return(status, body);
}

var MESSAGES = {
    400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Session not found',
    405: 'Method not allowed', 406: 'Not acceptable', 413: 'Request body too large',
    415: 'Unsupported media type', 429: 'Too many requests',
    500: 'Internal error', 502: 'Upstream unavailable', 503: 'Service unavailable',
    504: 'Upstream timeout'
};

function deny(r, status, reason, id, extra) {
    send(r, status, reason, rpcError(id, status, MESSAGES[status] + ': ' + reason), extra);
}

/* A refusal with its own JSON-RPC error code, readable message and data. */
function denyRpc(r, status, reason, id, code, message, data, extra) {
    var error = {code: code, message: message};
    if (data !== undefined && data !== null) {
        error.data = data;
    }
    send(r, status, reason, JSON.stringify({jsonrpc: '2.0', id: id === undefined ? null : id,
                                            error: error}), extra);
}

/* A name from the request, quoted for a message (bounded, JSON-escaped). */
function quoteName(s) {
    return JSON.stringify(clip(s));
}

export default {
    rpcError: rpcError,
    bearerChallenge: bearerChallenge,
    authChallenges: authChallenges,
    forbiddenHeaders: forbiddenHeaders,
    unauthorizedMessage: unauthorizedMessage,
    setVar: setVar,
    escapeText: escapeText,
    subjectKey: subjectKey,
    send: send,
    deny: deny,
    denyRpc: denyRpc,
    quoteName: quoteName,
    MESSAGES: MESSAGES
};
