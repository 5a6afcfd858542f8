#!/usr/bin/env bash
# Runs inside a converged bench host (bench/gateway.sh). Usage: BENCH_AUTH=<Authorization value> gateway_inner.sh <label>
# The credential stays in the environment and a 0600 header file: never on a command line.
# tools/call echo on one MCP session: directly to supergateway, then through nginx (TLS, njs).
# Two more targets split the cost, both with this host's nginx and TLS settings and added for
# the run only: a plain proxy_pass with no njs (127.0.0.1:8444), and the njs floor, a
# one-function module whose js_content handler only redirects to the proxy location
# (127.0.0.1:8445): the shape every njs enforcement point has, so no njs check can cost less.
# On this shared 2-vCPU VM a run's p50 drifts by more than the difference being measured, so
# the four runs alternate back to back for ROUNDS rounds; each row reports the median over
# the rounds, and each difference is the median of the per-round differences.
# us(), median(), session() and end_session() come from bench/wrk_lib.sh, which gateway.sh
# sends ahead of this script.
set -euo pipefail
LABEL=$1
AUTH=${BENCH_AUTH:?BENCH_AUTH must hold the Authorization header value}
umask 077
hdr=/root/mcpsec-bench-auth.hdr   # curl -H @file: the header never appears in argv
printf 'Authorization: %s\n' "$AUTH" >"$hdr"
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

run() {   # url auth sid conns threads -> "p50_us p99_us req/s non2xx" (auth reaches wrk by env)
  local out
  out=$(BENCH_AUTH="$2" BENCH_SID="$3" wrk -t"$5" -c"$4" -d"$DURATION" --latency -s /tmp/call.lua "$1" 2>&1)
  printf '%s %s %s %s\n' "$(us "$(awk '$1=="50%"{print $2}' <<<"$out")")" "$(us "$(awk '$1=="99%"{print $2}' <<<"$out")")" \
    "$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")" "$(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)"
}

ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
signed_ms() { awk -v u="$1" 'BEGIN { printf "%+.2f ms", u / 1000 }'; }

spread() {   # differences (us) -> "+0.12 ms (rounds: -0.01 +0.10 ...)"
  printf '%s (rounds: %s)' "$(signed_ms "$(printf '%s\n' "$@" | median)")" \
    "$(printf '%s\n' "$@" | sort -n | awk '{printf "%s%+.2f", (NR>1?" ":""), $1/1000}')"
}

# The plain TLS proxy and the njs floor: this host's certificate and TLS profile, no audit log.
plain_conf=/etc/nginx/conf.d/zz-mcpsec-bench-plain.conf
floor_js=/etc/nginx/zz-mcpsec-bench-floor.js
printf '%s\n' 'function handle(r) {' "    r.internalRedirect('@bench_floor_upstream');" '}' \
  'export default {handle: handle};' >"$floor_js"
tls=$(grep -E '^\s*(ssl_certificate|ssl_certificate_key|include /etc/mcpsec/tls/)' /etc/nginx/sites-enabled/mcpsec.conf)
proxy='proxy_pass http://mcpsec_backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off;'
cat >"$plain_conf" <<CONF
server {
    listen 127.0.0.1:8444 ssl;
$tls
    access_log off;
    location = /mcp { $proxy }
}
server {
    listen 127.0.0.1:8445 ssl;
$tls
    access_log off;
    js_import bench_floor from $floor_js;
    location = /mcp { js_content bench_floor.handle; }
    location @bench_floor_upstream { $proxy }
}
CONF
nginx -t -q && systemctl reload nginx
sleep 1

# A clean gateway: sessions left by earlier runs keep children (and their timers) alive in
# supergateway and their bindings in nginx's shared memory (a restart, not a reload, clears it).
systemctl restart 'mcpsec-supergateway@*.service' nginx
for _i in $(seq 1 50); do
  curl -sf -o /dev/null http://127.0.0.1:8000/healthz && break
  sleep 0.2
