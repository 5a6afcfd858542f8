/*
 * limits: counters: per-tool sliding windows and failed-authentication throttles.
 */

import util from 'util.js';

var hasOwn = util.hasOwn;

var AUTH_FAIL_LIMIT = 50;          // failed authentications per client IP per window
var AUTH_FAIL_WINDOW_S = 60;

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

/* Per-tool limits over a sliding window: `log` holds the times (ms, comma
 * separated, oldest first) of the calls admitted in the last window, so "N
 * calls per window" holds for ANY window, not just epoch-aligned ones (a fixed
 * window lets 2N through across a boundary). Pure: the caller stores `log`. */
var DIGITS_RE = /^[0-9]{1,15}$/;

function slidingAdmit(log, calls, windowMs, nowMs) {
    var kept = [];
    if (log) {
        var parts = log.split(',');
        for (var i = 0; i < parts.length; i++) {
            if (!DIGITS_RE.test(parts[i])) {
                continue;
            }
            var t = Number(parts[i]);
            if (t > nowMs - windowMs && t <= nowMs) {
                kept.push(t);
            }
        }
    }
    if (kept.length >= calls) {
        return {admit: false, log: kept.join(','),
                retryAfter: Math.max(1, Math.ceil((kept[kept.length - calls] + windowMs - nowMs) / 1000))};
    }
    kept.push(nowMs);
    return {admit: true, log: kept.join(','), retryAfter: 0};
}


/* Failed authentications per client IP: limit_req runs only after njs (on the
 * upstream location), so guessing is throttled here. Once over the limit even
 * a correct credential gets 429, so a guess cannot be confirmed. */
function authFailKey(r) {
    return windowKey('\u0000authfail', r.variables.remote_addr, AUTH_FAIL_WINDOW_S, Date.now());
}

/* The client address's failure window when it is over the limit, else null. */
function overAuthFailLimit(r) {
    var w = authFailKey(r);
    var n = ngx.shared.mcpsec_counters.get(w.key);
    return n !== undefined && n >= AUTH_FAIL_LIMIT ? w : null;
}

export default {
    toolLimit: toolLimit,
    windowKey: windowKey,
    slidingAdmit: slidingAdmit,
    authFailKey: authFailKey,
    overAuthFailLimit: overAuthFailLimit,
    AUTH_FAIL_LIMIT: AUTH_FAIL_LIMIT,
    AUTH_FAIL_WINDOW_S: AUTH_FAIL_WINDOW_S
};
