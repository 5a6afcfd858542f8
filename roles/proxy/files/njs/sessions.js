/*
 * sessions: MCP sessions bound to the subject that opened them, and the
 * session caps (per subject: max_sessions_per_user; for the host:
 * max_sessions_total) as numbered slots.
 *
 * Keys in mcpsec_sessions (type string, no eviction, TTL = the idle timeout
 * unless given), <scope> being the MCP server's (servers.scope: '' for the
 * server named default, '@<name>' for any other, so every cap counts per server):
 *   s:<sid>               the binding: '<subject>\n<user slot>\n<host slot or "">\n<scope>\n<armed>'
 *                         (<armed>: when it and its slots were last (re-)armed, ms since the epoch)
 *   u<scope>:<subject>\n<i>   user slot i (0 <= i < max_sessions_per_user)
 *   t<scope>:<j>          host slot j (0 <= j < the server's max_sessions_total)
 *   r<scope>:<subject or "">   reclaim stamp (one round of probes per second)
 * A slot holds 'p:<request_id>' while an initialize is pending (PENDING_SESSION_MS)
 * and 's:<sid>' once the backend has answered with a session id. Slots are
 * claimed with add(), which succeeds for exactly one caller across both
 * workers, so N concurrent initializes admit exactly the cap; a binding
 * remembers its slots so that its release frees exactly those.
 */

import respond from 'respond.js';
import route from 'route.js';
import servers from 'servers.js';
import flow from 'flow.js';

var setVar = respond.setVar;
var rpcError = respond.rpcError;
var MESSAGES = respond.MESSAGES;

var SESSION_ID_RE = /^[\x21-\x7e]{1,128}$/;
var PENDING_SESSION_MS = 60000;
/* A binding and its slots are re-armed (three writes) not on every request but
 * once $mcpsec_session_rearm_ms has passed since the last time: at most once a
 * minute and at least four times per proxy_session_idle_timeout (the zone's
 * timeout, by default the backend's idle timeout plus a minute), so a session
 * in use never expires. Without a usable value, every request re-arms. */
function rearmEveryMs(r) {
    var ms = Number(r.variables.mcpsec_session_rearm_ms);
    return ms > 0 && ms <= 60000 ? ms : 0;
}
function userSlots(scope, subject) {
    return 'u' + scope + ':' + subject + '\n';
}

function hostSlots(scope) {
    return 't' + scope + ':';
}

/* The scope of the request's MCP server ($mcpsec_server). */
function scopeOf(r) {
    return servers.scope(servers.name(r));
}

/* A binding's value, armed now. */
function bindingValue(subject, u, t, scope) {
    return subject + '\n' + u + '\n' + (t >= 0 ? t : '') + '\n' + scope + '\n' + Date.now();
}

/* {subject, u, t, scope, armed} of a binding's value (u, t: slot numbers, -1
 * for none; armed: 0 when unknown), or null. */
function parseBinding(v) {
    if (typeof v !== 'string') {
        return null;
    }
    var p = v.split('\n');
    return {subject: p[0], u: p.length > 1 && p[1] !== '' ? Number(p[1]) : -1,
            t: p.length > 2 && p[2] !== '' ? Number(p[2]) : -1, scope: p.length > 3 ? p[3] : '',
            armed: p.length > 4 ? Number(p[4]) || 0 : 0};
}

/* The first free slot of prefix0..prefix(n-1) claimed with add() (atomic across
 * workers: exactly one caller gets a slot), or -1 when all n are taken.
 * Throws when the store cannot take the write (the caller denies). */
function claim(store, prefix, n, value, ttlMs) {
    for (var i = 0; i < n; i++) {
        if (store.add(prefix + i, value, ttlMs)) {
            return i;
        }
    }
    return -1;
}

/* Frees a slot only while it still holds `holder` (never another's claim). */
function free(store, key, holder) {
    if (store.get(key) === holder) {
        store.delete(key);
    }
}

