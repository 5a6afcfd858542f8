/*
 * jwt: OIDC access tokens: JWS/JWK checks (the key and the policy choose the
 * algorithm, never the header), claims, the JWKS cache with a single-flight
 * lock, and the verified-token cache.
 */

import util from 'util.js';
import json from 'json.js';
import http from 'http.js';
import authz from 'authz.js';

var hasOwn = util.hasOwn;
var isPlainObject = util.isPlainObject;
var includes = util.includes;
var joinList = util.joinList;
var decodeUtf8 = json.decodeUtf8;
var parseStrictJson = json.parseStrictJson;
var MAX_TOKEN_LENGTH = http.MAX_TOKEN_LENGTH;
var knownRoles = authz.knownRoles;

var B64URL_RE = /^[A-Za-z0-9_-]+$/;
// eslint-disable-next-line no-control-regex -- the control characters are what it refuses
var SUBJECT_FORBIDDEN_RE = /[\x00-\x1f\x7f-\x9f]/;
var JWKS_REFRESH_MS = 600000;      // a warm JWKS is refreshed after 10 min
var JWKS_KID_REFETCH_MS = 30000;   // unknown kid: refetch at most every 30 s
var JWKS_FAIL_BACKOFF_MS = 5000;   // after a failed fetch, wait before the next one
var JWKS_LOCK_MS = 10000;          // single-flight lock lifetime (fetch timeout is shorter)
var JWKS_WAIT_MS = 6000;           // a cold request waits this long for another's fetch
var JWT_CACHE_MAX_S = 3600;

var JWT_ALGS = {
    RS256: {kty: 'RSA', importAlg: {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256'},
            verifyAlg: {name: 'RSASSA-PKCS1-v1_5'}},
    ES256: {kty: 'EC', crv: 'P-256', importAlg: {name: 'ECDSA', namedCurve: 'P-256'},
            verifyAlg: {name: 'ECDSA', hash: 'SHA-256'}, sigLen: 64}
};

function b64urlDecode(s) {
    if (typeof s !== 'string' || !B64URL_RE.test(s) || s.length % 4 === 1) {
        return null;
    }
    return Buffer.from(s, 'base64url');
}

/* Can this JWK verify tokens signed with alg? The key decides, never the header. */
function jwkUsable(jwk, alg) {
    if (!isPlainObject(jwk) || !hasOwn(JWT_ALGS, alg)) {
        return false;
    }
    var spec = JWT_ALGS[alg];
    if (jwk.kty !== spec.kty) {
        return false;
    }
    if (hasOwn(jwk, 'alg') && jwk.alg !== alg) {
        return false;
    }
    if (hasOwn(jwk, 'use') && jwk.use !== 'sig') {
        return false;
    }
    if (hasOwn(jwk, 'key_ops') && (!Array.isArray(jwk.key_ops) || jwk.key_ops.indexOf('verify') < 0)) {
        return false;
    }
    if (hasOwn(jwk, 'd')) {
        return false;                       /* a private key was published */
    }
    if (spec.kty === 'RSA') {
        var n = b64urlDecode(jwk.n);
        var e = b64urlDecode(jwk.e);
        return n !== null && e !== null && n.length >= 256 && e.length > 0 && e.length <= 8;
    }
    var x = b64urlDecode(jwk.x);
    var y = b64urlDecode(jwk.y);
    return jwk.crv === spec.crv && x !== null && y !== null && x.length === 32 && y.length === 32;
}

/* Reduce a JWKS document to the public keys usable with the allowed algorithms. */
function usableKeys(jwks, algorithms) {
    var out = [];
    if (!isPlainObject(jwks) || !Array.isArray(jwks.keys)) {
        return out;
    }
    for (var i = 0; i < jwks.keys.length && out.length < 64; i++) {
        var k = jwks.keys[i];
        for (var j = 0; j < algorithms.length; j++) {
            if (jwkUsable(k, algorithms[j])) {
                var clean = {kty: k.kty, kid: typeof k.kid === 'string' ? k.kid : null};
                if (k.kty === 'RSA') {
                    clean.n = k.n;
                    clean.e = k.e;
                } else {
                    clean.crv = k.crv;
                    clean.x = k.x;
                    clean.y = k.y;
                }
                if (hasOwn(k, 'alg')) {
                    clean.alg = k.alg;
                }
                out.push(clean);
                break;
            }
        }
    }
    return out;
}

function keysHaveKid(keys, kid) {
    for (var i = 0; i < keys.length; i++) {
        if (keys[i].kid === kid) {
            return true;
        }
    }
    return false;
}

/* Split and decode a compact JWS. Returns {header, claims, signingInput, sig} or {reason}. */
function decodeJwt(token) {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
        return {reason: 'malformed_token'};
    }
    var parts = token.split('.');
    if (parts.length !== 3) {
        return {reason: 'malformed_token'};
    }
    var hb = b64urlDecode(parts[0]);
    var pb = b64urlDecode(parts[1]);
    var sig = b64urlDecode(parts[2]);
    if (hb === null || pb === null || sig === null) {
        return {reason: 'malformed_token'};
    }
    var hdr = parseStrictJson(decodeUtf8(hb));
    var cl = parseStrictJson(decodeUtf8(pb));
    if (hdr.reason || cl.reason || !isPlainObject(hdr.value) || !isPlainObject(cl.value)) {
        return {reason: 'malformed_token'};
    }
    return {header: hdr.value, claims: cl.value, signingInput: parts[0] + '.' + parts[1], sig: sig};
}

