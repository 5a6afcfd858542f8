/*
 * lists: the backend's answer to tools/list, prompts/list, resources/list and
 * resources/templates/list, filtered to what the subject's roles allow, in a
 * JSON body or a text/event-stream. Pagination cursors and every other event
 * pass unchanged. An answer that cannot be parsed and filtered is never
 * passed on: the caller answers 502 (fail closed).
 */

import authz from 'authz.js';
import respond from 'respond.js';
import sessions from 'sessions.js';
import flow from 'flow.js';
import util from 'util.js';
import pins from 'pins.js';

/* A decoded message that is a JSON-RPC response (no method). */
function isResponse(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v) && v.method === undefined &&
           (v.result !== undefined || v.error !== undefined);
}

/* A tools/list result on a server that pins its tools (pins.js): each tool's
 * digest noted, the ones that fail removed in enforce mode, before the roles
 * filter. Returns null or a reason. */
function pinTools(policy, result, note) {
    var cfg = pins.config(policy);
    if (cfg === null) {
        return null;
    }
    if (!util.isPlainObject(result) || !Array.isArray(result.tools)) {
        return 'list_malformed';
    }
    for (var i = 0; i < result.tools.length; i++) {
        var t = result.tools[i];
        if (!util.isPlainObject(t) || typeof t.name !== 'string') {
            return 'list_malformed';
        }
    }
    note.findings = note.findings.concat(pins.filterTools(cfg, result, note));
    note.nextCursor = result.nextCursor;
    return null;
}

/* Filter one parsed response to request `id`. Returns null or a reason.
 * note (tools/list): {digests, findings, nextCursor} of the pin check. */
function filterResponse(policy, roles, list, id, msg, note) {
    if (msg.id !== id) {
        return 'list_unexpected_response';
    }
    if (msg.error !== undefined) {
        return null;                        /* the backend's own error passes as is */
    }
    var reason = list === 'tools' ? pinTools(policy, msg.result, note || newNote()) : null;
    return reason !== null ? reason : authz.filterListResult(policy, roles, list, msg.result);
}

function newNote() {
    return {digests: {}, findings: [], nextCursor: undefined};
}

/* application/json answer. Returns {body} or {reason}. */
function filterJson(policy, roles, list, id, text, note) {
    var msg;
    try {
        msg = JSON.parse(text);
    } catch (e) {
        return {reason: 'list_unparsable'};
    }
    if (!isResponse(msg)) {
        return {reason: 'list_unparsable'};
    }
    var reason = filterResponse(policy, roles, list, id, msg, note);
    return reason === null ? {body: JSON.stringify(msg)} : {reason: reason};
}

/* One SSE event (its lines) rewritten: the data of the response to `id`
 * filtered, other events unchanged. Returns {lines, answered} or {reason}. */
function filterEvent(policy, roles, list, id, lines, note) {
    var data = [];
    var rest = [];
    for (var i = 0; i < lines.length; i++) {
        var line = lines[i];
        if (line.slice(0, 5) === 'data:') {
            data.push(line.charAt(5) === ' ' ? line.slice(6) : line.slice(5));
        } else {
            rest.push(line);
        }
    }
    if (data.length === 0) {
        return {lines: lines, answered: false};          /* comment, id or retry only */
    }
    var msg;
    try {
        msg = JSON.parse(data.join('\n'));
    } catch (e) {
        return {reason: 'list_unparsable'};
    }
    if (!isResponse(msg)) {
        return {lines: lines, answered: false};          /* a notification or a server request */
    }
    var reason = filterResponse(policy, roles, list, id, msg, note);
    if (reason !== null) {
        return {reason: reason};
    }
    rest.push('data: ' + JSON.stringify(msg));
    return {lines: rest, answered: true};
}

/* text/event-stream answer (complete: the backend ended the stream after
 * the response). Returns {body} or {reason}. */