/* A pending reservation as $mcpsec_pending holds it: '<user slot> <host slot> <request id>'. */
function parsePending(text) {
    var p = typeof text === 'string' ? text.split(' ') : [];
    if (p.length !== 3) {
        return null;
    }
    return {u: Number(p[0]), t: Number(p[1]), tag: 'p:' + p[2]};
}

/* Frees the slots of the request's pending reservation (an initialize that
 * got no session: backend error, no session id, nginx error on the way). */
function cancel(r) {
    var p = parsePending(r.variables.mcpsec_pending);
    if (p === null) {
        return;
    }
    r.variables.mcpsec_pending = '';
    var store = ngx.shared.mcpsec_sessions;
    var scope = scopeOf(r);
    try {
        if (p.u >= 0) {
            free(store, userSlots(scope, r.variables.mcpsec_subject) + p.u, p.tag);
        }
        if (p.t >= 0) {
            free(store, hostSlots(scope) + p.t, p.tag);
        }
    } catch (e) {
        /* the slots expire with the reservation (PENDING_SESSION_MS) */
        ngx.log(ngx.ERR, 'mcpsec: session reservation not freed (' + e.message + ')');
    }
}

/* Turns the pending reservation into the binding of `sid`: the binding first,
 * then its slots (so a slot never expires before its binding). False when the
 * session cannot be bound (the id is another's, or the reservation expired
 * and its slot went to someone else): the slots are freed, no binding stays. */
function bind(store, subject, p, sid, scope) {
    var holder = 's:' + sid;
    /* add(): an id the upstream reuses never changes owner */
    if (!store.add(holder, bindingValue(subject, p.u, p.t, scope))) {
        return false;
    }
    var up = userSlots(scope, subject) + p.u;
    var tp = hostSlots(scope) + p.t;
    var keptU = store.get(up) === p.tag || store.add(up, p.tag, PENDING_SESSION_MS);
    var keptT = p.t < 0 || store.get(tp) === p.tag || store.add(tp, p.tag, PENDING_SESSION_MS);
    if (!keptU || !keptT) {
        store.delete(holder);
        return false;
    }
    store.set(up, holder);
    if (p.t >= 0) {
        store.set(tp, holder);
    }
    return true;
}

