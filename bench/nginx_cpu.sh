#!/usr/bin/env bash
# nginx's CPU per call through the enforcement point against a plain TLS proxy_pass (issue 25),
# two njs trees side by side in one run: this checkout and a baseline revision (MCPSEC_BASELINE,
# default main), each rendered with its own templates and policy plugin into one disposable
# Debian 13 container. Rows per tree, all over TLS with keep-alive to the same trivial upstream
# (a second nginx, so its CPU is not booked to the front): plain TLS proxy_pass, the njs floor
# (a handler that only redirects), the gateway (bearer, tools/call echo in one session).
# Each row books the CPU time of the front nginx's master and workers (/proc/<pid>/stat before
# and after the wrk run) per call; rows rotate within a round, trees alternate; prints medians,
# each round's figures, the same-round ratios gateway / plain and the load average.
# MCPSEC_BASELINE, MCPSEC_BENCH_DURATION (5s), MCPSEC_BENCH_CONNECTIONS (8),
# MCPSEC_BENCH_THREADS (2), MCPSEC_BENCH_ROUNDS (5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASELINE=${MCPSEC_BASELINE:-main}
NAME=mcpsec-njs-cpu-$$-$RANDOM
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

# shellcheck source=scripts/test-host.sh
. "$ROOT/scripts/test-host.sh"
test_host_boot "$NAME"
docker exec "$NAME" mkdir -p /opt/mcpsec-src /opt/mcpsec-base
tar -C "$ROOT" -cf - roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs bench \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
git -C "$ROOT" archive "$BASELINE" roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-base -xf -
printf 'load before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
docker exec -e "DURATION=${MCPSEC_BENCH_DURATION:-5s}" -e "CONNS=${MCPSEC_BENCH_CONNECTIONS:-8}" \
  -e "THREADS=${MCPSEC_BENCH_THREADS:-2}" -e "ROUNDS=${MCPSEC_BENCH_ROUNDS:-5}" \
  -e "BASELINE=$(git -C "$ROOT" rev-parse --short "$BASELINE")" \
  -e "LABEL=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- roles bench || echo +changes)" \
  "$NAME" bash /opt/mcpsec-src/bench/nginx_cpu_inner.sh /opt/mcpsec-src /opt/mcpsec-base
printf 'load after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
