#!/usr/bin/env bash
# Benchmark the njs enforcement path (p50/p99 latency and req/s, wrk) against a
# trivial upstream, inside a disposable Debian 13 container like tests/njs/run.sh.
# MCPSEC_BENCH_DURATION (default 10s), MCPSEC_BENCH_CONNECTIONS (16), MCPSEC_BENCH_THREADS (2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${MCPSEC_TEST_IMAGE:-mcpsec/debian13-systemd:latest}
NAME=mcpsec-njs-bench-$$-$RANDOM

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
tar -C "$ROOT" -cf - roles/proxy/files roles/proxy/templates plugins/plugin_utils tests/njs bench \
  | docker exec -i "$NAME" tar -C /opt/mcpsec-src -xf -
docker exec -e "DURATION=${MCPSEC_BENCH_DURATION:-10s}" -e "CONNS=${MCPSEC_BENCH_CONNECTIONS:-16}" \
  -e "THREADS=${MCPSEC_BENCH_THREADS:-2}" "$NAME" bash /opt/mcpsec-src/bench/inner.sh /opt/mcpsec-src