function filterSse(policy, roles, list, id, text, note) {
    var lines = text.split(/\r\n|\r|\n/);
    var out = [];
    var event = [];
    var answered = false;
    for (var i = 0; i <= lines.length; i++) {
        var line = i < lines.length ? lines[i] : '';
        if (line !== '') {
            event.push(line);
            continue;
        }
        if (event.length === 0) {
            continue;
        }
        var f = filterEvent(policy, roles, list, id, event, note);
        if (f.reason) {
            return {reason: f.reason};
        }
        if (f.answered) {
            if (answered) {
                return {reason: 'list_unexpected_response'};
            }
            answered = true;
        }
        out.push(f.lines.join('\n') + '\n\n');
        event = [];
    }
    return answered ? {body: out.join('')} : {reason: 'list_no_answer'};
}

/* The backend's list answer filtered for the subject. contentType decides
 * the format; note (optional) collects a tools/list's pin check. Returns
 * {body} or {reason}. */
function filterAnswer(policy, roles, list, id, contentType, text, note) {
    var ct = typeof contentType === 'string' ? contentType.split(';')[0].trim().toLowerCase() : '';
    if (typeof text !== 'string') {
        return {reason: 'list_unparsable'};
    }
    if (ct === 'application/json') {
        return filterJson(policy, roles, list, id, text, note);
    }
    if (ct === 'text/event-stream') {
        return filterSse(policy, roles, list, id, text, note);
    }
    return {reason: 'list_content_type'};
}

/* The subrequest a list method goes through when the subject may not see every
 * item: the backend's whole answer (JSON or a finished SSE stream) is held in
 * memory, up to proxy_list_response_max_size (larger: refused, never unfiltered). */
var LIST_URI = '/_mcpsec/list';

/* A list method for a subject that may not see every item: the backend's
 * answer is fetched whole, filtered, then sent. */
function forward(r, policy, a, info, list, sid) {
    flow.settle(r, r.subrequest(LIST_URI, {method: 'POST'}), function (reply) {
        answer(r, policy, a, info, list, sid, reply);
    });
}

/* A list answer the backend did not give with 200: its 404 ends the session,
 * limits and outages are ours to answer, any other refusal passes as it said it. */
function answerOther(r, info, sid, reply) {
    var status = reply.status;
    if (status === 404) {
        sessions.notFound(r, sid, info.id);
        return;
    }
    if (status === 429 || status >= 500 || status === 0) {
        /* limit_req in the subrequest (429), the backend down or slow */
        var s = status === 429 || status === 504 ? status : 503;
        var retry = s === 429 ? (r.variables.mcpsec_limit_retry_after || '1') : (s === 503 ? '5' : null);
        respond.deny(r, s, s === 429 ? 'rate_limit' : (s === 504 ? 'upstream_timeout' : 'upstream_unavailable'),
                     info.id, retry !== null ? {'Retry-After': retry} : null);
        return;
    }
    respond.setVar(r, 'mcpsec_decision', 'allow');
    r.headersOut['Content-Type'] = reply.headersOut['Content-Type'] || 'application/json';
    r.return(status, reply.responseText);
}

function answer(r, policy, a, info, list, sid, reply) {
    if (reply.status !== 200) {
        answerOther(r, info, sid, reply);
        return;
    }
    var note = newNote();
    var f = filterAnswer(policy, a.roles, list, info.id, reply.headersOut['Content-Type'], reply.responseText, note);
    if (f.reason) {
        ngx.log(ngx.ERR, 'mcpsec: ' + info.method + ' answer not filtered (' + f.reason + '): refused');
        respond.deny(r, 502, f.reason, info.id);
        return;
    }
    if (list === 'tools' && pins.config(policy) !== null) {
        pins.remember(policy, sid, note.digests);
        notePins(r, note.findings);
    }
    respond.setVar(r, 'mcpsec_decision', 'allow');
    r.headersOut['Content-Type'] = reply.headersOut['Content-Type'];
    r.return(200, f.body);
}

/* The audit line's tool_pins: the findings of a tools/list, bounded. */
var FINDINGS_LOGGED = 16;

function notePins(r, findings) {
    var shown = findings.slice(0, FINDINGS_LOGGED).join(' ');
    if (findings.length > FINDINGS_LOGGED) {
        shown += ' +' + (findings.length - FINDINGS_LOGGED) + ' more';
    }
    r.variables.mcpsec_tool_pins = respond.escapeText(shown);
}

export default {
    LIST_URI: LIST_URI,
    forward: forward,
    filterJson: filterJson,
    filterSse: filterSse,
    filterAnswer: filterAnswer
};
