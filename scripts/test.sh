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

step "njs lint (ESLint, pinned; the njs 0.8.9 language subset as errors)"
bash scripts/njs-lint.sh

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

step "alert rules (promtool test rules)"
[ -x .cache/promtool/usr/bin/promtool ] || { echo "test.sh: .cache/promtool is missing: run scripts/bootstrap.sh" >&2; exit 1; }
.cache/promtool/usr/bin/promtool check rules monitoring/prometheus/mcpsec.rules.yml
.cache/promtool/usr/bin/promtool test rules monitoring/prometheus/mcpsec.rules.test.yml

step "ansible-test sanity"
bash scripts/sanity.sh

# requires_ansible claims these too: sanity and the plugin unit tests on each.
for pin in $MCPSEC_OTHER_CORES; do
  step "ansible-test sanity and plugin unit tests on ansible-core $pin"
  ANSIBLE_TEST="$PWD/.cache/ansible-${pin%.*}/bin/ansible-test" bash scripts/sanity.sh
  ".cache/ansible-${pin%.*}/bin/python" -m pytest tests/unit/plugins -q -p no:cacheprovider
done

step "njs enforcement tests"
bash tests/njs/run.sh

# Longest first, so that two runners finish together (wall times on 2 cores, idle).
order="fleet default clients conformance isolation multiserver auth oidc standalone acme ops"
all=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
scenarios="${MCPSEC_SCENARIOS:-$(for s in $order; do grep -qx "$s" <<<"$all" && echo "$s"; done; grep -vxF -f <(tr ' ' '\n' <<<"$order") <<<"$all" || true)}"
# The scenarios the collection's claims rest on: gone or renamed fails the run.
for required in default standalone auth oidc acme ops clients conformance isolation fleet multiserver; do
  [ -f "molecule/$required/molecule.yml" ] || { echo "test.sh: expected Molecule scenario molecule/$required is missing" >&2; exit 1; }
done

# The host ports the scenarios publish (molecule/*/molecule.yml) mostly lie in the kernel's
# ephemeral range (32768-60999), where an outgoing connection of another scenario can hold one
# just when docker binds it ("bind: address already in use", seen once in acme): they are
# reserved, so that no connection is given one. Best effort: where /proc/sys is read-only the
# run goes on as before.
published=$(grep -ohE '127\.0\.0\.1:[0-9]+:' molecule/*/molecule.yml | cut -d: -f2 | sort -un | paste -sd, - || true)
if [ -n "$published" ]; then
  reserved=$(cat /proc/sys/net/ipv4/ip_local_reserved_ports 2>/dev/null || true)
  if { printf '%s\n' "${reserved:+$reserved,}$published" >/proc/sys/net/ipv4/ip_local_reserved_ports; } 2>/dev/null; then
    echo "test.sh: the scenarios' published ports are kept out of the ephemeral range: $published"
  else
    echo "test.sh: could not reserve the scenarios' published ports ($published): a port an outgoing connection holds can fail a scenario's create" >&2
  fi
fi

# MCPSEC_JOBS scenarios at a time (default 2): each has its own containers, ports and
# secrets, and much of a converge waits on package downloads and service starts. Each
# scenario's output is printed whole when it ends.
jobs=${MCPSEC_JOBS:-2}
logs=.cache/molecule-logs
mkdir -p "$logs"
declare -A pid_of=() started=()
failed=()
reap_one() {   # wait for any running scenario, print its log, record its result
  local done_pid="" rc=0 s r
  wait -n -p done_pid "${pid_of[@]}" || rc=$?
  for r in "${!pid_of[@]}"; do
    [ "${pid_of[$r]}" = "$done_pid" ] && s=$r
  done
  step "molecule test -s $s: rc=$rc after $(( SECONDS - started[$s] ))s (output follows)"
  cat "$logs/$s.log"
  [ "$rc" -eq 0 ] || failed+=("$s")
  unset "pid_of[$s]"
}
for s in $scenarios; do
  while [ "${#pid_of[@]}" -ge "$jobs" ]; do
    reap_one
  done
  step "molecule test -s $s (started)"
  started[$s]=$SECONDS
  molecule test -s "$s" >"$logs/$s.log" 2>&1 &
  pid_of[$s]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do
  reap_one
done
if [ "${#failed[@]}" -gt 0 ]; then
  # Each failed scenario's reasons again at the end: a CI log shown by its tail still says why.
  for s in "${failed[@]}"; do
    step "why $s failed (its failing tasks and tests; the whole log is printed above)"
    grep -E '^(FAILED|ERROR) |^E   |fatal: |^CRITICAL|^ERROR |changed=[1-9].*failed=|failed=[1-9]' "$logs/$s.log" | tail -n 60 || true
    tail -n 25 "$logs/$s.log"
  done
  step "failed Molecule scenarios: ${failed[*]}"
  exit 1
fi
step "all tests passed"
