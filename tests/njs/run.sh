#!/usr/bin/env bash
# Test the njs enforcement point: unit tests (njs CLI) and nginx-level cases
# (raw HTTP against nginx + njs with the role's rendered templates, a trivial
# upstream and a loopback IdP) inside a disposable Debian 13 systemd container.
# Prints one line per case, exits non-zero on any failure, removes its container.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGE=${MCPSEC_TEST_IMAGE:-mcpsec/debian13-systemd:latest}
NAME=mcpsec-njs-$$-$RANDOM

cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "missing $IMAGE: run scripts/test-host-image.sh" >&2; exit 2; }
docker run -d --name "$NAME" --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
  "$IMAGE" /lib/systemd/systemd >/dev/null
for _ in $(seq 1 30); do
  state=$(docker exec "$NAME" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
docker exec "$NAME" mkdir -p /opt/mcpsec-src
tar -C "$ROOT" -cf - roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
env_args=()
if [ -n "${MCPSEC_TEMPLATES:-}" ]; then   # development: try templates from another directory
  tar -C "$MCPSEC_TEMPLATES" -cf - . | docker exec -i "$NAME" sh -c 'mkdir -p /opt/mcpsec-wip && tar -C /opt/mcpsec-wip -xf -'
  env_args=(-e MCPSEC_TEMPLATES=/opt/mcpsec-wip)
fi
docker exec "${env_args[@]}" "$NAME" bash /opt/mcpsec-src/tests/njs/inner.sh /opt/mcpsec-src
