/*
 * metrics: the gateway's MCP metrics in the Prometheus text format.
 *
 * Counted when a request's audit line is written (observe: the js_set that the
 * audit log's rpc_id reads through a map, njs_http.conf), three shared-dict
 * writes per request: one counter per (server, method, decision, reason, code,
 * tool), one histogram bucket and one duration sum per (server, method).
 * Everything else is computed when Prometheus scrapes (render, the loopback
 * status server): cumulative buckets and _count, tool calls, authentication
 * failures (401) by mode, refusals by limit, each server's live sessions (its
 * host slots in mcpsec_sessions) and cap, which backend instances answer, and
 * when the audit file was last written.
 *
 * Label values are bounded: servers and tools come from the policy (a tool no
 * role of the server names is 'other'), methods from rpc.js's table (plus
 * stream/get and session/delete), reasons from REASONS, codes are HTTP
 * statuses; anything else is 'other'.
 *
 * Keys in mcpsec_metrics (type number, no eviction, no expiry; fields '\t'-separated):
 *   r <server> <method> <decision> <reason> <code> <tool>   requests
 *   b <server> <method> <bucket index>                      duration buckets (not cumulative)
 *   s <server> <method>                                     duration sum, seconds
 *   e <name> <label="value",...>                            events other modules count()
 * Nothing here fails or delays a request: every error is caught and logged.
 *
 * Exports:
 *   observe(r)           js_set $mcpsec_metrics_observed (log phase); returns ''
 *   count(name, labels)  counts an event (name: mcpsec_<what>_total; labels: bounded values)
 *   render(r)            js_content of the loopback /metrics
 */

import rpc from 'rpc.js';
import util from 'util.js';
import servers from 'servers.js';

var SEP = '\t';
/* Reasons a label may carry ('|'-delimited: one string, not a table rebuilt per request). */
var REASONS = '|no_credentials|bad_credentials|bad_token|malformed_token|invalid_token|unknown_user|' +
    'wrong_scheme|expired|not_yet_valid|bad_signature|bad_aud|bad_iss|jwks_unavailable|scope_missing|' +
    'insufficient_scope|no_subject|auth_mode|auth_throttled|refusal_throttled|rate_limit|tool_rate|' +
    'session_cap|host_session_cap|counter_store_full|session_store_full|counter_unavailable|id_in_flight|' +
    'tool_denied|resource_denied|prompt_denied|ref_denied|resource_uri|no_grants|invalid_json|' +
    'duplicate_key|too_deep|batch|invalid_request|invalid_params|invalid_initialize|invalid_id|' +
    'id_required|method_unknown|session_required|session_unknown|session_expired|session_id|' +
    'stateless_unsupported|protocol_version|content_type|content_encoding|charset|not_acceptable|' +
    'empty_body|body_spilled|body_too_large|mcp_method_missing|mcp_method_mismatch|mcp_name_missing|' +
    'mcp_name_mismatch|list_unparsable|list_unexpected_response|list_malformed|list_unknown|' +
    'list_no_answer|list_content_type|upstream_unavailable|upstream_timeout|upstream_not_found|' +
    'policy_version|policy_limits|policy_sessions|server_unknown|internal_error|cors_origin|cors_preflight|' +
    'tool_drift|tool_unpinned|tool_pin_unverified|';
/* The reasons that are a limit (mcpsec_limit_refusals_total{limit}). */
var LIMITS = '|rate_limit|tool_rate|session_cap|host_session_cap|auth_throttled|refusal_throttled|';
var NAME_RE = /^mcpsec_[a-z][a-z0-9_]{0,60}_total$/;