/* js_header_filter for @mcpsec_upstream_bind: bind new sessions, release ended ones. */
function upstreamHeaders(r) {
    var sessions = ngx.shared.mcpsec_sessions;
    var subject = r.variables.mcpsec_subject;
    var status = r.status;
    try {
        var p = parsePending(r.variables.mcpsec_pending);
        if (p !== null) {
            var sid = r.headersOut['Mcp-Session-Id'];
            /* route.js: the client gets an id naming this host and the instance */
            var routed = status >= 200 && status < 300 && sid !== undefined && SESSION_ID_RE.test(sid) && subject
                ? route.mint(r, sid, subject) : null;
            if (routed !== null && SESSION_ID_RE.test(routed)) {
                if (bind(sessions, subject, p, routed, scopeOf(r))) {
                    r.headersOut['Mcp-Session-Id'] = routed;
                    r.variables.mcpsec_pending = '';
                    return;
                }
                ngx.log(ngx.WARN, 'mcpsec: session not bound (its id is taken, or its reservation expired ' +
                        'before the backend answered): the client starts a new one');
            }
            if (sid !== undefined) {
                orphan(r, sid);                      /* the backend made it: end it there */
            }
            delete r.headersOut['Mcp-Session-Id'];   /* never the backend's own id */
            cancel(r);
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
            release(reqSid, subject);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session bookkeeping failed: ' + e.message);
        cancel(r);
    }
}

/* A session the backend opened that no binding holds (the reservation expired
 * before the answer, the store refused the binding, the id was unusable) has a
 * running MCP server process nobody counts: it is written to mcpsec_orphans
 * ('<instance URL> <backend id>') and reapOrphans ends it at the backend. */
function orphan(r, backendSid) {
    var url = route.answeredUrl(r);
    if (url === null || !SESSION_ID_RE.test(backendSid)) {
        ngx.log(ngx.ERR, 'mcpsec: an unbound backend session cannot be ended (unknown instance ' +
                r.variables.upstream_addr + '): the backend reaps it when idle');
        return;
    }
    try {
        ngx.shared.mcpsec_orphans.set(url + ' ' + backendSid, '1');
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: orphan store refused an unbound backend session (' + e.message +
                '): the backend reaps it when idle');
    }
}

var REAP_BATCH = 32;

/* js_periodic (every second, one worker): DELETE each orphan at its backend;
 * an orphan is forgotten once the backend ended it (2xx) or no longer knows it
 * (404); anything else is tried again on the next round. */
function reapOrphans() {
    var store = ngx.shared.mcpsec_orphans;
    var keys = store.keys(REAP_BATCH);
    var ends = [];
    for (var i = 0; i < keys.length; i++) {
        ends.push(endOrphan(store, keys[i]));
    }
    return Promise.all(ends);
}

function endOrphan(store, key) {
    var sp = key.indexOf(' ');
    return ngx.fetch(key.slice(0, sp), {method: 'DELETE', headers: {'Mcp-Session-Id': key.slice(sp + 1)}})
        .then(function (reply) {
            if ((reply.status >= 200 && reply.status < 300) || reply.status === 404) {
                store.delete(key);
            }
        }, function (e) {
            ngx.log(ngx.WARN, 'mcpsec: ending an unbound backend session failed: ' + e.message);
        });
}

/* A session slot for `subject` (initialize without a session): a user slot,
 * then a host slot, each claimed with add(), so initializes racing on both
 * workers admit exactly max_sessions_per_user for the subject and
 * max_sessions_total for the host, and the work is O(cap), never a scan of
 * the store. The reservation lives PENDING_SESSION_MS unless the answer's
 * session id turns it into a binding. Sets $mcpsec_pending.
 * Returns {pending} or {status, reason, retryAfter, scope ('user'|'total'|null)}. */
function reserve(r, policy, subject) {
    var store = ngx.shared.mcpsec_sessions;
    var rid = r.variables.request_id;
    var tag = 'p:' + rid;
    var u = -1;
    var t = -1;
    var mine = userSlots(policy.scope, subject);
    if (typeof policy.max_sessions_per_user !== 'number' || typeof policy.max_sessions_total !== 'number') {
        ngx.log(ngx.ERR, 'mcpsec: policy.json lacks max_sessions_per_user or max_sessions_total: ' +
                'every initialize is refused until the proxy role renders it again');
        return {status: 503, reason: 'policy_sessions', retryAfter: 30, scope: null};
    }
    try {
        u = claim(store, mine, policy.max_sessions_per_user, tag, PENDING_SESSION_MS);
        if (u < 0) {
            return {status: 429, reason: 'session_cap', retryAfter: 60, scope: 'user'};
        }
        t = claim(store, hostSlots(policy.scope), policy.max_sessions_total, tag, PENDING_SESSION_MS);
        if (t < 0) {
            free(store, mine + u, tag);
            return {status: 503, reason: 'host_session_cap', retryAfter: 30, scope: 'total'};
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session store refused a reservation (' + e.message + '): denying');
        try {
            if (u >= 0) {
                free(store, mine + u, tag);
            }
        } catch (e2) {
            /* it expires with the reservation */
        }
        return {status: 503, reason: 'session_store_full', retryAfter: 5, scope: null};
    }
    return {pending: u + ' ' + t + ' ' + rid};
}

/* The owner check of a request in session `sid` and the re-arm of its idle
 * timeout (the binding, then its slots, so a slot never expires before its
 * binding) when it was last armed rearmMs ago or more. 'ok', 'unknown'
 * or 'foreign'; throws when the store refuses the write (the caller denies). */
function touch(sid, subject, rearmMs) {
    var store = ngx.shared.mcpsec_sessions;
    var holder = 's:' + sid;
    var b = parseBinding(store.get(holder));
    if (b === null) {
        return 'unknown';
    }
    if (b.subject !== subject) {
        return 'foreign';
    }
    var age = Date.now() - b.armed;
    if (age >= 0 && age < rearmMs) {
        return 'ok';
    }
    store.set(holder, bindingValue(subject, b.u, b.t, b.scope));
    if (b.u >= 0) {
        store.set(userSlots(b.scope, subject) + b.u, holder);
    }
    if (b.t >= 0) {
        store.set(hostSlots(b.scope) + b.t, holder);
    }
    return 'ok';
}

/* The second try of an initialize at a cap, once reclaim() resolved to
 * `released` (-1: the store refused the reclaim stamp, deny). */
function retry(r, policy, subject, released) {
    if (released < 0) {
        return {status: 503, reason: 'session_store_full', retryAfter: 5, scope: null};
    }
    return reserve(r, policy, subject);
}

/* Sessions the backend no longer knows (it restarted, or reaped them idle)
 * still hold bindings until the idle timeout: before a cap refuses anyone,
 * ask the backend about each session in that cap's slots (the subject's, or
 * the host's) and release those it answers 404 for. A restart of the
 * backend therefore never locks anyone out. Resolves to the number
 * released (-1 when the store refused the stamp); probes that fail release
 * nothing. */
function reclaim(r, policy, subject) {
    var store = ngx.shared.mcpsec_sessions;
    var prefix = subject === null ? hostSlots(policy.scope) : userSlots(policy.scope, subject);
    var n = subject === null ? policy.max_sessions_total : policy.max_sessions_per_user;
    var probes = [];
    /* at most one round of probes per scope every RECLAIM_EVERY_MS: a client
     * at its cap that keeps opening sessions must not make the gateway send a
     * probe per binding for every refused initialize (the cap answers at once) */
    try {
        if (!store.add('r' + policy.scope + ':' + (subject === null ? '' : subject), '1', RECLAIM_EVERY_MS)) {
            return Promise.resolve(0);
        }
        for (var i = 0; i < n; i++) {
            var holder = store.get(prefix + i);
            if (typeof holder === 'string' && holder.indexOf('s:') === 0) {
                var b = parseBinding(store.get(holder));
                if (b !== null) {
                    probes.push(probe(holder.slice(2), b.subject, policy.server));
                }
            }
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session store refused the reclaim stamp (' + e.message + '): denying');
        return Promise.resolve(-1);
    }
    return Promise.all(probes).then(function (released) {
        var count = 0;
        for (var j = 0; j < released.length; j++) {
            count += released[j];
        }
        return count;
    });
}

var RECLAIM_EVERY_MS = 1000;
var PROBE_BODY = '{"jsonrpc":"2.0","id":"mcpsec-session-probe","method":"ping"}';

/* sid is the client's (routed) id; route.js names the session's own instance
 * and the backend's id. One this host no longer routes can never be used again. */
function probe(sid, owner, server) {
    var target = route.backendOf(sid, server);
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

/* Release a session binding (only the owner's) and exactly the slots it holds. */
function release(sid, subject) {
    if (sid === undefined || sid === null) {
        return;
    }
    var store = ngx.shared.mcpsec_sessions;
    var holder = 's:' + sid;
    try {
        var b = parseBinding(store.get(holder));
        if (b === null || b.subject !== subject) {
            return;
        }
        store.delete(holder);
        if (b.u >= 0) {
            free(store, userSlots(b.scope, subject) + b.u, holder);
        }
        if (b.t >= 0) {
            free(store, hostSlots(b.scope) + b.t, holder);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session release failed: ' + e.message);
    }
}

/* The answer to a backend 404. For a request that named a session it means
 * the backend does not know the session (it restarted, or the session ended):
 * the binding and its slots are released and the client reads "session not
 * found" (null id), so it starts a new one. A request without a session id
 * (initialize) gets a JSON-RPC error with its own id instead, and its
 * reservation is freed. `id` is the request's id (undefined: unknown). */
function notFound(r, sid, id) {
    r.headersOut['Content-Type'] = 'application/json';
    if (sid === undefined) {
        cancel(r);
        setVar(r, 'mcpsec_reason', 'upstream_not_found');
        r.return(404, rpcError(id === undefined ? null : id, 404, 'Not found: the backend answered 404'));
        return;
    }
    release(sid, r.variables.mcpsec_subject);
    setVar(r, 'mcpsec_reason', 'session_expired');
    r.return(404, rpcError(null, 404, MESSAGES[404]));
}

/* js_content for "error_page 404 = @mcpsec_session_gone" on the upstream
 * locations: the backend said 404 (see notFound). The request's id comes
 * from $mcpsec_rpc_id, set by the handler. */
function sessionGone(r) {
    var id = null;
    try {
        id = r.variables.mcpsec_rpc_id ? JSON.parse(r.variables.mcpsec_rpc_id) : null;
    } catch (e) {
        id = null;
    }
    notFound(r, r.headersIn['Mcp-Session-Id'], id);
}

/* The request's session: undefined when it names none, null when it was
 * refused (answered), else the id, routed (route.js: this host's, this server's
 * and this subject's; any other gets the answer of an unknown one), bound to
 * this subject and re-armed. */
function own(r, subject) {
    var sid = r.headersIn['Mcp-Session-Id'];
    if (sid === undefined) {
        return undefined;
    }
    if (!SESSION_ID_RE.test(sid)) {
        respond.deny(r, 400, 'session_id', null);
        return null;
    }
    if (!route.pin(r, sid, subject)) {
        respond.send(r, 404, 'session_unknown', rpcError(null, 404, MESSAGES[404]));
        return null;
    }
    var owned;
    try {
        owned = touch(sid, subject, rearmEveryMs(r));  /* the owner check; re-arms the idle timeout */
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session store refused a refresh (' + e.message + '): denying');
        respond.deny(r, 503, 'session_store_full', null, {'Retry-After': '5'});
        return null;
    }
    if (owned !== 'ok') {
        /* one answer for unknown and foreign ids (no existence oracle); the log tells them apart */
        respond.send(r, 404, 'session_' + owned, rpcError(null, 404, MESSAGES[404]));
        return null;
    }
    return sid;
}

/* initialize without a session: the subject's session cap, then a pending
 * reservation the bind location's header filter turns into a binding; at a
 * cap, what the backend no longer knows is released and the cap tried once more. */
function open(r, policy, subject, info) {
    var v = reserve(r, policy, subject);
    if (v.scope === 'user' || v.scope === 'total') {
        flow.settle(r, reclaim(r, policy, v.scope === 'user' ? subject : null), function (released) {
            admit(r, info, retry(r, policy, subject, released));
        });
        return;
    }
    admit(r, info, v);
}

function admit(r, info, v) {
    if (v.pending === undefined) {
        respond.deny(r, v.status, v.reason, info.id, {'Retry-After': String(v.retryAfter)});
        return;
    }
    setVar(r, 'mcpsec_pending', v.pending);
    flow.allow(r, flow.UPSTREAM_BIND);
}

export default {
    SESSION_ID_RE: SESSION_ID_RE,
    own: own,
    open: open,
    cancel: cancel,
    reclaim: reclaim,
    notFound: notFound,
    upstreamHeaders: upstreamHeaders,
    sessionGone: sessionGone,
    reapOrphans: reapOrphans
};
