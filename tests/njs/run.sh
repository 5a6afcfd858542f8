#!/usr/bin/env bash
# Test the njs enforcement point: unit tests (njs CLI) and nginx-level cases
# (raw HTTP against nginx + njs with the role's rendered templates, a trivial
# upstream and a loopback IdP) inside a disposable Debian 13 systemd container.
# Prints one line per case, exits non-zero on any failure, removes its container.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=mcpsec-njs-$$-$RANDOM

cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

# shellcheck source=scripts/test-host.sh
. "$ROOT/scripts/test-host.sh"
test_host_boot "$NAME"
docker exec "$NAME" mkdir -p /opt/mcpsec-src
tar -C "$ROOT" -cf - roles/proxy/files roles/proxy/templates plugins/plugin_utils plugins/module_utils tests/njs tests/fixtures tests/lib \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
env_args=()
[ -n "${MCPSEC_NJS_ORDER:-}" ] && env_args+=(-e "MCPSEC_NJS_ORDER=$MCPSEC_NJS_ORDER")   # reverse, shuffle:<seed>
if [ -n "${MCPSEC_TEMPLATES:-}" ]; then   # development: try templates from another directory
  tar -C "$MCPSEC_TEMPLATES" -cf - . | docker exec -i "$NAME" sh -c 'mkdir -p /opt/mcpsec-wip && tar -C /opt/mcpsec-wip -xf -'
  env_args+=(-e MCPSEC_TEMPLATES=/opt/mcpsec-wip)
fi
docker exec "${env_args[@]}" "$NAME" bash /opt/mcpsec-src/tests/njs/inner.sh /opt/mcpsec-src
