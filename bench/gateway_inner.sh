#!/usr/bin/env bash
# Runs inside a converged bench host (bench/gateway.sh). Usage: gateway_inner.sh <label> <Authorization value>
# tools/call echo on one MCP session: directly to supergateway, then through nginx (TLS, njs).
set -euo pipefail
LABEL=$1
AUTH=$2
DURATION=${DURATION:-10s}
CONNS=${CONNS:-8}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

cat >/tmp/call.lua <<'LUA'
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
wrk.headers["Mcp-Session-Id"] = os.getenv("BENCH_SID")
LUA

session() {   # url auth -> session id (initialize + initialized)
  local hdrs sid
  hdrs=$(curl -sk -D - -o /dev/null -X POST "$1" ${2:+-H "Authorization: $2"} \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    --data '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}')
  sid=$(awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' <<<"$hdrs" | tr -d '\r')
  curl -sk -o /dev/null -X POST "$1" ${2:+-H "Authorization: $2"} -H "Mcp-Session-Id: $sid" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' --data '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  printf '%s' "$sid"
}

bench() {   # name url auth sid
  local out p50 p99 rps non2xx
  out=$(BENCH_AUTH="$3" BENCH_SID="$4" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s /tmp/call.lua "$2" 2>&1)
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$p50" "$p99" "$rps" "${non2xx:-0}"
}

direct=$(session http://127.0.0.1:8000/mcp "")
proxied=$(session https://127.0.0.1/mcp "$AUTH")
if [ -z "$direct" ] || [ -z "$proxied" ]; then
  echo "no session (direct '$direct', proxied '$proxied')" >&2
  exit 1
fi
bench "$LABEL: direct to supergateway (http, loopback)" http://127.0.0.1:8000/mcp "" "$direct"
bench "$LABEL: through nginx + njs (https)" https://127.0.0.1/mcp "$AUTH" "$proxied"
# One connection: no queueing at the single-threaded backend, so the p50
# difference is what the enforcement path adds to one call.
THREADS=1 CONNS=1 bench "$LABEL: direct, 1 connection" http://127.0.0.1:8000/mcp "" "$direct"
THREADS=1 CONNS=1 bench "$LABEL: through nginx + njs, 1 connection" https://127.0.0.1/mcp "$AUTH" "$proxied"
