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

function countSessions(subject) {
    var items = ngx.shared.mcpsec_sessions.items();
    var n = 0;
    for (var i = 0; i < items.length; i++) {
        if (items[i][1] === subject) {
            n++;
        }
    }
    return n;
}

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
 * backend does not know the session (it restarted, or the session ended) and
 * said 404. Release the binding so it no longer counts against the subject's
 * session cap, and answer 404 so the client starts a new session. */
function sessionGone(r) {
    release(r.headersIn['Mcp-Session-Id'], r.variables.mcpsec_subject);
    setVar(r, 'mcpsec_reason', 'session_expired');
    r.headersOut['Content-Type'] = 'application/json';
    r.return(404, rpcError(null, 404, MESSAGES[404]));
}

export default {
    SESSION_ID_RE: SESSION_ID_RE,
    PENDING_SESSION_MS: PENDING_SESSION_MS,
    countSessions: countSessions,
    release: release,
    upstreamHeaders: upstreamHeaders,
    sessionGone: sessionGone
};
