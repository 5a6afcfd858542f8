#!/usr/bin/env bash
# Run the conformance server suite on the test host and print one JSON summary line.
#   run_suite.sh URL [--auth] [--scenario NAME]
# --auth: add the gateway credential (auth.env, root 0600) to every request to URL's origin
# through the undici preload; without it no credential is sent (the direct run).
# Output: the runner's log on stderr; last line on stdout: {"scenario": {"passed": n,
# "failed": n, "warnings": n, "failures": ["check: message", ...]}, ...}
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
url="$1"; shift
auth=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --auth) auth=1 ;;
    --scenario) args+=(--scenario "$2"); shift ;;
    *) echo "run_suite.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
out="$(mktemp -d /tmp/conformance.XXXXXX)"
node="$here/node_modules/node/bin/node"
runner="$here/node_modules/@modelcontextprotocol/conformance/dist/index.js"
preload=()
if [ "$auth" = 1 ]; then
  set -a
  # shellcheck source=/dev/null
  . "$here/auth.env"
  set +a
  MCPSEC_CONFORMANCE_ORIGIN="$(printf '%s' "$url" | sed -E 's#^(https?://[^/]+).*#\1#')"
  export MCPSEC_CONFORMANCE_ORIGIN
  preload=(--import "$here/auth_preload.mjs")
fi
# The gateway's self-signed certificate is the trust anchor for the HTTPS runs.
export NODE_EXTRA_CA_CERTS=/etc/mcpsec/tls/fullchain.pem
# The runner exits 1 when any check fails: the summary below is what the test judges.
"$node" "${preload[@]}" "$runner" server --url "$url" -o "$out" "${args[@]}" >&2 || true
python3 - "$out" <<'PY'
import json, os, re, sys
root = sys.argv[1]
summary = {}
for d in sorted(os.listdir(root)):
    m = re.match(r"server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$", d)
    if not m:
        continue
    checks = json.load(open(os.path.join(root, d, "checks.json")))
    summary[m.group(1)] = {
        "passed": sum(c["status"] == "SUCCESS" for c in checks),
        "failed": sum(c["status"] == "FAILURE" for c in checks),
        "warnings": sum(c["status"] == "WARNING" for c in checks),
        "failures": ["%s: %s" % (c["id"], c.get("errorMessage", "")) for c in checks if c["status"] == "FAILURE"],
    }
print(json.dumps(summary, sort_keys=True))
PY
rm -rf "$out"
