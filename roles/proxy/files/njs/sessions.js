/*
 * sessions: MCP sessions bound to the subject that opened them.
 */

import respond from 'respond.js';
import route from 'route.js';

var setVar = respond.setVar;
var rpcError = respond.rpcError;
var MESSAGES = respond.MESSAGES;

var SESSION_ID_RE = /^[\x21-\x7e]{1,128}$/;
var PENDING_SESSION_MS = 60000;

/* js_header_filter for @mcpsec_upstream_bind: bind new sessions, release ended ones. */
function upstreamHeaders(r) {
    var sessions = ngx.shared.mcpsec_sessions;
    var subject = r.variables.mcpsec_subject;
    var pending = r.variables.mcpsec_pending;
    var status = r.status;
    try {
        if (pending) {
            sessions.delete(pending);
            var sid = r.headersOut['Mcp-Session-Id'];
            /* route.js: the client gets an id naming this host and the instance */
            sid = sid !== undefined && subject ? route.mint(r, sid, subject) : null;
            if (sid !== null && status >= 200 && status < 300 && SESSION_ID_RE.test(sid)) {
                r.headersOut['Mcp-Session-Id'] = sid;
                /* add(): an id the upstream reuses never changes owner */
                sessions.add('s:' + sid, subject);
            } else {
                delete r.headersOut['Mcp-Session-Id'];
            }
            return;
        }
        var reqSid = r.headersIn['Mcp-Session-Id'];
        if (reqSid === undefined) {
            return;
        }
        if (r.headersOut['Mcp-Session-Id'] !== undefined) {
            r.headersOut['Mcp-Session-Id'] = reqSid;   /* never the backend's own id */
        }
        if ((r.method === 'DELETE' && status >= 200 && status < 300) || status === 404) {
            sessions.delete('s:' + reqSid);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session bookkeeping failed: ' + e.message);
    }
}

/* A session slot for `subject` (initialize without a session): the pending
 * reservation is written FIRST and the caps counted after, bindings and other
 * reservations included, so initializes racing on both workers never admit
 * more than max_sessions_per_user for the subject nor max_sessions_total for
 * the host (a reservation that finds a cap exceeded withdraws itself; two
 * racing for the last slot may both withdraw, never both stay).
 * Returns {pending} or {status, reason, retryAfter, scope ('user'|'total')}. */
function reserve(r, policy, subject) {
    var store = ngx.shared.mcpsec_sessions;
    var pending = 'p:' + r.variables.request_id;
    try {
        store.set(pending, subject, PENDING_SESSION_MS);
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session store refused a reservation (' + e.message + '): denying');
        return {status: 503, reason: 'session_store_full', retryAfter: 5, scope: null};
    }
    var items = store.items();
    var mine = 0;
    var total = 0;
    for (var i = 0; i < items.length; i++) {
        var k = items[i][0];
        if (k.charCodeAt(1) === 58 && (k.charCodeAt(0) === 115 || k.charCodeAt(0) === 112)) {   /* s: p: */
            total++;
            if (items[i][1] === subject) {
                mine++;
            }
        }
    }
    var verdict = null;
    if (mine > policy.max_sessions_per_user) {
        verdict = {status: 429, reason: 'session_cap', retryAfter: 60, scope: 'user'};
    } else if (typeof policy.max_sessions_total === 'number' && total > policy.max_sessions_total) {
        verdict = {status: 503, reason: 'host_session_cap', retryAfter: 30, scope: 'total'};
    }
    if (verdict !== null) {
        store.delete(pending);
        return verdict;
    }
    return {pending: pending};
}

/* Sessions the backend no longer knows (it restarted, or reaped them idle)
 * still hold bindings until the idle timeout: before a cap refuses anyone,
 * ask the backend about each binding at that cap (the subject's, or every
 * one for the host cap) and release those it answers 404 for. A restart of
 * the backend therefore never locks anyone out. Resolves to the number
 * released; probes that fail release nothing. */
function reclaim(r, subject) {
    /* at most one round of probes per scope every RECLAIM_EVERY_MS: a client
     * at its cap that keeps opening sessions must not make the gateway send a
     * probe per binding for every refused initialize (the cap answers at once) */
    try {
        if (!ngx.shared.mcpsec_sessions.add('r:' + (subject === null ? '' : subject), '1', RECLAIM_EVERY_MS)) {
            return Promise.resolve(0);
        }
    } catch (e) {
        ngx.log(ngx.WARN, 'mcpsec: session store refused the reclaim stamp (' + e.message + '): no probe');
        return Promise.resolve(0);
    }
    var items = ngx.shared.mcpsec_sessions.items();
    var probes = [];
    for (var i = 0; i < items.length; i++) {
        if (items[i][0].indexOf('s:') === 0 && (subject === null || items[i][1] === subject)) {
            probes.push(probe(items[i][0].slice(2), items[i][1]));
        }
    }
    return Promise.all(probes).then(function (released) {
        var n = 0;
        for (var j = 0; j < released.length; j++) {
            n += released[j];
        }
        return n;
    });
}

var RECLAIM_EVERY_MS = 1000;
var PROBE_BODY = '{"jsonrpc":"2.0","id":"mcpsec-session-probe","method":"ping"}';

/* sid is the client's (routed) id; route.js names the session's own instance
 * and the backend's id. One this host no longer routes can never be used again. */
function probe(sid, owner) {
    var target = route.backendOf(sid);
    if (target === null) {
        release(sid, owner);
        return Promise.resolve(1);
    }
    return ngx.fetch(target.url, {method: 'POST', body: PROBE_BODY,
                                  headers: {'Content-Type': 'application/json', 'Mcp-Session-Id': target.sid,
                                            'Accept': 'application/json, text/event-stream'}})
        .then(function (reply) {
            if (reply.status === 404) {
                release(sid, owner);
                return 1;
            }
            return 0;
        }, function (e) {
            ngx.log(ngx.WARN, 'mcpsec: session probe failed: ' + e.message);
            return 0;
        });
}

/* Release a session binding the backend no longer knows (only the owner's). */
function release(sid, subject) {
    if (sid === undefined || sid === null) {
        return;
    }
    try {
        if (ngx.shared.mcpsec_sessions.get('s:' + sid) === subject) {
            ngx.shared.mcpsec_sessions.delete('s:' + sid);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session release failed: ' + e.message);
    }
}

/* js_content for "error_page 404 = @mcpsec_session_gone" on @mcpsec_upstream: the
 * backend said 404. For a request in a session that means the backend does not
 * know the session (it restarted, or the session ended): release the binding
 * so it no longer counts against the caps, and answer "session not found" so
 * the client starts a new one. A request without a session gets a JSON-RPC
 * error with its own id instead ($mcpsec_rpc_id, set by the handler). */
function sessionGone(r) {
    var sid = r.headersIn['Mcp-Session-Id'];
    r.headersOut['Content-Type'] = 'application/json';
    if (sid === undefined) {
        var id = null;
        try {
            id = r.variables.mcpsec_rpc_id ? JSON.parse(r.variables.mcpsec_rpc_id) : null;
        } catch (e) {
            id = null;
        }
        setVar(r, 'mcpsec_reason', 'upstream_not_found');
        r.return(404, rpcError(id, 404, 'Not found'));
        return;
    }
    release(sid, r.variables.mcpsec_subject);
    setVar(r, 'mcpsec_reason', 'session_expired');
    r.return(404, rpcError(null, 404, MESSAGES[404]));
}

export default {
    SESSION_ID_RE: SESSION_ID_RE,
    PENDING_SESSION_MS: PENDING_SESSION_MS,
    reserve: reserve,
    reclaim: reclaim,
    release: release,
    upstreamHeaders: upstreamHeaders,
    sessionGone: sessionGone
};
