#!/usr/bin/env bash
# The test command: lint, unit tests, sanity, njs tests, then every Molecule
# scenario on a real Debian 13 systemd host. MCPSEC_SCENARIOS="default oidc"
# narrows the Molecule part; MCPSEC_SKIP_BOOTSTRAP=1 skips the installs.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${MCPSEC_SKIP_BOOTSTRAP:-0}" = 1 ] || bash scripts/bootstrap.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh

step() { printf '\n==== %s (%s, %ds in) ====\n' "$*" "$(date -u +%H:%M:%S)" "$SECONDS"; }

step "yamllint"
yamllint -s .

step "ansible-lint"
ansible-lint --offline

step "playbook syntax"
for playbook in playbooks/*.yml; do
  ansible-playbook --syntax-check -i localhost, "$playbook"
done

step "execution environment build context (ansible-builder create)"
mkdir -p .cache/ee
rm -f .cache/ee/mcpsec-gateway*.tar.gz
ansible-galaxy collection build --force --output-path .cache/ee .
cp .cache/ee/mcpsec-gateway-*.tar.gz .cache/ee/mcpsec-gateway.tar.gz
rm -rf .cache/ee/context
ansible-builder create -f execution-environment.yml -c .cache/ee/context

# Every suite below is expected: a missing or renamed one fails the run (bash cannot
# open the script, pytest exits 4 or 5), it never passes by being skipped.
step "unit tests (pytest; the tag selection test among them)"
for suite in tests/unit/plugins/filter/test_expand_policy.py tests/unit/plugins/filter/test_cidr_families.py \
    tests/unit/plugins/filter/test_audit_summary.py tests/unit/plugins/filter/test_nft_input_exposure.py \
    tests/unit/plugins/modules/test_credential_file.py tests/unit/test_tags.py tests/unit/test_role_docs.py \
    tests/unit/test_awx_surveys.py; do
  [ -f "$suite" ] || { echo "test.sh: expected unit test suite $suite is missing" >&2; exit 1; }
done
python -m pytest tests/unit -q

step "ansible-test sanity"
bash scripts/sanity.sh

step "njs enforcement tests"
bash tests/njs/run.sh

scenarios="${MCPSEC_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort | awk '$0=="default"{print; next} {rest=rest" "$0} END{print rest}')}"
# The scenarios the collection's claims rest on: gone or renamed fails the run.
for required in default standalone auth oidc acme ops; do
  [ -f "molecule/$required/molecule.yml" ] || { echo "test.sh: expected Molecule scenario molecule/$required is missing" >&2; exit 1; }
done
for s in $scenarios; do
  step "molecule test -s $s"
  molecule test -s "$s"
done
step "all tests passed"
