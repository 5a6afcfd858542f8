/*
 * mcpsec.js: the MCP enforcement point (njs 0.8.9, njs engine).
 *
 * One js_content handler (handle) authenticates, inspects the decoded
 * JSON-RPC body, counts, sets js_vars for the audit log and the upstream,
 * then internalRedirects to @mcpsec_upstream (or @mcpsec_upstream_bind for
 * what opens or ends a session). Anything it cannot prove
 * safe is refused: fail closed.
 *
 * Globals provided by nginx (js_preload_object):
 *   mcpsec_policy  /etc/nginx/mcpsec/policy.json   (always)
 *   mcpsec_tokens  /etc/nginx/mcpsec/tokens.json   (bearer mode)
 *
 * Shared dict zones (js_shared_dict_zone):
 *   mcpsec_sessions  string            session id -> subject, pending initialize reservations
 *   mcpsec_counters  number            failed-authentication counters per client address
 *   mcpsec_toolcalls string, evict     per user per tool: times of the calls admitted in the window
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

var KNOWN_PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25', '2026-07-28'];
var MAX_JSON_DEPTH = 31;          // njs JSON.parse refuses 32 levels
var MAX_TOKEN_LENGTH = 8192;
var MAX_LOG_FIELD = 128;
var SESSION_ID_RE = /^[\x21-\x7e]{1,128}$/;
var STATIC_TOKEN_RE = /^[\x21-\x7e]+$/;   // visible ASCII; length is checked against MAX_TOKEN_LENGTH
var B64URL_RE = /^[A-Za-z0-9_-]+$/;
var SUBJECT_FORBIDDEN_RE = /[\x00-\x1f\x7f-\x9f]/;
var JWKS_REFRESH_MS = 600000;      // a warm JWKS is refreshed after 10 min
var JWKS_KID_REFETCH_MS = 30000;   // unknown kid: refetch at most every 30 s
var JWKS_FAIL_BACKOFF_MS = 5000;   // after a failed fetch, wait before the next one
var JWKS_LOCK_MS = 10000;          // single-flight lock lifetime (fetch timeout is shorter)
var JWKS_WAIT_MS = 6000;           // a cold request waits this long for another's fetch
var JWT_CACHE_MAX_S = 3600;
var PENDING_SESSION_MS = 60000;
var AUTH_FAIL_LIMIT = 50;          // failed authentications per client IP per window
var AUTH_FAIL_WINDOW_S = 60;

/* ------------------------------------------------------------------ */
/* small helpers                                                       */
/* ------------------------------------------------------------------ */

function hasOwn(o, k) {
    return o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k);
}

/* Membership by index: arrays from js_preload_object lack Array.prototype methods. */
function includes(arr, v) {
    for (var i = 0; i < arr.length; i++) {
        if (arr[i] === v) {
            return true;
        }
    }
    return false;
}

/* Join by index, for the same reason. */
function joinList(arr) {
    var out = '';
    for (var i = 0; i < arr.length; i++) {
        out += (i > 0 ? ',' : '') + String(arr[i]);
    }
    return out;
}

function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clip(s) {
    s = String(s);
    return s.length > MAX_LOG_FIELD ? s.slice(0, MAX_LOG_FIELD) : s;
}

function sha256hex(s) {
    return require('crypto').createHash('sha256').update(s).digest('hex');
}

/* ------------------------------------------------------------------ */
/* body: UTF-8 and a strict JSON scanner that finds duplicate keys     */
/* ------------------------------------------------------------------ */

/* Decode bytes as strict UTF-8 (no overlongs, surrogates, > U+10FFFF, BOM).
 * Returns the string or null. */
function decodeUtf8(buf) {
    if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
        return null;
    }
    try {
        return new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(buf);
    } catch (e) {
        return null;
    }
}

function scanWs(st) {
    var s = st.s;
    var c;
    while (st.i < st.n) {
        c = s.charCodeAt(st.i);
        if (c === 32 || c === 9 || c === 10 || c === 13) {
            st.i++;
        } else {
            return;
        }
    }
}

function isHex(c) {
    return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function hex4(s, i) {
    for (var k = 0; k < 4; k++) {
        if (!isHex(s.charCodeAt(i + k))) {
            return -1;
        }
    }
    return parseInt(s.slice(i, i + 4), 16);
}

/* Scan a string starting at the opening quote. Returns the decoded value
 * (when decode is true) or '' and sets st.err on failure. Lone surrogate
 * escapes are refused: njs would map them to U+FFFD and merge keys. */
function scanString(st, decode) {
    var s = st.s;
    var n = st.n;
    var i = st.i + 1;
    var start = i;
    var out = '';
    var c;
    var cp;
    var lo;
    while (i < n) {
        c = s.charCodeAt(i);
        if (c === 34) {
            if (decode) {
                out += s.slice(start, i);
            }
            st.i = i + 1;
            return out;
        }
        if (c < 32) {
            st.err = 'invalid_json';
            return '';
        }
        if (c === 92) {
            if (decode) {
                out += s.slice(start, i);
            }
            c = s.charCodeAt(i + 1);
            if (c === 117) {
                cp = hex4(s, i + 2);
                if (cp < 0) {
                    st.err = 'invalid_json';
                    return '';
                }
                i += 6;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (s.charCodeAt(i) !== 92 || s.charCodeAt(i + 1) !== 117) {
                        st.err = 'invalid_json';
                        return '';
                    }
                    lo = hex4(s, i + 2);
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        st.err = 'invalid_json';
                        return '';
                    }
                    i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    st.err = 'invalid_json';
                    return '';
                }
                if (decode) {
                    out += String.fromCodePoint(cp);
                }
            } else {
                var m = {34: '"', 92: '\\', 47: '/', 98: '\b', 102: '\f', 110: '\n', 114: '\r', 116: '\t'};
                if (!hasOwn(m, c)) {
                    st.err = 'invalid_json';
                    return '';
                }
                if (decode) {
                    out += m[c];
                }
                i += 2;
            }
            start = i;
            continue;
        }
        i++;
    }
    st.err = 'invalid_json';
    return '';
}

