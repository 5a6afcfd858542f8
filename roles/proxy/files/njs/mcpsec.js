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
 *   mcpsec_sessions  string            session bindings and the session caps' slots (sessions.js)
 *   mcpsec_counters  number            failed-authentication and refusal counters per client (IPv6: /64)
 *   mcpsec_toolslots number            per user per tool: one slot per call admitted in the window
 *   (sizes and why none of these evicts: njs_http.conf.j2)
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
import lists from 'lists.js';
import route from 'route.js';
import inflight from 'inflight.js';
import uri from 'uri.js';
import servers from 'servers.js';

var hasOwn = util.hasOwn;
var toolLimit = limits.toolLimit;
var matchStaticToken = credentials.matchStaticToken;
var basicUser = credentials.basicUser;
var jwtCacheKey = jwt.jwtCacheKey;
var cachedOidc = jwt.cachedOidc;
var authenticateOidc = jwt.authenticateOidc;
var classifyMessage = rpc.classifyMessage;
var checkMcpHeaders = rpc.checkMcpHeaders;
var rolesOfUser = authz.rolesOfUser;
var checkContentType = http.checkContentType;
var protocolVersionKnown = http.protocolVersionKnown;
var originAllowed = http.originAllowed;
var parseBearer = http.parseBearer;
var repeatedHeader = http.repeatedHeader;
var rpcError = respond.rpcError;
var setVar = respond.setVar;
var send = respond.send;
var MESSAGES = respond.MESSAGES;
var deny = respond.deny;
var SESSION_ID_RE = sessions.SESSION_ID_RE;
var parseBody = json.parseBody;

/* The policy as the request's MCP server sees it (servers.js), or null when
 * policy.json is not the format this code reads or names no such server:
 * every such request is refused (fail closed). */
function getPolicy(r) {
    var p = servers.policy();
    return p === null ? null : servers.view(r, p);
}

/* 500 for a request no policy view covers; true when it answered. */
function refuseNoPolicy(r, policy) {
    if (policy !== null) {
        return false;
    }
    deny(r, 500, servers.policy() === null ? 'policy_version' : 'server_unknown', null);
    return true;
}

function authThrottled(r) {
    var g = limits.gate(r);
    if (g !== null) {
        deny(r, g.status, g.reason, null, {'Retry-After': String(g.retryAfter)});
        return true;
    }
    return false;
}

