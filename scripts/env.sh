# shellcheck shell=bash
# Sourced by the scripts: the venv's tools and this checkout as mcpsec.gateway.
MCPSEC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$MCPSEC_ROOT/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$MCPSEC_ROOT/.cache/collections"
export ANSIBLE_CONFIG="$MCPSEC_ROOT/ansible.cfg"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"
export PY_COLORS="${PY_COLORS:-0}"
# The other ansible-core releases galaxy.yml's requires_ansible claims: scripts/bootstrap.sh
# gives each a small venv (.cache/ansible-<major.minor>), scripts/test.sh runs sanity and the
# plugin unit tests on each (the main .venv has requirements-dev.txt's 2.19).
export MCPSEC_OTHER_CORES="2.17.14 2.18.19"
