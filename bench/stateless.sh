#!/usr/bin/env bash
# Measure supergateway 4.0.0's 2026-07-28 (stateless) path on a converged gateway host
# (default: the demo host, ./scripts/demo.sh) against a session, straight to the backend on
# the host's loopback. Prints the table docs/security.md "Protocol revisions" quotes.
# MCPSEC_BENCH_HOST (container, default mcpsec-demo), N (sequential calls, 40), BURST (25).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=${MCPSEC_BENCH_HOST:-mcpsec-demo}
[ "$(docker inspect -f '{{.State.Running}}' "$HOST" 2>/dev/null)" = true ] \
  || { echo "no running gateway host $HOST: run ./scripts/demo.sh first (or set MCPSEC_BENCH_HOST)" >&2; exit 2; }
docker exec -i "$HOST" sh -c 'cat >/root/mcpsec-stateless.py' <"$ROOT/bench/stateless.py"
docker exec "$HOST" python3 /root/mcpsec-stateless.py http://127.0.0.1:8000/mcp mcp-server-everything \
  "${N:-40}" "${BURST:-25}"
