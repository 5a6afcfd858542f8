// Unit tests for roles/proxy/files/njs/route.js (routed session ids), run with the njs CLI:
//   njs -p roles/proxy/files/njs tests/njs/route_unit.js
// One line per case: "ok - route: <case>" or "not ok - ..."; the last line is "ROUTE <n> passed, <m> failed".
import route from 'route.js';

var failures = 0;
var total = 0;

function check(name, pass, detail) {
    total++;
    if (pass) {
        console.log('ok - route: ' + name);
    } else {
        failures++;
        console.log('not ok - route: ' + name + (detail !== undefined ? ': ' + detail : ''));
    }
}

var KEY = 'k-0123456789abcdef0123456789abcdef0123456789abcdef';
var UUID = '3f2b8c1e-9a4d-4e7f-8b21-6c5d4e3f2a10';

var sid = route.issue(UUID, 1, 'alice', 'gw1', 2, KEY);
check('issued id is host.instance.backend.mac', /^gw1\.1\.3f2b8c1e-9a4d-4e7f-8b21-6c5d4e3f2a10\.[A-Za-z0-9_-]{32}$/.test(sid), sid);
check('issued id fits the session id limit (128 visible ASCII)', sid.length <= 128 && /^[\x21-\x7e]+$/.test(sid));
var v = route.verify(sid, 'alice', 'gw1', 2, KEY);
check('own id verifies to its instance and backend id', v !== null && v.instance === 1 && v.backend === UUID,
      JSON.stringify(v));
check('same input, same id (no state: any worker, any reload)', route.issue(UUID, 1, 'alice', 'gw1', 2, KEY) === sid);
check('another subject is refused', route.verify(sid, 'bob', 'gw1', 2, KEY) === null);
check('another host is refused', route.verify(sid, 'alice', 'gw2', 2, KEY) === null);
check('another key is refused', route.verify(sid, 'alice', 'gw1', 2, KEY + 'x') === null);
check('an instance beyond the count is refused', route.verify(sid, 'alice', 'gw1', 1, KEY) === null);
var p = sid.split('.');
check('instance swapped in the id is refused', route.verify([p[0], '0', p[2], p[3]].join('.'), 'alice', 'gw1', 2, KEY) === null);
check('backend id swapped in the id is refused',
      route.verify([p[0], p[1], UUID.replace('3f', '4f'), p[3]].join('.'), 'alice', 'gw1', 2, KEY) === null);
var flipped = p[3].charAt(0) === 'A' ? 'B' + p[3].substring(1) : 'A' + p[3].substring(1);
check('one MAC character changed is refused', route.verify([p[0], p[1], p[2], flipped].join('.'), 'alice', 'gw1', 2, KEY) === null);
check('a bare backend id is refused', route.verify(UUID, 'alice', 'gw1', 2, KEY) === null);
check('an empty subject is refused', route.verify(sid, '', 'gw1', 2, KEY) === null);
check('a leading zero instance is refused', route.parse('gw1.01.' + UUID + '.' + p[3]) === null);
check('five parts are refused', route.parse(sid + '.x') === null);
check('a short MAC is refused', route.parse([p[0], p[1], p[2], p[3].substring(1)].join('.')) === null);
check('an over-long id is refused', route.parse('g'.repeat(200)) === null);
check('a backend id with a dot cannot be issued', route.issue('a.b', 0, 'alice', 'gw1', 2, KEY) === null);
check('an instance outside the count cannot be issued', route.issue(UUID, 2, 'alice', 'gw1', 2, KEY) === null);
check('an unknown instance (-1) cannot be issued', route.issue(UUID, -1, 'alice', 'gw1', 2, KEY) === null);
check('instanceOf reads the port', route.instanceOf('127.0.0.1:8001', 8000) === 1);
check('instanceOf takes the last address after a retry', route.instanceOf('127.0.0.1:8000, 127.0.0.1:8001', 8000) === 1);
check('instanceOf of nothing is -1', route.instanceOf('', 8000) === -1 && route.instanceOf(undefined, 8000) === -1);
check('sameString', route.sameString('abc', 'abc') && !route.sameString('abc', 'abd') && !route.sameString('abc', 'ab'));
var C = {host: 'gw1', instances: 2, address: '127.0.0.1', port: 8000, path: '/mcp'};
var t = route.backendIn(sid, C);
check('reclaim probes the session\'s own instance with the backend id',
      t !== null && t.url === 'http://127.0.0.1:8001/mcp' && t.sid === UUID, JSON.stringify(t));
var t0 = route.backendIn(route.issue(UUID, 0, 'alice', 'gw1', 2, KEY), C);
check('instance 0 is probed on the base port', t0 !== null && t0.url === 'http://127.0.0.1:8000/mcp', JSON.stringify(t0));
check('an id of another host has no backend here', route.backendIn(sid, {host: 'gw2', instances: 2, address: '127.0.0.1',
                                                                         port: 8000, path: '/mcp'}) === null);
check('an id beyond the instance count (scaled down) has no backend here',
      route.backendIn(sid, {host: 'gw1', instances: 1, address: '127.0.0.1', port: 8000, path: '/mcp'}) === null);
check('a bare backend id has no backend here', route.backendIn(UUID, C) === null);

// Several MCP servers: the MAC covers the server's name (but the default server's ids keep their form).
check('default server: the id is the one of earlier releases',
      route.issue(UUID, 1, 'alice', 'gw1', 2, KEY, 'default') === sid);
var sidTime = route.issue(UUID, 1, 'alice', 'gw1', 2, KEY, 'time');
check('another server: another id for the same backend id and subject', sidTime !== null && sidTime !== sid);
check('an id of server time verifies at time', route.verify(sidTime, 'alice', 'gw1', 2, KEY, 'time') !== null);
check('an id of server time is refused at default and at another server',
      route.verify(sidTime, 'alice', 'gw1', 2, KEY, 'default') === null &&
      route.verify(sidTime, 'alice', 'gw1', 2, KEY, 'time2') === null && route.verify(sidTime, 'alice', 'gw1', 2, KEY) === null);
check('an id of default is refused at server time', route.verify(sid, 'alice', 'gw1', 2, KEY, 'time') === null);
var RC = {host: 'gw1', address: '127.0.0.1', path: '/mcp',
          servers: {'default': {upstream: 'mcpsec_backend', instances: 2, port: 8000},
                    time: {upstream: 'mcpsec_backend_time', instances: 1, port: 8008}}};
var ct = route.confIn(RC, 'time');
check('confIn: a server\'s own upstream, instances and ports',
      ct !== null && ct.upstream === 'mcpsec_backend_time' && ct.instances === 1 && ct.port === 8008, JSON.stringify(ct));
check('confIn: a server route.json does not name has no route', route.confIn(RC, 'nope') === null &&
      route.confIn(RC, '') === null && route.confIn({host: 'gw1'}, 'default') === null);
var tt = route.backendIn(route.issue(UUID, 0, 'alice', 'gw1', 1, KEY, 'time'), ct);
check('reclaim probes a server\'s session on that server\'s port', tt !== null && tt.url === 'http://127.0.0.1:8008/mcp',
      JSON.stringify(tt));

console.log('ROUTE ' + (total - failures) + ' passed, ' + failures + ' failed');
if (failures > 0) {
    throw new Error(failures + ' route case(s) failed');
}
