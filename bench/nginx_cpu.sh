#!/usr/bin/env bash
# nginx's CPU per call through the enforcement point against a plain TLS proxy_pass (issue 25),
# two njs trees side by side in one run (bench/compare.sh's container: this checkout, or
# MCPSEC_TREE, against MCPSEC_BASELINE, default main). Rows per tree, all over TLS with
# keep-alive to the same trivial upstream (a second nginx, so its CPU is not booked to the
# front): plain TLS proxy_pass, the njs floor (a handler that only redirects), the gateway
# (bearer, tools/call echo in one session). Each row books the CPU time of the front nginx's
# master and workers (/proc/<pid>/stat before and after the wrk run) per call; rows rotate
# within a round, trees alternate; prints medians, each round's figures, the same-round ratios
# gateway / plain and the load average (bench/nginx_cpu_inner.sh).
# MCPSEC_BASELINE (main), MCPSEC_BENCH_DURATION (5s), MCPSEC_BENCH_CONNECTIONS (8),
# MCPSEC_BENCH_THREADS (2), MCPSEC_BENCH_ROUNDS (5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
printf 'load before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
MCPSEC_BASELINE=${MCPSEC_BASELINE:-main} MCPSEC_BENCH_CONNECTIONS=${MCPSEC_BENCH_CONNECTIONS:-8} \
  MCPSEC_BENCH_ROUNDS=${MCPSEC_BENCH_ROUNDS:-5} MCPSEC_COMPARE_INNER=nginx_cpu_inner.sh bash "$ROOT/bench/compare.sh"
printf 'load after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
