#!/usr/bin/env bash
# The njs enforcement path of two trees side by side in one run: this checkout and a
# baseline revision (default: the last commit with the single-file mcpsec.js), each
# rendered with its own templates and policy plugin into the same disposable container,
# measured in alternation (A B A B ...) against a trivial upstream with wrk, with the njs
# floor (a handler that only redirects) measured next to each. Prints medians per tree.
# MCPSEC_BASELINE (git revision), MCPSEC_TREE (a git revision measured instead of this
# checkout's files), MCPSEC_BENCH_DURATION (5s), MCPSEC_BENCH_CONNECTIONS (16),
# MCPSEC_BENCH_THREADS (2), MCPSEC_BENCH_ROUNDS (4 alternations); MCPSEC_COMPARE_INNER (the
# script run inside, default compare_inner.sh; bench/nginx_cpu.sh passes its own).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASELINE=${MCPSEC_BASELINE:-$(git -C "$ROOT" log -1 --format=%h --diff-filter=D -- roles/proxy/files/mcpsec.js)^}
NAME=mcpsec-njs-compare-$$-$RANDOM
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

# shellcheck source=scripts/test-host.sh
. "$ROOT/scripts/test-host.sh"
test_host_boot "$NAME"
docker exec "$NAME" mkdir -p /opt/mcpsec-src /opt/mcpsec-base
tar -C "$ROOT" -cf - roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs bench \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
TREE=/opt/mcpsec-src
LABEL="this tree"
if [ -n "${MCPSEC_TREE:-}" ]; then
  TREE=/opt/mcpsec-tree
  LABEL=$(git -C "$ROOT" rev-parse --short "$MCPSEC_TREE")
  docker exec "$NAME" mkdir -p "$TREE"
  git -C "$ROOT" archive "$MCPSEC_TREE" roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs \
    | docker exec -i "$NAME" tar -C "$TREE" -xf -
fi
git -C "$ROOT" archive "$BASELINE" roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-base -xf -
docker exec -e "DURATION=${MCPSEC_BENCH_DURATION:-5s}" -e "CONNS=${MCPSEC_BENCH_CONNECTIONS:-16}" \
  -e "THREADS=${MCPSEC_BENCH_THREADS:-2}" -e "ROUNDS=${MCPSEC_BENCH_ROUNDS:-4}" \
  -e "BASELINE=$(git -C "$ROOT" rev-parse --short "$BASELINE")" -e "LABEL=$LABEL" \
  "$NAME" bash "/opt/mcpsec-src/bench/${MCPSEC_COMPARE_INNER:-compare_inner.sh}" /opt/mcpsec-src /opt/mcpsec-base "$TREE"
