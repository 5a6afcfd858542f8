#!/usr/bin/env bash
# Build the local Debian 13 (trixie) systemd base image that every Molecule
# scenario and the demo boot. No registry image is pulled: the rootfs comes from
# debootstrap against the machine's configured Debian mirror, and the machine's
# CA bundle is trusted inside so pip and npm work through an intercepting proxy.
set -euo pipefail

IMAGE="${MCPSEC_TEST_IMAGE:-mcpsec/debian13-systemd:latest}"
SUITE="${MCPSEC_TEST_SUITE:-trixie}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { printf '[test-host-image] %s\n' "$*" >&2; }

ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || { log "dockerd not installed (apt-get install docker.io)"; exit 1; }
  log "starting dockerd in the background"
  nohup dockerd >/var/log/mcpsec-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not come up; see /var/log/mcpsec-dockerd.log"; exit 1
}

mirror() {
  # The first Debian mirror apt is configured with (deb822 or one-line format).
  local m
  m=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  [ -n "$m" ] || m=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  printf '%s' "${m:-http://deb.debian.org/debian}"
}

# The image is rebuilt whenever this recipe changes (its hash is a label).
RECIPE_SHA=$(sha256sum "$0" | cut -c1-16)

ensure_dockerd
if [ "$FORCE" = 0 ] && [ "$(docker image inspect -f '{{ index .Config.Labels "mcpsec.recipe" }}' "$IMAGE" 2>/dev/null)" = "$RECIPE_SHA" ]; then
  log "image $IMAGE present (recipe $RECIPE_SHA)"; exit 0
fi
command -v debootstrap >/dev/null || { log "debootstrap not installed (apt-get install debootstrap)"; exit 1; }

work=$(mktemp -d /tmp/mcpsec-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
MIRROR=$(mirror)
log "debootstrap $SUITE from $MIRROR into $work"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,sudo,curl,gnupg \
  "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -n 40 "$work/debootstrap.log"; exit 1; }

root="$work/rootfs"
# Trust the machine's CA (an intercepting proxy may sign registry TLS).
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
fi
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
chroot "$root" update-ca-certificates >/dev/null 2>&1 || true

printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$root/etc/apt/sources.list"
rm -f "$root/etc/apt/sources.list.d/"*.sources 2>/dev/null || true
# Units that make no sense in a container.
for u in getty@tty1.service systemd-timesyncd.service; do
  chroot "$root" systemctl disable "$u" >/dev/null 2>&1 || true
done
chroot "$root" systemctl mask systemd-firstboot.service systemd-udevd.service systemd-modules-load.service >/dev/null 2>&1 || true
printf 'mcpsec-test\n' >"$root/etc/hostname"
# Like a real host, keep package lists (check mode on a fresh host resolves
# package names from them), back-dated so apt's cache_valid_time refreshes them.
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
chroot "$root" apt-get update -qq >/dev/null
chroot "$root" apt-get clean
find "$root/var/lib/apt/lists" -exec touch -d @0 {} +
rm -f "$root/var/lib/apt/periodic/update-success-stamp"

log "importing as $IMAGE"
tar -C "$root" -c . | docker import \
  -c 'ENV container=docker' \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -c "LABEL mcpsec.recipe=$RECIPE_SHA" \
  - "$IMAGE" >/dev/null
log "built $IMAGE"
