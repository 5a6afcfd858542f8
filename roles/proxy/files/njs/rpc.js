/*
 * rpc: JSON-RPC / MCP message classification: the method table (default deny),
 * what each method acts on, the 2026-07-28 envelope and Mcp-Method/Mcp-Name.
 */

import util from 'util.js';

var isPlainObject = util.isPlainObject;

/* The MCP methods a client may send, 2024-11-05 to 2026-07-28. Anything else
 * is refused before it reaches the backend (default deny).
 *   kind    'request' | 'notification' (what the message must be)
 *   target  what the method acts on, checked against the subject's roles:
 *           'tool' (params.name), 'resource' (params.uri), 'prompt'
 *           (params.name), 'ref' (completion/complete's params.ref); absent:
 *           nothing beyond "the roles grant something"
 *   list    the backend's answer is filtered to what the roles allow:
 *           'tools' | 'resources' | 'templates' | 'prompts'
 *   session the message is only valid inside a session the subject owns
 *   modern  a method of the stateless revision only (2026-07-28)
 * A switch, not an object literal: njs runs every module's top level again for
 * each request, so a table literal would build ~25 objects per request; this
 * builds the one entry asked for. */
function methodSpec(method) {
    switch (method) {
    case 'initialize':
    case 'ping':
        return {kind: 'request'};
    case 'tools/list':
        return {kind: 'request', list: 'tools'};
    case 'tools/call':
        return {kind: 'request', target: 'tool'};
    case 'resources/list':
        return {kind: 'request', list: 'resources'};
    case 'resources/templates/list':
        return {kind: 'request', list: 'templates'};
    case 'resources/read':
        return {kind: 'request', target: 'resource'};
    case 'resources/subscribe':
    case 'resources/unsubscribe':
        return {kind: 'request', target: 'resource', session: true};
    case 'prompts/list':
        return {kind: 'request', list: 'prompts'};
    case 'prompts/get':
        return {kind: 'request', target: 'prompt'};
    case 'completion/complete':
        return {kind: 'request', target: 'ref'};
    case 'logging/setLevel':
    case 'tasks/get':
    case 'tasks/result':
    case 'tasks/list':
    case 'tasks/cancel':
        return {kind: 'request', session: true};
    case 'server/discover':
    case 'subscriptions/listen':
        return {kind: 'request', modern: true};
    case 'notifications/initialized':
    case 'notifications/cancelled':
    case 'notifications/progress':
    case 'notifications/roots/list_changed':
    case 'notifications/tasks/status':
    case 'notifications/elicitation/complete':
        return {kind: 'notification', session: true};
    default:
        return null;
    }
}

/* What a request names as its target, per the table: {target, name} where
 * target is 'tool' | 'resource' | 'prompt'; or {reason} when params lack it. */
function targetOf(spec, params) {
    var t = spec.target;
    if (t === 'tool' || t === 'prompt') {
        if (params === null || typeof params.name !== 'string' || params.name === '') {
            return {reason: 'invalid_params'};
        }
        return {target: t, name: params.name};
    }
    if (t === 'resource') {
        if (params === null || typeof params.uri !== 'string' || params.uri === '') {
            return {reason: 'invalid_params'};
        }
        return {target: 'resource', name: params.uri};
    }
    /* completion/complete: a prompt argument or a resource (template) URI */
    var ref = params === null ? null : params.ref;
    if (!isPlainObject(ref)) {
        return {reason: 'invalid_params'};
    }
    if (ref.type === 'ref/prompt' && typeof ref.name === 'string' && ref.name !== '') {
        return {target: 'prompt', name: ref.name};
    }
    if (ref.type === 'ref/resource' && typeof ref.uri === 'string' && ref.uri !== '') {
        return {target: 'resource', name: ref.uri};
    }
    return {reason: 'invalid_params'};
}

var PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';

