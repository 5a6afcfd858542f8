#!/usr/bin/env bash
# The njs enforcement path of two trees side by side in one run: this checkout and a
# baseline revision (default: the last commit with the single-file mcpsec.js), each
# rendered the way that tree renders itself into the same disposable container (a tree with
# tests/njs/render.yml by its own proxy role, from this host: render_tree below; an older one
# by its tests/njs/render.py inside, bench/compare_setup.sh), measured in alternation
# (A B A B ...) against a trivial upstream with wrk, with the njs floor (a handler that only
# redirects) measured next to each. Prints medians per tree.
# MCPSEC_BASELINE (git revision), MCPSEC_TREE (a git revision measured instead of this
# checkout's files), MCPSEC_BENCH_DURATION (5s), MCPSEC_BENCH_CONNECTIONS (16),
# MCPSEC_BENCH_THREADS (2), MCPSEC_BENCH_ROUNDS (4 alternations); MCPSEC_COMPARE_INNER (the
# script run inside, default compare_inner.sh; bench/nginx_cpu.sh passes its own).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASELINE=${MCPSEC_BASELINE:-$(git -C "$ROOT" log -1 --format=%h --diff-filter=D -- roles/proxy/files/mcpsec.js)^}
NAME=mcpsec-njs-compare-$$-$RANDOM
STAGE=$(mktemp -d)
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "$STAGE"; }
trap cleanup EXIT INT TERM

# container-dir [revision, none: this checkout]: a tree with tests/njs/render.yml renders its
# bench configuration (variant bench-bearer) with its own tests/njs/render.sh, that is its own
# proxy role as mcpsec.gateway (a revision is staged on this host with this checkout's venv),
# kept as <container-dir>/rendered-bench-bearer.tar for the inner script; /etc/nginx then goes
# back to what setup left, so that the next tree renders on the same ground. An older tree
# (tests/njs/render.py) renders inside, in the inner script.
render_tree() {
  local dir=$1 rev=${2:-} host=$ROOT
  if [ -n "$rev" ]; then
    git -C "$ROOT" cat-file -e "$rev:tests/njs/render.yml" 2>/dev/null || return 0
    host=$STAGE/$(basename "$dir")
    mkdir -p "$host/.cache/collections/ansible_collections/mcpsec"
    git -C "$ROOT" archive "$rev" | tar -C "$host" -xf -
    ln -s "$ROOT/.venv" "$host/.venv"
    ln -s "$host" "$host/.cache/collections/ansible_collections/mcpsec/gateway"
  fi
  # shellcheck source=tests/njs/render.sh
  (. "$host/tests/njs/render.sh" && render_njs_variants "$NAME" bench-bearer) | sed "s|^|$dir: |"
  docker exec "$NAME" bash -c 'mv /opt/mcpsec-test/rendered/bench-bearer.tar "$1/rendered-bench-bearer.tar" &&
    rm -rf /etc/nginx && tar -C / -xf /opt/mcpsec-test/nginx-before-render.tar' _ "$dir"
}

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
# Packages and fixtures before rendering (python3-jinja2: an older tree's render.py).
docker exec -e SRC=/opt/mcpsec-src -e EXTRA_PACKAGES="wrk python3-jinja2" "$NAME" bash -c '. "$SRC/tests/njs/setup.sh"'
docker exec "$NAME" tar -C / -cf /opt/mcpsec-test/nginx-before-render.tar etc/nginx
render_tree /opt/mcpsec-base "$BASELINE"
render_tree "$TREE" "${MCPSEC_TREE:-}"
docker exec -e "DURATION=${MCPSEC_BENCH_DURATION:-5s}" -e "CONNS=${MCPSEC_BENCH_CONNECTIONS:-16}" \
  -e "THREADS=${MCPSEC_BENCH_THREADS:-2}" -e "ROUNDS=${MCPSEC_BENCH_ROUNDS:-4}" \
  -e "BASELINE=$(git -C "$ROOT" rev-parse --short "$BASELINE")" -e "LABEL=$LABEL" \
  "$NAME" bash "/opt/mcpsec-src/bench/${MCPSEC_COMPARE_INNER:-compare_inner.sh}" /opt/mcpsec-src /opt/mcpsec-base "$TREE"
