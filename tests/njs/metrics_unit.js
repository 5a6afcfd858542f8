// Unit tests for roles/proxy/files/njs/metrics.js (issue 21), run with the njs CLI:
//   njs -p roles/proxy/files/njs tests/njs/metrics_unit.js
// One line per case: "ok - ..." / "not ok - ..."; the last line is "METRICS <n> passed, <m> failed".
import metrics from 'metrics.js';

var passed = 0;
var failed = 0;

function eq(name, got, want) {
    var g = JSON.stringify(got);
    var w = JSON.stringify(want);
    if (g === w) {
        passed++;
        console.log('ok - ' + name);
    } else {
        failed++;
        console.log('not ok - ' + name + ': got ' + g + ', want ' + w);
    }
}

var POLICY = {version: 3, auth_mode: 'bearer', servers: {
    'default': {roles: {admin: {tools_all: true, tools: []}, reader: {tools_all: false, tools: ['echo', 'get-sum']}}},
    'time': {roles: {clock: {tools_all: false, tools: ['now']}}}
}};

function vars(extra) {
    return Object.assign({mcpsec_server: 'default', mcpsec_rpc_method: 'tools/call', mcpsec_decision: 'allow',
                          mcpsec_reason: '', status: '200', mcpsec_tool: 'echo'}, extra);
}

eq('labels: an allowed tools/call of a tool a role names',
   metrics.labels(POLICY, vars({})), ['default', 'tools/call', 'allow', 'none', '200', 'echo']);
eq('labels: a tool no role of this server names is "other" (another server\'s tool too)',
   metrics.labels(POLICY, vars({mcpsec_tool: 'now', mcpsec_decision: 'deny', mcpsec_reason: 'tool_denied',
                                status: '403'})), ['default', 'tools/call', 'deny', 'tool_denied', '403', 'other']);
eq('labels: a server the policy does not name, an unknown method, an unknown reason, no status',
   metrics.labels(POLICY, vars({mcpsec_server: 'evil', mcpsec_rpc_method: 'x/y', mcpsec_reason: 'made_up',
                                status: '0', mcpsec_decision: 'maybe'})), ['other', 'other', 'deny', 'other', 'other', '']);
eq('labels: GET and DELETE keep their names, no method is "none"',
   [metrics.labels(POLICY, vars({mcpsec_rpc_method: 'stream/get'}))[1],
    metrics.labels(POLICY, vars({mcpsec_rpc_method: 'session/delete'}))[1],
    metrics.labels(POLICY, vars({mcpsec_rpc_method: ''}))[1]], ['stream/get', 'session/delete', 'none']);
eq('labels: a tool name with a quote or a newline is "other"',
   [metrics.labels(POLICY, vars({mcpsec_tool: 'ec"ho'}))[5], metrics.labels(POLICY, vars({mcpsec_tool: 'echo\n'}))[5]],
   ['other', 'other']);
eq('labels: no policy: every server is "other"', metrics.labels(null, vars({}))[0], 'other');
eq('bucketOf: bounds are inclusive, above the last is +Inf (11)',
   [metrics.bucketOf(0), metrics.bucketOf(0.005), metrics.bucketOf(0.0051), metrics.bucketOf(10), metrics.bucketOf(10.5)],
   [0, 0, 1, 10, 11]);

var T = '\t';
var c = metrics.counters([
    ['r' + T + 'default' + T + 'tools/call' + T + 'allow' + T + 'none' + T + '200' + T + 'echo', 3],
    ['r' + T + 'default' + T + 'tools/call' + T + 'deny' + T + 'tool_rate' + T + '429' + T + 'echo', 2],
    ['r' + T + 'default' + T + 'initialize' + T + 'deny' + T + 'no_credentials' + T + '401' + T + '', 5],
    ['e' + T + 'mcpsec_tool_pin_mismatches_total' + T + 'server="default"', 1],
    ['b' + T + 'default' + T + 'tools/call' + T + '3', 5]
]);
eq('counters: requests summed over tools, tool calls over reasons and codes',
   [c.requests['default\ttools/call\tallow\tnone\t200'], c.tools['default\techo\tallow'],
    c.tools['default\techo\tdeny']], [3, 3, 2]);
eq('counters: 401s are authentication failures, limit reasons are refusals by limit, events kept',
   [c.auth, c.limits['default\ttool_rate'], c.events['mcpsec_tool_pin_mismatches_total\tserver="default"']], [5, 2, 1]);

var store = {};
var logged = [];
globalThis.ngx = {ERR: 4, log: function (level, msg) { logged.push(msg); },
                  shared: {mcpsec_metrics: {incr: function (k, d, init) {
                      store[k] = (store[k] === undefined ? init : store[k]) + d;
                      return store[k];
                  }}}};
metrics.count('mcpsec_tool_pin_mismatches_total', {tool: 'echo', server: 'default'});
metrics.count('mcpsec_tool_pin_mismatches_total', {server: 'default', tool: 'echo'});
eq('count: one key per label set, labels sorted',
   store, {'e\tmcpsec_tool_pin_mismatches_total\tserver="default",tool="echo"': 2});
metrics.count('not a name', {});
eq('count: a malformed name is logged, never thrown, never stored', [Object.keys(store).length, logged.length], [1, 1]);

console.log('METRICS ' + passed + ' passed, ' + failed + ' failed');
