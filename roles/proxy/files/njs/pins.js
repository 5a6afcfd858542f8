/*
 * pins: tool pinning (issue 22). Each tool a server lists is held to the
 * definition someone reviewed: policy.tool_pinning (the server's view,
 * servers.js) is null, or {mode: 'enforce' | 'report', pins: {<tool>: 'sha256:<hex>'}}.
 *
 * The digest of a tool is "sha256:" + the lowercase hex SHA-256 of the RFC 8785
 * (JCS) canonical JSON of its name, title, description, inputSchema,
 * outputSchema and annotations (those present; every other member left out).
 * plugins/plugin_utils/_jcs.py computes the same digest for pin_tools.yml; both
 * are tested against the vectors in tests/fixtures/jcs_vectors.json.
 *
 * A tool whose digest is not its pin is 'tool_drift', one without a pin
 * 'tool_unpinned'. In enforce mode such a tool is removed from every
 * tools/list page and its tools/call is refused; in report mode it passes and
 * the audit line names it. The digests a server gave in a session are kept
 * (mcpsec_pins, keyed by the server's scope and the session) so that a
 * tools/call is judged by the definition the server gives in that session,
 * also when the client never listed tools (pingate.js lists them itself).
 *
 * njs strings index code points: the key order of RFC 8785 (UTF-16 code
 * units) is computed here, not by Array.prototype.sort's default.
 */

import util from 'util.js';

var MEMBERS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'];
var DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/* The UTF-16 code units of s (njs indexes code points). */
function utf16(s) {
    var out = [];
    for (var i = 0; i < s.length; i++) {
        var cp = s.codePointAt(i);
        if (cp > 0xFFFF) {
            cp -= 0x10000;
            out.push(0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else {
            out.push(cp);
        }
    }
    return out;
}

/* RFC 8785 3.2.3: property names sorted by their UTF-16 code units. */
function compareUtf16(a, b) {
    var x = utf16(a);
    var y = utf16(b);
    var n = Math.min(x.length, y.length);
    for (var i = 0; i < n; i++) {
        if (x[i] !== y[i]) {
            return x[i] - y[i];
        }
    }
    return x.length - y.length;
}

/* RFC 8785 canonical JSON of a parsed JSON value. Strings and numbers are
 * written as ECMAScript's JSON.stringify writes them, which is what JCS
 * prescribes. Throws on what JSON cannot hold (non-finite numbers). */
function canonical(v) {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') {
        return JSON.stringify(v);
    }
    if (typeof v === 'number') {
        if (!isFinite(v)) {
            throw new Error('a number JSON cannot hold');
        }
        return JSON.stringify(v);
    }
    if (Array.isArray(v)) {
        var items = [];
        for (var i = 0; i < v.length; i++) {
            items.push(canonical(v[i]));
        }
        return '[' + items.join(',') + ']';
    }
    if (typeof v !== 'object') {
        throw new Error('not a JSON value');
    }
    var keys = Object.keys(v).sort(compareUtf16);
    var members = [];
    for (var k = 0; k < keys.length; k++) {
        members.push(JSON.stringify(keys[k]) + ':' + canonical(v[keys[k]]));
    }
    return '{' + members.join(',') + '}';
}

/* The digest of a listed tool (an object with a string name). */
function digest(tool) {
    var def = {};
    for (var i = 0; i < MEMBERS.length; i++) {
        if (Object.prototype.hasOwnProperty.call(tool, MEMBERS[i])) {
            def[MEMBERS[i]] = tool[MEMBERS[i]];
        }
    }
    return 'sha256:' + util.sha256hex(canonical(def));
}

/* The server's pinning, or null when it pins nothing. */
function config(policy) {
    var p = policy.tool_pinning;
    if (p === null || p === undefined || typeof p !== 'object') {
        return null;
    }
    return p;
}

/* The pin of a tool, or null. */
function pinOf(cfg, name) {
    return util.hasOwn(cfg.pins, name) && DIGEST_RE.test(cfg.pins[name]) ? cfg.pins[name] : null;
}

/* null when the tool's actual digest is its pin, else the reason. */
function verdict(cfg, name, actual) {
    var pin = pinOf(cfg, name);
    if (pin === null) {
        return 'tool_unpinned';
    }
    return pin === actual ? null : 'tool_drift';
}

/* One audit entry: tool:drift|unpinned:<expected or ->:<actual>. */
function finding(cfg, name, reason, actual) {
    var pin = pinOf(cfg, name);
    return name + ':' + (reason === 'tool_drift' ? 'drift' : 'unpinned') + ':' + (pin === null ? '-' : pin) +
           ':' + actual;
}

/* A tools/list result held to the pins: every tool's digest goes to
 * note.digests; in enforce mode the tools that fail are removed. Returns the
 * findings (audit entries), or null when the result is not a tools list. */
function filterTools(cfg, result, note) {
    var tools = result.tools;
    var kept = [];
    var findings = [];
    for (var i = 0; i < tools.length; i++) {
        var t = tools[i];
        var actual = digest(t);
        note.digests['#' + t.name] = actual;   /* '#': no tool name is a prototype key */
        var reason = verdict(cfg, t.name, actual);
        if (reason !== null) {
            findings.push(finding(cfg, t.name, reason, actual));
        }
        if (reason === null || cfg.mode !== 'enforce') {
            kept.push(t);
        }
    }
    result.tools = kept;
    return findings;
}

/* The store of the digests a server gave in a session: {'#<tool>': digest}. */
function storeKey(policy, sid) {
    return policy.scope + '\n' + sid;
}

function recalled(policy, sid) {
    var text = ngx.shared.mcpsec_pins.get(storeKey(policy, sid));
    if (text === undefined) {
        return {};
    }
    try {
        var v = JSON.parse(text);
        return util.isPlainObject(v) ? v : {};
    } catch (e) {
        return {};
    }
}

/* Remember a page's digests for the session (merged with earlier pages). A
 * store that refuses the write loses nothing but a shortcut: the next call
 * lists again. */
function remember(policy, sid, digests) {
    if (sid === undefined || sid === null) {
        return;
    }
    var all = recalled(policy, sid);
    Object.assign(all, digests);
    try {
        ngx.shared.mcpsec_pins.set(storeKey(policy, sid), JSON.stringify(all));
    } catch (e) {
        ngx.log(ngx.WARN, 'mcpsec: the tool digest store refused a write (' + e.message + ')');
    }
}

export default {
    canonical: canonical,
    digest: digest,
    config: config,
    pinOf: pinOf,
    verdict: verdict,
    finding: finding,
    filterTools: filterTools,
    recalled: recalled,
    remember: remember
};