function unauthorized(r, policy, reason, tokenGiven) {
    if (!limits.countFor(r, 'authFailures')) {
        deny(r, 503, 'counter_store_full', null, {'Retry-After': '5'});
        return;
    }
    send(r, 401, reason, rpcError(null, 401, respond.unauthorizedMessage(policy, reason)),
         {'WWW-Authenticate': respond.authChallenges(policy, tokenGiven)});
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

/* The protocol versions this gateway serves: every revision with sessions.
 * 2026-07-28 (stateless) is answered with -32022 naming these, so that
 * clients fall back to a session (docs/security.md "Protocol revisions": supergateway
 * 4.0.0 starts a server process for every stateless request). */
function sessionVersions() {
    return ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
}
var MODERN_VERSION = '2026-07-28';
var UNSUPPORTED_PROTOCOL_VERSION = -32022;
var HEADER_MISMATCH = -32020;
var METHOD_NOT_FOUND = -32601;
var INVALID_PARAMS = -32602;

/* 403 with a readable JSON-RPC error carrying the id (insufficient_scope in oidc mode). */
function forbid(r, policy, reason, id, message, scope) {
    respond.denyRpc(r, 403, reason, id, -32003, 'Forbidden: ' + message, null,
                    respond.forbiddenHeaders(policy, scope));
}

/* Refusals that depend on the subject alone: a token without a required
 * scope, roles that grant nothing. Returns true when it answered. */
function refuseSubject(r, policy, a, id) {
    if (policy.auth_mode === 'oidc') {
        var missing = jwt.missingScopes(policy.oidc, a.scopes);
        if (missing.length > 0) {
            forbid(r, policy, 'scope_missing', id, 'the token lacks the required scope(s) ' +
                   missing.join(' '), util.joinList(policy.oidc.required_scopes, ' '));
            return true;
        }
    }
    if (!authz.grantsAnything(policy, a.roles)) {
        forbid(r, policy, 'no_grants', id, 'the roles of this user grant no tool, resource or prompt');
        return true;
    }
    return false;
}

/* Header checks every request passes. Returns true when it answered. */
function refuseHeaders(r, policy) {
    var rep = repeatedHeader(r);
    if (rep !== null) {
        deny(r, 400, 'repeated_header:' + rep, null);
        return true;
    }
    var origin = r.headersIn.Origin;
    if (origin !== undefined && !originAllowed(policy, origin)) {
        deny(r, 403, 'origin', null);
        return true;
    }
    var pv = r.headersIn['MCP-Protocol-Version'];
    if (pv !== undefined && !protocolVersionKnown(pv)) {
        deny(r, 400, 'protocol_version', null);
        return true;
    }
    if (r.headersIn['Content-Encoding'] !== undefined) {
        deny(r, 400, 'content_encoding', null);
        return true;
    }
    return false;
}

/* The request's session: undefined when it names none, null when it was
 * refused (answered), else the id, bound to this subject and re-armed. */
function ownedSession(r, subject) {
    var sid = r.headersIn['Mcp-Session-Id'];
    if (sid === undefined) {
        return undefined;
    }
    if (!SESSION_ID_RE.test(sid)) {
        deny(r, 400, 'session_id', null);
        return null;
    }
    /* route.js: this host's id for this subject; picks the instance upstream. An id
     * it does not route gets the same answer as an unknown or a foreign one. */
    if (!route.pin(r, sid, subject)) {
        send(r, 404, 'session_unknown', rpcError(null, 404, MESSAGES[404]));
        return null;
    }
    var owned;
    try {
        owned = sessions.touch(sid, subject);  /* the owner check; re-arms the idle timeout */
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session store refused a refresh (' + e.message + '): denying');
        deny(r, 503, 'session_store_full', null, {'Retry-After': '5'});
        return null;
    }
    if (owned !== 'ok') {
        /* one answer for unknown and foreign ids (no existence oracle); the log tells them apart */
        send(r, 404, 'session_' + owned, rpcError(null, 404, MESSAGES[404]));
        return null;
    }
    return sid;
}

/* GET (the session's SSE stream) and DELETE (end of session). */
function enforceStream(r, method, sid) {
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
}

/* The decoded, classified POST body (see rpc.classifyMessage; refused by
 * refuseMessage when not ok), or null when it was refused. */
function readMessage(r) {
    var ctErr = checkContentType(r.headersIn['Content-Type']);
    if (ctErr !== null) {
        deny(r, 415, ctErr, null);
        return null;
    }
    var buf;
    try {
        buf = r.requestBuffer;
    } catch (e) {
        /* the body spilled to a file: larger than we inspect, refuse */
        deny(r, 413, 'body_spilled', null);
        return null;
    }
    var p = parseBody(buf);
    if (p.reason) {
        deny(r, 400, p.reason, null);
        return null;
    }
    return classifyMessage(p.value);
}

/* A message classification refused (after the subject checks, so that a
 * subject whose roles grant nothing always meets 403). True when refused. */
function refuseMessage(r, info) {
    if (!info.ok) {
        if (info.reason === 'method_unknown') {
            setVar(r, 'mcpsec_rpc_method', info.method);
            respond.denyRpc(r, 400, 'method_unknown', info.id, METHOD_NOT_FOUND,
                            'Method not found: this gateway does not forward ' + respond.quoteName(info.method));
        } else {
            deny(r, 400, info.reason, info.id);
        }
        return true;
    }
    setVar(r, 'mcpsec_rpc_method', info.method || info.kind);
    if (info.hasId) {
        var idText = JSON.stringify(info.id);
        r.variables.mcpsec_rpc_id = idText;       /* raw JSON: sessionGone answers with it */
        setVar(r, 'mcpsec_rpc_id_log', idText);   /* escaped: what the audit log carries */
    }
    if (info.target !== null) {
        setVar(r, 'mcpsec_target_type', info.target);
        setVar(r, 'mcpsec_target', info.name);
        if (info.target === 'tool') {
            setVar(r, 'mcpsec_tool', info.name);
        }
    }
    var version = messageVersion(info);
    if (version !== null) {
        setVar(r, 'mcpsec_protocol_version', version);
    }
    return false;
}

/* The protocol version a message names itself: an initialize's
 * params.protocolVersion, else the 2026 revision's _meta envelope; null when
 * it names none (the header's, if any, stays in the audit line). */
function messageVersion(info) {
    var params = info.params;
    if (info.method === 'initialize' && params !== null && typeof params.protocolVersion === 'string') {
        return params.protocolVersion;
    }
    return rpc.requestedVersion(params, undefined);
}

/* Per-method authorization: what the request acts on must be allowed. */
function refuseTarget(r, policy, a, info) {
    if (info.method === 'tools/call' && !TOOL_NAME_RE.test(info.name)) {
        /* no real tool has such a name: refused whatever the role (MCP tool-name characters) */
        forbid(r, policy, 'tool_name', info.id, 'tool names are 1-128 of [A-Za-z0-9_.-]');
        return true;
    }
    var problem = info.target === 'resource' ? uri.uriProblem(info.name) : null;
    if (problem !== null) {
        /* not the form the server resolves (dot segments, encoded '/', ...): refused whatever the role */
        forbid(r, policy, 'resource_uri', info.id, 'the resource URI has ' + problem +
               '; send it in the form the server lists it');
        return true;
    }
    if (info.target === null || authz.allowed(policy, a.roles, info.target, info.name)) {
        return false;
    }
    forbid(r, policy, info.target + '_denied', info.id, info.target + ' ' + respond.quoteName(info.name) +
           ' is not permitted for this user');
    return true;
}

/* The per-user per-tool sliding window. Returns true when it answered. */
function refuseToolRate(r, policy, subject, info) {
    var lim = info.target === 'tool' && info.method === 'tools/call' ? toolLimit(policy, info.name) : null;
    if (lim === null) {
        return false;
    }
    var verdict;
    try {
        /* per server: the scope (servers.js) and a newline, which no subject key holds */
        verdict = limits.admitToolCall(policy.scope === '' ? subject : policy.scope + '\n' + subject,
                                       info.name, lim.calls, lim.window, Date.now());
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: tool call store refused a write (' + e.message + '): denying');
        deny(r, 503, 'counter_unavailable', info.id, {'Retry-After': '5'});
        return true;
    }
    if (!verdict.admit) {
        deny(r, 429, 'tool_rate', info.id, {'Retry-After': String(verdict.retryAfter)});
        return true;
    }
    return false;
}

/* A 2026-07-28 (stateless) request: the same checks ran; it is answered with
 * the revision's unsupported-version error naming the session revisions. */
function refuseModern(r, info) {
    var requested = rpc.requestedVersion(info.params, r.headersIn['MCP-Protocol-Version']);
    respond.denyRpc(r, 400, 'stateless_unsupported', info.id, UNSUPPORTED_PROTOCOL_VERSION,
                    'Unsupported protocol version: this gateway serves MCP sessions (' +
                    sessionVersions().join(', ') + '); start one with initialize',
                    {supported: sessionVersions(), requested: requested === null ? MODERN_VERSION : requested});
}

/* An initialize the backend would refuse only after it started an MCP server
 * process (supergateway 4.0.0 spawns the child before its SDK checks Accept;
 * the refused transport never gets a session id, so nothing ends the child)
 * is answered here, before a slot is reserved or the backend is contacted.
 * Content-Type was checked by readMessage (415). True when it answered. */
function refuseInitialize(r, info) {
    var accept = r.headersIn.Accept;
    if (typeof accept !== 'string' || accept.indexOf('application/json') < 0 ||
        accept.indexOf('text/event-stream') < 0) {
        respond.denyRpc(r, 406, 'not_acceptable', info.id, -32000,
                        'Not Acceptable: the client must accept both application/json and text/event-stream');
        return true;
    }
    var problem = rpc.initializeProblem(info.params);
    if (problem !== null) {
        respond.denyRpc(r, 400, 'invalid_initialize', info.id, INVALID_PARAMS,
                        'Invalid params: initialize needs ' + problem);
        return true;
    }
    return false;
}

/* A request whose id another request of the session still has in flight
 * (inflight.js: the backend would hand it the other's answer). True when it
 * answered. */
function refuseIdInFlight(r, sid, info) {
    var claimed;
    try {
        claimed = inflight.claimId(r, sid, info.id);
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session store refused an in-flight id (' + e.message + '): denying');
        deny(r, 503, 'session_store_full', info.id, {'Retry-After': '5'});
        return true;
    }
    if (!claimed) {
        respond.denyRpc(r, 400, 'id_in_flight', info.id, -32600,
                        'Invalid Request: id ' + util.clip(JSON.stringify(info.id)) +
                        ' is already in flight in this session (JSON-RPC ids must not be reused)');
        return true;
    }
    return false;
}

/* initialize without a session: the subject's session cap, then a pending
 * reservation the bind location's header filter turns into a binding. */
function openSession(r, policy, subject, info) {
    var v = sessions.reserve(r, policy, subject);
    if (v.scope === 'user' || v.scope === 'total') {
        /* at a cap: release what the backend no longer knows, then try once more */
        settle(r, sessions.reclaim(r, policy, v.scope === 'user' ? subject : null), function (released) {
            admitSession(r, info, sessions.retry(r, policy, subject, released));
        });
        return;
    }
    admitSession(r, info, v);
}

function admitSession(r, info, v) {
    if (v.pending === undefined) {
        deny(r, v.status, v.reason, info.id, {'Retry-After': String(v.retryAfter)});
        return;
    }
    setVar(r, 'mcpsec_pending', v.pending);
    allow(r, UPSTREAM_BIND);
}

/* Everything after authentication; synchronous (a filtered list answer
 * completes later, in its subrequest's promise). */
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
    /* the one injective form of the identity (respond.subjectKey): every key, the
     * bind location's header filter ($mcpsec_subject) and the audit log use it as is */
    var subject = respond.subjectKey(a.subject);
    r.variables.mcpsec_subject = subject;
    setVar(r, 'mcpsec_roles', a.roles.join(','));

    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
        deny(r, 405, 'method', null, {'Allow': 'GET, POST, DELETE'});
        return;
    }
    if (refuseHeaders(r, policy)) {
        return;
    }
    var sid = ownedSession(r, subject);
    if (sid === null) {
        return;
    }
    if (method !== 'POST') {
        if (!refuseSubject(r, policy, a, null)) {
            enforceStream(r, method, sid);
        }
        return;
    }
    var info = readMessage(r);
    if (info === null || refuseSubject(r, policy, a, info.id) || refuseMessage(r, info)) {
        return;
    }
    var modern = info.kind !== 'response' &&
                 (info.spec.modern === true ||
                  rpc.claimsModern(info.params, r.headersIn['MCP-Protocol-Version'], MODERN_VERSION));
    var hErr = checkMcpHeaders(info, r.headersIn['Mcp-Method'], r.headersIn['Mcp-Name'], modern);
    if (hErr !== null) {
        respond.denyRpc(r, 400, hErr, info.id, HEADER_MISMATCH,
                        'Header mismatch: Mcp-Method/Mcp-Name must repeat the request body (' + hErr + ')');
        return;
    }
    if (refuseTarget(r, policy, a, info)) {
        return;
    }
    if (modern) {
        refuseModern(r, info);
        return;
    }
    if (sid === undefined && info.method !== 'initialize') {
        /* notifications, client responses (sampling, elicitation, roots) and
         * every request but initialize belong to a session the subject owns */
        deny(r, 400, 'session_required', info.id);
        return;
    }
    /* the id's claim before the tool's slot: a request refused for its id takes no slot */
    if (sid !== undefined && info.kind === 'request' && refuseIdInFlight(r, sid, info)) {
        return;
    }
    if (refuseToolRate(r, policy, subject, info)) {
        return;
    }
    if (info.method === 'initialize' && sid === undefined) {
        if (!refuseInitialize(r, info)) {
            openSession(r, policy, subject, info);
        }
        return;
    }
    var list = info.spec !== null && info.spec.list !== undefined ? info.spec.list : null;
    if (list !== null && !authz.allowsAll(policy, a.roles, authz.listTarget(list))) {
        forwardFiltered(r, policy, a, info, list, sid);
        return;
    }
    allow(r, UPSTREAM);
}

