// mcpsec: supergateway 4.0.0 has no bind-address flag and listens on every interface
// (express app.listen(port)). Preloaded with `node --require` by the unit (never through
// NODE_OPTIONS, so the MCP server children it spawns do not inherit it): a listen call that
// names a port but no host listens on loopback only. Whatever the firewall does, the
// backend is not on the network.
'use strict';
const net = require('net');
const HOST = '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function () {
  const args = Array.prototype.slice.call(arguments);
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^[0-9]+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') {
      args.splice(1, 0, HOST);
    }
  } else if (args[0] !== null && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host && !args[0].path) {
    args[0] = Object.assign({}, args[0], { host: HOST });
  }
  return listen.apply(this, args);
};
