#!/usr/bin/env bash
# Runs inside the disposable test container started by tests/njs/run.sh.
# Usage: inner.sh <src-dir>. Prints one line per case; exits non-zero on any failure.
set -u
SRC=$1
fail=0
# The HTTP cases (pytest, tests/njs/http) for one auth mode [and variant]; MCPSEC_NJS_ORDER
# (reverse, shuffle:<seed>) runs them in another order.
run_cases() {
  MCPSEC_NJS_MODE=$1 MCPSEC_NJS_VARIANT=${2:-} MCPSEC_NJS_FIXTURES=$FX \
    python3 -m pytest -p no:cacheprovider -q -s -rfE "$SRC/tests/njs/http" || fail=1
}
# shellcheck source=tests/njs/setup.sh
. "$SRC/tests/njs/setup.sh"
# The configuration the proxy role rendered for a variant (tests/njs/render.yml, run.sh).
use_rendered() { [ -f "$T/rendered/$1.tar" ] && tar -C / -xf "$T/rendered/$1.tar"; }
python3 "$SRC/tests/njs/upstream.py" 8000 >/tmp/upstream.log 2>&1 &
echo $! >/run/mcpsec-upstream.pid     # the cases stop and restart it (upstream-down cases)
# The second MCP server's backend (/time/mcp, issue 20).
python3 "$SRC/tests/njs/upstream.py" 8008 >/tmp/upstream-time.log 2>&1 &
sleep 0.5

say "unit: njs CLI on the pure functions of the njs modules"
njs -p "$SRC/roles/proxy/files/njs" "$SRC/tests/njs/unit.js" "$FX/fixtures.json" "$SRC/tests/fixtures/jcs_vectors.json" >/tmp/unit.out 2>&1
rc=$?
cat /tmp/unit.out
njs -p "$SRC/roles/proxy/files/njs" "$SRC/tests/njs/route_unit.js" >/tmp/route.out 2>&1 || true
cat /tmp/route.out
if grep -q '^not ok' /tmp/route.out || ! grep -q '^ROUTE [0-9]* passed, 0 failed' /tmp/route.out; then
  echo "not ok - route unit suite"; fail=1
fi
njs -p "$SRC/roles/proxy/files/njs" "$SRC/tests/njs/metrics_unit.js" >/tmp/metrics.out 2>&1 || true
cat /tmp/metrics.out
if grep -q '^not ok' /tmp/metrics.out || ! grep -q '^METRICS [0-9]* passed, 0 failed' /tmp/metrics.out; then
  echo "not ok - metrics unit suite"; fail=1
fi
if [ $rc -ne 0 ] || grep -q '^not ok' /tmp/unit.out || ! grep -q '^UNIT ' /tmp/unit.out; then
  echo "not ok - unit suite (rc=$rc)"; fail=1
fi

for mode in basic bearer oidc; do
  say "nginx: $mode mode"
  nginx -s stop >/dev/null 2>&1; sleep 0.5
  rm -f /var/log/nginx/mcpsec-audit.log
  : >/var/log/nginx/error.log
  use_rendered "$mode" || { echo "not ok - [$mode] render"; fail=1; continue; }
  if ! nginx -t -q 2>/tmp/nginx-t.log; then
    echo "not ok - [$mode] nginx -t: $(cat /tmp/nginx-t.log)"; fail=1; continue
  fi
  echo "ok - [$mode] nginx -t accepts the proxy role's configuration (tests/njs/variants/$mode.yml)"
  nginx || { echo "not ok - [$mode] nginx start"; fail=1; continue; }
  sleep 0.3
  run_cases "$mode"
  if grep -E 'js exception|mcpsec: .*(Error|failed)|mcpsec metrics:|\[(crit|alert|emerg)\]' /var/log/nginx/error.log \
       | grep -v 'JWKS refresh failed' >/tmp/err.txt; then
    echo "not ok - [$mode] error.log has njs exceptions:"; head -5 /tmp/err.txt; fail=1
  else
    echo "ok - [$mode] no njs exception in error.log"
  fi
done
# bearer variants: a small host session cap; the limit zones at 32k, filled (full stores refuse)
for variant in hostcap stores; do
  say "nginx: bearer mode, $variant"
  nginx -s stop >/dev/null 2>&1; sleep 0.5
  rm -f /var/log/nginx/mcpsec-audit.log
  : >/var/log/nginx/error.log
  use_rendered "$variant" || { echo "not ok - [$variant] render"; fail=1; continue; }
  if ! nginx -t -q 2>/tmp/nginx-t.log; then
    echo "not ok - [$variant] nginx -t: $(cat /tmp/nginx-t.log)"; fail=1; continue
  fi
  nginx || { echo "not ok - [$variant] nginx start"; fail=1; continue; }
  sleep 0.3
  run_cases bearer "$variant"
  # a full store logs by design (nginx's slab "no memory" [crit] line, njs's "refused");
  # anything else is an exception
  if grep -E 'js exception|\[(crit|alert|emerg)\]' /var/log/nginx/error.log \
       | grep -v 'ngx_slab_alloc() failed: no memory in js shared zone' >/tmp/err.txt; then
    echo "not ok - [$variant] error.log has njs exceptions:"; head -5 /tmp/err.txt; fail=1
  else
    echo "ok - [$variant] no njs exception in error.log"
  fi
done
nginx -s stop >/dev/null 2>&1
echo "== summary: $(grep -c '^ok' /tmp/unit.out) unit ok; result: $([ $fail -eq 0 ] && echo PASS || echo FAIL)"
exit $fail