/* Does the message claim the stateless revision (2026-07-28 and later)? The
 * same test supergateway 4.0.0 routes by (its modern path starts a server
 * process per request, before any session lookup): a per-request envelope in
 * params._meta, or a modern MCP-Protocol-Version header. */
function claimsModern(params, headerVersion, modernVersion) {
    if (params !== null && isPlainObject(params._meta) &&
        Object.prototype.hasOwnProperty.call(params._meta, PROTOCOL_VERSION_META)) {
        return true;
    }
    /* the gateway refuses unknown versions before: the only modern one it knows */
    return typeof headerVersion === 'string' && headerVersion.trim() === modernVersion;
}

/* The version a stateless request names (envelope first, then the header). */
function requestedVersion(params, headerVersion) {
    if (params !== null && isPlainObject(params._meta) &&
        typeof params._meta[PROTOCOL_VERSION_META] === 'string') {
        return params._meta[PROTOCOL_VERSION_META];
    }
    return typeof headerVersion === 'string' ? headerVersion.trim() : null;
}

/* Classify one decoded JSON-RPC message. Returns
 * {ok:true, kind, method, id, hasId, spec, target, name, params} or
 * {ok:false, reason, id}. kind is 'request' | 'notification' | 'response';
 * spec is the method table entry (null for responses); target/name what a
 * request acts on ('tool' | 'resource' | 'prompt' and its name or URI).
 * `msg` comes from JSON.parse: it holds only own data properties, none of the
 * names read here (id, jsonrpc, method, params, result, error, name, uri) is
 * on Object.prototype, and JSON has no undefined, so "!== undefined" is
 * exactly "has own property" here (and a property lookup, not a call). */
