/*
 * Session routing over several supergateway instances (and, through a load
 * balancer, several hosts) with no routing state to lose.
 *
 * The client never sees a backend's Mcp-Session-Id. It gets
 *     <host>.<instance>.<backend id>.<mac>
 * where mac = HMAC-SHA256(host key, "mcpsec-sid-v1\n" host \n instance \n
 * backend id \n subject [\n server]), base64url, first 32 characters (192 bits);
 * the server's name is in it for every MCP server but the one named default (whose
 * ids keep their form), so an id one server issued is unknown at any other. The host
 * part is what a load balancer routes on; the instance part picks the upstream
 * here; the MAC binds the id to this host, that instance and the subject, so a
 * forged, altered or borrowed id is refused before it reaches a backend. The
 * key (route_key.json, root-only, loaded by the nginx master at (re)load) is
 * generated once per host and never logged.
 *
 * The request's MCP server is $mcpsec_server (servers.js); route.json names each
 * server's upstream, instance count and first port (servers.<name>).
 *
 * Exports (plain functions; the handler calls them):
 *   pin(r, sid, subject)   request: true and $mcpsec_upstream/$mcpsec_backend_sid
 *                          set when sid is this host's, this server's and the subject's; else false
 *   mint(r, backendSid, subject)  response of an initialize: the id for the
 *                          client, or null (the instance or backend id is unusable)
 *   backendOf(sid, server) a bound session's own instance URL and backend id (what
 *                          sessions.reclaim probes), or null when this host no longer
 *                          routes it (instances scaled down, host id changed)
 */
import cr from 'crypto';
import servers from 'servers.js';

var PREFIX = 'mcpsec-sid-v1\n';
var MAC_LEN = 32;
var HOST_RE = /^[A-Za-z0-9_-]{1,32}$/;
var PART_RE = /^[A-Za-z0-9_-]{1,48}$/;
var INSTANCE_RE = /^(0|[1-9][0-9]?)$/;

/* Pure: server n's routing under route.json c ({host, address, path, servers: {<name>:
 * {upstream, instances, port}}}), or null when c names no such server. */
function confIn(c, n) {
    var s = c.servers !== undefined && c.servers !== null && Object.prototype.hasOwnProperty.call(c.servers, n)
        ? c.servers[n] : null;
    if (s === null) {
        return null;
    }
    return {host: c.host, address: c.address, path: c.path, server: n, upstream: s.upstream,
            instances: s.instances, port: s.port};
}

function conf(n) {
    return confIn(mcpsec_route, n);    /* js_preload_object (route.json) */
}

function mac(key, host, instance, backendSid, subject, server) {
    var text = PREFIX + host + '\n' + instance + '\n' + backendSid + '\n' + subject;
    if (server !== undefined && server !== servers.DEFAULT) {
        text += '\n' + server;        /* subject keys hold no newline (respond.subjectKey) */
    }
    return cr.createHmac('sha256', key).update(text).digest('base64url').substring(0, MAC_LEN);
}

/* Compares every character whatever the first difference. */
function sameString(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    var d = 0;
    for (var i = 0; i < a.length; i++) {
        d |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return d === 0;
}

/* Pure: the parts of a client session id, or null. */
function parse(sid) {
    if (typeof sid !== 'string' || sid.length > 128) {
        return null;
    }
    var p = sid.split('.');
    if (p.length !== 4 || !HOST_RE.test(p[0]) || !INSTANCE_RE.test(p[1]) || !PART_RE.test(p[2]) ||
        p[3].length !== MAC_LEN || !PART_RE.test(p[3])) {
        return null;
    }
    return {host: p[0], instance: Number(p[1]), backend: p[2], mac: p[3]};
}

/* Pure: the checked route of sid for subject (and server) under (host, instances, key), or null. */
function verify(sid, subject, host, instances, key, server) {
    var s = parse(sid);
    if (s === null || s.host !== host || s.instance >= instances || !subject) {
        return null;
    }
    if (!sameString(mac(key, s.host, s.instance, s.backend, subject, server), s.mac)) {
        return null;
    }
    return s;
}

/* Pure: the client id for a backend id an instance minted, or null. */
function issue(backendSid, instance, subject, host, instances, key, server) {
    if (typeof backendSid !== 'string' || !PART_RE.test(backendSid) || !HOST_RE.test(host) || !subject ||
        !(instance >= 0 && instance < instances)) {
        return null;
    }
    return host + '.' + instance + '.' + backendSid + '.' + mac(key, host, instance, backendSid, subject, server);
}

/* The instance that answered: the last address nginx tried ("a:p, b:q" after a retry). */
function instanceOf(upstreamAddr, basePort) {
    if (!upstreamAddr) {
        return -1;
    }
    var last = upstreamAddr.split(',').pop().trim();
    var m = /:([0-9]{1,5})$/.exec(last);
    return m === null ? -1 : Number(m[1]) - basePort;
}

function pin(r, sid, subject) {
    var c = conf(servers.name(r));
    var s = c === null ? null : verify(sid, subject, c.host, c.instances, mcpsec_route_key.key, c.server);
    if (s === null) {
        return false;
    }
    r.variables.mcpsec_upstream = c.upstream + '_' + s.instance;
    r.variables.mcpsec_backend_sid = s.backend;
    return true;
}

function mint(r, backendSid, subject) {
    var c = conf(servers.name(r));
    if (c === null) {
        return null;
    }
    return issue(backendSid, instanceOf(r.variables.upstream_addr, c.port), subject, c.host,
                 c.instances, mcpsec_route_key.key, c.server);
}

/* Pure: the backend URL of instance i under conf c. */
function instanceUrl(c, i) {
    return 'http://' + c.address + ':' + (c.port + i) + c.path;
}

/* Pure: where the session sid (an id this host issued) lives, under conf c. */
function backendIn(sid, c) {
    var s = parse(sid);
    if (c === null || s === null || s.host !== c.host || s.instance >= c.instances) {
        return null;
    }
    return {url: instanceUrl(c, s.instance), sid: s.backend};
}

function backendOf(sid, server) {
    return backendIn(sid, conf(server));
}

/* The backend URL of the instance that answered this request, or null. */
function answeredUrl(r) {
    var c = conf(servers.name(r));
    if (c === null) {
        return null;
    }
    var i = instanceOf(r.variables.upstream_addr, c.port);
    return i >= 0 && i < c.instances ? instanceUrl(c, i) : null;
}

export default {
    pin: pin,
    mint: mint,
    backendOf: backendOf,
    backendIn: backendIn,
    confIn: confIn,
    answeredUrl: answeredUrl,
    /* for tests/njs/unit.js */
    parse: parse,
    verify: verify,
    issue: issue,
    instanceOf: instanceOf,
    sameString: sameString
};
