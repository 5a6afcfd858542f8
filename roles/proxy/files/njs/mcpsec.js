/*
 * mcpsec.js: the MCP enforcement point's entry module (njs 0.8.9, njs engine).
 *
 * One js_content handler (handle) authenticates, inspects the decoded
 * JSON-RPC body, counts, sets js_vars for the audit log and the upstream,
 * then internalRedirects to @mcpsec_upstream (or @mcpsec_upstream_bind for
 * what opens or ends a session). Anything it cannot prove
 * safe is refused: fail closed.
 *
 * Globals provided by nginx (js_preload_object):
 *   mcpsec_policy  /etc/nginx/mcpsec/policy.json   (always)
 *   mcpsec_tokens  /etc/nginx/mcpsec/tokens.json   (bearer mode)
 *
 * Shared dict zones (js_shared_dict_zone):
 *   mcpsec_sessions  string            session id -> subject, pending initialize reservations
 *   mcpsec_counters  number            failed-authentication counters per client address
 *   mcpsec_toolcalls string, evict     per user per tool: times of the calls admitted in the window
 *   mcpsec_jwt       string, evict     verified JWT cache keyed by digest
 *   mcpsec_jwks      string            JWKS cache, single-flight lock, refetch stamps
 *
 * Language subset of njs 0.8.9: no destructuring, for...of, classes, spread,
 * default params, Map/Set; no await inside call arguments.
 *
 * Cost model: njs clones the VM for every request and runs this module's top
 * level again each time (every function declaration, regex literal and object
 * literal here is rebuilt per request, ~0.25 us per function on the build
 * machine): nothing is computed "once at load", and top-level work is kept small.
 */

import util from 'util.js';
import json from 'json.js';
import http from 'http.js';
import rpc from 'rpc.js';
import authz from 'authz.js';
import limits from 'limits.js';
import credentials from 'credentials.js';
import jwt from 'jwt.js';
import respond from 'respond.js';
import sessions from 'sessions.js';

var hasOwn = util.hasOwn;
var toolLimit = limits.toolLimit;
var slidingAdmit = limits.slidingAdmit;
var authFailKey = limits.authFailKey;
var overAuthFailLimit = limits.overAuthFailLimit;
var matchStaticToken = credentials.matchStaticToken;
var basicUser = credentials.basicUser;
var jwtCacheKey = jwt.jwtCacheKey;
var cachedOidc = jwt.cachedOidc;
var authenticateOidc = jwt.authenticateOidc;
var classifyMessage = rpc.classifyMessage;
var checkMcpHeaders = rpc.checkMcpHeaders;
var rolesOfUser = authz.rolesOfUser;
var toolAllowed = authz.toolAllowed;
var checkContentType = http.checkContentType;
var protocolVersionKnown = http.protocolVersionKnown;
var originAllowed = http.originAllowed;
var parseBearer = http.parseBearer;
var repeatedHeader = http.repeatedHeader;
var rpcError = respond.rpcError;
var bearerChallenge = respond.bearerChallenge;
var setVar = respond.setVar;
var send = respond.send;
var MESSAGES = respond.MESSAGES;
var deny = respond.deny;
var SESSION_ID_RE = sessions.SESSION_ID_RE;
var PENDING_SESSION_MS = sessions.PENDING_SESSION_MS;
var countSessions = sessions.countSessions;
var parseBody = json.parseBody;

function getPolicy() {
    /* global set by js_preload_object */
    return mcpsec_policy;
}

function authThrottled(r) {
    var w = overAuthFailLimit(r);
    if (w !== null) {
        deny(r, 429, 'auth_throttled', null, {'Retry-After': String(w.retryAfter)});
        return true;
    }
    return false;
}

function unauthorized(r, policy, reason, tokenGiven) {
    var w = authFailKey(r);
    try {
        ngx.shared.mcpsec_counters.incr(w.key, 1, 0, w.ttlMs);
    } catch (e) {
        ngx.log(ngx.WARN, 'mcpsec: auth failure counter: ' + e.message);
    }
    var challenges = [];
    if (policy.auth_mode === 'basic') {
        challenges.push('Basic realm="mcpsec", charset="UTF-8"');
    }
    challenges.push(bearerChallenge(policy, tokenGiven ? 'invalid_token' : null));
    deny(r, 401, reason, null, {'WWW-Authenticate': challenges});
}


/* Returns {subject, roles} or {reason, status, tokenGiven}; in oidc mode a
 * Promise of one (basic and bearer stay synchronous: no promise machinery
 * on their path). */