/* Which keys may verify this token: alg from the policy allow-list, key from the JWKS. */
function selectKeys(header, keys, algorithms) {
    var alg = header.alg;
    if (typeof alg !== 'string' || !includes(algorithms, alg) || !hasOwn(JWT_ALGS, alg)) {
        return {reason: 'alg_not_allowed'};
    }
    if (hasOwn(header, 'crit')) {
        return {reason: 'crit_header'};
    }
    if (hasOwn(header, 'typ')) {
        var typ = String(header.typ).toLowerCase();
        if (typ !== 'jwt' && typ !== 'at+jwt' && typ !== 'application/at+jwt') {
            return {reason: 'bad_typ'};
        }
    }
    var kid = hasOwn(header, 'kid') ? header.kid : null;
    if (kid !== null && typeof kid !== 'string') {
        return {reason: 'bad_kid'};
    }
    var out = [];
    for (var i = 0; i < keys.length; i++) {
        if (kid !== null && keys[i].kid !== kid) {
            continue;
        }
        if (jwkUsable(keys[i], alg)) {
            out.push(keys[i]);
        }
    }
    if (out.length === 0) {
        return {reason: kid !== null && !keysHaveKid(keys, kid) ? 'unknown_kid' : 'no_matching_key'};
    }
    if (kid === null && out.length > 1) {
        return {reason: 'ambiguous_key'};
    }
    return {alg: alg, keys: out};
}

/* Walk a dotted claim path (already split) through own properties only. */
function claimAtPath(claims, path) {
    var v = claims;
    for (var i = 0; i < path.length; i++) {
        if (!hasOwn(v, path[i]) || Array.isArray(v)) {
            return undefined;
        }
        v = v[path[i]];
    }
    return v;
}

function rolesFromClaims(claims, path) {
    var v = claimAtPath(claims, path);
    if (typeof v === 'string') {
        return v.split(' ').filter(function(x) { return x !== ''; });
    }
    if (Array.isArray(v)) {
        return v.filter(function(x) { return typeof x === 'string'; });
    }
    return [];
}

/* The token's scopes: the space-separated `scope` claim (RFC 9068, RFC 8693)
 * and `scp` (a list or a string, as some IdPs send), together. */
