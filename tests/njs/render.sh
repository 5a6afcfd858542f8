# shellcheck shell=bash
# Sourced by tests/njs/run.sh and bench/run.sh on the host: render the njs test variants
# (tests/njs/variants/<name>.yml) into a running test container with the proxy role
# (tests/njs/render.yml, the venv's ansible-playbook, connection community.docker.docker).
#   render_njs_variants CONTAINER VARIANT...
# NJS_RENDER_EXTRA_VARS (JSON, optional): role variables for every variant (bench/run.sh).
# A variant that fails prints "not ok - [<variant>] render" and its log; inner.sh then finds no
# configuration for it and fails its cases.
render_njs_variants() {
  local name=$1 variant log rc=0 root extra=()
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  shift
  [ -n "${NJS_RENDER_EXTRA_VARS:-}" ] && extra=(-e "$NJS_RENDER_EXTRA_VARS")
  # shellcheck source=scripts/env.sh
  . "$root/scripts/env.sh"
  for variant in "$@"; do
    log=$(mktemp)
    if ANSIBLE_PIPELINING=True ansible-playbook -i "$name," -c community.docker.docker \
         "$root/tests/njs/render.yml" -e "njs_config=$variant" "${extra[@]}" >"$log" 2>&1; then
      printf 'ok - [%s] rendered by the proxy role (%s)\n' "$variant" "$(grep -o 'changed=[0-9]*' "$log" | tail -1)"
    else
      printf 'not ok - [%s] render (ansible-playbook tests/njs/render.yml):\n' "$variant"
      tail -40 "$log"
      rc=1
    fi
    rm -f "$log"
  done
  return $rc
}
