/*
 * uri: resource URIs in the one form the server will resolve them to.
 *
 * The MCP SDKs parse a resource URI with the WHATWG URL parser before they
 * look it up (TypeScript: new URL(); Python: pydantic's AnyUrl): dot segments
 * are removed ('%2e' counts as '.'), '\' is '/' in the special schemes, tabs
 * and newlines vanish, the scheme (and a special scheme's host) is lowercased.
 * A role's glob matched on another form than the one the server serves could
 * be walked out of: 'demo://resource/static/document/../../dynamic/text/1'
 * matches 'demo://resource/static/document/*' and reads dynamic/text/1.
 *
 * The rule: a resource URI is authorised only in a form none of those steps
 * changes. Any other is refused, whatever the role (legitimate clients send
 * the URIs servers list, which are in that form):
 *   - a lowercase scheme; only printable ASCII (no space, control, non-ASCII);
 *     no backslash;
 *   - in the path: no '.' or '..' segment, and no percent escape of an
 *     unreserved character (A-Z a-z 0-9 - . _ ~), of '/' or of '\', and no
 *     malformed escape;
 *   - a special scheme's host in lowercase.
 * One function, used for resources/read, subscribe, unsubscribe, completion
 * refs and the filtering of resources/list and resources/templates/list.
 */

var SCHEME_RE = /^[a-z][a-z0-9+.-]*:/;
var PRINTABLE_RE = /^[\x21-\x7e]+$/;
var URI_MAX = 4096;

function special(scheme) {
    switch (scheme) {
    case 'http:':
    case 'https:':
    case 'ws:':
    case 'wss:':
    case 'ftp:':
    case 'file:':
        return true;
    default:
        return false;
    }
}

/* Pure: is byte `code` one a path may not carry percent-encoded? */
function mustNotBeEncoded(code) {
    return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) ||
           code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e || code === 0x2f || code === 0x5c;
}

/* Pure: null, or what in the path keeps it from being the form served. */
function pathProblem(path) {
    for (var at = path.indexOf('%'); at >= 0; at = path.indexOf('%', at + 1)) {
        var hex = path.slice(at + 1, at + 3);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
            return 'a malformed percent escape';
        }
        if (mustNotBeEncoded(parseInt(hex, 16))) {
            return 'a percent-encoded "/", "\\" or unreserved character (' + path.slice(at, at + 3) + ')';
        }
    }
    var segments = path.split('/');
    for (var i = 0; i < segments.length; i++) {
        if (segments[i] === '.' || segments[i] === '..') {
            return 'a dot segment ("' + segments[i] + '")';
        }
    }
    return null;
}

/* Pure: null when `uri` is in the form the server resolves it to, else why not. */
function uriProblem(uri) {
    if (typeof uri !== 'string' || uri.length === 0 || uri.length > URI_MAX) {
        return 'not a URI of 1 to ' + URI_MAX + ' characters';
    }
    if (!PRINTABLE_RE.test(uri)) {
        return 'a character outside printable ASCII (spaces, controls and non-ASCII are percent-encoded)';
    }
    if (uri.indexOf('\\') >= 0) {
        return 'a backslash';
    }
    var m = SCHEME_RE.exec(uri);
    if (m === null) {
        return 'no lowercase scheme';
    }
    var rest = uri.slice(m[0].length);
    var end = rest.search(/[?#]/);
    var path = end < 0 ? rest : rest.slice(0, end);
    if (path.slice(0, 2) === '//') {
        var slash = path.indexOf('/', 2);
        var authority = slash < 0 ? path.slice(2) : path.slice(2, slash);
        if (special(m[0]) && authority !== authority.toLowerCase()) {
            return 'an uppercase host';
        }
        path = slash < 0 ? '' : path.slice(slash);
    }
    return pathProblem(path);
}

export default {
    uriProblem: uriProblem
};
