/*
 * auth: who is asking. One function per mode (basic: nginx's auth_basic checked
 * the password, bearer: a static token's digest, oidc: a verified JWT); each
 * returns {subject, roles} or {reason, status, tokenGiven}, oidc as a Promise of
 * one unless the token is in the verified cache (basic and bearer stay
 * synchronous: no promise machinery on their path). refused() answers the
 * failures: 401 with the mode's challenges (counted per client address), 429 or
 * 503 with Retry-After.
 */

import util from 'util.js';
import http from 'http.js';
import authz from 'authz.js';
import limits from 'limits.js';
import credentials from 'credentials.js';
import jwt from 'jwt.js';
import respond from 'respond.js';

/* A client over its failed-authentication or refusal limit: 429. True when it answered. */
function throttled(r) {
    var g = limits.gate(r);
    if (g !== null) {
        respond.deny(r, g.status, g.reason, null, {'Retry-After': String(g.retryAfter)});
        return true;
    }
    return false;
}

function unauthorized(r, policy, reason, tokenGiven) {
    if (!limits.countFor(r, 'authFailures')) {
        respond.deny(r, 503, 'counter_store_full', null, {'Retry-After': '5'});
        return;
    }
    respond.send(r, 401, reason, respond.rpcError(null, 401, respond.unauthorizedMessage(policy, reason)),
                 {'WWW-Authenticate': respond.authChallenges(policy, tokenGiven)});
}

function basic(r, policy) {
    var user = credentials.basicUser(r);
    if (user === null) {
        return {reason: 'auth_throttled', status: 429, tokenGiven: false};
    }
    if (!user || !util.hasOwn(policy.users, user)) {
        return {reason: 'unknown_user', status: 401, tokenGiven: false};
    }
    return {subject: user, roles: authz.rolesOfUser(policy, user)};
}

function bearer(policy, token) {
    var tokens = typeof mcpsec_tokens === 'undefined' ? {} : mcpsec_tokens;
    var who = credentials.matchStaticToken(tokens, token);
    if (who === null || !util.hasOwn(policy.users, who)) {
        return {reason: 'bad_token', status: 401, tokenGiven: true};
    }
    return {subject: who, roles: authz.rolesOfUser(policy, who)};
}

function oidc(r, policy, token) {
    var digest = jwt.jwtCacheKey(policy.oidc, token);
    var cached = jwt.cachedOidc(policy, digest);
    if (cached !== null) {
        return cached;
    }
    return jwt.authenticateOidc(r, policy, token, digest).then(function (a) {
        if (a.reason) {
            a.tokenGiven = true;
        }
        return a;
    });
}

function authenticate(r, policy) {
    var mode = policy.auth_mode;
    if (mode === 'basic') {
        return basic(r, policy);
    }
    var header = r.headersIn.Authorization;
    var token = http.parseBearer(header);
    if (token === null) {
        return {reason: header ? 'wrong_scheme' : 'no_credentials', status: 401, tokenGiven: false};
    }
    if (token === false) {
        return {reason: 'malformed_token', status: 401, tokenGiven: true};
    }
    if (mode === 'bearer') {
        return bearer(policy, token);
    }
    if (mode === 'oidc' && policy.oidc) {
        return oidc(r, policy, token);
    }
    return {reason: 'auth_mode', status: 500, tokenGiven: false};
}

/* A failed authentication answered; false when `a` is a subject. */
function refused(r, policy, a) {
    if (!a.reason) {
        return false;
    }
    if (a.status === 401) {
        unauthorized(r, policy, a.reason, a.tokenGiven);
    } else {
        respond.deny(r, a.status, a.reason, null, a.status === 503 ? {'Retry-After': '5'}
                     : (a.status === 429 ? {'Retry-After': '1'} : null));
    }
    return true;
}

export default {
    throttled: throttled,
    unauthorized: unauthorized,
    authenticate: authenticate,
    refused: refused
};