/* A list method for a subject that may not see every item: the backend's
 * answer is fetched whole (a subrequest), filtered, then sent. */
var LIST_URI = '/_mcpsec/list';

function forwardFiltered(r, policy, a, info, list, sid) {
    settle(r, r.subrequest(LIST_URI, {method: 'POST'}), function (reply) {
        answerFiltered(r, policy, a, info, list, sid, reply);
    });
}

function answerFiltered(r, policy, a, info, list, sid, reply) {
    var status = reply.status;
    if (status === 404) {
        sessions.notFound(r, sid, info.id);
        return;
    }
    if (status !== 200) {
        if (status === 429 || status >= 500 || status === 0) {
            /* limit_req in the subrequest (429), the backend down or slow */
            var s = status === 429 || status === 504 ? status : 503;
            var retry = s === 429 ? (r.variables.mcpsec_limit_retry_after || '1') : (s === 503 ? '5' : null);
            deny(r, s, s === 429 ? 'rate_limit' : (s === 504 ? 'upstream_timeout' : 'upstream_unavailable'),
                 info.id, retry !== null ? {'Retry-After': retry} : null);
            return;
        }
        /* the backend's own refusal (e.g. 400) passes as it said it */
        setVar(r, 'mcpsec_decision', 'allow');
        r.headersOut['Content-Type'] = reply.headersOut['Content-Type'] || 'application/json';
        r.return(status, reply.responseText);
        return;
    }
    var f = lists.filterAnswer(policy, a.roles, list, info.id, reply.headersOut['Content-Type'],
                               reply.responseText);
    if (f.reason) {
        ngx.log(ngx.ERR, 'mcpsec: ' + info.method + ' answer not filtered (' + f.reason + '): refused');
        deny(r, 502, f.reason, info.id);
        return;
    }
    setVar(r, 'mcpsec_decision', 'allow');
    r.headersOut['Content-Type'] = reply.headersOut['Content-Type'];
    r.return(200, f.body);
}

