/*
 * servers: which MCP server a request is for, and the policy as that server sees it.
 *
 * A host serves one or more MCP servers, each at its own path; the location of
 * each sets $mcpsec_server (locations.conf), and every internal redirect and
 * subrequest keeps it. policy.json (njs_policy version 3) holds per server:
 *     servers.<name> = {path, resource, resource_metadata_url, audiences, roles,
 *                       upstream, instances, max_sessions_total, tool_pinning}
 * view() lays those over the host-wide policy, so the code that reads
 * policy.roles, policy.resource_metadata_url, policy.max_sessions_total, ...
 * reads the server's. A request for no server, or for one the policy does not
 * name, gets no view: it is refused (fail closed).
 *
 * scope() is what the keys of the per-server state carry (session slots, tool
 * slots): '' for the server named default (the keys of earlier releases), else
 * '@<name>' (names are [a-z][a-z0-9-]*: never ':' or '\n').
 *
 * Exports:
 *   POLICY_VERSION    the njs_policy version this code reads
 *   policy()          the loaded policy, or null when it is not that version
 *   view(r, policy)   the policy for $mcpsec_server, or null
 *   name(r)           $mcpsec_server ('' when unset)
 *   scope(name)       the key scope of a server
 */

var POLICY_VERSION = 3;
var DEFAULT = 'default';
var NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;

function policy() {
    if (typeof mcpsec_policy === 'undefined' || mcpsec_policy === null ||
        mcpsec_policy.version !== POLICY_VERSION || mcpsec_policy.servers === null ||
        typeof mcpsec_policy.servers !== 'object') {
        ngx.log(ngx.ERR, 'mcpsec: policy.json is not njs_policy version ' + POLICY_VERSION +
                ': every request is refused until the proxy role renders it again');
        return null;
    }
    return mcpsec_policy;
}

function name(r) {
    var n = r.variables.mcpsec_server;
    return typeof n === 'string' ? n : '';
}

function scope(n) {
    return n === DEFAULT ? '' : '@' + n;
}

/* Pure: the policy as server `n` sees it, or null when it serves no such server. */
function viewOf(p, n) {
    if (!NAME_RE.test(n) || !Object.prototype.hasOwnProperty.call(p.servers, n)) {
        return null;
    }
    var s = p.servers[n];
    if (s === null || typeof s !== 'object' || s.roles === null || typeof s.roles !== 'object' ||
        !Array.isArray(s.audiences)) {
        return null;
    }
    var v = Object.assign({}, p);
    v.server = n;
    v.scope = scope(n);
    v.roles = s.roles;
    v.resource = s.resource;
    v.resource_metadata_url = s.resource_metadata_url;
    v.max_sessions_total = s.max_sessions_total;
    v.upstream = s.upstream;
    v.instances = s.instances;
    v.audiences = s.audiences;
    v.tool_pinning = s.tool_pinning === undefined ? null : s.tool_pinning;   /* pins.js */
    if (p.oidc !== null && typeof p.oidc === 'object') {
        v.oidc = Object.assign({}, p.oidc);
        v.oidc.audiences = s.audiences;
    }
    return v;
}

function view(r, p) {
    var n = name(r);
    var v = viewOf(p, n);
    if (v === null) {
        ngx.log(ngx.ERR, 'mcpsec: a request for MCP server ' + JSON.stringify(n) +
                ', which policy.json does not name: refused');
    }
    return v;
}

export default {
    DEFAULT: DEFAULT,
    policy: policy,
    view: view,
    viewOf: viewOf,
    name: name,
    scope: scope
};