function authenticate(r, policy) {
    var mode = policy.auth_mode;
    var authz = r.headersIn.Authorization;
    if (mode === 'basic') {
        var user = basicUser(r);
        if (user === null) {
            return {reason: 'auth_throttled', status: 429, tokenGiven: false};
        }
        if (!user || !hasOwn(policy.users, user)) {
            return {reason: 'unknown_user', status: 401, tokenGiven: false};
        }
        return {subject: user, roles: rolesOfUser(policy, user)};
    }
    var token = parseBearer(authz);
    if (token === null) {
        return {reason: authz ? 'wrong_scheme' : 'no_credentials', status: 401, tokenGiven: false};
    }
    if (token === false) {
        return {reason: 'malformed_token', status: 401, tokenGiven: true};
    }
    if (mode === 'bearer') {
        var tokens = typeof mcpsec_tokens === 'undefined' ? {} : mcpsec_tokens;
        var who = matchStaticToken(tokens, token);
        if (who === null || !hasOwn(policy.users, who)) {
            return {reason: 'bad_token', status: 401, tokenGiven: true};
        }
        return {subject: who, roles: rolesOfUser(policy, who)};
    }
    if (mode === 'oidc' && policy.oidc) {
        var digest = jwtCacheKey(policy.oidc, token);
        var cached = cachedOidc(policy, digest);
        if (cached !== null) {
            return cached;
        }
        return authenticateOidc(r, policy, token, digest).then(function (a) {
            if (a.reason) {
                a.tokenGiven = true;
            }
            return a;
        });
    }
    return {reason: 'auth_mode', status: 500, tokenGiven: false};
}

/* Everything after authentication; synchronous. */
function enforce(r, policy, a) {
    var method = r.method;
    if (a.reason) {
        if (a.status === 401) {
            unauthorized(r, policy, a.reason, a.tokenGiven);
        } else {
            deny(r, a.status, a.reason, null, a.status === 503 ? {'Retry-After': '5'}
                 : (a.status === 429 ? {'Retry-After': '1'} : null));
        }
        return;
    }
    var subject = a.subject;
    setVar(r, 'mcpsec_subject', subject);
    setVar(r, 'mcpsec_roles', a.roles.join(','));

    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
        deny(r, 405, 'method', null, {'Allow': 'GET, POST, DELETE'});
        return;
    }
    var rep = repeatedHeader(r);
    if (rep !== null) {
        deny(r, 400, 'repeated_header:' + rep, null);
        return;
    }
    var origin = r.headersIn.Origin;
    if (origin !== undefined && !originAllowed(policy, origin)) {
        deny(r, 403, 'origin', null);
        return;
    }
    var pv = r.headersIn['MCP-Protocol-Version'];
    if (pv !== undefined && !protocolVersionKnown(pv)) {
        deny(r, 400, 'protocol_version', null);
        return;
    }
    if (r.headersIn['Content-Encoding'] !== undefined) {
        deny(r, 400, 'content_encoding', null);
        return;
    }

    var sid = r.headersIn['Mcp-Session-Id'];
    var sessions = ngx.shared.mcpsec_sessions;
    if (sid !== undefined) {
        if (!SESSION_ID_RE.test(sid)) {
            deny(r, 400, 'session_id', null);
            return;
        }
        var owner = sessions.get('s:' + sid);
        if (owner !== subject) {
            deny(r, 404, owner === undefined ? 'session_unknown' : 'session_foreign', null);
            return;
        }
        try {
            sessions.set('s:' + sid, subject);  /* re-arm the idle timeout */
        } catch (e) {
            ngx.log(ngx.WARN, 'mcpsec: session refresh: ' + e.message);
        }
    }

    if (method !== 'POST') {
        if (sid === undefined) {
            deny(r, 400, 'session_required', null);
            return;
        }
        if ((r.headersIn['Content-Length'] !== undefined && r.headersIn['Content-Length'] !== '0') ||
            r.headersIn['Transfer-Encoding'] !== undefined) {
            deny(r, 400, 'unexpected_body', null);
            return;
        }
        setVar(r, 'mcpsec_rpc_method', method === 'DELETE' ? 'session/delete' : 'stream/get');
        allow(r, method === 'DELETE' ? UPSTREAM_BIND : UPSTREAM);
        return;
    }

    var ctErr = checkContentType(r.headersIn['Content-Type']);
    if (ctErr !== null) {
        deny(r, 400, ctErr, null);
        return;
    }
    var buf;
    try {
        buf = r.requestBuffer;
    } catch (e) {
        /* the body spilled to a file: larger than we inspect, refuse */
        deny(r, 413, 'body_spilled', null);
        return;
    }
    var p = parseBody(buf);
    if (p.reason) {
        deny(r, 400, p.reason, null);
        return;
    }
    var info = classifyMessage(p.value);
    if (!info.ok) {
        deny(r, 400, info.reason, info.id);
        return;
    }
    setVar(r, 'mcpsec_rpc_method', info.method || info.kind);
    if (info.tool !== null) {
        setVar(r, 'mcpsec_tool', info.tool);
    }
    var hErr = checkMcpHeaders(info, r.headersIn['Mcp-Method'], r.headersIn['Mcp-Name']);
    if (hErr !== null) {
        deny(r, 400, hErr, info.id);
        return;
    }
    if (info.tool !== null) {
        if (!toolAllowed(policy, a.roles, info.tool)) {
            send(r, 403, 'tool_denied',
                 rpcError(info.id, 403, 'Forbidden: tool not permitted for this user'),
                 {'WWW-Authenticate': bearerChallenge(policy, 'insufficient_scope')});
            return;
        }
        var lim = toolLimit(policy, info.tool);
        if (lim !== null) {
            var slot = subject + '\n' + info.tool + '\n' + lim.window;
            var verdict;
            try {
                /* get and set run without yielding: within a worker this is atomic. */
                verdict = slidingAdmit(ngx.shared.mcpsec_toolcalls.get(slot), lim.calls,
                                       lim.window * 1000, Date.now());
                ngx.shared.mcpsec_toolcalls.set(slot, verdict.log);
            } catch (e) {
                deny(r, 503, 'counter_unavailable', info.id, {'Retry-After': '5'});
                return;
            }
            if (!verdict.admit) {
                deny(r, 429, 'tool_rate', info.id, {'Retry-After': String(verdict.retryAfter)});
                return;
            }
        }
    }
    if (info.method === 'initialize' && sid === undefined) {
        if (countSessions(subject) >= policy.max_sessions_per_user) {
            deny(r, 429, 'session_cap', info.id, {'Retry-After': '60'});
            return;
        }
        var pending = 'p:' + r.variables.request_id;
        try {
            sessions.set(pending, subject, PENDING_SESSION_MS);
        } catch (e) {
            deny(r, 503, 'session_store_full', info.id, {'Retry-After': '5'});
            return;
        }
        setVar(r, 'mcpsec_pending', pending);
        allow(r, UPSTREAM_BIND);
        return;
    }
    allow(r, UPSTREAM);
}

