#!/usr/bin/env bash
# The gateway benchmark in one run: tools/call p50/p99 and req/s through nginx (TLS, each
# auth mode, cached JWT) against the same calls sent directly to supergateway, on converged
# Debian 13 test hosts (bench/molecule/gateway), then the nginx-only enforcement path with a
# trivial upstream (bench/run.sh). MCPSEC_BENCH_KEEP=1 keeps the hosts; DURATION, CONNS, THREADS, ROUNDS (wrk runs) and
# ITERATIONS (calls per target in the interleaved one-connection run, bench/interleaved.py).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
cd "$ROOT/bench"
SECRETS=$ROOT/.cache/bench

cleanup() { [ "${MCPSEC_BENCH_KEEP:-0}" = 1 ] || molecule destroy -s gateway >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

: >/tmp/mcpsec-bench-molecule.log
if [ "$(docker inspect -f '{{.State.Running}}' mcpsec-bench-oidc 2>/dev/null)" != true ]; then
  molecule create -s gateway >>/tmp/mcpsec-bench-molecule.log 2>&1
  molecule prepare -s gateway >>/tmp/mcpsec-bench-molecule.log 2>&1
fi
# Always converge: kept hosts (MCPSEC_BENCH_KEEP=1) get this checkout's roles and mcpsec.js.
molecule converge -s gateway >>/tmp/mcpsec-bench-molecule.log 2>&1 || { tail -40 /tmp/mcpsec-bench-molecule.log; exit 1; }

declare -A auth
auth[basic]="Basic $(printf 'alice:%s' "$(cat "$SECRETS/alice-password")" | base64 -w0)"
auth[bearer]="Bearer $(cat "$SECRETS/alice-token")"
spec='{"claims":{"iss":"https://127.0.0.1:9443","aud":"https://localhost/mcp","sub":"alice","roles":["admin"]},"alg":"RS256"}'
auth[oidc]="Bearer $(docker exec mcpsec-bench-oidc node /opt/mcpsec-idp/mint.js /opt/mcpsec-idp/keys.json "$spec")"

printf 'load before: %s\n' "$(uptime)"
printf '%s CPUs; wrk at 1 connection and at %s connections / %s threads, %s per run, %s rounds of\n' \
  "$(nproc)" "${CONNS:-8}" "${THREADS:-2}" "${DURATION:-5s}" "${ROUNDS:-5}"
printf 'direct and proxied runs back to back; medians over the rounds; client on the same host\n\n'
echo '| path (tools/call echo, one session) | p50 | p99 | req/s | non-2xx | added at p50: median (each round) |'
echo '| --- | --- | --- | --- | --- | --- |'
for mode in basic bearer oidc; do
  docker exec -i "mcpsec-bench-$mode" sh -c 'cat >/root/mcpsec-interleaved.py' <interleaved.py
  # stdin: /tmp in the host is a tmpfs that docker cp cannot reach
  # the credential goes by environment (-e NAME takes its value from here), not in argv
  BENCH_AUTH=${auth[$mode]} docker exec -i -e BENCH_AUTH -e "DURATION=${DURATION:-5s}" -e "CONNS=${CONNS:-8}" \
    -e "THREADS=${THREADS:-2}" -e "ROUNDS=${ROUNDS:-5}" -e "ITERATIONS=${ITERATIONS:-4000}" "mcpsec-bench-$mode" \
    bash -s -- "$mode" < <(cat wrk_lib.sh gateway_inner.sh)
done
printf '\nload after: %s\n\n' "$(uptime)"
echo "nginx-only enforcement path, trivial upstream (bench/run.sh):"
MCPSEC_BENCH_DURATION=${DURATION:-10s} bash "$ROOT/bench/run.sh"
printf 'load at the end: %s\n' "$(uptime)"
