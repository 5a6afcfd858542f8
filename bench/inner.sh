#!/usr/bin/env bash
# Runs inside the bench container (bench/run.sh). Usage: inner.sh <src-dir>.
set -u
SRC=$1
EXTRA_PACKAGES=wrk
# shellcheck source=tests/njs/setup.sh
. "$SRC/tests/njs/setup.sh"

# shellcheck source=bench/njs_fixture.sh
. "$SRC/bench/njs_fixture.sh"

# shellcheck source=bench/wrk_lib.sh
. "$SRC/bench/wrk_lib.sh"

bench() {   # name url auth sid: ROUNDS runs, medians (a run's figures drift by +-30% on this VM)
  local out rows=() _round
  for _round in $(seq 1 "${ROUNDS:-3}"); do
    out=$(BENCH_AUTH="$3" BENCH_SID="$4" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s /tmp/call.lua "$2" 2>&1)
    rows+=("$(us "$(awk '$1=="50%"{print $2}' <<<"$out")") $(us "$(awk '$1=="99%"{print $2}' <<<"$out")") $(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out") $(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)")
  done
  printf '%-46s p50 %6.2f ms  p99 %6.2f ms  %7d req/s  non-2xx %s  (median of %s; req/s each: %s)\n' "$1" \
    "$(printf '%s\n' "${rows[@]}" | awk '{print $1}' | median | awk '{print $1/1000}')" \
    "$(printf '%s\n' "${rows[@]}" | awk '{print $2}' | median | awk '{print $1/1000}')" \
    "$(printf '%s\n' "${rows[@]}" | awk '{print $3}' | median)" \
    "$(printf '%s\n' "${rows[@]}" | awk '{s+=$4} END {print s+0}')" "${ROUNDS:-3}" \
    "$(printf '%s\n' "${rows[@]}" | awk '{printf "%s%s", (NR>1?" ":""), $3}')"
}

init() {   # auth -> binds bench-session-0001 to the subject (the header goes by a 0600 file,
  # curl -H @file, never on a command line)
  local hdr=/root/mcpsec-bench-auth.hdr
  (umask 077 && printf 'Authorization: %s\n' "$1" >"$hdr")
  curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:8080/mcp -H @"$hdr" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    --data '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
  rm -f "$hdr"
}

printf 'bench: %s, %s connections, %s threads, %s per run, %s runs per row, %s CPUs\n' "$(nginx -v 2>&1)" "$CONNS" "$THREADS" "$DURATION" "${ROUNDS:-3}" "$(nproc)"
for mode in bearer oidc; do
  nginx -s stop >/dev/null 2>&1; sleep 0.5
  tar -C / -xf "$T/rendered/bench-$mode.tar" || die "render $mode (tests/njs/render.yml)"
  nginx -t -q || die "nginx -t ($mode)"
  nginx; sleep 0.3
  if [ "$mode" = bearer ]; then
    auth="Bearer $(python3 -c 'import json;print(json.load(open("/opt/mcpsec-test/secrets-bearer.json"))["tokens"]["alice"])')"
    bench "plain proxy, no njs (baseline)" http://127.0.0.1:8090/mcp "" ""
    bench "njs floor: handler that only redirects" http://127.0.0.1:8091/mcp "" ""
    printf 'initialize: %s\n' "$(init "$auth")"
    bench "bearer: token + tools/call check + session" http://127.0.0.1:8080/mcp "$auth" bench-session-0001
    # the opt-in buffered audit log (proxy_audit_log_buffer 64k)
    nginx -s stop >/dev/null 2>&1; sleep 0.5
    tar -C / -xf "$T/rendered/bench-bearer-buffered.tar" || die "render $mode, buffered audit log (tests/njs/render.yml)"
    nginx -t -q || die "nginx -t ($mode, buffered audit log)"
    nginx; sleep 0.3
    printf 'initialize: %s\n' "$(init "$auth")"
    bench "bearer, audit log buffered (64k, flush 1s)" http://127.0.0.1:8080/mcp "$auth" bench-session-0001
  else
    auth="Bearer $(python3 -c 'import json;print(json.load(open("'"$FX"'/fixtures.json"))["tokens"]["rs256_admin"])')"
    printf 'initialize: %s\n' "$(init "$auth")"
    bench "oidc RS256: cached JWT + tools/call + session" http://127.0.0.1:8080/mcp "$auth" bench-session-0001
    auth="Bearer $(python3 -c 'import json;print(json.load(open("'"$FX"'/fixtures.json"))["tokens"]["es256_reader"])')"
    # reader role: echo allowed; its own session
    sed -i 's/bench-session-0001/bench-session-0002/' /etc/nginx/conf.d/bench-upstream.conf && nginx -s reload && sleep 0.5
    printf 'initialize: %s\n' "$(init "$auth")"
    bench "oidc ES256: cached JWT + tools/call + session" http://127.0.0.1:8080/mcp "$auth" bench-session-0002
    sed -i 's/bench-session-0002/bench-session-0001/' /etc/nginx/conf.d/bench-upstream.conf
  fi
done
nginx -s stop >/dev/null 2>&1
