/*
 * http: HTTP header checks: content type, protocol version, origin, bearer scheme,
 * repeated headers.
 */

import util from 'util.js';

var includes = util.includes;

/* The protocol revisions this gateway serves, newest first: every revision with
 * sessions. The stateless one (2026-07-28) is known, and answered with -32022
 * naming these (supergateway 4.0.0 starts a server process per stateless request). */
var SESSION_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
var MODERN_PROTOCOL_VERSION = '2026-07-28';
var KNOWN_PROTOCOL_VERSIONS = SESSION_PROTOCOL_VERSIONS.concat([MODERN_PROTOCOL_VERSION]);
var MAX_TOKEN_LENGTH = 8192;
var STATIC_TOKEN_RE = /^[\x21-\x7e]+$/;   // visible ASCII; length is checked against MAX_TOKEN_LENGTH

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
    var list = policy.allow_origins;
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

export default {
    SESSION_PROTOCOL_VERSIONS: SESSION_PROTOCOL_VERSIONS,
    MODERN_PROTOCOL_VERSION: MODERN_PROTOCOL_VERSION,
    MAX_TOKEN_LENGTH: MAX_TOKEN_LENGTH,
    checkContentType: checkContentType,
    protocolVersionKnown: protocolVersionKnown,
    originAllowed: originAllowed,
    parseBearer: parseBearer,
    repeatedHeader: repeatedHeader
};
