/*
 * pipeline: everything the handler decides after authentication, as ordered
 * steps. Each step takes (r, c) - c holds the policy (the server's view), the
 * authentication, the subject key, the session id and the decoded message - and
 * returns true when it answered (refused), false to go on. The order is part of
 * the contract: a subject whose roles grant nothing always meets 403, a request
 * refused for its id takes no tool slot, an initialize the backend would refuse
 * after spawning is answered before a slot is reserved.
 *
 *   every request   REQUEST_STEPS   HTTP method, headers, the session it names
 *   GET, DELETE     refuseSubject, then the stream or the end of the session
 *   POST            MESSAGE_STEPS   body, subject, message, MCP headers, target,
 *                                   stateless revision, session required,
 *                                   id in flight, tool rate
 *                   then forward(): open a session, filter a list, check a
 *                   pinned tool (pingate.js), or allow
 */

import util from 'util.js';
import json from 'json.js';
import http from 'http.js';
import rpc from 'rpc.js';
import authz from 'authz.js';
import limits from 'limits.js';
import jwt from 'jwt.js';
import respond from 'respond.js';
import sessions from 'sessions.js';
import lists from 'lists.js';
import inflight from 'inflight.js';
import uri from 'uri.js';
import flow from 'flow.js';
import pins from 'pins.js';
import pingate from 'pingate.js';

var setVar = respond.setVar;
var deny = respond.deny;
var TOOL_NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/* 403 with a readable JSON-RPC error carrying the id (insufficient_scope in oidc mode). */
function forbid(r, c, reason, id, message, scope) {
    respond.denyRpc(r, 403, reason, id, -32003, 'Forbidden: ' + message, null,
                    respond.forbiddenHeaders(c.policy, scope));
}

function refuseHttpMethod(r) {
    if (r.method !== 'POST' && r.method !== 'GET' && r.method !== 'DELETE') {
        deny(r, 405, 'method', null, {'Allow': 'GET, POST, DELETE'});
        return true;
    }
    return false;
}

/* Header checks every request passes. */
function refuseHeaders(r, c) {
    var rep = http.repeatedHeader(r);
    var origin = r.headersIn.Origin;
    var pv = r.headersIn['MCP-Protocol-Version'];
    if (rep !== null) {
        deny(r, 400, 'repeated_header:' + rep, null);
    } else if (origin !== undefined && !http.originAllowed(c.policy, origin)) {
        deny(r, 403, 'origin', null);
    } else if (pv !== undefined && !http.protocolVersionKnown(pv)) {
        deny(r, 400, 'protocol_version', null);
    } else if (r.headersIn['Content-Encoding'] !== undefined) {
        deny(r, 400, 'content_encoding', null);
    } else {
        return false;
    }
    return true;
}

function ownSession(r, c) {
    c.sid = sessions.own(r, c.subject);
    return c.sid === null;
}

/* Refusals that depend on the subject alone: a token without a required
 * scope, roles that grant nothing on this server. */
function refuseSubject(r, c) {
    var id = c.info !== null ? c.info.id : null;
    var policy = c.policy;
    if (policy.auth_mode === 'oidc') {
        var missing = jwt.missingScopes(policy.oidc, c.a.scopes);
        if (missing.length > 0) {
            forbid(r, c, 'scope_missing', id, 'the token lacks the required scope(s) ' + missing.join(' '),
                   util.joinList(policy.oidc.required_scopes, ' '));
            return true;
        }
    }
    if (!authz.grantsAnything(policy, c.a.roles)) {
        forbid(r, c, 'no_grants', id, 'the roles of this user grant no tool, resource or prompt');
        return true;
    }
    return false;
}

/* GET (the session's SSE stream) and DELETE (end of session). */
function enforceStream(r, c) {
    if (c.sid === undefined) {
        deny(r, 400, 'session_required', null);
        return;
    }
    if ((r.headersIn['Content-Length'] !== undefined && r.headersIn['Content-Length'] !== '0') ||
        r.headersIn['Transfer-Encoding'] !== undefined) {
        deny(r, 400, 'unexpected_body', null);
        return;
    }
    setVar(r, 'mcpsec_rpc_method', r.method === 'DELETE' ? 'session/delete' : 'stream/get');
    flow.allow(r, r.method === 'DELETE' ? flow.UPSTREAM_BIND : flow.UPSTREAM);
}

