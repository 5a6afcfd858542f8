#!/usr/bin/env bash
# Runs inside the container of bench/compare.sh.
# Usage: compare_inner.sh <src-dir> <baseline-dir> [<tree-dir>, default src-dir].
# shellcheck source=bench/compare_setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/compare_setup.sh"

once() {   # url auth sid -> "p50us p99us req/s non2xx"
  local out
  out=$(BENCH_AUTH="$2" BENCH_SID="$3" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s /tmp/call.lua "$1" 2>&1)
  printf '%s %s %s %s\n' "$(us "$(awk '$1=="50%"{print $2}' <<<"$out")")" "$(us "$(awk '$1=="99%"{print $2}' <<<"$out")")" \
    "$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")" "$(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)"
}

start_tree() {   # tree-dir: its configuration (render_tree, compare_setup.sh) and start nginx
  nginx -s stop >/dev/null 2>&1; sleep 0.5
  render_tree "$1"
  nginx -t -q || die "nginx -t ($1)"
  nginx; sleep 0.3
  local hdr=/root/mcpsec-bench-auth.hdr
  AUTH="Bearer $(python3 -c 'import json;print(json.load(open("/opt/mcpsec-test/secrets-bearer.json"))["tokens"]["alice"])')"
  (umask 077 && printf 'Authorization: %s\n' "$AUTH" >"$hdr")
  # the session id the gateway hands out (routed, njs/route.js); a tree from before routing
  # passes the backend's own (bench-session-0001)
  SID=$(curl -s -D - -o /dev/null -X POST http://127.0.0.1:8080/mcp -H @"$hdr" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    --data '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
    | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
  SID=${SID:-bench-session-0001}
  rm -f "$hdr"
}

declare -A rows
for round in $(seq 1 "$ROUNDS"); do
  for tree in base src; do
    dir=$BASE; [ "$tree" = src ] && dir=$TREE
    start_tree "$dir"
    rows[$tree-floor]+="$(once http://127.0.0.1:8091/mcp "" "")"$'\n'
    rows[$tree-gw]+="$(once http://127.0.0.1:8080/mcp "$AUTH" "$SID")"$'\n'
  done
  printf 'round %s of %s done\n' "$round" "$ROUNDS" >&2
done
nginx -s stop >/dev/null 2>&1

row() {   # label key
  local data=${rows[$2]}
  printf '| %s | %.2f ms | %.2f ms | %s | %s | %s |\n' "$1" \
    "$(awk 'NF{print $1}' <<<"$data" | median | awk '{print $1/1000}')" \
    "$(awk 'NF{print $2}' <<<"$data" | median | awk '{print $1/1000}')" \
    "$(awk 'NF{print $3}' <<<"$data" | median)" "$(awk 'NF{s+=$4} END {print s+0}' <<<"$data")" \
    "$(awk 'NF{printf "%s%s", (n++?" ":""), $3}' <<<"$data")"
}
printf '\n%s, %s CPUs, wrk %s connections / %s threads, %s per run, %s alternations (median)\n\n' \
  "$(nginx -v 2>&1)" "$(nproc)" "$CONNS" "$THREADS" "$DURATION" "$ROUNDS"
echo '| tree, path (bearer, tools/call echo, one session) | p50 | p99 | req/s | non-2xx | req/s each round |'
echo '| --- | --- | --- | --- | --- | --- |'
row "baseline $BASELINE: njs floor" base-floor
row "baseline $BASELINE: gateway" base-gw
row "${LABEL:-this tree}: njs floor" src-floor
row "${LABEL:-this tree}: gateway" src-gw
