#!/usr/bin/env bash
# Test the njs enforcement point: unit tests (njs CLI) and nginx-level cases
# (raw HTTP against nginx + njs configured by the proxy role itself, a trivial
# upstream and a loopback IdP) inside a disposable Debian 13 systemd container.
# Prints one line per case, exits non-zero on any failure, removes its container.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=mcpsec-njs-$$-$RANDOM

cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

# shellcheck source=scripts/test-host.sh
. "$ROOT/scripts/test-host.sh"
# shellcheck source=tests/njs/render.sh
. "$ROOT/tests/njs/render.sh"
test_host_boot "$NAME"
docker exec "$NAME" mkdir -p /opt/mcpsec-src
tar -C "$ROOT" -cf - roles/proxy/files plugins/plugin_utils plugins/module_utils tests/njs tests/fixtures tests/lib \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
# Packages, fixtures, the IdP (setup.sh); then each variant's configuration, rendered by the
# proxy role itself (render.yml) and kept for inner.sh, which runs the cases on each.
docker exec -e SRC=/opt/mcpsec-src "$NAME" bash -c '. "$SRC/tests/njs/setup.sh"'
rendered=0
render_njs_variants "$NAME" basic bearer oidc hostcap stores || rendered=1
env_args=()
[ -n "${MCPSEC_NJS_ORDER:-}" ] && env_args+=(-e "MCPSEC_NJS_ORDER=$MCPSEC_NJS_ORDER")   # reverse, shuffle:<seed>
docker exec "${env_args[@]}" "$NAME" bash /opt/mcpsec-src/tests/njs/inner.sh /opt/mcpsec-src
exit $rendered
