#!/usr/bin/env bash
# Runs inside a host of bench/scale.sh (bench/molecule/scale), from /root/mcpsec-bench with
# wrk_lib.sh, scale.lua and scale_cpu.py next to it. Usage:
#   scale_inner.sh setup one|many   BENCH_AUTH=<the gateway's Authorization value>
#       one: two bare supergateway instances (transient units, the converged unit's command
#       line on ports 8101 and 8102), ContextForge (pinned, in a venv) with its translate
#       bridge in front of the same stdio server, a plain TLS proxy_pass (nginx, no njs) and
#       the njs floor (a handler that only redirects) in front of the first bare instance, a bare stock supergateway (the converged install
#       copied, the bridge patch taken back out: $STATE/stock-file, given by bench/scale.sh),
#       8 sessions for each row, each checked with one tools/call; many: the 8 gateway
#       sessions only.
#   scale_inner.sh run <row> <duration>   one wrk run of a row: prints "ROW ..." and "CPU ..."
#   scale_inner.sh capacity               PSS and tasks of a session's server child, what
#                                         the unit's limits admit
# Credentials stay in 0600 files and the environment, never on a command line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/wrk_lib.sh
. "$HERE/wrk_lib.sh"
STATE=/root/mcpsec-bench/state
CF_VERSION=${CF_VERSION:-1.1.0}
CF=/opt/mcpsec-bench/contextforge
SESSIONS=8
umask 077
mkdir -p "$STATE"

die() { echo "scale_inner: $*" >&2; exit 1; }

gateway_units() {   # the converged supergateway units: the single unit, or every instance
  systemctl list-units --all --plain --no-legend --type=service \
    mcpsec-supergateway.service 'mcpsec-supergateway@*.service' | awk '{print $1}'
}

check_call() {   # url auth-file sid tool: one tools/call must come back with the echo
  local out
  out=$(curl -sk -X POST "$1" -H @"$2" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-06-18' \
    ${3:+-H "Mcp-Session-Id: $3"} \
    --data '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"'"$4"'","arguments":{"message":"bench"}}}')
  grep -q 'Echo: bench' <<<"$out" || die "tools/call $4 on $1 (session ${3:--}) did not echo: ${out:0:300}"
}

open_sessions() {   # row auth-file tool url...: one session per url, written to $STATE/<row>
  local row=$1 auth=$2 tool=$3 url sid sids=() ports=()
  shift 3
  for url in "$@"; do
    for _i in $(seq 1 20); do   # a backend just (re)started may not listen yet
      sid=$(session "$url" "$auth")
      [ -n "$sid" ] && break
      sleep 0.5
    done
    [ -n "$sid" ] || die "row $row: no session from $url"
    check_call "$url" "$auth" "$sid" "$tool"
    sids+=("$sid")
    ports+=("$(sed -E 's|^[a-z]+://[^:/]+:([0-9]+)/.*|\1|' <<<"$url")")
  done
  # one url for all: no per-thread ports
  [ "$(printf '%s\n' "$@" | sort -u | wc -l)" -gt 1 ] || ports=()
  {
    printf 'URL=%q\nAUTH_FILE=%q\nTOOL=%q\n' "$1" "$auth" "$tool"
    printf 'SIDS=%q\nPORTS=%q\n' "${sids[*]}" "${ports[*]}"
  } >"$STATE/$row"
}

times_n() {   # n word -> the word n times, one a line
  local _i
  for _i in $(seq 1 "$1"); do printf '%s\n' "$2"; done
}

bare_start() {   # unit port [install-dir]: the converged unit's supergateway command line as a
  # bare transient unit; with install-dir, that supergateway install instead of the unit's
  local unit=$1 port=$2 dir=${3:-} exec_line args=() user envfile
  # the instance's own port (a number or ${MCPSEC_INSTANCE_PORT}) replaced before the shell reads it
  exec_line=$(systemctl cat "$unit" | sed -n '/^ExecStart=/,/[^\\]$/p' | sed 's/\\$//' | tr -d '\n' |
    sed -E "s/--port +[^ ]+/--port $port/")
  if [ -n "$dir" ]; then
    grep -q ' [^ ]*/node_modules/supergateway/dist/index\.js ' <<<"$exec_line" || die "no supergateway path in $unit"
    exec_line=$(sed -E "s| [^ ]*/node_modules/supergateway/dist/index\\.js | $dir/node_modules/supergateway/dist/index.js |" <<<"$exec_line")
  fi
  eval "args=(${exec_line#ExecStart=})"   # systemd's quoting of --stdio "..." is the shell's here
  user=$(systemctl show -p User --value "$unit")
  envfile=$(systemctl show -p EnvironmentFiles --value "$unit" | awk '{print $1}')
  systemctl stop "mcpsec-bench-bare-$port" >/dev/null 2>&1 || true
  systemctl reset-failed "mcpsec-bench-bare-$port" >/dev/null 2>&1 || true
  systemd-run -q --unit "mcpsec-bench-bare-$port" -p User="$user" -p Group="$user" \
    ${envfile:+-p EnvironmentFile="$envfile"} -p WorkingDirectory="$(systemctl show -p WorkingDirectory --value "$unit")" \
    -E NODE_ENV=production "${args[@]}"
  for _i in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    sleep 0.2
  done
  die "bare supergateway on $port did not come up: $(journalctl -u "mcpsec-bench-bare-$port" -n 20 --no-pager)"
}