/* What opens or ends a session goes to UPSTREAM_BIND (its header filter keeps
 * the bindings); everything else to UPSTREAM, which runs no njs. */
var UPSTREAM = '@mcpsec_upstream';
var UPSTREAM_BIND = '@mcpsec_upstream_bind';

function allow(r, location) {
    setVar(r, 'mcpsec_decision', 'allow');   /* js_var default: deny; reason stays empty */
    r.internalRedirect(location);
}

function internalError(r, e) {
    ngx.log(ngx.ERR, 'mcpsec: ' + (e && e.stack ? e.stack : e));
    try {
        deny(r, 500, 'internal_error', null);
    } catch (e2) {
        /* response already started: nothing more to do */
    }
}

/* js_content for the MCP location */
function handle(r) {
    var policy = getPolicy();
    try {
        if (authThrottled(r)) {
            return;
        }
        var a = authenticate(r, policy);
        if (typeof a.then === 'function') {
            a.then(function (res) {
                try {
                    enforce(r, policy, res);
                } catch (e) {
                    internalError(r, e);
                }
            }, function (e) {
                internalError(r, e);
            });
            return;
        }
        enforce(r, policy, a);
    } catch (e) {
        internalError(r, e);
    }
}

/* js_content for "error_page 401 = @mcpsec_unauthorized": auth_basic refused
 * (basic mode). A bare "=" lets this handler choose 401 or 429. */
function basicUnauthorized(r) {
    if (authThrottled(r)) {
        return;
    }
    setVar(r, 'mcpsec_subject', '');
    var given = r.headersIn.Authorization;
    unauthorized(r, getPolicy(), given ? 'bad_credentials' : 'no_credentials',
                 !!given && /^bearer /i.test(given));
}

/* js_content for error_page targets (nginx-generated errors, limit_req 429). */
function nginxError(r) {
    var policy = getPolicy();
    var status = Number(r.variables.status) || 500;
    var pending = r.variables.mcpsec_pending;
    if (pending) {
        /* an initialize that never reached the backend holds no session slot */
        ngx.shared.mcpsec_sessions.delete(pending);
    }
    if (status === 401) {
        basicUnauthorized(r);
        return;
    }
    var reasons = {413: 'body_too_large', 429: 'rate_limit', 502: 'upstream_unavailable',
                   503: 'upstream_unavailable', 504: 'upstream_timeout'};
    if (!hasOwn(MESSAGES, status)) {
        status = 500;
    }
    var extra = null;
    if (status === 429) {
        extra = {'Retry-After': r.variables.mcpsec_limit_retry_after || '1'};
    } else if (status === 503) {
        extra = {'Retry-After': '5'};
    }
    deny(r, status, hasOwn(reasons, status) ? reasons[status] : 'nginx_' + status, null, extra);
}

export default {
    handle: handle,
    upstreamHeaders: sessions.upstreamHeaders,
    sessionGone: sessions.sessionGone,
    basicRealm: credentials.basicRealm,
    nginxError: nginxError,
    basicUnauthorized: basicUnauthorized
};