function scopesFromClaims(claims) {
    var out = [];
    var sources = [claims.scope, claims.scp];
    for (var i = 0; i < sources.length; i++) {
        var v = sources[i];
        var list = typeof v === 'string' ? v.split(' ') : (Array.isArray(v) ? v : []);
        for (var j = 0; j < list.length; j++) {
            if (typeof list[j] === 'string' && list[j] !== '' && out.indexOf(list[j]) < 0) {
                out.push(list[j]);
            }
        }
    }
    return out;
}

/* The roles a token grants: the roles claim, and every role `scope_roles`
 * maps one of its scopes to; only roles the policy defines. */
function tokenRoles(policy, claimRoles, scopes) {
    var all = claimRoles.slice();
    var map = policy.oidc.scope_roles;
    for (var i = 0; i < scopes.length; i++) {
        if (hasOwn(map, scopes[i])) {
            var granted = map[scopes[i]];
            for (var j = 0; j < granted.length; j++) {
                all.push(granted[j]);
            }
        }
    }
    return knownRoles(policy, all);
}

/* The required scopes the token lacks (policy.oidc.required_scopes). */
function missingScopes(oidc, scopes) {
    var out = [];
    var req = oidc.required_scopes;
    for (var i = 0; i < req.length; i++) {
        if (scopes.indexOf(req[i]) < 0) {
            out.push(req[i]);
        }
    }
    return out;
}

/* The MCP server's audiences (servers.view: its own resource URL, or the one
 * audience the operator set for every server); a policy without them has none. */
function audiencesOf(oidc) {
    return Array.isArray(oidc.audiences) ? oidc.audiences : [];
}

/* Pure: the token's aud holds one of the server's audiences. */
function audienceOk(aud, oidc) {
    var wanted = audiencesOf(oidc);
    for (var i = 0; i < wanted.length; i++) {
        if (typeof wanted[i] === 'string' && wanted[i] !== '' && aud.indexOf(wanted[i]) >= 0) {
            return true;
        }
    }
    return false;
}

/* Registered claims. nowS in seconds. Returns null or a reason. */
function checkClaims(claims, oidc, nowS) {
    var leeway = oidc.leeway;
    if (claims.iss !== oidc.issuer) {
        return 'bad_iss';
    }
    var aud = claims.aud;
    if (typeof aud === 'string') {
        aud = [aud];
    }
    if (!Array.isArray(aud) || !audienceOk(aud, oidc)) {
        return 'bad_aud';
    }
    if (typeof claims.exp !== 'number' || !isFinite(claims.exp)) {
        return 'no_exp';
    }
    if (nowS > claims.exp + leeway) {
        return 'expired';
    }
    if (hasOwn(claims, 'nbf')) {
        if (typeof claims.nbf !== 'number' || !isFinite(claims.nbf)) {
            return 'bad_nbf';
        }
        if (claims.nbf > nowS + leeway) {
            return 'not_yet_valid';
        }
    }
    if (hasOwn(claims, 'iat') && (typeof claims.iat !== 'number' || claims.iat > nowS + leeway)) {
        return 'bad_iat';
    }
    var sub = claims[oidc.subject_claim];
    if (!hasOwn(claims, oidc.subject_claim) || typeof sub !== 'string' || sub === '' || sub.length > 1024) {
        return 'no_subject';
    }
    if (SUBJECT_FORBIDDEN_RE.test(sub)) {
        return 'bad_subject';               /* it becomes a header upstream: no CR/LF, no controls */
    }
    return null;
}

async function verifySignature(alg, jwk, signingInput, sig) {
    var spec = JWT_ALGS[alg];
    if (spec.sigLen && sig.length !== spec.sigLen) {
        return false;                       /* ECDSA: raw r||s only, never DER */
    }
    var material = spec.kty === 'RSA' ? {kty: 'RSA', n: jwk.n, e: jwk.e, ext: true}
                                       : {kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true};
    var key = await crypto.subtle.importKey('jwk', material, spec.importAlg, false, ['verify']);
    var data = Buffer.from(signingInput);
    return await crypto.subtle.verify(spec.verifyAlg, key, sig, data);
}

