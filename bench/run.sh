#!/usr/bin/env bash
# Benchmark the njs enforcement path (p50/p99 latency and req/s, wrk) against a
# trivial upstream, inside a disposable Debian 13 container like tests/njs/run.sh.
# MCPSEC_BENCH_DURATION (default 10s), MCPSEC_BENCH_CONNECTIONS (16), MCPSEC_BENCH_THREADS (2),
# MCPSEC_BENCH_ROUNDS (3 runs per row, medians printed), MCPSEC_OBSERVABILITY=off (no MCP metrics).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=mcpsec-njs-bench-$$-$RANDOM

cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

# shellcheck source=scripts/test-host.sh
. "$ROOT/scripts/test-host.sh"
# shellcheck source=tests/njs/render.sh
. "$ROOT/tests/njs/render.sh"
test_host_boot "$NAME"
docker exec "$NAME" mkdir -p /opt/mcpsec-src
tar -C "$ROOT" -cf - roles/proxy/files plugins/plugin_utils tests/njs bench \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
# Packages and fixtures, then the proxy role renders each bench configuration (tests/njs/render.yml).
docker exec -e SRC=/opt/mcpsec-src -e EXTRA_PACKAGES=wrk "$NAME" bash -c '. "$SRC/tests/njs/setup.sh"'
obs=true; [ "${MCPSEC_OBSERVABILITY:-on}" = off ] && obs=false
NJS_RENDER_EXTRA_VARS="{\"proxy_observability_enabled\": $obs}" render_njs_variants "$NAME" bench-bearer bench-bearer-buffered bench-oidc
docker exec -e "DURATION=${MCPSEC_BENCH_DURATION:-10s}" -e "CONNS=${MCPSEC_BENCH_CONNECTIONS:-16}" \
  -e "THREADS=${MCPSEC_BENCH_THREADS:-2}" -e "ROUNDS=${MCPSEC_BENCH_ROUNDS:-3}" "$NAME" bash /opt/mcpsec-src/bench/inner.sh /opt/mcpsec-src