function classifyMessage(msg) {
    var info = {ok: false, reason: 'invalid_request', kind: null, method: null, id: null,
                hasId: false, spec: null, target: null, name: null, params: null};
    if (Array.isArray(msg)) {
        info.reason = 'batch';
        return info;
    }
    if (!isPlainObject(msg) || !readId(info, msg.id) || msg.jsonrpc !== '2.0') {
        return info;
    }
    var hasResult = msg.result !== undefined;
    var hasError = msg.error !== undefined;
    if (msg.method !== undefined) {
        if (hasResult || hasError || !readRequest(info, msg)) {
            return info;
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

/* The message's id into info (a string or an integer, or absent); false when
 * it is neither (info.reason set). */
function readId(info, id) {
    if (id === undefined) {
        return true;
    }
    if (typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id))) {
        info.id = id;
        info.hasId = true;
        return true;
    }
    info.reason = 'invalid_id';
    return false;
}

/* A request or notification into info: its method, params, table entry and
 * target; false when any is refused (info.reason set, or invalid_request). */
function readRequest(info, msg) {
    var method = msg.method;
    if (typeof method !== 'string' || method === '') {
        return false;
    }
    info.method = method;
    info.kind = info.hasId ? 'request' : 'notification';
    var params = msg.params === undefined ? null : msg.params;
    if (msg.params !== undefined && !isPlainObject(params)) {   /* also "params": null */
        info.reason = 'invalid_params';
        return false;
    }
    info.params = params;
    var spec = methodSpec(method);
    if (spec === null) {
        info.reason = 'method_unknown';
        return false;
    }
    if (spec.kind !== info.kind) {
        info.reason = spec.kind === 'request' ? 'id_required' : 'unexpected_id';
        return false;
    }
    info.spec = spec;
    if (spec.target !== undefined) {
        var t = targetOf(spec, params);
        if (t.reason) {
            info.reason = t.reason;
            return false;
        }
        info.target = t.target;
        info.name = t.name;
    }
    return true;
}

/* A header value in the RFC 2047-like base64 form MCP allows for non-ASCII
 * names ("=?base64?...?="), decoded as strict UTF-8; other values as sent.
 * undefined for a malformed encoded value (never equal to a name). */
var B64_HEADER_RE = /^(?:[A-Za-z0-9+\/]{4})*(?:[A-Za-z0-9+\/]{2}==|[A-Za-z0-9+\/]{3}=)?$/;

function decodedHeader(value) {
    if (typeof value !== 'string' || value.length < 11 || value.slice(0, 9) !== '=?base64?' ||
        value.slice(-2) !== '?=') {
        return value;
    }
    var payload = value.slice(9, -2);
    if (!B64_HEADER_RE.test(payload)) {
        return undefined;
    }
    try {
        return new TextDecoder('utf-8', {fatal: true}).decode(Buffer.from(payload, 'base64'));
    } catch (e) {
        return undefined;
    }
}

/* The name Mcp-Name must repeat for a method (2026-07-28): tools/call and
 * prompts/get name, resources/read URI; null when the method has none. */
function mcpNameOf(info) {
    var m = info.method;
    return m === 'tools/call' || m === 'prompts/get' || m === 'resources/read' ? info.name : null;
}

/* Mcp-Method / Mcp-Name must repeat the body: always when present, and
 * `required` (a 2026-07-28 request) makes Mcp-Method, and Mcp-Name for the
 * methods that name something, mandatory. Returns null or a reason. */
function checkMcpHeaders(info, hMethod, hName, required) {
    if (hMethod !== undefined && hMethod !== null) {
        if (info.method === null || String(hMethod).trim() !== info.method) {
            return 'mcp_method_mismatch';
        }
    } else if (required && info.method !== null) {
        return 'mcp_method_missing';
    }
    var want = mcpNameOf(info);
    if (hName !== undefined && hName !== null) {
        if (want === null || decodedHeader(String(hName).trim()) !== want) {
            return 'mcp_name_mismatch';
        }
    } else if (required && want !== null) {
        return 'mcp_name_missing';
    }
    return null;
}

/* What an initialize's params lack for the MCP SDK's InitializeRequestSchema
 * (protocolVersion, capabilities, clientInfo {name, version}), or null. */
function initializeProblem(params) {
    if (params === null) {
        return 'params';
    }
    if (typeof params.protocolVersion !== 'string') {
        return 'params.protocolVersion (a string)';
    }
    if (!isPlainObject(params.capabilities)) {
        return 'params.capabilities (an object)';
    }
    var ci = params.clientInfo;
    if (!isPlainObject(ci) || typeof ci.name !== 'string' || typeof ci.version !== 'string') {
        return 'params.clientInfo (an object with a string name and version)';
    }
    return null;
}

/* JSON-RPC error codes the gateway answers with (MCP's where it has one). */
var METHOD_NOT_FOUND = -32601;
var INVALID_PARAMS = -32602;
var HEADER_MISMATCH = -32020;
var UNSUPPORTED_PROTOCOL_VERSION = -32022;

/* The protocol version a message names itself: an initialize's
 * params.protocolVersion, else the 2026 revision's _meta envelope; null when
 * it names none (the header's, if any, stays in the audit line). */
function messageVersion(info) {
    var params = info.params;
    if (info.method === 'initialize' && params !== null && typeof params.protocolVersion === 'string') {
        return params.protocolVersion;
    }
    return requestedVersion(params, undefined);
}

export default {
    METHOD_NOT_FOUND: METHOD_NOT_FOUND,
    INVALID_PARAMS: INVALID_PARAMS,
    HEADER_MISMATCH: HEADER_MISMATCH,
    UNSUPPORTED_PROTOCOL_VERSION: UNSUPPORTED_PROTOCOL_VERSION,
    messageVersion: messageVersion,
    methodSpec: methodSpec,
    initializeProblem: initializeProblem,
    claimsModern: claimsModern,
    requestedVersion: requestedVersion,
    classifyMessage: classifyMessage,
    decodedHeader: decodedHeader,
    checkMcpHeaders: checkMcpHeaders
};