/* What opens or ends a session goes to UPSTREAM_BIND (its header filter keeps
 * the bindings); everything else to UPSTREAM, which runs no njs. */
var UPSTREAM = '@mcpsec_upstream';
var TOOL_NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;
var UPSTREAM_BIND = '@mcpsec_upstream_bind';

function allow(r, location) {
    setVar(r, 'mcpsec_decision', 'allow');   /* js_var default: deny; reason stays empty */
    r.internalRedirect(location);
}

/* Continue a request when `promise` resolves; anything that throws or
 * rejects on the way is answered 500 (fail closed), never left hanging. */
function settle(r, promise, next) {
    promise.then(function (value) {
        try {
            next(value);
        } catch (e) {
            internalError(r, e);
        }
    }, function (e) {
        internalError(r, e);
    });
}

function internalError(r, e) {
    ngx.log(ngx.ERR, 'mcpsec: ' + (e && e.stack ? e.stack : e));
    try {
        deny(r, 500, 'internal_error', null);
    } catch (e2) {
        /* response already started: nothing more to do */
    }
}

/* What the audit log says of the request's headers, never the client's raw
 * bytes (nginx's escape=json passes U+2028 and invalid UTF-8 through):
 * $mcpsec_session, the Mcp-Session-Id when it has the form of one (printable
 * ASCII), else a marker; the User-Agent and the MCP-Protocol-Version escaped
 * (refuseMessage replaces the version with the one the message names). */