done
# One session for every target, opened through the gateway (which binds it to the subject):
# each supergateway session has its own stdio child, and two children answer the same call
# up to 0.2 ms apart at one connection (measured), which separate sessions would book as a
# difference between the targets.
sid=$(session https://127.0.0.1/mcp "$hdr")
if [ -z "$sid" ]; then
  echo "no session" >&2
  exit 1
fi
trap 'end_session https://127.0.0.1/mcp "$hdr" "$sid"
      rm -f "$plain_conf" "$floor_js" "$hdr"; systemctl reload nginx' EXIT

# One connection first: no queueing at the single-threaded backend, so the p50 difference is
# what the enforcement path adds to one call.
for shape in "1 1" "$CONNS $THREADS"; do
  read -r c t <<<"$shape"
  d_rows=() t_rows=() f_rows=() p_rows=() added=() hop=() floor=() checks=()
  for _r in $(seq 1 "$ROUNDS"); do
    d=$(run http://127.0.0.1:8000/mcp "" "$sid" "$c" "$t")
    x=$(run https://127.0.0.1:8444/mcp "" "$sid" "$c" "$t")
    f=$(run https://127.0.0.1:8445/mcp "" "$sid" "$c" "$t")
    p=$(run https://127.0.0.1/mcp "$AUTH" "$sid" "$c" "$t")
    d_rows+=("$d") t_rows+=("$x") f_rows+=("$f") p_rows+=("$p")
    added+=("$(( ${p%% *} - ${d%% *} ))") hop+=("$(( ${x%% *} - ${d%% *} ))")
    floor+=("$(( ${f%% *} - ${x%% *} ))") checks+=("$(( ${p%% *} - ${f%% *} ))")
  done
  row() {   # name added-label diffs... ; rows in $rows
    local name=$1 label=$2 p50 p99 rps non extra=""
    shift 2
    p50=$(printf '%s\n' "${rows[@]}" | awk '{print $1}' | median)
    p99=$(printf '%s\n' "${rows[@]}" | awk '{print $2}' | median)
    rps=$(printf '%s\n' "${rows[@]}" | awk '{print $3}' | median)
    non=$(printf '%s\n' "${rows[@]}" | awk '{s+=$4} END {print s+0}')
    if [ "$#" -gt 0 ]; then
      extra="$label $(spread "$@")"
    fi
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$(ms "$p50")" "$(ms "$p99")" "$rps" "$non" "$extra"
  }
  rows=("${d_rows[@]}"); row "$LABEL: direct to supergateway (http), $c conn" ""
  rows=("${t_rows[@]}"); row "$LABEL: plain TLS proxy, no njs (https), $c conn" "nginx + TLS hop:" "${hop[@]}"
  rows=("${f_rows[@]}"); row "$LABEL: njs floor, handler that only redirects (https), $c conn" "vs plain:" "${floor[@]}"
  rows=("${p_rows[@]}"); row "$LABEL: through nginx + njs enforcement (https), $c conn" "vs direct:" "${added[@]}"
  printf '| %s | | | | | %s |\n' "$LABEL: the checks alone (full - njs floor), $c conn" "$(spread "${checks[@]}")"
done

# The same four targets interleaved request by request on one connection each (bench/interleaved.py,
# sent by gateway.sh): every target sees the same drift, and each difference is the median of
# ITERATIONS paired differences.
# The gateway's credential reaches it as the name of the variable that holds it (BENCH_AUTH).
ilv=$(python3 /root/mcpsec-interleaved.py "${ITERATIONS:-4000}" "direct=http://127.0.0.1:8000/mcp||$sid" \
  "plain=https://127.0.0.1:8444/mcp||$sid" "floor=https://127.0.0.1:8445/mcp||$sid" \
  "gateway=https://127.0.0.1/mcp|BENCH_AUTH|$sid")
ilv_row() {   # target label
  awk -v t="$1" -v l="$2" -v lab="$LABEL" -v n="${ITERATIONS:-4000}" '$1==t {
    printf "| %s: %s, interleaved, 1 conn (%s calls) | %.2f ms | %.2f ms | | %s |", lab, l, n, $2/1000, $3/1000, $4 }' <<<"$ilv"
}
ilv_diff() {   # pair label
  awk -v p="$1" -v l="$2" '$1==p { printf " %s %+.2f ms |\n", l, $2/1000 }' <<<"$ilv"
}
printf '%s |\n' "$(ilv_row direct 'direct to supergateway (http)')"
printf '%s%s\n' "$(ilv_row plain 'plain TLS proxy, no njs (https)')" "$(ilv_diff plain-direct 'nginx + TLS hop:')"
printf '%s%s\n' "$(ilv_row floor 'njs floor (https)')" "$(ilv_diff floor-plain 'vs plain:')"
printf '%s%s\n' "$(ilv_row gateway 'through nginx + njs enforcement (https)')" "$(ilv_diff gateway-direct 'vs direct:')"
printf '| %s: the checks alone (gateway - njs floor), interleaved | | | | |%s\n' "$LABEL" "$(ilv_diff gateway-floor '')"