/* Full verification against a key list. Returns {claims} or {reason}. */
async function verifyJwt(token, keys, oidc, nowS) {
    var d = decodeJwt(token);
    if (d.reason) {
        return d;
    }
    var sel = selectKeys(d.header, keys, oidc.algorithms);
    if (sel.reason) {
        return sel;
    }
    var ok = false;
    for (var i = 0; i < sel.keys.length && !ok; i++) {
        try {
            ok = await verifySignature(sel.alg, sel.keys[i], d.signingInput, d.sig);
        } catch (e) {
            ok = false;
        }
    }
    if (!ok) {
        return {reason: 'bad_signature'};
    }
    var reason = checkClaims(d.claims, oidc, nowS);
    if (reason) {
        return {reason: reason};
    }
    return {claims: d.claims, kid: d.header.kid};
}


function sleep(ms) {
    return new Promise(function(resolve) { setTimeout(resolve, ms); });
}

/* The cache outlives reloads: keys fetched for another issuer or JWKS URI count as none. */
function jwksSource(oidc) {
    return oidc.issuer + ' ' + (oidc.jwks_uri || oidc.discovery_url);
}

function jwksLoad(oidc) {
    var raw = ngx.shared.mcpsec_jwks.get('jwks');
    if (!raw) {
        return null;
    }
    try {
        var c = JSON.parse(raw);
        return c.src === jwksSource(oidc) ? c : null;
    } catch (e) {
        return null;
    }
}

async function fetchJson(url) {
    if (typeof url !== 'string' || url.indexOf('https://') !== 0) {
        throw new Error('not an https url');
    }
    var resp = await ngx.fetch(url, {method: 'GET', headers: {'Accept': 'application/json'},
                                     max_response_body_size: 262144});
    if (resp.status !== 200) {
        throw new Error(url + ' answered ' + resp.status);
    }
    var text = await resp.text();
    var p = parseStrictJson(text);
    if (p.reason) {
        throw new Error(url + ': ' + p.reason);
    }
    return p.value;
}

async function jwksRefresh(oidc) {
    var uri = oidc.jwks_uri;
    if (!uri) {
        var disc = await fetchJson(oidc.discovery_url);
        if (!isPlainObject(disc) || disc.issuer !== oidc.issuer) {
            throw new Error('discovery issuer mismatch');
        }
        uri = disc.jwks_uri;
    }
    var doc = await fetchJson(uri);
    var keys = usableKeys(doc, oidc.algorithms);
    if (keys.length === 0) {
        throw new Error('JWKS has no usable key');
    }
    ngx.shared.mcpsec_jwks.set('jwks', JSON.stringify({at: Date.now(), src: jwksSource(oidc), keys: keys}));
}

/* The JWKS, refreshed single-flight. Returns the key list, or null when
 * none is available (cold cache and the issuer unreachable). */
async function jwksGet(oidc, kid) {
    var dict = ngx.shared.mcpsec_jwks;
    var now = Date.now();
    var cached = jwksLoad(oidc);
    var stale = cached === null || now - cached.at > JWKS_REFRESH_MS;
    var kidMiss = cached !== null && kid !== null && !keysHaveKid(cached.keys, kid) &&
                  now - (dict.get('kid_at') || 0) >= JWKS_KID_REFETCH_MS;
    if (!stale && !kidMiss) {
        return cached.keys;
    }
    if (!kidMiss && now < (dict.get('fail_at') || 0) + JWKS_FAIL_BACKOFF_MS) {
        return cached ? cached.keys : null;
    }
    if (dict.add('lock', '1', JWKS_LOCK_MS)) {
        if (kidMiss) {
            dict.set('kid_at', String(now));
        }
        try {
            await jwksRefresh(oidc);
        } catch (e) {
            dict.set('fail_at', String(Date.now()));
            ngx.log(ngx.WARN, 'mcpsec: JWKS refresh failed: ' + e.message);
        }
        dict.delete('lock');
        cached = jwksLoad(oidc);
        return cached ? cached.keys : null;
    }
    if (cached) {
        return cached.keys;                 /* someone else is refreshing: use what we have */
    }
    for (var waited = 0; waited < JWKS_WAIT_MS; waited += 50) {
        await sleep(50);
        cached = jwksLoad(oidc);
        if (cached) {
            return cached.keys;
        }
        if (!dict.get('lock')) {
            break;
        }
    }
    return null;
}

