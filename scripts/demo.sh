#!/usr/bin/env bash
# The main job on a built-in default: boot a local disposable Debian 13 test
# host, converge playbooks/site.yml with inventories/demo, run a real MCP client
# through the gateway, and print a Claude Desktop config that uses mcp-remote.
#   ./scripts/demo.sh          deploy (again) and show
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

auth=$(printf 'alice:%s' "$(cat .cache/demo/alice-password)" | base64 -w0)
cat <<JSON

[demo] Claude Desktop (claude_desktop_config.json), through mcp-remote:
{
  "mcpServers": {
    "mcpsec-demo": {
      "command": "npx",
      "args": ["-y", "mcp-remote@0.15.1", "$URL", "--header", "Authorization:\${MCPSEC_AUTH}"],
      "env": {
        "MCPSEC_AUTH": "Basic $auth",
        "NODE_EXTRA_CA_CERTS": "$PWD/.cache/demo/ca.pem"
      }
    }
  }
}
(The demo password is in .cache/demo/alice-password; remove the host with ./scripts/demo.sh destroy.)
JSON
