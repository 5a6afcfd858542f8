# shellcheck shell=bash
# Sourced by bench/inner.sh and bench/compare_inner.sh inside their containers: the
# trivial upstream, the plain-proxy baseline (127.0.0.1:8090), the njs floor
# (127.0.0.1:8091) and the wrk request script (/tmp/call.lua).

# Trivial upstream: nginx answering every MCP POST with a fixed JSON-RPC result
# and a fixed session id (the njs header filter binds it on initialize).
cat >/etc/nginx/conf.d/bench-upstream.conf <<'CONF'
server {
    listen 127.0.0.1:8000;
    access_log off;
    location / {
        add_header Mcp-Session-Id bench-session-0001 always;
        default_type application/json;
        return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';
    }
}
# Baseline: the same proxy settings without njs.
server {
    listen 127.0.0.1:8090;
    access_log off;
    location = /mcp {
        proxy_pass http://mcpsec_backend;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
    }
}
# The njs floor: the baseline plus a js_content handler that checks nothing and
# only redirects to the proxy location, the shape every njs enforcement point
# has (a js_content handler, then internalRedirect). No njs enforcement can be faster than this on this host.
js_import bench_floor from /opt/mcpsec-bench/floor.js;
server {
    listen 127.0.0.1:8091;
    access_log off;
    location = /mcp {
        js_content bench_floor.handle;
    }
    location @floor_upstream {
        proxy_pass http://mcpsec_backend;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
    }
}
CONF
mkdir -p /opt/mcpsec-bench
cat >/opt/mcpsec-bench/floor.js <<'JS'
function handle(r) {
    r.internalRedirect('@floor_upstream');
}
export default {handle: handle};
JS
cat >/tmp/call.lua <<'LUA'
wrk.method = "POST"
-- A new JSON-RPC id for every request: the gateway refuses a second request of a session whose id
-- is still in flight (njs/inflight.js), so one fixed id measured refusals, not calls.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, '{"jsonrpc":"2.0","id":' .. (tid * 100000000 + n) ..
    ',"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"}}}')
end
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
local sid = os.getenv("BENCH_SID")
if sid and sid ~= "" then wrk.headers["Mcp-Session-Id"] = sid end
LUA
