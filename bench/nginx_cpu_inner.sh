#!/usr/bin/env bash
# Runs inside the container of bench/nginx_cpu.sh (bench/compare.sh's).
# Usage: nginx_cpu_inner.sh <src-dir> <baseline-dir> [<tree-dir>, default src-dir].
# shellcheck source=bench/compare_setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/compare_setup.sh"   # with njs_fixture.sh: floor.js, /tmp/call.lua; its servers are replaced below

# The trivial upstream in a nginx of its own: its CPU is not booked to the front.
cat >/etc/nginx/bench-upstream-only.conf <<'CONF'
worker_processes 1;
pid /run/mcpsec-bench-upstream.pid;
error_log /var/log/mcpsec-bench-upstream.log;
events {}
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:8000;
        location / {
            add_header Mcp-Session-Id bench-session-0001 always;
            default_type application/json;
            return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}';
        }
    }
}
CONF
nginx -c /etc/nginx/bench-upstream-only.conf || die "upstream nginx"
TLS="ssl_certificate $FX/idp.pem; ssl_certificate_key $FX/idp.key;"
# The plain proxy and the njs floor of njs_fixture.sh, on TLS; its upstream server (the first
# block) goes: the upstream is the nginx above.
awk '!done && /^server \{/ {skip = 1} skip {if (/^\}/) {skip = 0; done = 1}; next} {print}' \
  /etc/nginx/conf.d/bench-upstream.conf >/tmp/bench-front.conf
sed -e "s|listen 127.0.0.1:8090;|listen 127.0.0.1:9443 ssl; $TLS|" -e "s|listen 127.0.0.1:8091;|listen 127.0.0.1:9444 ssl; $TLS|" \
  /tmp/bench-front.conf >/etc/nginx/conf.d/bench-upstream.conf
grep -q 'listen 127.0.0.1:8000' /etc/nginx/conf.d/bench-upstream.conf && die "the fixture's upstream server is still there"

front_ticks() {   # utime + stime of the front nginx's master and workers (clock ticks)
  local master pid total=0
  master=$(cat /run/nginx.pid)
  for pid in "$master" $(pgrep -P "$master"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

start_tree() {   # tree-dir: its configuration (render_tree, compare_setup.sh), the gateway also on TLS 9445
  nginx -s stop >/dev/null 2>&1; sleep 0.5
  render_tree "$1"
  sed -i "s|listen 127.0.0.1:8080 default_server;|&\n    listen 127.0.0.1:9445 ssl; $TLS|" /etc/nginx/sites-enabled/mcpsec-test.conf
  nginx -t -q || die "nginx -t ($1)"
  nginx; sleep 0.3
  local hdr=/root/mcpsec-bench-auth.hdr
  AUTH="Bearer $(python3 -c 'import json;print(json.load(open("/opt/mcpsec-test/secrets-bearer.json"))["tokens"]["alice"])')"
  (umask 077 && printf 'Authorization: %s\n' "$AUTH" >"$hdr")
  SID=$(session https://127.0.0.1:9445/mcp "$hdr")
  rm -f "$hdr"
  [ -n "$SID" ] || die "no session through the gateway ($1)"
}

once() {   # url auth sid -> "us_per_call req/s p50us non2xx calls"
  local out t0 t1 calls
  t0=$(front_ticks)
  out=$(BENCH_AUTH="$2" BENCH_SID="$3" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s /tmp/call.lua "$1" 2>&1)
  t1=$(front_ticks)
  calls=$(awk '/requests in/{print $1}' <<<"$out")
  [ "${calls:-0}" -gt 0 ] || die "wrk $1: $out"
  printf '%s %s %s %s %s\n' "$(awk -v d=$((t1 - t0)) -v n="$calls" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", d / hz * 1e6 / n}')" \
    "$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")" "$(us "$(awk '$1=="50%"{print $2}' <<<"$out")")" \
    "$(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0)" "$calls"
}

declare -A rows urls
urls=([plain]=https://127.0.0.1:9443/mcp [floor]=https://127.0.0.1:9444/mcp [gw]=https://127.0.0.1:9445/mcp)
kinds=(plain floor gw)
for round in $(seq 1 "$ROUNDS"); do
  trees=(base src)
  [ $((round % 2)) = 0 ] && trees=(src base)
  for tree in "${trees[@]}"; do
    dir=$BASE; [ "$tree" = src ] && dir=$TREE
    start_tree "$dir"
    for j in 0 1 2; do
      k=${kinds[$(((round + j) % 3))]}
      if [ "$k" = gw ]; then a=$AUTH s=$SID; else a="" s=""; fi
      rows[$tree-$k]+="$round $(once "${urls[$k]}" "$a" "$s")"$'\n'
    done
  done
  printf 'round %s of %s done (load %s)\n' "$round" "$ROUNDS" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
nginx -s stop >/dev/null 2>&1

col() { awk -v c="$2" 'NF{print $c}' <<<"${rows[$1]}"; }
ratio() {   # key-a key-b -> median of the same-round ratios of nginx µs per call
  join <(awk 'NF{print $1, $2}' <<<"${rows[$1]}" | sort) <(awk 'NF{print $1, $2}' <<<"${rows[$2]}" | sort) |
    awk '{printf "%.3f\n", $2 / $3}' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
printf '\n%s, %s CPUs, wrk %s connections / %s threads, %s per run, %s rounds, TLS + keep-alive, bearer tools/call echo, one session\n\n' \
  "$(nginx -v 2>&1)" "$(nproc)" "$CONNS" "$THREADS" "$DURATION" "$ROUNDS"
echo '| tree | row | nginx CPU per call (median) | each round (µs) | req/s (median) | p50 | non-2xx |'
echo '| --- | --- | --- | --- | --- | --- | --- |'
for tree in base src; do
  name="baseline $BASELINE"; [ "$tree" = src ] && name=${LABEL:-this tree}
  for k in plain floor gw; do
    printf '| %s | %s | %s µs | %s | %s | %.2f ms | %s |\n' "$name" "$k" "$(col "$tree-$k" 2 | median)" \
      "$(col "$tree-$k" 2 | paste -sd' ')" "$(col "$tree-$k" 3 | median)" \
      "$(col "$tree-$k" 4 | median | awk '{print $1 / 1000}')" "$(col "$tree-$k" 5 | awk '{s+=$1} END {print s+0}')"
  done
done
printf '\nsame-round ratios of nginx CPU per call (median over rounds):\n'
printf '  baseline: gateway / plain TLS proxy %s, floor / plain %s\n' "$(ratio base-gw base-plain)" "$(ratio base-floor base-plain)"
printf '  this tree: gateway / plain TLS proxy %s (target <= 1.6), floor / plain %s\n' "$(ratio src-gw src-plain)" "$(ratio src-floor src-plain)"
printf '  gateway, this tree / baseline: %s\n' "$(ratio src-gw base-gw)"
