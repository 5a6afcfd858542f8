# shellcheck shell=bash
# Sourced first by bench/compare_inner.sh and bench/nginx_cpu_inner.sh inside bench/compare.sh's
# container, with the script's arguments: <src-dir> <baseline-dir> [<tree-dir>, default src-dir].
# Packages and fixtures (compare.sh set them up before rendering), wrk's helpers, the trivial
# upstream and the njs floor (njs_fixture.sh), and render_tree.
set -u
SRC=$1
# shellcheck disable=SC2034  # BASE and TREE: read by the sourcing script
BASE=$2 TREE=${3:-$1}
EXTRA_PACKAGES=wrk
# shellcheck source=tests/njs/setup.sh
. "$SRC/tests/njs/setup.sh"
# shellcheck source=bench/wrk_lib.sh
. "$SRC/bench/wrk_lib.sh"
# shellcheck source=bench/njs_fixture.sh
. "$SRC/bench/njs_fixture.sh"

render_tree() {   # tree-dir: that tree's bearer bench configuration in /etc/nginx (nginx stopped).
  # /etc/nginx goes back to what it was before any tree's (kept at the first call, after the
  # sourcing script's own changes), so that no file of the other tree stays behind.
  [ -e "$T/nginx-before-trees.tar" ] || tar -C / -cf "$T/nginx-before-trees.tar" etc/nginx || die "keep /etc/nginx"
  { rm -rf /etc/nginx && tar -C / -xf "$T/nginx-before-trees.tar"; } || die "restore /etc/nginx"
  if [ -e "$1/rendered-bench-bearer.tar" ]; then
    # a tree with tests/njs/render.yml: its proxy role rendered it from the host (compare.sh)
    tar -C / -xf "$1/rendered-bench-bearer.tar" || die "unpack $1/rendered-bench-bearer.tar"
  elif [ -e "$1/tests/njs/render.py" ]; then
    # an older tree renders itself here (its own render.py and policy plugin)
    MCPSEC_BENCH=1 python3 "$1/tests/njs/render.py" "$1" bearer "$FX" >/dev/null || die "render $1 (render.py)"
  else
    die "no configuration for $1: neither rendered-bench-bearer.tar (bench/compare.sh) nor tests/njs/render.py"
  fi
}
