/*
 * limits: counters: per-tool sliding windows and failed-authentication throttles.
 */

import util from 'util.js';

var hasOwn = util.hasOwn;

/* The per-address limits come from the policy (rate_limits.per_ip.auth_failures
 * and .refusals, expanded to {count, window}); njs holds no defaults of its own. */
function validLimit(l) {
    return l !== null && typeof l === 'object' && typeof l.count === 'number' && l.count >= 1 &&
           typeof l.window === 'number' && l.window >= 1;
}

/* {authFailures, refusals} ({count, window} each) from the policy, or null
 * when the policy lacks them: every request is then refused (fail closed). */
function addressLimits() {
    var p = typeof mcpsec_policy === 'undefined' ? null : mcpsec_policy;
    if (p === null || !validLimit(p.auth_failure_limit) || !validLimit(p.refusal_limit)) {
        ngx.log(ngx.ERR, 'mcpsec: policy.json lacks auth_failure_limit or refusal_limit ' +
                '(rate_limits.per_ip.auth_failures, .refusals): every request is refused until ' +
                'the proxy role renders it again');
        return null;
    }
    return {authFailures: p.auth_failure_limit, refusals: p.refusal_limit};
}

/* Per user per tool limit: returns null or {calls, window} for the tool. */
function toolLimit(policy, tool) {
    if (tool === null || !hasOwn(policy.tool_limits, tool)) {
        return null;
    }
    var l = policy.tool_limits[tool];
    return {calls: l.calls, window: l.window};
}

/* Counter key and TTL for a fixed window over (kind, who), e.g. failed
 * authentications per client address: the window number is in the key
 * because incr() re-arms the TTL on every hit and never resets a busy key. */
function windowKey(kind, who, windowS, nowMs) {
    var w = Math.floor(nowMs / (windowS * 1000));
    return {key: kind + '\n' + who + '\n' + windowS + '\n' + w,
            ttlMs: windowS * 1000 + 1000,
            retryAfter: Math.max(1, Math.ceil(((w + 1) * windowS * 1000 - nowMs) / 1000))};
}

/* The client as the per-address limits see it: an IPv4 address, or an IPv6
 * client's /64 (one host usually holds a whole /64; per address it could
 * try 2^64 times the limit). Same key as nginx's $mcpsec_client_key. */
function clientKey(r) {
    var raw = r.rawVariables.binary_remote_addr;
    if (raw !== undefined && raw.length === 16) {
        return raw.slice(0, 8).toString('hex') + '/64';
    }
    return r.variables.remote_addr;
}

/* Failed authentications per client address: limit_req runs only after njs (on
 * the upstream location), so guessing is throttled here. Once over the limit
 * even a correct credential gets 429, so a guess cannot be confirmed. */
function authFailKey(r, lim) {
    return windowKey('\u0000authfail', clientKey(r), lim.window, Date.now());
}

/* Refusals the proxy answers itself (401, 403, 404) per client address per
 * window: a client making a few mistakes never meets it, a flood at once. */
function refusalKey(r, lim) {
    return windowKey('\u0000refused', clientKey(r), lim.window, Date.now());
}

/* The client's window when its counter is at `limit`, else null. */
function overLimit(w, limit) {
    var n = ngx.shared.mcpsec_counters.get(w.key);
    return n !== undefined && n >= limit ? w : null;
}

/* The client's window when over its failed-authentication limit (or when the
 * policy lacks the limit: refused either way), else null. */
function overAuthFailLimit(r) {
    var lims = addressLimits();
    if (lims === null) {
        return {key: '', ttlMs: 0, retryAfter: 30};
    }
    return overLimit(authFailKey(r, lims.authFailures), lims.authFailures.count);
}

/* Before authentication: null to go on, or the refusal {status, reason,
 * retryAfter}. The client's failure counter is created here, before the
 * credential is checked, so a store too full to count it refuses the request
 * (503) instead of letting a guess through uncounted: a full store never
 * turns into unlimited guessing, and never into an oracle (200 for the right
 * credential, something else for a wrong one). */
function gate(r) {
    var lims = addressLimits();
    if (lims === null) {
        return {status: 503, reason: 'policy_limits', retryAfter: 30};
    }
    var w = authFailKey(r, lims.authFailures);
    var store = ngx.shared.mcpsec_counters;
    /* a read (shared lock) when the window's counter exists, as it does after the
     * client's first request in the window; only the first one creates it (write lock) */
    var n;
    try {
        n = store.get(w.key);
        if (n === undefined) {
            n = store.incr(w.key, 0, 0, w.ttlMs);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: counter store refused a write (' + e.message + '): denying');
        return {status: 503, reason: 'counter_store_full', retryAfter: 5};
    }
    if (n >= lims.authFailures.count) {
        return {status: 429, reason: 'auth_throttled', retryAfter: w.retryAfter};
    }
    var rw = overLimit(refusalKey(r, lims.refusals), lims.refusals.count);
    if (rw !== null) {
        return {status: 429, reason: 'refusal_throttled', retryAfter: rw.retryAfter};
    }
    return null;
}

/* Counts one failed authentication (kind 'authFailures') or one refusal
 * ('refusals') of the client. False when the store refused the write (or the
 * policy lacks the limit): the caller must then deny (fail closed), never go
 * on uncounted. */
function countFor(r, kind) {
    var lims = addressLimits();
    if (lims === null) {
        return false;
    }
    return count((kind === 'refusals' ? refusalKey : authFailKey)(r, lims[kind]));
}

/* Counts one event in the client's window `w` (see countFor). */
function count(w) {
    try {
        ngx.shared.mcpsec_counters.incr(w.key, 1, 0, w.ttlMs);
        return true;
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: counter store refused a write (' + e.message + '): denying');
        return false;
    }
}

/* Per user per tool limit, atomic across workers: `calls` slots per user, tool
 * and window; a call is admitted only by claiming a free slot with add(),
 * which succeeds for exactly one caller, and a slot stays taken for the
 * window (its TTL). So at most `calls` calls are admitted in ANY window of
 * that length, whatever the workers interleave. Returns {admit, retryAfter};
 * throws when the store cannot take the write (deny). */
function admitToolCall(subject, tool, calls, windowS, nowMs) {
    var dict = ngx.shared.mcpsec_toolslots;
    var windowMs = windowS * 1000;
    var base = subject + '\n' + tool + '\n' + windowS + '\n';
    var oldest = null;
    for (var i = 0; i < calls; i++) {
        if (dict.add(base + i, nowMs, windowMs)) {
            return {admit: true, retryAfter: 0};
        }
        var t = dict.get(base + i);
        if (t !== undefined && (oldest === null || t < oldest)) {
            oldest = t;
        }
    }
    var wait = oldest === null ? 1 : Math.ceil((oldest + windowMs - nowMs) / 1000);
    return {admit: false, retryAfter: Math.max(1, wait)};
}

export default {
    toolLimit: toolLimit,
    windowKey: windowKey,
    overAuthFailLimit: overAuthFailLimit,
    countFor: countFor,
    gate: gate,
    admitToolCall: admitToolCall
};
