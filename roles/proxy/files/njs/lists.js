/*
 * lists: the backend's answer to tools/list, prompts/list, resources/list and
 * resources/templates/list, filtered to what the subject's roles allow, in a
 * JSON body or a text/event-stream. Pagination cursors and every other event
 * pass unchanged. An answer that cannot be parsed and filtered is never
 * passed on: the caller answers 502 (fail closed).
 */

import authz from 'authz.js';

/* A decoded message that is a JSON-RPC response (no method). */
function isResponse(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v) && v.method === undefined &&
           (v.result !== undefined || v.error !== undefined);
}

/* Filter one parsed response to request `id`. Returns null or a reason. */
function filterResponse(policy, roles, list, id, msg) {
    if (msg.id !== id) {
        return 'list_unexpected_response';
    }
    if (msg.error !== undefined) {
        return null;                        /* the backend's own error passes as is */
    }
    return authz.filterListResult(policy, roles, list, msg.result);
}

/* application/json answer. Returns {body} or {reason}. */
function filterJson(policy, roles, list, id, text) {
    var msg;
    try {
        msg = JSON.parse(text);
    } catch (e) {
        return {reason: 'list_unparsable'};
    }
    if (!isResponse(msg)) {
        return {reason: 'list_unparsable'};
    }
    var reason = filterResponse(policy, roles, list, id, msg);
    return reason === null ? {body: JSON.stringify(msg)} : {reason: reason};
}

/* One SSE event (its lines) rewritten: the data of the response to `id`
 * filtered, other events unchanged. Returns {lines, answered} or {reason}. */
function filterEvent(policy, roles, list, id, lines) {
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
    var reason = filterResponse(policy, roles, list, id, msg);
    if (reason !== null) {
        return {reason: reason};
    }
    rest.push('data: ' + JSON.stringify(msg));
    return {lines: rest, answered: true};
}

/* text/event-stream answer (complete: the backend ended the stream after
 * the response). Returns {body} or {reason}. */
function filterSse(policy, roles, list, id, text) {
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
        var f = filterEvent(policy, roles, list, id, event);
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
 * the format. Returns {body} or {reason}. */
function filterAnswer(policy, roles, list, id, contentType, text) {
    var ct = typeof contentType === 'string' ? contentType.split(';')[0].trim().toLowerCase() : '';
    if (typeof text !== 'string') {
        return {reason: 'list_unparsable'};
    }
    if (ct === 'application/json') {
        return filterJson(policy, roles, list, id, text);
    }
    if (ct === 'text/event-stream') {
        return filterSse(policy, roles, list, id, text);
    }
    return {reason: 'list_content_type'};
}

export default {
    filterJson: filterJson,
    filterSse: filterSse,
    filterAnswer: filterAnswer
};