function scanDigits(st) {
    var s = st.s;
    var start = st.i;
    var c;
    while (st.i < st.n) {
        c = s.charCodeAt(st.i);
        if (c < 48 || c > 57) {
            break;
        }
        st.i++;
    }
    return st.i - start;
}

function scanNumber(st) {
    var s = st.s;
    if (s.charCodeAt(st.i) === 45) {
        st.i++;
    }
    if (s.charCodeAt(st.i) === 48) {
        st.i++;
    } else if (scanDigits(st) === 0) {
        st.err = 'invalid_json';
        return;
    }
    if (s.charCodeAt(st.i) === 46) {
        st.i++;
        if (scanDigits(st) === 0) {
            st.err = 'invalid_json';
            return;
        }
    }
    var c = s.charCodeAt(st.i);
    if (c === 101 || c === 69) {
        st.i++;
        c = s.charCodeAt(st.i);
        if (c === 43 || c === 45) {
            st.i++;
        }
        if (scanDigits(st) === 0) {
            st.err = 'invalid_json';
        }
    }
}

function scanLiteral(st, word) {
    if (st.s.substr(st.i, word.length) === word) {
        st.i += word.length;
    } else {
        st.err = 'invalid_json';
    }
}

/* Read '"key" :' inside an object; refuse a key already seen in it. */
function scanKey(st, seen) {
    scanWs(st);
    if (st.s.charCodeAt(st.i) !== 34) {
        st.err = 'invalid_json';
        return;
    }
    var key = scanString(st, true);
    if (st.err) {
        return;
    }
    /* prefix: keys such as __proto__ stay ordinary data */
    if (seen['k' + key] === 1) {
        st.err = 'duplicate_key';
        return;
    }
    seen['k' + key] = 1;
    scanWs(st);
    if (st.s.charCodeAt(st.i) !== 58) {
        st.err = 'invalid_json';
        return;
    }
    st.i++;
}

/* Returns null when text is exactly one strict JSON value without
 * duplicate keys at any depth, else 'invalid_json' | 'duplicate_key' | 'too_deep'.
 * Iterative: the njs call stack is too small for deep recursion. */
function scanJson(text) {
    if (typeof text !== 'string') {
        return 'invalid_json';
    }
    var st = {s: text, i: 0, n: text.length, err: null};
    var s = text;
    var stack = [];                 /* one entry per open container: seen-keys map or null (array) */
    var c;
    var top;
    for (;;) {
        /* a value starts here */
        scanWs(st);
        if (st.i >= st.n) {
            return 'invalid_json';
        }
        c = s.charCodeAt(st.i);
        var opened = false;
        if (c === 123 || c === 91) {                  /* { [ */
            st.i++;
            scanWs(st);
            if (s.charCodeAt(st.i) === (c === 123 ? 125 : 93)) {
                st.i++;
            } else {
                if (stack.length >= MAX_JSON_DEPTH) {
                    return 'too_deep';
                }
                top = c === 123 ? Object.create(null) : null;
                stack.push(top);
                if (top !== null) {
                    scanKey(st, top);
                    if (st.err) {
                        return st.err;
                    }
                }
                opened = true;
            }
        } else if (c === 34) {
            scanString(st, false);
        } else if (c === 45 || (c >= 48 && c <= 57)) {
            scanNumber(st);
        } else if (c === 116) {
            scanLiteral(st, 'true');
        } else if (c === 102) {
            scanLiteral(st, 'false');
        } else if (c === 110) {
            scanLiteral(st, 'null');
        } else {
            return 'invalid_json';
        }
        if (st.err) {
            return st.err;
        }
        if (opened) {
            continue;
        }
        /* a value ended: close containers until one wants another member */
        for (;;) {
            scanWs(st);
            if (stack.length === 0) {
                return st.i === st.n ? null : 'invalid_json';
            }
            top = stack[stack.length - 1];
            c = s.charCodeAt(st.i);
            st.i++;
            if (c === (top !== null ? 125 : 93)) {
                stack.pop();
                continue;
            }
            if (c !== 44) {
                return 'invalid_json';
            }
            if (top !== null) {
                scanKey(st, top);
                if (st.err) {
                    return st.err;
                }
            }
            break;
        }
    }
}

/* Scan then parse: the reference path, character by character (slow in njs,
 * ~0.5 us per character). Returns {value} or {reason}. */
function parseScanned(text) {
    var err = scanJson(text);
    if (err !== null) {
        return {reason: err};
    }
    try {
        return {value: JSON.parse(text)};
    } catch (e) {
        return {reason: 'invalid_json'};
    }
}

