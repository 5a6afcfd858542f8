/*
 * /health of a host serving several MCP servers (site.conf): 200 only when every
 * server has a live supergateway instance, and the body says which is up:
 *     {"status":"ok","servers":{"default":"up","time":"up"}}
 *     {"status":"unavailable","servers":{"default":"up","time":"down"}}   (503)
 *
 * $mcpsec_health_servers names the servers (set by the /health location); each is
 * asked through the internal location /_mcpsec/health/<name>, which proxies a bare
 * GET (no client header, no body, no framing header) to that server's upstream.
 * A host with one server has no njs in /health (a plain proxy_pass).
 *
 * Exports:
 *   handle(r)          js_content of location = /health
 */

var NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;

/* Pure: the server names the location lists, or null when one is malformed. */
function names(text) {
    var list = (typeof text === 'string' ? text : '').split(' ').filter(function (n) {
        return n.length > 0;
    });
    for (var i = 0; i < list.length; i++) {
        if (!NAME_RE.test(list[i])) {
            return null;
        }
    }
    return list;
}

/* Pure: the status and the JSON body; no server at all is not healthy (fail closed). */
function summary(list, up) {
    var servers = {};
    var ok = list.length > 0;
    for (var i = 0; i < list.length; i++) {
        servers[list[i]] = up[i] ? 'up' : 'down';
        ok = ok && up[i] === true;
    }
    return [ok ? 200 : 503, JSON.stringify({status: ok ? 'ok' : 'unavailable', servers: servers}) + '\n'];
}

function ask(r, name) {
    return r.subrequest('/_mcpsec/health/' + name, {method: 'GET'})
        .then(function (res) {
            return res.status === 200;
        }, function () {
            return false;
        });
}

function reply(r, answer) {
    r.headersOut['Content-Type'] = 'application/json';
    if (answer[0] !== 200) {
        r.headersOut['Retry-After'] = '5';
    }
    r.return(answer[0], answer[1]);
}

function handle(r) {
    var list = names(r.variables.mcpsec_health_servers);
    if (list === null || list.length === 0) {
        r.error('mcpsec health: $mcpsec_health_servers names no server or a malformed one');
        reply(r, summary([], []));
        return;
    }
    Promise.all(list.map(function (name) {
        return ask(r, name);
    })).then(function (up) {
        reply(r, summary(list, up));
    }, function (e) {
        r.error('mcpsec health: ' + e);
        reply(r, summary(list, list.map(function () {
            return false;
        })));
    });
}

export default {
    handle: handle
};
