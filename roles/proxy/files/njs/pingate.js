/*
 * pingate: a tools/call on a server that pins its tools (pins.js) is judged by
 * the definition the server gives in the caller's session. The digests of
 * the tools/list answers that passed through the gateway in the session are
 * kept; a tool none of them showed makes the gateway list the tools itself,
 * in the session, every page (its own JSON-RPC ids, never the client's), before
 * the call may reach the backend. enforce: a drifted or unpinned tool, or one
 * the server does not list, is refused 403 with the call's id; report: the
 * call passes and its audit line names the finding. Anything that keeps the
 * gateway from knowing the definition refuses the call (fail closed).
 */

import util from 'util.js';
import respond from 'respond.js';
import sessions from 'sessions.js';
import lists from 'lists.js';
import pins from 'pins.js';
import flow from 'flow.js';

/* A server lists a few hundred tools at most; past this many pages the
 * gateway stops looking and the call is refused. */
var PAGES_MAX = 50;

function judge(r, c, cfg, actual) {
    var name = c.info.name;
    var pin = pins.pinOf(cfg, name);
    var reason = actual === undefined ? (pin === null ? 'tool_unpinned' : 'tool_drift')
                                      : pins.verdict(cfg, name, actual);
    respond.setVar(r, 'mcpsec_tool_pin', pin === null ? '' : pin);
    respond.setVar(r, 'mcpsec_tool_digest', actual === undefined ? '' : actual);
    if (reason === null) {
        flow.allow(r, flow.UPSTREAM);
        return;
    }
    r.variables.mcpsec_tool_pins = pins.finding(cfg, name, reason, actual === undefined ? '-' : actual);
    if (cfg.mode !== 'enforce') {
        flow.allow(r, flow.UPSTREAM);
        return;
    }
    respond.denyRpc(r, 403, reason, c.info.id, -32003, 'Forbidden: tool ' + respond.quoteName(name) +
                    (reason === 'tool_drift' ? ' is not the definition that was reviewed (its pin differs)'
                                             : ' has no reviewed definition (no pin)') +
                    '; an operator re-pins it with playbooks/pin_tools.yml');
}

/* The gateway's own tools/list could not be read: the call is refused. */
function unverified(r, c, status, reason) {
    if (status === 404) {
        sessions.notFound(r, c.sid, c.info.id);
        return;
    }
    if (status === 429 || status >= 500 || status === 0) {
        var s = status === 429 || status === 504 ? status : 503;
        respond.deny(r, s, s === 429 ? 'rate_limit' : (s === 504 ? 'upstream_timeout' : 'upstream_unavailable'),
                     c.info.id, {'Retry-After': s === 429 ? (r.variables.mcpsec_limit_retry_after || '1') : '5'});
        return;
    }
    ngx.log(ngx.ERR, 'mcpsec: the tools/list of the pin check was unreadable (' + reason + '): tools/call refused');
    respond.denyRpc(r, 502, 'tool_pin_unverified', c.info.id, -32603,
                    'Internal error: the gateway could not read the server\'s tool definitions (' + reason + ')');
}

function listPage(r, c, cfg, note, cursor, page) {
    var id = 'mcpsec-pin-' + r.variables.request_id + '-' + page;
    var body = JSON.stringify({jsonrpc: '2.0', id: id, method: 'tools/list',
                               params: cursor === null ? {} : {cursor: cursor}});
    flow.settle(r, r.subrequest(lists.LIST_URI, {method: 'POST', body: body}), function (reply) {
        if (reply.status !== 200) {
            unverified(r, c, reply.status, 'status ' + reply.status);
            return;
        }
        var f = lists.filterAnswer(c.policy, c.a.roles, 'tools', id, reply.headersOut['Content-Type'],
                                   reply.responseText, note);
        if (f.reason) {
            unverified(r, c, 200, f.reason);
            return;
        }
        var next = note.nextCursor;
        if (typeof next === 'string' && !util.hasOwn(note.digests, '#' + c.info.name)) {
            if (page + 1 >= PAGES_MAX) {
                unverified(r, c, 200, 'more than ' + PAGES_MAX + ' pages');
                return;
            }
            listPage(r, c, cfg, note, next, page + 1);
            return;
        }
        pins.remember(c.policy, c.sid, note.digests);
        judge(r, c, cfg, note.digests['#' + c.info.name]);
    });
}

/* tools/call of c.info.name on a server with pinning (pins.config not null). */
function check(r, c) {
    var cfg = pins.config(c.policy);
    var known = pins.recalled(c.policy, c.sid);
    var key = '#' + c.info.name;
    if (util.hasOwn(known, key)) {
        judge(r, c, cfg, known[key]);
        return;
    }
    listPage(r, c, cfg, {digests: {}, findings: [], nextCursor: undefined}, null, 0);
}

export default {
    check: check
};