/* Fast path, native regex + JSON.parse, equivalent to parseScanned (the unit
 * tests hold them to the same verdicts):
 * - every string literal is replaced by one '"' (a global match from the
 *   start stays aligned on string boundaries once JSON.parse accepted the text);
 * - what is left holds no number RFC 8259 refuses (njs's JSON.parse accepts
 *   01 and .5);
 * - outside strings a ':' only follows a key, so the colons count the keys in
 *   the text; the parsed value has fewer own keys exactly when a key repeated
 *   (also \u-escaped: JSON.parse decodes before it merges). */
var STRING_LITERAL_RE = /"[^"\\]*(?:\\.[^"\\]*)*"/g;
/* numbers njs's JSON.parse accepts and RFC 8259 does not: 01, -01, .5, 1., 1.e5.
 * Written with lookbehinds so that every alternative starts with a literal
 * ('.', '-' or '0'): PCRE then skips to candidates instead of trying each
 * position (~10x faster in njs than the (?:^|[^...]) form, same matches). */
var LENIENT_NUMBER_RE = /(?<![0-9])\.|\.(?![0-9])|(?<![0-9.eE+\-])-?0[0-9]/;
var SURROGATE_ESCAPE_RE = /\\u[dD][89a-fA-F]/;

/* Own keys of every object in a parsed value (depth is bounded by JSON.parse). */
function countKeys(v) {
    if (v === null || typeof v !== 'object') {
        return 0;
    }
    var n = 0;
    var i;
    if (Array.isArray(v)) {
        for (i = 0; i < v.length; i++) {
            if (v[i] !== null && typeof v[i] === 'object') {
                n += countKeys(v[i]);
            }
        }
        return n;
    }
    var keys = Object.keys(v);
    n = keys.length;
    for (i = 0; i < keys.length; i++) {
        var c = v[keys[i]];
        if (c !== null && typeof c === 'object') {
            n += countKeys(c);
        }
    }
    return n;
}

/* The text with every string literal reduced to one '"'. Without a backslash
 * the quotes of valid JSON strictly alternate open/close, so a native split
 * does it (a regex match per string costs several us in njs). */
function withoutStringContents(text) {
    if (text.indexOf('\\') >= 0) {
        return text.replace(STRING_LITERAL_RE, '"');
    }
    var parts = text.split('"');
    var out = [];
    for (var i = 0; i < parts.length; i += 2) {
        out.push(parts[i]);
    }
    return out.join('"');
}

/* The number of ':' in a string (native searches; split would build an array). */
function countColons(text) {
    var n = 0;
    for (var at = text.indexOf(':'); at >= 0; at = text.indexOf(':', at + 1)) {
        n++;
    }
    return n;
}

/* Returns {value} or {reason: 'invalid_json' | 'duplicate_key' | 'too_deep'}. */
function parseStrictJson(text) {
    if (typeof text !== 'string') {
        return {reason: 'invalid_json'};
    }
    if (text.indexOf('\\') >= 0 && SURROGATE_ESCAPE_RE.test(text)) {
        return parseScanned(text);          /* rare: the scanner refuses lone surrogates */
    }
    var value;
    try {
        value = JSON.parse(text);
    } catch (e) {
        return {reason: 'invalid_json'};
    }
    var keys = countKeys(value);
    /* Fast path, exact: a lenient number or a key colon in the bare text is
     * also one in the whole text (strings are replaced by a '"', which the
     * patterns treat like the delimiter beside it), and keys <= colons outside
     * strings <= all colons. No lenient pattern anywhere and as many colons as
     * keys: nothing to refuse, no need to strip the strings. */
    if (!LENIENT_NUMBER_RE.test(text) && countColons(text) === keys) {
        return {value: value};
    }
    var bare = withoutStringContents(text);
    if (LENIENT_NUMBER_RE.test(bare)) {
        return {reason: 'invalid_json'};
    }
    if (keys !== countColons(bare)) {
        return {reason: 'duplicate_key'};
    }
    return {value: value};
}

/* Decode and parse a request body Buffer. Returns {value} or {reason}. */
function parseBody(buf) {
    if (!buf || buf.length === 0) {
        return {reason: 'empty_body'};
    }
    var text = decodeUtf8(buf);
    if (text === null) {
        return {reason: 'invalid_utf8'};
    }
    return parseStrictJson(text);
}

/* ------------------------------------------------------------------ */
/* HTTP header checks                                                  */
/* ------------------------------------------------------------------ */

/* application/json, optional charset=utf-8, no other parameter. */
function checkContentType(ct) {
    if (ct === 'application/json') {
        return null;                        /* what every MCP client sends */
    }
    if (typeof ct !== 'string') {
        return 'content_type';
    }
    var parts = ct.split(';');
    if (parts[0].trim().toLowerCase() !== 'application/json') {
        return 'content_type';
    }
    for (var i = 1; i < parts.length; i++) {
        var p = parts[i].trim();
        if (p === '') {
            continue;
        }
        var eq = p.indexOf('=');
        if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'charset') {
            return 'content_type';
        }
        var v = p.slice(eq + 1).trim().toLowerCase();
        if (v.length >= 2 && v.charAt(0) === '"' && v.charAt(v.length - 1) === '"') {
            v = v.slice(1, -1);
        }
        if (v !== 'utf-8' && v !== 'utf8') {
            return 'charset';
        }
    }
    return null;
}

function protocolVersionKnown(v) {
    return includes(KNOWN_PROTOCOL_VERSIONS, v);
}

function originAllowed(policy, origin) {
    var list = policy.allow_origins || [];
    var o = String(origin).toLowerCase();
    for (var i = 0; i < list.length; i++) {
        if (String(list[i]).toLowerCase() === o) {
            return true;
        }
    }
    return false;
}

/* "Bearer <token>" -> token; null when absent or another scheme; false when malformed.
 * Sliced by hand: a regex capture of the rest would copy and rescan a JWT. */
function parseBearer(h) {
    if (h === undefined || h === null || h === '') {
        return null;
    }
    h = String(h);
    var sp = h.indexOf(' ');
    if (sp <= 0) {
        return false;
    }
    var scheme = h.slice(0, sp);
    if (scheme.toLowerCase() !== 'bearer') {
        return /^[A-Za-z]+$/.test(scheme) ? null : false;
    }
    var t = h.slice(sp + 1).trim();
    if (t === '' || t.length > MAX_TOKEN_LENGTH || !STATIC_TOKEN_RE.test(t)) {
        return false;
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* JSON-RPC / MCP message checks                                       */
/* ------------------------------------------------------------------ */

/* Classify one decoded JSON-RPC message. Returns
 * {ok:true, kind, method, id, hasId, tool, name} or {ok:false, reason, id}.
 * `msg` comes from JSON.parse: it holds only own data properties, none of the
 * names read here (id, jsonrpc, method, params, result, error, name, uri) is
 * on Object.prototype, and JSON has no undefined, so "!== undefined" is
 * exactly "has own property" here (and a property lookup, not a call). */
function classifyMessage(msg) {
    var info = {ok: false, reason: 'invalid_request', kind: null, method: null, id: null,
                hasId: false, tool: null, name: null};
    if (Array.isArray(msg)) {
        info.reason = 'batch';
        return info;
    }
    if (!isPlainObject(msg)) {
        return info;
    }
    var id = msg.id;
    if (id !== undefined) {
        if (typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id))) {
            info.id = id;
            info.hasId = true;
        } else {
            info.reason = 'invalid_id';
            return info;
        }
    }
    if (msg.jsonrpc !== '2.0') {
        return info;
    }
    var method = msg.method;
    var hasResult = msg.result !== undefined;
    var hasError = msg.error !== undefined;
    if (method !== undefined) {
        if (typeof method !== 'string' || method === '' || hasResult || hasError) {
            return info;
        }
        info.method = method;
        info.kind = info.hasId ? 'request' : 'notification';
        var params = msg.params === undefined ? null : msg.params;
        if (msg.params !== undefined && !isPlainObject(params)) {   /* also "params": null */
            info.reason = 'invalid_params';
            return info;
        }
        if (method === 'tools/call') {
            if (info.kind !== 'request' || params === null || typeof params.name !== 'string' || params.name === '') {
                info.reason = 'invalid_params';
                return info;
            }
            info.tool = params.name;
            info.name = params.name;
        } else if (method === 'prompts/get') {
            if (params !== null && typeof params.name === 'string') {
                info.name = params.name;
            }
        } else if (method === 'resources/read') {
            if (params !== null && typeof params.uri === 'string') {
                info.name = params.uri;
            }
        }
    } else if (hasResult || hasError) {
        if (!info.hasId || (hasResult && hasError)) {
            return info;
        }
        info.kind = 'response';
    } else {
        return info;
    }
    info.ok = true;
    info.reason = null;
    return info;
}

/* Mcp-Method / Mcp-Name headers (MCP 2026-07-28) must repeat the body. */
function checkMcpHeaders(info, hMethod, hName) {
    if (hMethod !== undefined && hMethod !== null) {
        if (info.method === null || hMethod !== info.method) {
            return 'mcp_method_mismatch';
        }
    }
    if (hName !== undefined && hName !== null) {
        if (info.name === null || hName !== info.name) {
            return 'mcp_name_mismatch';
        }
    }
    return null;
}

/* ------------------------------------------------------------------ */
/* policy decisions                                                    */
/* ------------------------------------------------------------------ */

/* Keep only role names the policy defines (own properties: never __proto__). */
function knownRoles(policy, roles) {
    var out = [];
    if (!Array.isArray(roles)) {
        return out;
    }
    for (var i = 0; i < roles.length; i++) {
        var name = roles[i];
        if (typeof name === 'string' && hasOwn(policy.roles, name) && out.indexOf(name) < 0) {
            out.push(name);
        }
    }
    return out;
}

function rolesOfUser(policy, user) {
    return hasOwn(policy.users, user) ? knownRoles(policy, policy.users[user]) : [];
}

function toolAllowed(policy, roles, tool) {
    for (var i = 0; i < roles.length; i++) {
        if (!hasOwn(policy.roles, roles[i])) {
            continue;
        }
        var role = policy.roles[roles[i]];
        if (role.all === true) {
            return true;
        }
        var tools = role.tools || [];
        for (var j = 0; j < tools.length; j++) {
            if (tools[j] === tool) {
                return true;
            }
        }
    }
    return false;
}

/* Per user per tool limit: returns null or {calls, window} for the tool. */
function toolLimit(policy, tool) {
    if (tool === null || !hasOwn(policy.tool_limits, tool)) {
        return null;
    }
    var l = policy.tool_limits[tool];
    return {calls: l.calls, window: l.window};
}

/* Counter key and TTL for a fixed window: the window number is in the key
 * because incr() re-arms the TTL on every hit and never resets a busy key. */
function windowKey(subject, tool, windowS, nowMs) {
    var w = Math.floor(nowMs / (windowS * 1000));
    return {key: subject + '\n' + tool + '\n' + windowS + '\n' + w,
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

/* ------------------------------------------------------------------ */
/* JWT / JWK                                                           */
/* ------------------------------------------------------------------ */

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

/* Registered claims. nowS in seconds. Returns null or a reason. */
function checkClaims(claims, oidc, nowS) {
    var leeway = oidc.leeway || 0;
    if (claims.iss !== oidc.issuer) {
        return 'bad_iss';
    }
    var aud = claims.aud;
    if (typeof aud === 'string') {
        aud = [aud];
    }
    if (!Array.isArray(aud) || aud.indexOf(oidc.audience) < 0) {
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
    var sub = claims[oidc.subject_claim || 'sub'];
    if (!hasOwn(claims, oidc.subject_claim || 'sub') || typeof sub !== 'string' || sub === '' || sub.length > 256) {
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

/* ------------------------------------------------------------------ */
/* responses                                                           */
/* ------------------------------------------------------------------ */

var RPC_CODES = {400: -32600, 401: -32001, 403: -32003, 404: -32001, 405: -32600, 413: -32600,
                 429: -32029, 500: -32603, 502: -32603, 503: -32603, 504: -32603};

function rpcError(id, status, message) {
    var code = hasOwn(RPC_CODES, status) ? RPC_CODES[status] : -32603;
    return JSON.stringify({jsonrpc: '2.0', id: id === undefined ? null : id,
                           error: {code: code, message: message}});
}

function quoteParam(s) {
    return '"' + String(s).replace(/["\\]/g, '') + '"';
}

function bearerChallenge(policy, error) {
    var c = 'Bearer ';
    if (error) {
        c += 'error=' + quoteParam(error) + ', ';
    }
    c += 'resource_metadata=' + quoteParam(policy.resource_metadata_url);
    if (policy.scope) {
        c += ', scope=' + quoteParam(policy.scope);
    }
    return c;
}

function getPolicy() {
    /* global set by js_preload_object */
    return mcpsec_policy;
}

function setVar(r, name, value) {
    r.variables[name] = value === null || value === undefined ? '' : clip(value);
}

function send(r, status, reason, body, headers) {
    setVar(r, 'mcpsec_decision', 'deny');
    setVar(r, 'mcpsec_reason', reason);
    /* Cache-Control: no-store comes from the server's security headers */
    r.headersOut['Content-Type'] = 'application/json';
    if (headers) {
        var names = Object.keys(headers);
        for (var i = 0; i < names.length; i++) {
            r.headersOut[names[i]] = headers[names[i]];
        }
    }
    r.return(status, body);
}

var MESSAGES = {
    400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Session not found',
    405: 'Method not allowed', 413: 'Request body too large', 429: 'Too many requests',
    500: 'Internal error', 502: 'Upstream unavailable', 503: 'Service unavailable',
    504: 'Upstream timeout'
};

function deny(r, status, reason, id, extra) {
    send(r, status, reason, rpcError(id, status, MESSAGES[status] + ': ' + reason), extra);
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

function authThrottled(r) {
    var w = overAuthFailLimit(r);
    if (w !== null) {
        deny(r, 429, 'auth_throttled', null, {'Retry-After': String(w.retryAfter)});
        return true;
    }
    return false;
}

function unauthorized(r, policy, reason, tokenGiven) {
    var w = authFailKey(r);
    try {
        ngx.shared.mcpsec_counters.incr(w.key, 1, 0, w.ttlMs);
    } catch (e) {
        ngx.log(ngx.WARN, 'mcpsec: auth failure counter: ' + e.message);
    }
    var challenges = [];
    if (policy.auth_mode === 'basic') {
        challenges.push('Basic realm="mcpsec", charset="UTF-8"');
    }
    challenges.push(bearerChallenge(policy, tokenGiven ? 'invalid_token' : null));
    deny(r, 401, reason, null, {'WWW-Authenticate': challenges});
}

/* ------------------------------------------------------------------ */
/* nginx-side state: shared dicts                                      */
/* ------------------------------------------------------------------ */

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
        .update(oidc.issuer + '\n' + oidc.audience + '\n' + oidc.subject_claim + '\n' +
                joinList(oidc.roles_claim) + '\n' + joinList(oidc.algorithms) + '\n')
        .update(token).digest('hex');
}

/* A verified token still in the cache (`digest` = jwtCacheKey): {subject,
 * roles}, else null (synchronous). */
function cachedOidc(policy, digest) {
    var oidc = policy.oidc;
    var cache = ngx.shared.mcpsec_jwt;
    var hit = cache.get(digest);
    if (hit) {
        var c = JSON.parse(hit);
        if (Date.now() / 1000 <= c.exp + (oidc.leeway || 0)) {
            return {subject: c.sub, roles: knownRoles(policy, c.roles)};
        }
        cache.delete(digest);
    }
    return null;
}

/* Verify a token that is not cached. Returns {subject, roles} or {reason, status}. */
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
    var sub = v.claims[oidc.subject_claim || 'sub'];
    var roles = rolesFromClaims(v.claims, oidc.roles_claim || ['roles']);
    var ttl = Math.min(v.claims.exp - nowS, JWT_CACHE_MAX_S);
    if (ttl >= 1) {
        try {
            cache.set(digest, JSON.stringify({sub: sub, roles: roles, exp: v.claims.exp}), Math.floor(ttl * 1000));
        } catch (e) {
            ngx.log(ngx.WARN, 'mcpsec: JWT cache full: ' + e.message);
        }
    }
    return {subject: sub, roles: knownRoles(policy, roles)};
}

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

/* Headers that must not be repeated: a second copy is an attempt to split views. */
var SINGLE_HEADERS = {'authorization': 1, 'content-type': 1, 'content-encoding': 1, 'content-length': 1,
                      'origin': 1, 'mcp-session-id': 1, 'mcp-protocol-version': 1, 'mcp-method': 1,
                      'mcp-name': 1, 'transfer-encoding': 1};

function repeatedHeader(r) {
    var seen = Object.create(null);
    var raw = r.rawHeadersIn;
    for (var i = 0; i < raw.length; i++) {
        var n = raw[i][0].toLowerCase();
        if (SINGLE_HEADERS[n] === 1) {        /* "=== 1": never an inherited property */
            if (seen[n] === 1) {
                return n;
            }
            seen[n] = 1;
        }
    }
    return null;
}

/* ------------------------------------------------------------------ */
/* basic mode: remember what auth_basic verified                       */
/* ------------------------------------------------------------------ */

/* The htpasswd line of the user named in a Basic Authorization header, and
 * the header: null when there is no usable header or no such user. */
function htpasswdEntry(text, header) {
    var m = /^Basic ([A-Za-z0-9+\/]+={0,2})$/i.exec(header || '');
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
    return {user: prefix.slice(0, -1), line: end < 0 ? text.slice(at) : text.slice(at, end)};
}

/* Cache key of a credential: the header and the user's current htpasswd
 * line (its salted hash), so a changed or removed password never hits. */
function basicCacheKey(entry, header) {
    return sha256hex(entry.line + '\n' + header);
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
        var key = basicCacheKey(entry, header);
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

/* ------------------------------------------------------------------ */
/* the handler                                                         */
/* ------------------------------------------------------------------ */

/* Returns {subject, roles} or {reason, status, tokenGiven}; in oidc mode a
 * Promise of one (basic and bearer stay synchronous: no promise machinery
 * on their path). */
function authenticate(r, policy) {
    var mode = policy.auth_mode;
    var authz = r.headersIn.Authorization;
    if (mode === 'basic') {
        var user = basicUser(r);
        if (user === null) {
            return {reason: 'auth_throttled', status: 429, tokenGiven: false};
        }
        if (!user || !hasOwn(policy.users, user)) {
            return {reason: 'unknown_user', status: 401, tokenGiven: false};
        }
        return {subject: user, roles: rolesOfUser(policy, user)};
    }
    var token = parseBearer(authz);
    if (token === null) {
        return {reason: authz ? 'wrong_scheme' : 'no_credentials', status: 401, tokenGiven: false};
    }
    if (token === false) {
        return {reason: 'malformed_token', status: 401, tokenGiven: true};
    }
    if (mode === 'bearer') {
        var tokens = typeof mcpsec_tokens === 'undefined' ? {} : mcpsec_tokens;
        var who = matchStaticToken(tokens, token);
        if (who === null || !hasOwn(policy.users, who)) {
            return {reason: 'bad_token', status: 401, tokenGiven: true};
        }
        return {subject: who, roles: rolesOfUser(policy, who)};
    }
    if (mode === 'oidc' && policy.oidc) {
        var digest = jwtCacheKey(policy.oidc, token);
        var cached = cachedOidc(policy, digest);
        if (cached !== null) {
            return cached;
        }
        return authenticateOidc(r, policy, token, digest).then(function (a) {
            if (a.reason) {
                a.tokenGiven = true;
            }
            return a;
        });
    }
    return {reason: 'auth_mode', status: 500, tokenGiven: false};
}

/* Everything after authentication; synchronous. */
function enforce(r, policy, a) {
    var method = r.method;
    if (a.reason) {
        if (a.status === 401) {
            unauthorized(r, policy, a.reason, a.tokenGiven);
        } else {
            deny(r, a.status, a.reason, null, a.status === 503 ? {'Retry-After': '5'}
                 : (a.status === 429 ? {'Retry-After': '1'} : null));
        }
        return;
    }
    var subject = a.subject;
    setVar(r, 'mcpsec_subject', subject);
    setVar(r, 'mcpsec_roles', a.roles.join(','));

    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
        deny(r, 405, 'method', null, {'Allow': 'GET, POST, DELETE'});
        return;
    }
    var rep = repeatedHeader(r);
    if (rep !== null) {
        deny(r, 400, 'repeated_header:' + rep, null);
        return;
    }
    var origin = r.headersIn.Origin;
    if (origin !== undefined && !originAllowed(policy, origin)) {
        deny(r, 403, 'origin', null);
        return;
    }
    var pv = r.headersIn['MCP-Protocol-Version'];
    if (pv !== undefined && !protocolVersionKnown(pv)) {
        deny(r, 400, 'protocol_version', null);
        return;
    }
    if (r.headersIn['Content-Encoding'] !== undefined) {
        deny(r, 400, 'content_encoding', null);
        return;
    }

    var sid = r.headersIn['Mcp-Session-Id'];
    var sessions = ngx.shared.mcpsec_sessions;
    if (sid !== undefined) {
        if (!SESSION_ID_RE.test(sid)) {
            deny(r, 400, 'session_id', null);
            return;
        }
        var owner = sessions.get('s:' + sid);
        if (owner !== subject) {
            deny(r, 404, owner === undefined ? 'session_unknown' : 'session_foreign', null);
            return;
        }
        try {
            sessions.set('s:' + sid, subject);  /* re-arm the idle timeout */
        } catch (e) {
            ngx.log(ngx.WARN, 'mcpsec: session refresh: ' + e.message);
        }
    }

    if (method !== 'POST') {
        if (sid === undefined) {
            deny(r, 400, 'session_required', null);
            return;
        }
        if ((r.headersIn['Content-Length'] !== undefined && r.headersIn['Content-Length'] !== '0') ||
            r.headersIn['Transfer-Encoding'] !== undefined) {
            deny(r, 400, 'unexpected_body', null);
            return;
        }
        setVar(r, 'mcpsec_rpc_method', method === 'DELETE' ? 'session/delete' : 'stream/get');
        allow(r, method === 'DELETE' ? UPSTREAM_BIND : UPSTREAM);
        return;
    }

    var ctErr = checkContentType(r.headersIn['Content-Type']);
    if (ctErr !== null) {
        deny(r, 400, ctErr, null);
        return;
    }
    var buf;
    try {
        buf = r.requestBuffer;
    } catch (e) {
        /* the body spilled to a file: larger than we inspect, refuse */
        deny(r, 413, 'body_spilled', null);
        return;
    }
    var p = parseBody(buf);
    if (p.reason) {
        deny(r, 400, p.reason, null);
        return;
    }
    var info = classifyMessage(p.value);
    if (!info.ok) {
        deny(r, 400, info.reason, info.id);
        return;
    }
    setVar(r, 'mcpsec_rpc_method', info.method || info.kind);
    if (info.tool !== null) {
        setVar(r, 'mcpsec_tool', info.tool);
    }
    var hErr = checkMcpHeaders(info, r.headersIn['Mcp-Method'], r.headersIn['Mcp-Name']);
    if (hErr !== null) {
        deny(r, 400, hErr, info.id);
        return;
    }
    if (info.tool !== null) {
        if (!toolAllowed(policy, a.roles, info.tool)) {
            send(r, 403, 'tool_denied',
                 rpcError(info.id, 403, 'Forbidden: tool not permitted for this user'),
                 {'WWW-Authenticate': bearerChallenge(policy, 'insufficient_scope')});
            return;
        }
        var lim = toolLimit(policy, info.tool);
        if (lim !== null) {
            var slot = subject + '\n' + info.tool + '\n' + lim.window;
            var verdict;
            try {
                /* get and set run without yielding: within a worker this is atomic. */
                verdict = slidingAdmit(ngx.shared.mcpsec_toolcalls.get(slot), lim.calls,
                                       lim.window * 1000, Date.now());
                ngx.shared.mcpsec_toolcalls.set(slot, verdict.log);
            } catch (e) {
                deny(r, 503, 'counter_unavailable', info.id, {'Retry-After': '5'});
                return;
            }
            if (!verdict.admit) {
                deny(r, 429, 'tool_rate', info.id, {'Retry-After': String(verdict.retryAfter)});
                return;
            }
        }
    }
    if (info.method === 'initialize' && sid === undefined) {
        if (countSessions(subject) >= policy.max_sessions_per_user) {
            deny(r, 429, 'session_cap', info.id, {'Retry-After': '60'});
            return;
        }
        var pending = 'p:' + r.variables.request_id;
        try {
            sessions.set(pending, subject, PENDING_SESSION_MS);
        } catch (e) {
            deny(r, 503, 'session_store_full', info.id, {'Retry-After': '5'});
            return;
        }
        setVar(r, 'mcpsec_pending', pending);
        allow(r, UPSTREAM_BIND);
        return;
    }
    allow(r, UPSTREAM);
}

/* What opens or ends a session goes to UPSTREAM_BIND (its header filter keeps
 * the bindings); everything else to UPSTREAM, which runs no njs. */
var UPSTREAM = '@mcpsec_upstream';
var UPSTREAM_BIND = '@mcpsec_upstream_bind';

function allow(r, location) {
    setVar(r, 'mcpsec_decision', 'allow');   /* js_var default: deny; reason stays empty */
    r.internalRedirect(location);
}

function internalError(r, e) {
    ngx.log(ngx.ERR, 'mcpsec: ' + (e && e.stack ? e.stack : e));
    try {
        deny(r, 500, 'internal_error', null);
    } catch (e2) {
        /* response already started: nothing more to do */
    }
}

/* js_content for the MCP location */
function handle(r) {
    var policy = getPolicy();
    try {
        if (authThrottled(r)) {
            return;
        }
        var a = authenticate(r, policy);
        if (typeof a.then === 'function') {
            a.then(function (res) {
                try {
                    enforce(r, policy, res);
                } catch (e) {
                    internalError(r, e);
                }
            }, function (e) {
                internalError(r, e);
            });
            return;
        }
        enforce(r, policy, a);
    } catch (e) {
        internalError(r, e);
    }
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
            if (status >= 200 && status < 300 && sid !== undefined && SESSION_ID_RE.test(sid) && subject) {
                /* add(): an id the upstream reuses never changes owner */
                sessions.add('s:' + sid, subject);
            }
            return;
        }
        var reqSid = r.headersIn['Mcp-Session-Id'];
        if (reqSid === undefined) {
            return;
        }
        if ((r.method === 'DELETE' && status >= 200 && status < 300) || status === 404) {
            sessions.delete('s:' + reqSid);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec: session bookkeeping failed: ' + e.message);
    }
}

/* js_content for "error_page 404 = @mcpsec_session_gone" on @mcpsec_upstream: the
 * backend does not know the session (it restarted, or the session ended) and
 * said 404. Release the binding so it no longer counts against the subject's
 * session cap, and answer 404 so the client starts a new session. */
function sessionGone(r) {
    var sid = r.headersIn['Mcp-Session-Id'];
    if (sid !== undefined) {
        try {
            if (ngx.shared.mcpsec_sessions.get('s:' + sid) === r.variables.mcpsec_subject) {
                ngx.shared.mcpsec_sessions.delete('s:' + sid);
            }
        } catch (e) {
            ngx.log(ngx.ERR, 'mcpsec: session release failed: ' + e.message);
        }
    }
    setVar(r, 'mcpsec_reason', 'session_expired');
    r.headersOut['Content-Type'] = 'application/json';
    r.return(404, rpcError(null, 404, MESSAGES[404]));
}

/* js_content for "error_page 401 = @mcpsec_unauthorized": auth_basic refused
 * (basic mode). A bare "=" lets this handler choose 401 or 429. */
function basicUnauthorized(r) {
    if (authThrottled(r)) {
        return;
    }
    setVar(r, 'mcpsec_subject', '');
    var given = r.headersIn.Authorization;
    unauthorized(r, getPolicy(), given ? 'bad_credentials' : 'no_credentials',
                 !!given && /^bearer /i.test(given));
}

/* js_content for error_page targets (nginx-generated errors, limit_req 429). */
function nginxError(r) {
    var policy = getPolicy();
    var status = Number(r.variables.status) || 500;
    var pending = r.variables.mcpsec_pending;
    if (pending) {
        /* an initialize that never reached the backend holds no session slot */
        ngx.shared.mcpsec_sessions.delete(pending);
    }
    if (status === 401) {
        basicUnauthorized(r);
        return;
    }
    var reasons = {413: 'body_too_large', 429: 'rate_limit', 502: 'upstream_unavailable',
                   503: 'upstream_unavailable', 504: 'upstream_timeout'};
    if (!hasOwn(MESSAGES, status)) {
        status = 500;
    }
    var extra = null;
    if (status === 429) {
        extra = {'Retry-After': r.variables.mcpsec_limit_retry_after || '1'};
    } else if (status === 503) {
        extra = {'Retry-After': '5'};
    }
    deny(r, status, hasOwn(reasons, status) ? reasons[status] : 'nginx_' + status, null, extra);
}

/* The module's top level runs again for every request (njs clones the VM):
 * keep it small. The pure functions tests/njs/unit.js checks are reached
 * through testExports() instead of ~40 properties built per request. */
function testExports() {
    return {
        htpasswdEntry: htpasswdEntry,
        decodeUtf8: decodeUtf8,
        scanJson: scanJson,
        parseStrictJson: parseStrictJson,
        parseScanned: parseScanned,
        countKeys: countKeys,
        withoutStringContents: withoutStringContents,
        storedDigest: storedDigest,
        digestWords: digestWords,
        jwtCacheKey: jwtCacheKey,
        parseBody: parseBody,
        checkContentType: checkContentType,
        protocolVersionKnown: protocolVersionKnown,
        originAllowed: originAllowed,
        parseBearer: parseBearer,
        classifyMessage: classifyMessage,
        checkMcpHeaders: checkMcpHeaders,
        knownRoles: knownRoles,
        rolesOfUser: rolesOfUser,
        toolAllowed: toolAllowed,
        toolLimit: toolLimit,
        windowKey: windowKey,
        slidingAdmit: slidingAdmit,
        matchStaticToken: matchStaticToken,
        b64urlDecode: b64urlDecode,
        jwkUsable: jwkUsable,
        usableKeys: usableKeys,
        decodeJwt: decodeJwt,
        selectKeys: selectKeys,
        claimAtPath: claimAtPath,
        rolesFromClaims: rolesFromClaims,
        checkClaims: checkClaims,
        verifySignature: verifySignature,
        verifyJwt: verifyJwt,
        rpcError: rpcError,
        bearerChallenge: bearerChallenge
    };
}

export default {
    handle: handle,
    upstreamHeaders: upstreamHeaders,
    sessionGone: sessionGone,
    basicRealm: basicRealm,
    nginxError: nginxError,
    basicUnauthorized: basicUnauthorized,
    testExports: testExports
};
