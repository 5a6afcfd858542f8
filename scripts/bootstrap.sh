#!/usr/bin/env bash
# Install everything the demo and the tests need on a fresh Debian machine:
# apt packages, the controller venv, the docker engine, the test-host image,
# and this checkout as the mcpsec.gateway collection. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '[bootstrap] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: docker engine, debootstrap for the image, venv support, and
# the tools the test probes use.
want=(docker.io debootstrap python3-venv git curl iproute2 ca-certificates)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# docker may come from elsewhere (e.g. docker-ce): only insist on docker.io when no engine exists.
if command -v dockerd >/dev/null 2>&1; then
  missing=("${missing[@]/docker.io}")
fi
# The njs linter (scripts/njs-lint.sh) runs ESLint on node >= 18.18 (Debian 12's is 18.19):
# Debian's node and npm unless a node is already installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# pyenv or other non-Debian Pythons bring their own venv module.
if python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing=("${missing[@]/python3-venv}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Controller venv, reinstalled only when requirements-dev.txt changes.
stamp=.venv/.requirements.sha256
sum=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  log "creating .venv from requirements-dev.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -r requirements-dev.txt
  echo "$sum" >"$stamp"
fi

# One small venv per other ansible-core release the collection claims (scripts/env.sh).
# shellcheck source=scripts/env.sh
MCPSEC_OTHER_CORES=$(. scripts/env.sh && echo "$MCPSEC_OTHER_CORES")
for pin in $MCPSEC_OTHER_CORES; do
  venv=.cache/ansible-${pin%.*}
  if [ "$(cat "$venv/.pin" 2>/dev/null)" != "$pin" ]; then
    log "creating $venv (ansible-core $pin)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ansible-core==$pin" pytest==9.2.0 pyyaml passlib==1.7.4 bcrypt==4.0.1 >/dev/null
    echo "$pin" >"$venv/.pin"
  fi
done

# promtool for `promtool test rules` (scripts/test.sh): unpacked from Debian's prometheus package
# into .cache/promtool, never installed or started (no Prometheus daemon on this machine).
if [ ! -x .cache/promtool/usr/bin/promtool ]; then
  log "unpacking promtool from Debian's prometheus package into .cache/promtool"
  debdir=$(mktemp -d)
  # a fresh machine may have no package lists yet: update once and try again
  (cd "$debdir" && apt-get download prometheus >/dev/null 2>&1) \
    || { $SUDO apt-get update -qq && (cd "$debdir" && apt-get download prometheus >/dev/null); } \
    || { log "apt-get download prometheus failed"; exit 1; }
  rm -rf .cache/promtool && mkdir -p .cache
  dpkg-deb -x "$debdir"/prometheus_*.deb .cache/promtool
  rm -rf "$debdir"
fi

# This checkout is the collection: expose it as mcpsec.gateway to ansible.
mkdir -p .cache/collections/ansible_collections/mcpsec
ln -sfn "$ROOT" .cache/collections/ansible_collections/mcpsec/gateway

# Docker engine and the Debian 13 systemd image.
$SUDO bash scripts/test-host-image.sh
