/*
 * inflight: one response per JSON-RPC id and session.
 *
 * The MCP SDK inside supergateway maps each response to its request by id,
 * per session, and the last request with an id takes the response stream: a
 * second request with the id of one still in flight would receive the first
 * one's answer (an unfiltered tools/list on a ping's stream). So a request of
 * a session claims its id before it is forwarded, with add() (exactly one
 * claim succeeds across workers), and a request whose id is already claimed
 * is refused. The claim is released when the request ends: the audit log's
 * $mcpsec_audit_rpc_id is evaluated in the log phase, which every request
 * reaches, and calls releaseId(). A claim nothing released (a worker that died)
 * expires with the session's idle timeout (the zone's TTL).
 *
 * Keys in mcpsec_sessions: 'q:<session id>\n<the id as JSON text>', or for a
 * long id '#' and the base64url SHA-256 of that text (JSON text never starts
 * with '#'). The id's JSON text keeps 7 and "7" apart, as the SDK's Map does.
 */

var ID_TEXT_MAX = 64;

/* Pure: the claim key of `id` (a string or an integer) in session `sid`. */
function claimKey(sid, id) {
    var text = JSON.stringify(id);
    if (text.length > ID_TEXT_MAX) {
        text = '#' + require('crypto').createHash('sha256').update(text).digest('base64url');
    }
    return 'q:' + sid + '\n' + text;
}

/* Claims `id` in session `sid` for this request ($mcpsec_inflight holds the
 * key). False when another request of the session holds it; throws when the
 * store cannot take the write (the caller denies). */
function claimId(r, sid, id) {
    var key = claimKey(sid, id);
    if (!ngx.shared.mcpsec_sessions.add(key, r.variables.request_id)) {
        return false;
    }
    r.variables.mcpsec_inflight = key;
    return true;
}

/* Releases this request's claim (only its own: the value is its request id). */
function releaseId(r) {
    var key = r.variables.mcpsec_inflight;
    if (!key) {
        return;
    }
    r.variables.mcpsec_inflight = '';
    try {
        var store = ngx.shared.mcpsec_sessions;
        if (store.get(key) === r.variables.request_id) {
            store.delete(key);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: in-flight id not released (' + e.message + '): it expires with the session');
    }
}

/* js_set $mcpsec_audit_rpc_id, read by the audit log (log phase): the
 * request's JSON-RPC id as logged, and the end of its claim. */
function auditRpcId(r) {
    releaseId(r);
    return r.variables.mcpsec_rpc_id_log || '';
}

export default {
    claimKey: claimKey,
    claimId: claimId,
    auditRpcId: auditRpcId
};