/* The verified-token cache key: the policy's view of a token is part of it,
 * so a reload that changes the issuer, audience or claims starts afresh. */
function jwtCacheKey(oidc, token) {
    /* two updates hash the concatenation without copying the token into it */
    return require('crypto').createHash('sha256')
        .update(oidc.issuer + '\n' + joinList(audiencesOf(oidc)) + '\n' + oidc.subject_claim + '\n' +
                joinList(oidc.roles_claim) + '\n' + joinList(oidc.algorithms) + '\n')
        .update(token).digest('hex');
}

/* A verified token still in the cache (`digest` = jwtCacheKey): {subject,
 * roles, scopes}, else null (synchronous). The cache holds the token's own
 * roles and scopes: roles granted through scope_roles follow the policy now
 * in force. */
function cachedOidc(policy, digest) {
    var oidc = policy.oidc;
    var cache = ngx.shared.mcpsec_jwt;
    var hit = cache.get(digest);
    if (hit) {
        var c = JSON.parse(hit);
        if (Date.now() / 1000 <= c.exp + oidc.leeway && Array.isArray(c.scopes)) {
            return {subject: c.sub, roles: tokenRoles(policy, c.roles, c.scopes), scopes: c.scopes};
        }
        cache.delete(digest);
    }
    return null;
}

/* Verify a token that is not cached. Returns {subject, roles, scopes} or {reason, status}. */
async function authenticateOidc(r, policy, token, digest) {
    var oidc = policy.oidc;
    var nowS = Date.now() / 1000;
    var cache = ngx.shared.mcpsec_jwt;
    var d = decodeJwt(token);
    if (d.reason) {
        return {reason: d.reason, status: 401};
    }
    var kid = hasOwn(d.header, 'kid') && typeof d.header.kid === 'string' ? d.header.kid : null;
    var keys = await jwksGet(oidc, kid);
    if (keys === null) {
        return {reason: 'jwks_unavailable', status: 503};
    }
    var v = await verifyJwt(token, keys, oidc, nowS);
    if (v.reason) {
        return {reason: v.reason, status: 401};
    }
    var sub = v.claims[oidc.subject_claim];
    var roles = rolesFromClaims(v.claims, oidc.roles_claim);
    var scopes = scopesFromClaims(v.claims);
    var ttl = Math.min(v.claims.exp - nowS, JWT_CACHE_MAX_S);
    if (ttl >= 1) {
        try {
            cache.set(digest, JSON.stringify({sub: sub, roles: roles, scopes: scopes, exp: v.claims.exp}), Math.floor(ttl * 1000));
        } catch (e) {
            ngx.log(ngx.WARN, 'mcpsec: JWT cache full: ' + e.message);
        }
    }
    return {subject: sub, roles: tokenRoles(policy, roles, scopes), scopes: scopes};
}

export default {
    b64urlDecode: b64urlDecode,
    jwkUsable: jwkUsable,
    usableKeys: usableKeys,
    decodeJwt: decodeJwt,
    selectKeys: selectKeys,
    claimAtPath: claimAtPath,
    rolesFromClaims: rolesFromClaims,
    checkClaims: checkClaims,
    scopesFromClaims: scopesFromClaims,
    tokenRoles: tokenRoles,
    missingScopes: missingScopes,
    verifyJwt: verifyJwt,
    jwtCacheKey: jwtCacheKey,
    cachedOidc: cachedOidc,
    authenticateOidc: authenticateOidc
};
