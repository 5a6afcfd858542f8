# shellcheck shell=bash
# Sourced: boot a disposable Debian 13 systemd test host (privileges without
# --privileged, systemd as PID 1) and wait until systemd is up.
#   test_host_boot NAME [extra docker run arguments, e.g. -p 127.0.0.1:8443:443]
test_host_boot() {
  local name=$1; shift
  local image=${MCPSEC_TEST_IMAGE:-mcpsec/debian13-systemd:latest}
  docker image inspect "$image" >/dev/null 2>&1 || { echo "missing $image: run scripts/test-host-image.sh" >&2; return 2; }
  docker run -d --name "$name" --hostname "$name" \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp:exec,mode=1777 \
    "$@" "$image" /lib/systemd/systemd >/dev/null
  local state _
  for _ in $(seq 1 60); do
    state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) return 0 ;; esac
    sleep 1
  done
  echo "test host $name: systemd did not come up (state: ${state:-unknown})" >&2
  return 1
}
