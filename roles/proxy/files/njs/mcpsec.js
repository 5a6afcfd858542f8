/*
 * mcpsec.js: the MCP enforcement point's entry module (njs 0.8.9, njs engine).
 *
 * A thin dispatcher. One js_content handler (handle) finds the policy of the
 * request's MCP server (servers.js), authenticates (auth.js) and runs the
 * refusal steps in order (pipeline.js), which end in an internalRedirect to
 * @mcpsec_upstream (or @mcpsec_upstream_bind for what opens or ends a
 * session), a filtered list (lists.js) or a refusal. Sessions and their caps
 * live in sessions.js, routing in route.js. Anything it cannot prove safe is
 * refused: fail closed.
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
import respond from 'respond.js';
import sessions from 'sessions.js';
import credentials from 'credentials.js';
import inflight from 'inflight.js';
import servers from 'servers.js';
import auth from 'auth.js';
import pipeline from 'pipeline.js';
import flow from 'flow.js';

var setVar = respond.setVar;
var deny = respond.deny;

/* The policy as the request's MCP server sees it (servers.js), or null when
 * policy.json is not the format this code reads or names no such server. */
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

/* What the audit log says of the request's headers, never the client's raw
 * bytes (nginx's escape=json passes U+2028 and invalid UTF-8 through):
 * $mcpsec_session, the Mcp-Session-Id when it has the form of one (printable
 * ASCII), else a marker; the User-Agent and the MCP-Protocol-Version escaped
 * (the pipeline replaces the version with the one the message names). */
function noteSession(r) {
    var sid = r.headersIn['Mcp-Session-Id'];
    if (sid !== undefined) {
        r.variables.mcpsec_session = sessions.SESSION_ID_RE.test(sid) ? sid : '(malformed)';
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

/* js_content for the MCP location of every server */
function handle(r) {
    noteSession(r);
    try {
        var policy = getPolicy(r);
        if (refuseNoPolicy(r, policy) || auth.throttled(r)) {
            return;
        }
        var a = auth.authenticate(r, policy);
        if (typeof a.then === 'function') {
            flow.settle(r, a, function (res) {
                if (!auth.refused(r, policy, res)) {
                    pipeline.enforce(r, policy, res);
                }
            });
            return;
        }
        if (!auth.refused(r, policy, a)) {
            pipeline.enforce(r, policy, a);
        }
    } catch (e) {
        flow.internalError(r, e);
    }
}

/* js_content for "error_page 401 = @mcpsec_unauthorized": auth_basic refused
 * (basic mode). A bare "=" lets this handler choose 401 or 429. */
function basicUnauthorized(r) {
    noteSession(r);
    if (auth.throttled(r)) {
        return;
    }
    setVar(r, 'mcpsec_subject', '');
    var policy = getPolicy(r);
    if (refuseNoPolicy(r, policy)) {
        return;
    }
    var given = r.headersIn.Authorization;
    auth.unauthorized(r, policy, given ? 'bad_credentials' : 'no_credentials', !!given && /^bearer /i.test(given));
}

var NGINX_REASONS = {413: 'body_too_large', 429: 'rate_limit', 502: 'upstream_unavailable',
                     503: 'upstream_unavailable', 504: 'upstream_timeout'};

/* js_content for error_page targets (nginx-generated errors, limit_req 429). */
function nginxError(r) {
    var status = Number(r.variables.mcpsec_nginx_status || r.variables.status) || 500;
    noteSession(r);
    sessions.cancel(r);   /* an initialize that got no session holds no session slot */
    if (status === 401) {
        basicUnauthorized(r);
        return;
    }
    if (!util.hasOwn(respond.MESSAGES, status)) {
        status = 500;
    }
    /* a client over its refusal (or failed-authentication) limit meets 429 here too:
     * a flood of bodies nginx refuses (413, 400) never gets past the gate by it */
    if (status >= 400 && status < 500 && status !== 429 && auth.throttled(r)) {
        return;
    }
    var extra = null;
    if (status === 429) {
        extra = {'Retry-After': r.variables.mcpsec_limit_retry_after || '1'};
    } else if (status === 503) {
        extra = {'Retry-After': '5'};
    }
    deny(r, status, util.hasOwn(NGINX_REASONS, status) ? NGINX_REASONS[status] : 'nginx_' + status, null, extra);
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
