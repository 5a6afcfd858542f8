/*
 * credentials: static bearer tokens (digests compared in constant time) and basic mode
 * (remembering what auth_basic verified).
 */

import util from 'util.js';
import limits from 'limits.js';

var sha256hex = util.sha256hex;
var overAuthFailLimit = limits.overAuthFailLimit;

/* A 32-byte digest as eight 32-bit words (a view, no copy): typed-array reads
 * are internal to the VM, where Buffer.readInt32BE is a method call per word. */
function digestWords(b) {
    return b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, 8)
                                  : new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + 32));
}

/* The stored digest of one token as eight 32-bit words, or null when it is
 * malformed (never matches). Buffer.from(hex) is native and stops at the
 * first non-hex character, so the length check is the validation. */
function storedDigest(stored) {
    if (typeof stored !== 'string' || stored.length !== 64) {
        return null;
    }
    var b = Buffer.from(stored, 'hex');
    return b.length === 32 ? digestWords(b) : null;
}

/* Static bearer tokens: the token's sha256 digest is compared with every
 * stored digest, word by word, with no early exit (constant time). Returns the
 * subject or null. The stored digests are read straight from tokens.json (no
 * table is built per request). */
function matchStaticToken(tokens, token) {
    var d = digestWords(require('crypto').createHash('sha256').update(token).digest());
    var d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3], d4 = d[4], d5 = d[5], d6 = d[6], d7 = d[7];
    var found = null;
    /* every stored digest is compared; for-in builds no array of the names (a
     * JSON object has no inherited enumerable properties) */
    for (var name in tokens) {
        var w = storedDigest(tokens[name]);
        if (w === null) {
            continue;
        }
        var diff = (w[0] ^ d0) | (w[1] ^ d1) | (w[2] ^ d2) | (w[3] ^ d3) |
                   (w[4] ^ d4) | (w[5] ^ d5) | (w[6] ^ d6) | (w[7] ^ d7);
        if (diff === 0 && found === null) {
            found = name;
        }
    }
    return found;
}


/* The htpasswd line of the user named in a Basic Authorization header, and
 * the credential (its base64 part): null when there is no usable header or no
 * such user. The scheme's case and the blanks around the credential are what
 * nginx's auth_basic ignores too, so "Basic  <b64>" is the same credential. */
function htpasswdEntry(text, header) {
    var m = /^Basic[ \t]+([A-Za-z0-9+\/]+={0,2})[ \t]*$/i.exec(header || '');
    if (!m) {
        return null;
    }
    var plain = Buffer.from(m[1], 'base64').toString();
    var colon = plain.indexOf(':');
    if (colon <= 0) {
        return null;
    }
    var prefix = plain.slice(0, colon) + ':';
    if (prefix.indexOf('\n') >= 0) {
        return null;                        /* no htpasswd line holds one */
    }
    /* the first line that starts with "user:" (native searches, no split per request) */
    var at = text.slice(0, prefix.length) === prefix ? 0 : text.indexOf('\n' + prefix);
    if (at < 0) {
        return null;
    }
    if (at > 0 || text.charAt(0) === '\n') {
        at += 1;
    }
    var end = text.indexOf('\n', at);
    return {user: prefix.slice(0, -1), line: end < 0 ? text.slice(at) : text.slice(at, end), credential: m[1]};
}

/* Cache key of a credential: the normalised credential and the user's current
 * htpasswd line (its salted hash), so a changed or removed password never hits. */
function basicCacheKey(entry) {
    return sha256hex(entry.line + '\nBasic ' + entry.credential);
}

/* js_set $mcpsec_basic_realm, read by auth_basic in the access phase: "off"
 * skips the password hash for a credential nginx verified within
 * proxy_basic_auth_cache_ttl, and for a client over the failure limit (the
 * handler answers 429). Otherwise "mcpsec": nginx verifies the password. */
function basicRealm(r) {
    try {
        if (overAuthFailLimit(r) !== null) {
            r.variables.mcpsec_basic_state = 'throttled';
            return 'off';
        }
        if (r.variables.mcpsec_basic_cache !== 'on') {
            return 'mcpsec';
        }
        var header = r.headersIn.Authorization;
        var entry = htpasswdEntry(require('fs').readFileSync(r.variables.mcpsec_htpasswd, 'utf8'), header);
        if (entry === null) {
            return 'mcpsec';
        }
        var key = basicCacheKey(entry);
        var cached = ngx.shared.mcpsec_basic.get(key);
        if (cached === entry.user) {
            r.variables.mcpsec_basic_state = 'cached';
            r.variables.mcpsec_basic_user = cached;
            return 'off';
        }
        r.variables.mcpsec_basic_key = key;
        r.variables.mcpsec_basic_user = entry.user;
    } catch (e) {
        ngx.log(ngx.WARN, 'mcpsec: basic credential cache: ' + e.message);
    }
    return 'mcpsec';
}

/* The user of a basic-mode request: '' when unknown, null when the client
 * is throttled (auth_basic was skipped). Remembers a credential auth_basic
 * has just verified. */
function basicUser(r) {
    var state = r.variables.mcpsec_basic_state;
    if (state === 'cached') {
        return r.variables.mcpsec_basic_user || '';
    }
    if (state === 'throttled') {
        return null;
    }
    /* auth_basic verified the password in the access phase */
    var user = r.variables.remote_user || '';
    var key = r.variables.mcpsec_basic_key;
    if (key && user !== '' && user === r.variables.mcpsec_basic_user) {
        try {
            ngx.shared.mcpsec_basic.set(key, user);
        } catch (e) {
            ngx.log(ngx.WARN, 'mcpsec: basic credential cache full: ' + e.message);
        }
    }
    return user;
}

export default {
    digestWords: digestWords,
    storedDigest: storedDigest,
    matchStaticToken: matchStaticToken,
    htpasswdEntry: htpasswdEntry,
    basicCacheKey: basicCacheKey,
    basicRealm: basicRealm,
    basicUser: basicUser
};
