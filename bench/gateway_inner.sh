#!/usr/bin/env bash
# Runs inside a converged bench host (bench/gateway.sh). Usage: gateway_inner.sh <label> <Authorization value>
# tools/call echo on one MCP session: directly to supergateway, then through nginx (TLS, njs).
# On this shared 2-vCPU VM a run's p50 drifts by more than the difference being measured, so
# direct and proxied runs alternate back to back for ROUNDS rounds; each row reports the median
# over the rounds, and "added" is the median of the per-round differences (proxied - direct).
set -euo pipefail
LABEL=$1
AUTH=$2
DURATION=${DURATION:-5s}
CONNS=${CONNS:-8}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
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

us() {   # wrk latency (812.00us, 1.43ms, 1.00s) -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'
}

run() {   # url auth sid conns threads -> "p50_us p99_us req/s non2xx"
  local out
  out=$(BENCH_AUTH="$2" BENCH_SID="$3" wrk -t"$5" -c"$4" -d"$DURATION" --latency -s /tmp/call.lua "$1" 2>&1)
  printf '%s %s %s %s\n' "$(us "$(awk '$1=="50%"{print $2}' <<<"$out")")" "$(us "$(awk '$1=="99%"{print $2}' <<<"$out")")" \
    "$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")" "$(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)"
}

median() { sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
signed_ms() { awk -v u="$1" 'BEGIN { printf "%+.2f ms", u / 1000 }'; }

end_session() {   # url auth sid: DELETE, so the session's stdio child exits
  curl -sk -o /dev/null -X DELETE "$1" ${2:+-H "Authorization: $2"} -H "Mcp-Session-Id: $3" \
    -H 'MCP-Protocol-Version: 2025-06-18' || true
}

# A clean backend: sessions left by earlier runs keep children (and their timers) alive.
systemctl restart mcpsec-supergateway
for _i in $(seq 1 50); do
  curl -sf -o /dev/null http://127.0.0.1:8000/healthz && break
  sleep 0.2
done
direct=$(session http://127.0.0.1:8000/mcp "")
proxied=$(session https://127.0.0.1/mcp "$AUTH")
if [ -z "$direct" ] || [ -z "$proxied" ]; then
  echo "no session (direct '$direct', proxied '$proxied')" >&2
  exit 1
fi
trap 'end_session http://127.0.0.1:8000/mcp "" "$direct"; end_session https://127.0.0.1/mcp "$AUTH" "$proxied"' EXIT

# One connection first: no queueing at the single-threaded backend, so the p50 difference is
# what the enforcement path adds to one call.
for shape in "1 1" "$CONNS $THREADS"; do
  read -r c t <<<"$shape"
  d_rows=() p_rows=() diffs=()
  for _r in $(seq 1 "$ROUNDS"); do
    d=$(run http://127.0.0.1:8000/mcp "" "$direct" "$c" "$t")
    p=$(run https://127.0.0.1/mcp "$AUTH" "$proxied" "$c" "$t")
    d_rows+=("$d") p_rows+=("$p")
    diffs+=("$(( ${p%% *} - ${d%% *} ))")
  done
  for which in direct proxied; do
    if [ "$which" = direct ]; then rows=("${d_rows[@]}"); name="$LABEL: direct to supergateway (http), $c conn"
    else rows=("${p_rows[@]}"); name="$LABEL: through nginx + njs (https), $c conn"; fi
    p50=$(printf '%s\n' "${rows[@]}" | awk '{print $1}' | median)
    p99=$(printf '%s\n' "${rows[@]}" | awk '{print $2}' | median)
    rps=$(printf '%s\n' "${rows[@]}" | awk '{print $3}' | median)
    non=$(printf '%s\n' "${rows[@]}" | awk '{s+=$4} END {print s+0}')
    added=""
    if [ "$which" = proxied ]; then
      added="$(signed_ms "$(printf '%s\n' "${diffs[@]}" | median)") (rounds: $(printf '%s\n' "${diffs[@]}" | sort -n | awk '{printf "%s%+.2f", (NR>1?" ":""), $1/1000}'))"
    fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$(ms "$p50")" "$(ms "$p99")" "$rps" "$non" "$added"
  done
done
