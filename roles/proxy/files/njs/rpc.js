/*
 * rpc: JSON-RPC / MCP message classification.
 */

import util from 'util.js';

var isPlainObject = util.isPlainObject;

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

export default {
    classifyMessage: classifyMessage,
    checkMcpHeaders: checkMcpHeaders
};
