#!/usr/bin/env bash
# The main job on a built-in default: boot a local disposable Debian 13 test
# host, converge playbooks/site.yml with inventories/demo, run a real MCP client
# through the gateway, and print a client configuration: Claude Desktop through
# mcp-remote by default, MCPSEC_CLIENT=claude-code|cursor|vscode for the others.
#   ./scripts/demo.sh          deploy (again) and show
#   MCPSEC_CLIENT=cursor ./scripts/demo.sh   ... and print the Cursor configuration
#   ./scripts/demo.sh destroy  remove the demo host
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=mcpsec-demo
HTTPS_PORT=8443
HTTP_PORT=8080

if [ "${1:-}" = destroy ]; then
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  echo "demo host removed"; exit 0
fi

bash scripts/bootstrap.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh

if [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  echo "[demo] booting the Debian 13 test host $NAME"
  # shellcheck source=scripts/test-host.sh
  . scripts/test-host.sh
  test_host_boot "$NAME" -p "127.0.0.1:$HTTPS_PORT:443" -p "127.0.0.1:$HTTP_PORT:80"
fi

echo "[demo] ansible-playbook playbooks/site.yml -i inventories/demo"
ansible-playbook playbooks/site.yml -i inventories/demo

mkdir -p .cache/demo
docker cp "$NAME:/etc/mcpsec/tls/fullchain.pem" .cache/demo/ca.pem >/dev/null
URL="https://localhost:$HTTPS_PORT/mcp"
echo
echo "[demo] a real MCP client (official Python SDK, streamable HTTP) through the gateway:"
python tests/lib/mcpsec_client.py --url "$URL" --user alice \
  --password-file .cache/demo/alice-password --ca-file .cache/demo/ca.pem

echo
# MCPSEC_CLIENT picks the configuration printed: claude-desktop (default), claude-code, cursor, vscode.
python tests/lib/client_configs.py --client "${MCPSEC_CLIENT:-claude-desktop}" --name mcpsec-demo \
  --url "$URL" --mode basic --user alice --secret-file .cache/demo/alice-password --ca-file "$PWD/.cache/demo/ca.pem"
echo "(The demo password is in .cache/demo/alice-password; remove the host with ./scripts/demo.sh destroy.)"
