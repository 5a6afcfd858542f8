#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection as git tracks it.
#
# ansible-test insists on running from .../ansible_collections/<namespace>/<name>/, and the
# repository root is the collection root, so the tracked files (git ls-files: untracked junk,
# .venv and molecule state stay out) are copied into a temporary tree and tested there.
#
# Usage: scripts/sanity.sh [extra ansible-test sanity arguments, e.g. --test pylint]
# Env:   ANSIBLE_TEST  path of ansible-test (default: the repo's .venv, else PATH)
#        KEEP_TREE=1   keep the temporary tree (its path is printed) for inspection
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ansible_test=${ANSIBLE_TEST:-}
if [[ -z "$ansible_test" ]]; then
  if [[ -x "$repo/.venv/bin/ansible-test" ]]; then
    ansible_test="$repo/.venv/bin/ansible-test"
  else
    ansible_test=$(command -v ansible-test)
  fi
fi
# The venv's python3.11 must be first on PATH: ansible-test --python 3.11 looks it up there.
venv_bin=$(dirname "$ansible_test")
export PATH="$venv_bin:$PATH"

namespace=$(awk '/^namespace:/ {print $2}' "$repo/galaxy.yml")
name=$(awk '/^name:/ {print $2}' "$repo/galaxy.yml")
work=$(mktemp -d "${TMPDIR:-/tmp}/mcpsec-sanity.XXXXXX")
if [[ "${KEEP_TREE:-0}" != 1 ]]; then
  trap 'rm -rf "$work"' EXIT
fi
tree="$work/ansible_collections/$namespace/$name"
mkdir -p "$tree"

# Tracked files only, as they are in the working tree (uncommitted edits included).
(cd "$repo" && git ls-files -z --cached | while IFS= read -r -d '' f; do
  [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"
done | xargs -0 -r cp -P --parents -t "$tree")
# ansible-test only looks at files git knows about when the tree is a git work tree.
git -C "$tree" init -q
# ...and it counts untracked files too: keep its own output (venvs under tests/output) out.
printf '/tests/output/\n' >> "$tree/.git/info/exclude"
git -C "$tree" add -A
echo "sanity: testing $namespace.$name in $tree" >&2

# ansible-test bootstraps pip in each sanity venv with a get-pip script from
# ci-files.testing.ansible.com, which is unreachable here. When that script is not cached
# yet, cache a stand-in that bootstraps pip from the interpreter's own ensurepip and then
# installs the requested packages from the configured index (PyPI). A real cached
# get-pip script is left alone.
pip_version=$("$venv_bin/python" - <<'PY'
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version='3.11'))['pip'])
PY
)
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ ! -s "$get_pip" ]]; then
  mkdir -p "$(dirname "$get_pip")"
  cat > "$get_pip" <<'PY'
# Stand-in for get-pip.py written by mcpsec.gateway scripts/sanity.sh (no access to ci-files).
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
# In a child process: ensurepip blanks PIP_CONFIG_FILE in its own environment, which would
# hide the index/certificate configuration from the install below.
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'])
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
PY
  echo "sanity: cached a pip bootstrap stand-in at $get_pip" >&2
fi

cd "$tree"
# --venv: ansible-test's own venv with the pinned sanity requirements from PyPI, so the
# result does not depend on what happens to be installed in the developer's environment.
# No --docker: the whole run is local and needs no container runtime.
# Nothing is skipped: every test applicable to a collection runs without docker/network
# (the pinned requirements are installed from PyPI once and cached in ~/.ansible/test).
"$ansible_test" sanity --venv --python 3.11 --color no "$@"
