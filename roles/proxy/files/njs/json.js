/*
 * json: strict UTF-8 decoding and a strict JSON parser that refuses duplicate keys
 * (also \u-escaped), lenient numbers and lone surrogates.
 */

import util from 'util.js';

var hasOwn = util.hasOwn;

var MAX_JSON_DEPTH = 31;          // njs JSON.parse refuses 32 levels

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

var ESCAPES = {34: '"', 92: '\\', 47: '/', 98: '\b', 102: '\f', 110: '\n', 114: '\r', 116: '\t'};

/* The escape at s[i] (a backslash): {next: the index after it, text: what it
 * decodes to}, or null with st.err set. Lone surrogate escapes are refused:
 * njs would map them to U+FFFD and merge keys. */
function scanEscape(st, i) {
    var s = st.s;
    var c = s.charCodeAt(i + 1);
    if (c !== 117) {
        if (!hasOwn(ESCAPES, c)) {
            st.err = 'invalid_json';
            return null;
        }
        return {next: i + 2, text: ESCAPES[c]};
    }
    var cp = hex4(s, i + 2);
    i += 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        var lo = s.charCodeAt(i) === 92 && s.charCodeAt(i + 1) === 117 ? hex4(s, i + 2) : -1;
        if (lo < 0xdc00 || lo > 0xdfff) {
            st.err = 'invalid_json';
            return null;
        }
        i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
        st.err = 'invalid_json';
        return null;
    }
    return {next: i, text: String.fromCodePoint(cp)};
}

/* Scan a string starting at the opening quote. Returns the decoded value
 * (when decode is true) or '' and sets st.err on failure. */
function scanString(st, decode) {
    var s = st.s;
    var n = st.n;
    var i = st.i + 1;
    var start = i;
    var out = '';
    var c;
    while (i < n) {
        c = s.charCodeAt(i);
        if (c === 34) {
            st.i = i + 1;
            return decode ? out + s.slice(start, i) : '';
        }
        if (c < 32) {
            break;
        }
        if (c === 92) {
            var e = scanEscape(st, i);
            if (e === null) {
                return '';
            }
            if (decode) {
                out += s.slice(start, i) + e.text;
            }
            i = e.next;
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

/* A value starts at st.i: a scalar is scanned whole (false), a container with
 * members is opened and pushed on the stack, its first key read (true); st.err
 * on failure. The stack holds one entry per open container: its seen-keys map,
 * or null for an array. */
function startValue(st, stack) {
    scanWs(st);
    if (st.i >= st.n) {
        st.err = 'invalid_json';
        return false;
    }
    var s = st.s;
    var c = s.charCodeAt(st.i);
    if (c === 123 || c === 91) {                  /* { [ */
        st.i++;
        scanWs(st);
        if (s.charCodeAt(st.i) === (c === 123 ? 125 : 93)) {
            st.i++;
            return false;
        }
        if (stack.length >= MAX_JSON_DEPTH) {
            st.err = 'too_deep';
            return false;
        }
        var top = c === 123 ? Object.create(null) : null;
        stack.push(top);
        if (top !== null) {
            scanKey(st, top);
        }
        return true;
    }
    if (c === 34) {
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
        st.err = 'invalid_json';
    }
    return false;
}

/* A value ended: close containers until one wants another member (true, its
 * key read when it is an object) or the text ends (false: st.err when anything
 * but whitespace follows). */
function endValue(st, stack) {
    for (;;) {
        scanWs(st);
        if (stack.length === 0) {
            if (st.i !== st.n) {
                st.err = 'invalid_json';
            }
            return false;
        }
        var top = stack[stack.length - 1];
        var c = st.s.charCodeAt(st.i);
        st.i++;
        if (c === (top !== null ? 125 : 93)) {
            stack.pop();
            continue;
        }
        if (c !== 44) {
            st.err = 'invalid_json';
            return false;
        }
        if (top !== null) {
            scanKey(st, top);
        }
        return true;
    }
}

/* Returns null when text is exactly one strict JSON value without
 * duplicate keys at any depth, else 'invalid_json' | 'duplicate_key' | 'too_deep'.
 * Iterative: the njs call stack is too small for deep recursion. */
function scanJson(text) {
    if (typeof text !== 'string') {
        return 'invalid_json';
    }
    var st = {s: text, i: 0, n: text.length, err: null};
    var stack = [];
    for (;;) {
        var opened = startValue(st, stack);
        if (st.err) {
            return st.err;
        }
        if (!opened && !endValue(st, stack)) {
            return st.err;
        }
        if (st.err) {
            return st.err;
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

export default {
    decodeUtf8: decodeUtf8,
    scanJson: scanJson,
    parseScanned: parseScanned,
    parseStrictJson: parseStrictJson,
    withoutStringContents: withoutStringContents,
    parseBody: parseBody
};