function bucketBounds() {
    return [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
}

/* Pure: the label of a JSON-RPC method ('' when the request named none). */
function methodLabel(m) {
    if (m === '' || m === undefined || m === null) {
        return 'none';
    }
    if (m === 'stream/get' || m === 'session/delete' || rpc.methodSpec(m) !== null) {
        return m;
    }
    return 'other';
}

function reasonLabel(reason) {
    if (!reason) {
        return 'none';
    }
    return REASONS.indexOf('|' + reason + '|') >= 0 ? reason : 'other';
}

/* Pure: the tool's label: its name when a role of the server lists it, else 'other'. */
function toolLabel(serverPolicy, tool) {
    var roles = serverPolicy && serverPolicy.roles;
    if (typeof tool !== 'string' || tool === '' || roles === null || typeof roles !== 'object' ||
        /[\t\n"\\]/.test(tool)) {
        return 'other';
    }
    /* loops, not indexOf: the arrays of a js_preload_object have no Array.prototype methods */
    var names = Object.keys(roles);
    for (var i = 0; i < names.length; i++) {
        var tools = roles[names[i]] && roles[names[i]].tools;
        for (var j = 0; Array.isArray(tools) && j < tools.length; j++) {
            if (tools[j] === tool) {
                return tool;
            }
        }
    }
    return 'other';
}

/* Pure: [server, method, decision, reason, code, tool] of a request (v: its variables). */
function labels(policy, v) {
    var name = v.mcpsec_server || '';
    var known = policy !== null && util.hasOwn(policy.servers, name);
    var method = methodLabel(v.mcpsec_rpc_method);
    var code = /^[1-5][0-9][0-9]$/.test(v.status) ? v.status : 'other';
    var tool = method === 'tools/call' ? toolLabel(known ? policy.servers[name] : null, v.mcpsec_tool) : '';
    return [known ? name : 'other', method, v.mcpsec_decision === 'allow' ? 'allow' : 'deny',
            reasonLabel(v.mcpsec_reason), code, tool];
}

/* Pure: the index of the first bucket whose bound holds `seconds` (the last: +Inf). */
function bucketOf(seconds) {
    var bounds = bucketBounds();
    for (var i = 0; i < bounds.length; i++) {
        if (seconds <= bounds[i]) {
            return i;
        }
    }
    return bounds.length;
}

/* js_set $mcpsec_metrics_observed: evaluated once, when the audit line is written. */
function observe(r) {
    try {
        var v = r.variables;
        var l = labels(servers.policy(), v);
        var store = ngx.shared.mcpsec_metrics;
        var seconds = Number(v.request_time);
        store.incr('r' + SEP + l.join(SEP), 1, 0);
        if (seconds >= 0) {
            store.incr('b' + SEP + l[0] + SEP + l[1] + SEP + bucketOf(seconds), 1, 0);
            store.incr('s' + SEP + l[0] + SEP + l[1], seconds, 0);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec metrics: a request not counted (' + e.message + ')');
    }
    return '';
}

/* Counts one event `name` with `labels` (an object of bounded strings): for other
 * modules (e.g. mcpsec_tool_pin_mismatches_total). Never throws. */
function count(name, values) {
    try {
        if (!NAME_RE.test(name)) {
            throw new Error('metric name ' + JSON.stringify(name) + ' is not mcpsec_<what>_total');
        }
        var keys = Object.keys(values || {}).sort();
        var parts = [];
        for (var i = 0; i < keys.length; i++) {
            parts.push(keys[i] + '=' + JSON.stringify(String(values[keys[i]])));
        }
        var store = ngx.shared.mcpsec_metrics;
        if (store) {        /* absent: metrics are off (proxy_observability_enabled) */
            store.incr('e' + SEP + name + SEP + parts.join(','), 1, 0);
        }
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec metrics: an event not counted (' + e.message + ')');
    }
}

/* Pure: one sample line; `pairs` is [[label, value], ...]. */
function sample(name, pairs, value) {
    var text = pairs.map(function (p) {
        return p[0] + '=' + JSON.stringify(String(p[1]));
    }).join(',');
    return name + (text ? '{' + text + '}' : '') + ' ' + value;
}

function add(sums, key, value) {
    sums[key] = (sums[key] || 0) + value;
}

/* Pure: the counters of the r/e keys, summed per series: {requests, tools, auth, limits, events}. */
function counters(items) {
    var c = {requests: Object.create(null), tools: Object.create(null), auth: 0,
             limits: Object.create(null), events: Object.create(null)};
    for (var i = 0; i < items.length; i++) {
        var f = items[i][0].split(SEP);
        var n = items[i][1];
        if (f[0] === 'e' && f.length === 3) {
            add(c.events, f[1] + SEP + f[2], n);
        }
        if (f[0] !== 'r' || f.length !== 7) {
            continue;
        }
        add(c.requests, f.slice(1, 6).join(SEP), n);
        if (f[2] === 'tools/call') {
            add(c.tools, [f[1], f[6], f[3]].join(SEP), n);
        }
        if (f[5] === '401') {
            c.auth += n;
        }
        if (LIMITS.indexOf('|' + f[4] + '|') >= 0) {
            add(c.limits, f[1] + SEP + f[4], n);
        }
    }
    return c;
}

/* Pure: the exposition lines of a family of summed series. */
function family(out, name, type, help, sums, labelNames) {
    out.push('# HELP ' + name + ' ' + help, '# TYPE ' + name + ' ' + type);
    Object.keys(sums).sort().forEach(function (k) {
        var values = k.split(SEP);
        out.push(sample(name, labelNames.map(function (l, i) {
            return [l, values[i]];
        }), sums[k]));
    });
}

/* Pure: the events counted through count(): one family per name. */
function events(out, sums) {
    var seen = Object.create(null);
    Object.keys(sums).sort().forEach(function (k) {
        var f = k.split(SEP);
        if (!seen[f[0]]) {
            seen[f[0]] = true;
            out.push('# TYPE ' + f[0] + ' counter');
        }
        out.push(f[0] + (f[1] ? '{' + f[1] + '}' : '') + ' ' + sums[k]);
    });
}

/* Pure: the duration histogram of the b/s keys. */
function histogram(out, items) {
    var name = 'mcpsec_request_duration_seconds';
    var bounds = bucketBounds();
    var series = Object.create(null);
    for (var i = 0; i < items.length; i++) {
        var f = items[i][0].split(SEP);
        if ((f[0] !== 'b' || f.length !== 4) && (f[0] !== 's' || f.length !== 3)) {
            continue;
        }
        var k = f[1] + SEP + f[2];
        if (!series[k]) {
            series[k] = {buckets: bounds.map(function () { return 0; }).concat([0]), sum: 0};
        }
        if (f[0] === 's') {
            series[k].sum += items[i][1];
        } else if (Number(f[3]) <= bounds.length) {
            series[k].buckets[Number(f[3])] += items[i][1];
        }
    }
    out.push('# HELP ' + name + ' Time from the first byte read to the last byte sent, per server and method.',
             '# TYPE ' + name + ' histogram');
    Object.keys(series).sort().forEach(function (key) {
        var l = key.split(SEP);
        var s = series[key];
        var total = 0;
        for (var j = 0; j <= bounds.length; j++) {
            total += s.buckets[j];
            var le = j < bounds.length ? String(bounds[j]) : '+Inf';
            out.push(sample(name + '_bucket', [['server', l[0]], ['method', l[1]], ['le', le]], total));
        }
        out.push(sample(name + '_sum', [['server', l[0]], ['method', l[1]]], s.sum),
                 sample(name + '_count', [['server', l[0]], ['method', l[1]]], total));
    });
}

/* The live sessions of each server (host slots holding a session) and its cap. */
function sessionGauges(out, policy) {
    var store = ngx.shared.mcpsec_sessions;
    var live = [];
    var caps = [];
    Object.keys(policy.servers).sort().forEach(function (name) {
        var cap = Number(policy.servers[name].max_sessions_total) || 0;
        var n = 0;
        for (var j = 0; j < cap; j++) {
            var slot = store.get('t' + servers.scope(name) + ':' + j);
            n += typeof slot === 'string' && slot.indexOf('s:') === 0 ? 1 : 0;
        }
        live.push(sample('mcpsec_sessions_active', [['server', name]], n));
        caps.push(sample('mcpsec_sessions_limit', [['server', name]], cap));
    });
    out.push('# HELP mcpsec_sessions_active Sessions open at the MCP server (bound to a subject).',
             '# TYPE mcpsec_sessions_active gauge');
    Array.prototype.push.apply(out, live);
    out.push('# HELP mcpsec_sessions_limit The MCP server\'s session cap (max_sessions_total).',
             '# TYPE mcpsec_sessions_limit gauge');
    Array.prototype.push.apply(out, caps);
}

/* The audit file's last write (mtime), 0 when it cannot be read. */
function auditGauge(out, path) {
    var t = 0;
    try {
        t = require('fs').statSync(path).mtimeMs / 1000;
    } catch (e) {
        ngx.log(ngx.ERR, 'mcpsec metrics: audit log ' + path + ' not readable (' + e.message + ')');
    }
    out.push('# HELP mcpsec_audit_log_last_write_timestamp_seconds When the audit file was last written (mtime).',
             '# TYPE mcpsec_audit_log_last_write_timestamp_seconds gauge',
             sample('mcpsec_audit_log_last_write_timestamp_seconds', [], t));
}

/* [[server, instance], ...] of every backend instance the policy names. */
function instances(policy) {
    var list = [];
    Object.keys(policy.servers).sort().forEach(function (name) {
        var n = Number(policy.servers[name].instances) || 0;
        for (var i = 0; i < n; i++) {
            list.push([name, i]);
        }
    });
    return list;
}

function probe(r, inst) {
    return r.subrequest('/_mcpsec/up/' + inst[0] + '/' + inst[1], {method: 'GET'})
        .then(function (reply) {
            return reply.status === 200 ? 1 : 0;
        }, function () {
            return 0;
        });
}

function counterFamilies(out, policy, items) {
    var c = counters(items);
    family(out, 'mcpsec_requests_total', 'counter', 'Requests on the MCP endpoints by server, JSON-RPC ' +
           'method, decision, reason and HTTP status.', c.requests, ['server', 'method', 'decision', 'reason', 'code']);
    family(out, 'mcpsec_tool_calls_total', 'counter', 'tools/call requests by server, tool (policy names, ' +
           'else other) and decision.', c.tools, ['server', 'tool', 'decision']);
    var auth = Object.create(null);
    auth[String(policy.auth_mode)] = c.auth;
    family(out, 'mcpsec_auth_failures_total', 'counter', 'Requests refused for their credentials (401), ' +
           'by authentication mode.', auth, ['mode']);
    /* every (server, limit) from the start: a series that appears at its first count shows no increase() */
    Object.keys(policy.servers).forEach(function (name) {
        LIMITS.split('|').filter(Boolean).forEach(function (limit) {
            add(c.limits, name + SEP + limit, 0);
        });
    });
    family(out, 'mcpsec_limit_refusals_total', 'counter', 'Requests refused by a limit, by server and limit.',
           c.limits, ['server', 'limit']);
    events(out, c.events);
    histogram(out, items);
}

/* js_content of the loopback /metrics ($mcpsec_metrics_audit_log: the audit file). */
function render(r) {
    var out = [];
    var policy = servers.policy();
    var list = [];
    try {
        if (policy === null) {
            throw new Error('no policy of this version');
        }
        counterFamilies(out, policy, ngx.shared.mcpsec_metrics.items());
        sessionGauges(out, policy);
        auditGauge(out, r.variables.mcpsec_metrics_audit_log);
        list = instances(policy);
    } catch (e) {
        r.error('mcpsec metrics: ' + e.message);
        r.return(500, 'mcpsec metrics unavailable: see the error log\n');
        return;
    }
    Promise.all(list.map(function (inst) {
        return probe(r, inst);
    })).then(function (up) {
        out.push('# HELP mcpsec_backend_up Whether a backend instance answers its health check.',
                 '# TYPE mcpsec_backend_up gauge');
        for (var i = 0; i < list.length; i++) {
            out.push(sample('mcpsec_backend_up', [['server', list[i][0]], ['backend', list[i][1]]], up[i]));
        }
        r.headersOut['Content-Type'] = 'text/plain; version=0.0.4; charset=utf-8';
        r.return(200, out.join('\n') + '\n');
    }).catch(function (e) {
        r.error('mcpsec metrics: ' + e.message);
    });
}

export default {
    observe: observe,
    count: count,
    render: render,
    labels: labels,
    bucketOf: bucketOf,
    counters: counters
};
