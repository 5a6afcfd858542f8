# shellcheck shell=bash
# Sourced by the scripts: the venv's tools and this checkout as mcpsec.gateway.
MCPSEC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$MCPSEC_ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$MCPSEC_ROOT/.cache/collections"
export ANSIBLE_CONFIG="$MCPSEC_ROOT/ansible.cfg"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"
export PY_COLORS="${PY_COLORS:-0}"
