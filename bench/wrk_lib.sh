# shellcheck shell=bash
# Shared by bench/inner.sh and bench/scale_inner.sh (sourced) and bench/gateway_inner.sh (sent
# ahead of it on stdin).

us() {   # a wrk latency (812.00us, 1.43ms, 1.00s) -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'
}

median() {   # numbers on stdin, one a line -> their median
  sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2 }'
}

session() {   # url header-file -> session id (initialize + notifications/initialized); the
  # header file (curl -H @file) carries the credential, never the command line
  local hdrs sid
  hdrs=$(curl -sk -D - -o /dev/null -X POST "$1" -H @"$2" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    --data '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}')
  sid=$(awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' <<<"$hdrs" | tr -d '\r')
  curl -sk -o /dev/null -X POST "$1" -H @"$2" ${sid:+-H "Mcp-Session-Id: $sid"} \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' --data '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  printf '%s' "$sid"
}

end_session() {   # url header-file sid: DELETE, so the session's stdio child exits
  curl -sk -o /dev/null -X DELETE "$1" -H @"$2" -H "Mcp-Session-Id: $3" \
    -H 'MCP-Protocol-Version: 2025-06-18' || true
}