function noteSession(r) {
    var sid = r.headersIn['Mcp-Session-Id'];
    if (sid !== undefined) {
        r.variables.mcpsec_session = SESSION_ID_RE.test(sid) ? sid : '(malformed)';
    }
    var ua = r.headersIn['User-Agent'];
    if (ua !== undefined) {
        setVar(r, 'mcpsec_user_agent', ua);
    }
    var pv = r.headersIn['MCP-Protocol-Version'];
    if (pv !== undefined) {
        setVar(r, 'mcpsec_protocol_version', pv);
    }
}

/* js_content for the MCP location */
function handle(r) {
    noteSession(r);
    try {
        var policy = getPolicy(r);
        if (refuseNoPolicy(r, policy)) {
            return;
        }
        if (authThrottled(r)) {
            return;
        }
        var a = authenticate(r, policy);
        if (typeof a.then === 'function') {
            settle(r, a, function (res) {
                enforce(r, policy, res);
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
    noteSession(r);
    if (authThrottled(r)) {
        return;
    }
    setVar(r, 'mcpsec_subject', '');
    var policy = getPolicy(r);
    if (refuseNoPolicy(r, policy)) {
        return;
    }
    var given = r.headersIn.Authorization;
    unauthorized(r, policy, given ? 'bad_credentials' : 'no_credentials',
                 !!given && /^bearer /i.test(given));
}

/* js_content for error_page targets (nginx-generated errors, limit_req 429). */
function nginxError(r) {
    var status = Number(r.variables.mcpsec_nginx_status || r.variables.status) || 500;
    noteSession(r);
    /* an initialize that got no session holds no session slot */
    sessions.cancel(r);
    if (status === 401) {
        basicUnauthorized(r);
        return;
    }
    var reasons = {413: 'body_too_large', 429: 'rate_limit', 502: 'upstream_unavailable',
                   503: 'upstream_unavailable', 504: 'upstream_timeout'};
    if (!hasOwn(MESSAGES, status)) {
        status = 500;
    }
    /* a client over its refusal (or failed-authentication) limit meets 429 here too:
     * a flood of bodies nginx refuses (413, 400) never gets past the gate by it */
    if (status >= 400 && status < 500 && status !== 429 && authThrottled(r)) {
        return;
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
    reapOrphans: sessions.reapOrphans,
    inflightEnd: inflight.auditRpcId,
    basicRealm: credentials.basicRealm,
    nginxError: nginxError,
    basicUnauthorized: basicUnauthorized
};
