#!/usr/bin/env bash
# The main job on a built-in default: boot a local disposable Debian 13 test
# host, converge playbooks/site.yml with inventories/demo and two MCP servers
# (inventories/demo-servers.yml: the everything server from npm at /mcp, the time
# server from PyPI at /time/mcp, each in a sandbox of its own), run a real MCP client
# through each, and print a client configuration for each: Claude Desktop through
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

echo "[demo] ansible-playbook playbooks/site.yml -i inventories/demo -e @inventories/demo-servers.yml"
ansible-playbook playbooks/site.yml -i inventories/demo -e @inventories/demo-servers.yml

mkdir -p .cache/demo
docker cp "$NAME:/etc/mcpsec/tls/fullchain.pem" .cache/demo/ca.pem >/dev/null
BASE="https://localhost:$HTTPS_PORT"
# name, path, a tool call: the default everything server and the time server.
SERVERS=("mcpsec-demo /mcp echo {\"message\":\"hello through mcpsec\"}"
         "mcpsec-demo-time /time/mcp get_current_time {\"timezone\":\"UTC\"}")
for server in "${SERVERS[@]}"; do
  read -r name path tool args <<<"$server"
  echo
  echo "[demo] a real MCP client (official Python SDK, streamable HTTP) through the gateway at $path:"
  python tests/lib/mcpsec_client.py --url "$BASE$path" --user alice \
    --password-file .cache/demo/alice-password --ca-file .cache/demo/ca.pem --call "$tool" --args "$args"
done
for server in "${SERVERS[@]}"; do
  read -r name path _tool _args <<<"$server"
  echo
  echo "[demo] client configuration for $name ($BASE$path):"
  # MCPSEC_CLIENT picks the configuration printed: claude-desktop (default), claude-code, cursor, vscode.
  python tests/lib/client_configs.py --client "${MCPSEC_CLIENT:-claude-desktop}" --name "$name" \
    --url "$BASE$path" --mode basic --user alice --secret-file .cache/demo/alice-password --ca-file "$PWD/.cache/demo/ca.pem"
done
echo "(The demo password is in .cache/demo/alice-password; remove the host with ./scripts/demo.sh destroy.)"