cf_start() {   # ContextForge: gateway on 4444 (SQLite, JWT), translate bridge on 9100, one virtual server
  local unit=$1 stdio user envfile
  stdio=$(systemctl cat "$unit" | sed -n 's/^ *--stdio "\(.*\)" *\\$/\1/p')
  [ -n "$stdio" ] || die "no --stdio command in $unit"
  user=$(systemctl show -p User --value "$unit")
  envfile=$(systemctl show -p EnvironmentFiles --value "$unit" | awk '{print $1}')
  if [ "$("$CF/bin/pip" show mcp-contextforge-gateway 2>/dev/null | awk '/^Version:/{print $2}')" != "$CF_VERSION" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    # readable by the bridge's user (the gateway's), who runs it
    (umask 022 && python3 -m venv "$CF" && "$CF/bin/pip" install -q "mcp-contextforge-gateway==$CF_VERSION" >/dev/null 2>&1) ||
      die "pip install mcp-contextforge-gateway==$CF_VERSION failed"
  fi
  chmod -R go+rX /opt/mcpsec-bench
  systemctl stop mcpsec-bench-cf mcpsec-bench-cf-translate >/dev/null 2>&1 || true
  systemctl reset-failed mcpsec-bench-cf mcpsec-bench-cf-translate >/dev/null 2>&1 || true
  rm -rf /var/lib/mcpsec-bench-cf
  mkdir -p /var/lib/mcpsec-bench-cf
  # Its own secrets, fresh each setup; rate limits raised as the gateway's are (the MCP
  # tier's default is 100 requests a minute); no Redis, the in-memory cache.
  cat >/var/lib/mcpsec-bench-cf/env <<EOF
DATABASE_URL=sqlite:////var/lib/mcpsec-bench-cf/mcp.db
JWT_SECRET_KEY=$(openssl rand -base64 48 | tr -d '\n')
AUTH_ENCRYPTION_SECRET=$(openssl rand -base64 48 | tr -d '\n')
PLATFORM_ADMIN_EMAIL=admin@example.com
PLATFORM_ADMIN_PASSWORD=$(openssl rand -hex 12)Aa1!
DEFAULT_USER_PASSWORD=$(openssl rand -hex 12)Aa1!
MCPGATEWAY_ADMIN_API_ENABLED=true
MCPGATEWAY_UI_ENABLED=false
SSRF_ALLOW_LOCALHOST=true
RATE_LIMIT_MEDIUM_RPM=100000000
RATE_LIMIT_MEDIUM_BURST=100000000
RATE_LIMITING_REDIS_ENABLED=false
CACHE_TYPE=memory
LOG_LEVEL=WARNING
EOF
  # The bridge runs the stdio server as the gateway's user, with the same environment file.
  systemd-run -q --unit mcpsec-bench-cf-translate -p User="$user" -p Group="$user" \
    ${envfile:+-p EnvironmentFile="$envfile"} -p EnvironmentFile=/var/lib/mcpsec-bench-cf/env \
    -p WorkingDirectory="$(systemctl show -p WorkingDirectory --value "$unit")" \
    "$CF/bin/python" -m mcpgateway.translate --stdio "$stdio" --expose-streamable-http \
    --host 127.0.0.1 --port 9100 --logLevel warning
  systemd-run -q --unit mcpsec-bench-cf -p EnvironmentFile=/var/lib/mcpsec-bench-cf/env \
    -p WorkingDirectory=/var/lib/mcpsec-bench-cf "$CF/bin/mcpgateway" --host 127.0.0.1 --port 4444
  for _i in $(seq 1 600); do   # its first start builds the schema: minutes on a loaded host
    curl -sf -o /dev/null http://127.0.0.1:4444/health && ss -ltn | grep -q '127.0.0.1:9100 ' && break
    sleep 0.4
  done
  curl -sf -o /dev/null http://127.0.0.1:4444/health ||
    die "ContextForge did not come up: $(journalctl -u mcpsec-bench-cf -n 30 --no-pager)"
  ss -ltn | grep -q '127.0.0.1:9100 ' ||
    die "the translate bridge did not come up: $(journalctl -u mcpsec-bench-cf-translate -n 30 --no-pager)"
  local token hdr=$STATE/cf.hdr tools tool_id tool_name server
  # shellcheck source=/dev/null
  token=$(set -a && . /var/lib/mcpsec-bench-cf/env && cd /var/lib/mcpsec-bench-cf &&
    "$CF/bin/python" -m mcpgateway.utils.create_jwt_token --username admin@example.com --exp 240 2>/dev/null | tail -1)
  [ -n "$token" ] || die "no ContextForge JWT"
  printf 'Authorization: Bearer %s\n' "$token" >"$hdr"
  curl -sf -o /dev/null -X POST http://127.0.0.1:4444/v1/gateways -H @"$hdr" -H 'Content-Type: application/json' \
    --data '{"name":"echo","url":"http://127.0.0.1:9100/mcp","transport":"STREAMABLEHTTP"}' ||
    die "ContextForge: registering the translate bridge failed"
  tools=$(curl -sf http://127.0.0.1:4444/v1/tools -H @"$hdr")
  tool_id=$(python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin) if t["originalName"]=="echo"][0])' <<<"$tools")
  tool_name=$(python3 -c 'import json,sys; print([t["name"] for t in json.load(sys.stdin) if t["originalName"]=="echo"][0])' <<<"$tools")
  server=$(curl -sf -X POST http://127.0.0.1:4444/v1/servers -H @"$hdr" -H 'Content-Type: application/json' \
    --data '{"server":{"name":"bench","associated_tools":["'"$tool_id"'"]}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  [ -n "$server" ] || die "ContextForge: no virtual server"
  # Its streamable HTTP endpoint answers without a session id: every thread calls without one.
  local sid
  sid=$(session "http://127.0.0.1:4444/v1/virtual-servers/$server/mcp" "$hdr")
  check_call "http://127.0.0.1:4444/v1/virtual-servers/$server/mcp" "$hdr" "$sid" "$tool_name"
  cf_pause STOP
  {
    printf 'URL=%q\nAUTH_FILE=%q\nTOOL=%q\n' "http://127.0.0.1:4444/v1/virtual-servers/$server/mcp" "$hdr" "$tool_name"
    printf 'SIDS=%q\nPORTS=\n' "$(times_n "$SESSIONS" "${sid:--}" | tr '\n' ' ')"
  } >"$STATE/e"
}

plain_start() {   # port floor-port backend-port: a plain TLS proxy_pass to a backend, no njs,
  # and on floor-port the njs floor (a js_content handler that only redirects to the same proxy
  # location: what any njs enforcement point pays before its first check); the site's
  # certificate and the http-level TLS settings of the converged nginx, keep-alive to the
  # backend, the proxy settings of the gateway's backend location (buffering and cache off)
  local port=$1 floor=$2 backend=$3 site cert key proxy
  site=$(grep -l 'ssl_certificate ' /etc/nginx/sites-enabled/* | head -1)
  [ -n "$site" ] || die "no TLS site in /etc/nginx/sites-enabled"
  cert=$(awk '$1=="ssl_certificate"{sub(/;$/, "", $2); print $2; exit}' "$site")
  key=$(awk '$1=="ssl_certificate_key"{sub(/;$/, "", $2); print $2; exit}' "$site")
  (umask 022 && mkdir -p /etc/nginx/mcpsec-bench && cat >/etc/nginx/mcpsec-bench/floor.js <<'EOF'
function handle(r) {
    r.internalRedirect('@backend');
}

export default {handle};
EOF
  )
  # one proxy block for both rows: they differ by the njs handler only
  local proxy='proxy_pass http://mcpsec_bench_plain;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_cache off;'
  (umask 022 && cat >/etc/nginx/conf.d/mcpsec-bench-plain.conf <<EOF
upstream mcpsec_bench_plain {
    server 127.0.0.1:$backend;
    keepalive 32;
}
server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    access_log off;
    location = /mcp {
        $proxy
    }
}
server {
    listen 127.0.0.1:$floor ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    access_log off;
    js_import mcpsec_bench_floor from /etc/nginx/mcpsec-bench/floor.js;
    location = /mcp {
        js_content mcpsec_bench_floor.handle;
    }
    location @backend {
        $proxy
    }
}
EOF
  )
  nginx -t -q || die "nginx -t with the plain proxy and the njs floor"
  systemctl reload nginx
  for _i in $(seq 1 50); do
    ss -ltn | grep -q "127.0.0.1:$port " && ss -ltn | grep -q "127.0.0.1:$floor " && return 0
    sleep 0.2
  done
  die "the plain proxy and the njs floor do not listen on $port and $floor"
}

stock_install() {   # dir: the unit's supergateway install copied to dir, its patched file
  # replaced by the stock one bench/scale.sh computed ($STATE/stock-file: path, then content)
  local dir=$1 src rel
  src=$(sg_dir)
  [ -d "$src/node_modules" ] || die "no supergateway install found"
  [ -s "$STATE/stock-file" ] || die "no stock file given (bench/scale.sh writes $STATE/stock-file)"
  rel=$(head -1 "$STATE/stock-file")
  rm -rf "$dir"
  (umask 022 && mkdir -p "$(dirname "$dir")")
  chmod go+rX "$(dirname "$dir")"   # the bridge runs as the gateway's user
  cp -a "$src" "$dir"
  tail -n +2 "$STATE/stock-file" >"$dir/$rel"
  chmod 644 "$dir/$rel"
  cmp -s "$src/$rel" "$dir/$rel" && die "the stock file equals the installed one: is the bridge patch applied?"
  chmod -R go+rX "$dir"
}

cf_pause() {   # STOP|CONT: ContextForge idles at ~0.2 CPU (its background loops), so it is
  # stopped outside its own runs and takes nothing from the other rows
  systemctl -q is-active mcpsec-bench-cf 2>/dev/null || return 0
  systemctl kill -s "SIG$1" mcpsec-bench-cf mcpsec-bench-cf-translate
}

setup() {
  local kind=$1 unit gw_hdr=$STATE/gateway.hdr none=$STATE/none.hdr
  command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  printf 'Authorization: %s\n' "${BENCH_AUTH:?BENCH_AUTH must hold the gateway Authorization value}" >"$gw_hdr"
  : >"$none"
  local units=()
  mapfile -t units < <(gateway_units)
  [ "${#units[@]}" -gt 0 ] || die "no mcpsec-supergateway unit on this host"
  unit=${units[0]}
  # A clean gateway: no sessions (children, nginx bindings) left from an earlier run.
  systemctl restart "${units[@]}" nginx
  local gw=() a=() b=() p=() f=() s=()
  mapfile -t gw < <(times_n "$SESSIONS" https://127.0.0.1/mcp)
  if [ "$kind" = many ]; then
    open_sessions d "$gw_hdr" echo "${gw[@]}"
    return
  fi
  open_sessions c "$gw_hdr" echo "${gw[@]}"
  bare_start "$unit" 8101
  bare_start "$unit" 8102
  mapfile -t a < <(times_n "$SESSIONS" http://127.0.0.1:8101/mcp)
  open_sessions a "$none" echo "${a[@]}"
  mapfile -t b < <(times_n $((SESSIONS / 2)) http://127.0.0.1:8101/mcp; times_n $((SESSIONS / 2)) http://127.0.0.1:8102/mcp)
  open_sessions b "$none" echo "${b[@]}"
  plain_start 9443 9444 8101
  mapfile -t p < <(times_n "$SESSIONS" https://127.0.0.1:9443/mcp)
  open_sessions p "$none" echo "${p[@]}"
  mapfile -t f < <(times_n "$SESSIONS" https://127.0.0.1:9444/mcp)
  open_sessions f "$none" echo "${f[@]}"
  stock_install /opt/mcpsec-bench/supergateway-stock
  bare_start "$unit" 8103 /opt/mcpsec-bench/supergateway-stock
  mapfile -t s < <(times_n "$SESSIONS" http://127.0.0.1:8103/mcp)
  open_sessions s "$none" echo "${s[@]}"
  cf_start "$unit"
}

run_row() {   # row duration
  local URL AUTH_FILE TOOL SIDS PORTS auth out
  [ -f "$STATE/$1" ] || die "row $1 was not set up on this host"
  # shellcheck disable=SC1090
  . "$STATE/$1"
  auth=$(sed -n 's/^Authorization: //p' "$AUTH_FILE")
  [ "$1" = e ] && cf_pause CONT && sleep 1
  out=$(BENCH_AUTH=$auth BENCH_SIDS=$SIDS BENCH_PORTS=$PORTS BENCH_TOOL=$TOOL \
    python3 "$HERE/scale_cpu.py" wrk -t"$SESSIONS" -c"$SESSIONS" -d"$2" --timeout 30s -s "$HERE/scale.lua" "$URL" 2>&1) ||
    die "wrk (row $1) failed: $out"
  [ "$1" = e ] && cf_pause STOP
  printf 'ROW %s %s\n' "$1" "$(awk '$1=="RESULT"{$1=""; print substr($0,2)}' <<<"$out")"
  grep '^CPU ' <<<"$out"
  printf 'LOAD %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
}

pss_tree() {   # pid -> "PSS kB, tasks" of the process and its descendants
  local pid=$1 kid total tasks p t
  total=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
  tasks=$(awk '/^Threads:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  for kid in $(pgrep -P "$pid"); do
    read -r p t <<<"$(pss_tree "$kid")"
    total=$((total + p)) tasks=$((tasks + t))
  done
  echo "$total $tasks"
}

capacity() {   # PSS and tasks of each session's server child (all instances), against the limits
  local units=() unit limit_unit pid sg_pss=0 sg_tasks=0 rows=() per=() pss_med tasks_med mem high tmax
  mapfile -t units < <(gateway_units)
  [ "${#units[@]}" -gt 0 ] || die "no mcpsec-supergateway unit on this host"
  # The limits sit on the slice that holds the instances, or on the single unit.
  limit_unit=${units[0]}
  if [ "$(systemctl show -p LoadState --value mcpsec-supergateway.slice)" = loaded ] &&
    [ "$(systemctl show -p MemoryMax --value mcpsec-supergateway.slice)" != infinity ]; then
    limit_unit=mcpsec-supergateway.slice
  fi
  for unit in "${units[@]}"; do
    pid=$(systemctl show -p MainPID --value "$unit")
    [ "$pid" -gt 0 ] || die "$unit has no main process"
    sg_pss=$((sg_pss + $(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")))
    sg_tasks=$((sg_tasks + $(awk '/^Threads:/{print $2}' "/proc/$pid/status")))
    for kid in $(pgrep -P "$pid"); do
      rows+=("$(pss_tree "$kid")")
    done
    per+=("$(pgrep -c -P "$pid" || true)")
  done
  [ "${#rows[@]}" -gt 0 ] || die "no session children under ${units[*]}"
  pss_med=$(printf '%s\n' "${rows[@]}" | awk '{print $1}' | median)
  tasks_med=$(printf '%s\n' "${rows[@]}" | awk '{print $2}' | median)
  mem=$(systemctl show -p MemoryMax --value "$limit_unit")
  high=$(systemctl show -p MemoryHigh --value "$limit_unit")
  tmax=$(systemctl show -p TasksMax --value "$limit_unit")
  printf 'CAPACITY children=%s pss_kb=%s tasks=%s pss_each=%s instances=%s sg_pss_kb=%s sg_tasks=%s memory_max=%s memory_high=%s tasks_max=%s limit_unit=%s per_instance=%s\n' \
    "${#rows[@]}" "$pss_med" "$tasks_med" "$(printf '%s\n' "${rows[@]}" | awk '{printf "%s%.0f", (NR>1?",":""), $1/1024}')" \
    "${#units[@]}" "$sg_pss" "$sg_tasks" "$mem" "$high" "$tmax" "$limit_unit" \
    "$(IFS=,; echo "${per[*]}")"
}

sg_dir() {   # the converged unit's supergateway install directory
  local units=()
  mapfile -t units < <(gateway_units)
  [ "${#units[@]}" -gt 0 ] || die "no mcpsec-supergateway unit on this host"
  systemctl cat "${units[0]}" | grep -oE ' [^ ]*/node_modules/supergateway/dist/index\.js' | head -1 |
    sed -E 's|^ ||; s|/node_modules/supergateway/dist/index\.js$||'
}

case "${1:-}" in
  setup) setup "${2:?one or many}" ;;
  sg-version) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
      "$(sg_dir)/node_modules/supergateway/package.json" ;;
  sg-file) cat "$(sg_dir)/${2:?path inside the install directory}" ;;
  stock-file) cat >"$STATE/stock-file" ;;
  run) run_row "${2:?row}" "${3:?duration}" ;;
  capacity) capacity ;;
  *) die "usage: scale_inner.sh setup one|many | run <row> <duration> | capacity | sg-version | sg-file <path> | stock-file" ;;
esac