/* The decoded, classified POST body into c.info (rpc.classifyMessage; refused
 * by refuseMessage when not ok). */
function readMessage(r, c) {
    var ctErr = http.checkContentType(r.headersIn['Content-Type']);
    if (ctErr !== null) {
        deny(r, 415, ctErr, null);
        return true;
    }
    var buf;
    try {
        buf = r.requestBuffer;
    } catch (e) {
        deny(r, 413, 'body_spilled', null);   /* the body spilled to a file: larger than we inspect */
        return true;
    }
    var p = json.parseBody(buf);
    if (p.reason) {
        deny(r, 400, p.reason, null);
        return true;
    }
    c.info = rpc.classifyMessage(p.value);
    return false;
}

/* A message classification refused; else what the audit line says of it. */
function refuseMessage(r, c) {
    var info = c.info;
    if (!info.ok) {
        if (info.reason === 'method_unknown') {
            setVar(r, 'mcpsec_rpc_method', info.method);
            respond.denyRpc(r, 400, 'method_unknown', info.id, rpc.METHOD_NOT_FOUND,
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
    var version = rpc.messageVersion(info);
    if (version !== null) {
        setVar(r, 'mcpsec_protocol_version', version);
    }
    return false;
}

/* Mcp-Method/Mcp-Name must repeat the body; c.modern says whether the message
 * claims the stateless revision. */
function refuseMcpHeaders(r, c) {
    var info = c.info;
    c.modern = info.kind !== 'response' &&
               (info.spec.modern === true ||
                rpc.claimsModern(info.params, r.headersIn['MCP-Protocol-Version'], http.MODERN_PROTOCOL_VERSION));
    var hErr = rpc.checkMcpHeaders(info, r.headersIn['Mcp-Method'], r.headersIn['Mcp-Name'], c.modern);
    if (hErr === null) {
        return false;
    }
    respond.denyRpc(r, 400, hErr, info.id, rpc.HEADER_MISMATCH,
                    'Header mismatch: Mcp-Method/Mcp-Name must repeat the request body (' + hErr + ')');
    return true;
}

/* Per-method authorization: what the request acts on must be allowed. */
function refuseTarget(r, c) {
    var info = c.info;
    if (info.method === 'tools/call' && !TOOL_NAME_RE.test(info.name)) {
        /* no real tool has such a name: refused whatever the role (MCP tool-name characters) */
        forbid(r, c, 'tool_name', info.id, 'tool names are 1-128 of [A-Za-z0-9_.-]');
        return true;
    }
    var problem = info.target === 'resource' ? uri.uriProblem(info.name) : null;
    if (problem !== null) {
        /* not the form the server resolves (dot segments, encoded '/', ...): refused whatever the role */
        forbid(r, c, 'resource_uri', info.id, 'the resource URI has ' + problem +
               '; send it in the form the server lists it');
        return true;
    }
    if (info.target === null || authz.allowed(c.policy, c.a.roles, info.target, info.name)) {
        return false;
    }
    forbid(r, c, info.target + '_denied', info.id, info.target + ' ' + respond.quoteName(info.name) +
           ' is not permitted for this user');
    return true;
}

/* A 2026-07-28 (stateless) request: the same checks ran; it is answered with
 * the revision's unsupported-version error naming the session revisions. */
function refuseModern(r, c) {
    if (!c.modern) {
        return false;
    }
    var versions = http.SESSION_PROTOCOL_VERSIONS;
    var requested = rpc.requestedVersion(c.info.params, r.headersIn['MCP-Protocol-Version']);
    respond.denyRpc(r, 400, 'stateless_unsupported', c.info.id, rpc.UNSUPPORTED_PROTOCOL_VERSION,
                    'Unsupported protocol version: this gateway serves MCP sessions (' + versions.join(', ') +
                    '); start one with initialize',
                    {supported: versions, requested: requested === null ? http.MODERN_PROTOCOL_VERSION : requested});
    return true;
}

/* Notifications, client responses (sampling, elicitation, roots) and every
 * request but initialize belong to a session the subject owns. */
function refuseSessionless(r, c) {
    if (c.sid === undefined && c.info.method !== 'initialize') {
        deny(r, 400, 'session_required', c.info.id);
        return true;
    }
    return false;
}

/* A request whose id another request of the session still has in flight
 * (inflight.js: the backend would hand it the other's answer). */
function refuseIdInFlight(r, c) {
    var info = c.info;
    if (c.sid === undefined || info.kind !== 'request') {
        return false;
    }
    var claimed;
    try {
        claimed = inflight.claimId(r, c.sid, info.id);
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

/* The per-user per-tool sliding window, counted per server. */
function refuseToolRate(r, c) {
    var info = c.info;
    var lim = info.target === 'tool' && info.method === 'tools/call' ? limits.toolLimit(c.policy, info.name) : null;
    if (lim === null) {
        return false;
    }
    /* per server: its scope (servers.js) and a newline, which no subject key holds */
    var key = c.policy.scope === '' ? c.subject : c.policy.scope + '\n' + c.subject;
    var verdict;
    try {
        verdict = limits.admitToolCall(key, info.name, lim.calls, lim.window, Date.now());
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

/* An initialize the backend would refuse only after it started an MCP server
 * process (supergateway 4.0.0 spawns the child before its SDK checks Accept) is
 * answered here, before a slot is reserved. Content-Type was checked (415). */
function refuseInitialize(r, c) {
    var accept = r.headersIn.Accept;
    if (typeof accept !== 'string' || accept.indexOf('application/json') < 0 ||
        accept.indexOf('text/event-stream') < 0) {
        respond.denyRpc(r, 406, 'not_acceptable', c.info.id, -32000,
                        'Not Acceptable: the client must accept both application/json and text/event-stream');
        return true;
    }
    var problem = rpc.initializeProblem(c.info.params);
    if (problem !== null) {
        respond.denyRpc(r, 400, 'invalid_initialize', c.info.id, rpc.INVALID_PARAMS,
                        'Invalid params: initialize needs ' + problem);
        return true;
    }
    return false;
}

/* Where an admitted message goes: a new session, a filtered list, or the upstream. */
function forward(r, c) {
    var info = c.info;
    if (info.method === 'initialize' && c.sid === undefined) {
        if (!refuseInitialize(r, c)) {
            sessions.open(r, c.policy, c.subject, info);
        }
        return;
    }
    var list = info.spec !== null && info.spec.list !== undefined ? info.spec.list : null;
    var pinned = pins.config(c.policy) !== null;
    if (list !== null && (!authz.allowsAll(c.policy, c.a.roles, authz.listTarget(list)) ||
                          (list === 'tools' && pinned))) {
        lists.forward(r, c.policy, c.a, info, list, c.sid);
        return;
    }
    if (pinned && info.method === 'tools/call') {
        pingate.check(r, c);   /* the tool held to its pin in this session */
        return;
    }
    flow.allow(r, flow.UPSTREAM);
}

var REQUEST_STEPS = [refuseHttpMethod, refuseHeaders, ownSession];
var MESSAGE_STEPS = [readMessage, refuseSubject, refuseMessage, refuseMcpHeaders, refuseTarget, refuseModern,
                     refuseSessionless, refuseIdInFlight, refuseToolRate];

/* True when one of the steps answered. */
function run(r, c, steps) {
    for (var i = 0; i < steps.length; i++) {
        if (steps[i](r, c)) {
            return true;
        }
    }
    return false;
}

/* Everything after authentication: `a` is {subject, roles[, scopes]}.
 * Synchronous (a filtered list or a reclaim completes later, in its promise). */
function enforce(r, policy, a) {
    /* the one injective form of the identity (respond.subjectKey): every key, the
     * bind location's header filter ($mcpsec_subject) and the audit log use it as is */
    var c = {policy: policy, a: a, subject: respond.subjectKey(a.subject), sid: undefined, info: null, modern: false};
    r.variables.mcpsec_subject = c.subject;
    setVar(r, 'mcpsec_roles', a.roles.join(','));
    if (run(r, c, REQUEST_STEPS)) {
        return;
    }
    if (r.method !== 'POST') {
        if (!refuseSubject(r, c)) {
            enforceStream(r, c);
        }
        return;
    }
    if (!run(r, c, MESSAGE_STEPS)) {
        forward(r, c);
    }
}

export default {
    enforce: enforce
};
