#!/usr/bin/env bash
# Issue #14's benchmark in one run, on converged Debian 13 test hosts (bench/molecule/scale):
# 8 concurrent sessions calling tools/call echo, one wrk thread and connection per session
# (bench/scale.lua), rows side by side and interleaved round by round (the order rotates):
#   a  one bare supergateway (the converged unit's command line, a transient unit, no proxy)
#   b  two bare supergateway instances, 4 sessions each
#   c  the gateway (TLS, bearer authentication, tools/call authorization, audit log), 1 instance
#   d  the gateway with one supergateway instance per CPU (second host; only where this tree
#      has supergateway_instances)
#   e  ContextForge (mcp-contextforge-gateway, pinned, venv in the host; JWT, SQLite) with its
#      mcpgateway.translate bridge in front of the same stdio server
#   p  a plain TLS proxy_pass (the same nginx, no njs, keep-alive) in front of a bare instance
#   f  the njs floor: the same, through a js_content handler that only redirects
#   s  one bare stock supergateway (the converged install copied, the bridge patch taken back
#      out with the role's own patch data: bench/unpatch.py)
# Prints req/s, p50, p99 and the ratio to (a) per row, the CPU time each process group spent
# per call (bench/scale_cpu.py), issue #25's ratios (nginx CPU per call through the gateway and
# through the njs floor over the plain proxy's, supergateway's patched over stock, the gateway's
# req/s over one bare supergateway's), a 16-core prediction, and the capacity of a host (PSS and
# tasks of a session's server child against the unit's MemoryMax/MemoryHigh and TasksMax).
# DURATION (10s per run), ROUNDS (5), MCPSEC_BENCH_PREFIX (container names, default
# mcpsec-bench-scale), MCPSEC_BENCH_KEEP=1 keeps the hosts (MCPSEC_BENCH_CONVERGE=0 then skips
# the converge of hosts kept from a run of the same tree), PREDICT_CORES (16).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
cd "$ROOT/bench"
export MCPSEC_BENCH_PREFIX=${MCPSEC_BENCH_PREFIX:-mcpsec-bench-scale}
ONE=$MCPSEC_BENCH_PREFIX-one
MANY=$MCPSEC_BENCH_PREFIX-many
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
PREDICT_CORES=${PREDICT_CORES:-16}
SECRETS=$ROOT/.cache/bench
LOG=/tmp/$MCPSEC_BENCH_PREFIX-molecule.log
OUT=$(mktemp -d)

cleanup() {
  rm -rf "$OUT"
  [ "${MCPSEC_BENCH_KEEP:-0}" = 1 ] || molecule destroy -s scale >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

# Row d needs instances: the variable exists in this tree's supergateway role.
DEFAULTS=("$ROOT/roles/common/defaults/main.yml" "$ROOT/roles/supergateway/defaults/main.yml")
if grep -qE '^(common_)?supergateway_instances:' "${DEFAULTS[@]}"; then
  instances=1
  limit=()
else
  instances=0
  limit=(-- --limit bench_one)
fi

: >"$LOG"
if [ "$(docker inspect -f '{{.State.Running}}' "$ONE" 2>/dev/null)" != true ]; then
  molecule create -s scale >>"$LOG" 2>&1 || { tail -40 "$LOG"; exit 1; }
fi
# Converge: kept hosts (MCPSEC_BENCH_KEEP=1) get this checkout's roles, unless
# MCPSEC_BENCH_CONVERGE=0 says they already have them.
if [ "${MCPSEC_BENCH_CONVERGE:-1}" != 0 ]; then
  molecule converge -s scale "${limit[@]}" >>"$LOG" 2>&1 || { tail -40 "$LOG"; exit 1; }
fi

hosts=("$ONE")
[ "$instances" = 1 ] && hosts+=("$MANY")
for host in "${hosts[@]}"; do
  # stdin: /tmp in the host is a tmpfs that docker cp cannot reach
  tar -cf - wrk_lib.sh scale_inner.sh scale.lua scale_cpu.py |
    docker exec -i "$host" sh -c 'mkdir -p /root/mcpsec-bench && tar -C /root/mcpsec-bench -xf -'
done
inner() {   # host args...: the credential goes by environment, not in argv
  BENCH_AUTH="Bearer $(cat "$SECRETS/alice-token")" docker exec -e BENCH_AUTH "$1" bash /root/mcpsec-bench/scale_inner.sh "${@:2}"
}
# The stock row's file: the installed (patched) one taken back to stock on this side, with the
# role's patch data and the source_patch module's checks (bench/unpatch.py).
sg_version=$(inner "$ONE" sg-version)
sg_file=$(python unpatch.py "$sg_version" --path)
inner "$ONE" sg-file "$sg_file" | python unpatch.py "$sg_version" |
  docker exec -i "$ONE" bash /root/mcpsec-bench/scale_inner.sh stock-file
inner "$ONE" setup one
rows=(a b c p f s e)
if [ "$instances" = 1 ]; then
  inner "$MANY" setup many
  rows=(a b c d p f s e)
fi
host_of() { if [ "$1" = d ]; then echo "$MANY"; else echo "$ONE"; fi; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load before: $load_before" >&2
for round in $(seq 1 "$ROUNDS"); do
  n=${#rows[@]}
  for j in $(seq 0 $((n - 1))); do
    row=${rows[$(((round - 1 + j) % n))]}
    out=$(inner "$(host_of "$row")" run "$row" "$DURATION")
    printf '%s %s\n' "$round" "$(sed -n 's/^ROW [a-z] //p' <<<"$out")" >>"$OUT/$row.res"
    printf '%s %s\n' "$round" "$(sed -n 's/^CPU //p' <<<"$out")" >>"$OUT/$row.cpu"
    printf '%s\n' "$(sed -n 's/^LOAD //p' <<<"$out")" >>"$OUT/load"
    printf 'round %s/%s row %s: %s\n' "$round" "$ROUNDS" "$row" "$(sed -n 's/^ROW //p' <<<"$out")" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cap=$(inner "$ONE" capacity)
spread=""
[ "$instances" = 1 ] && spread=$(inner "$MANY" capacity | sed -n 's/^CAPACITY .*per_instance=\([0-9,]*\).*/\1/p')

declare -A label=(
  [a]="(a) one bare supergateway"
  [b]="(b) two bare supergateway instances, 4 sessions each"
  [c]="(c) gateway (TLS, bearer, authorization, audit), 1 instance"
  [d]="(d) gateway, one instance per CPU ($(docker exec "$MANY" nproc 2>/dev/null || echo '?'))"
  [p]="(p) plain TLS proxy_pass (same nginx, no njs) to a bare instance"
  [f]="(f) njs floor (a handler that only redirects, then as p)"
  [s]="(s) one bare stock supergateway $sg_version (no bridge patch)"
  [e]="(e) ContextForge $(docker exec "$ONE" /opt/mcpsec-bench/contextforge/bin/pip show mcp-contextforge-gateway 2>/dev/null | awk '/^Version:/{print $2}') (JWT, SQLite, translate bridge, http)"
)
# .res lines: round p50_us p99_us requests duration_us non2xx socket_errors
med() { sort -n | awk '{a[NR]=$1} END { if (NR == 0) print ""; else if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
rps_of() { awk '{printf "%.0f\n", $4 / ($5 / 1e6)}' "$OUT/$1.res"; }
rps_ratio() {   # row-a row-b -> median over rounds of (row-a's req/s / row-b's), same round
  join <(awk '{printf "%s %.0f\n", $1, $4 / ($5 / 1e6)}' "$OUT/$1.res" | sort) \
    <(awk '{printf "%s %.0f\n", $1, $4 / ($5 / 1e6)}' "$OUT/$2.res" | sort) | awk '{printf "%.3f\n", $2 / $3}' | med
}

printf '\n%s; %s CPUs; %s; %s concurrent sessions, wrk 1 thread + 1 connection per session,\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$(git -C "$ROOT" log -1 --format='commit %h')" 8
printf '%s per run, %s rounds, rows interleaved (order rotating each round), medians; load average %s before, %s after\n\n' \
  "$DURATION" "$ROUNDS" "$load_before" "$load_after"
echo '| row (tools/call echo, 8 sessions) | req/s | p50 | p99 | vs (a), same round | req/s each round | non-2xx + socket errors |'
echo '| --- | --- | --- | --- | --- | --- | --- |'
for row in a b c d p f s e; do
  if [ ! -f "$OUT/$row.res" ]; then
    printf '| %s | not run: supergateway_instances not available in this tree | | | | | |\n' "${label[$row]}"
    continue
  fi
  ratios=$(rps_ratio "$row" a)
  printf '| %s | %s | %.2f ms | %.2f ms | %.2f× | %s | %s |\n' "${label[$row]}" "$(rps_of "$row" | med | awk '{printf "%.0f", $1}')" \
    "$(awk '{print $2}' "$OUT/$row.res" | med | awk '{print $1 / 1000}')" \
    "$(awk '{print $3}' "$OUT/$row.res" | med | awk '{print $1 / 1000}')" "$ratios" \
    "$(rps_of "$row" | paste -sd' ')" "$(awk '{s += $6 + $7} END {print s}' "$OUT/$row.res")"
done

# CPU per call: each group's CPU seconds over the run / the run's calls, medians over rounds.
groups=(nginx supergateway children contextforge loadgen other)
cpu_us() {   # row group -> median µs per call ("machine" minus the groups: other containers)
  join <(sort "$OUT/$1.res") <(sort "$OUT/$1.cpu") | awk -v g="$2" '{
    calls = $4; sum = 0; v = ""
    for (i = 8; i <= NF; i++) { split($i, kv, "="); c[kv[1]] = kv[2]
      if (kv[1] != "wall" && kv[1] != "machine") sum += kv[2] }
    if (g == "outside") v = c["machine"] - sum; else if (g == "cores") v = c["machine"] / c["wall"]; else v = c[g]
    if (g == "cores") printf "%.2f\n", v; else printf "%.1f\n", v * 1e6 / calls }' | med
}
printf '\nCPU time per call (µs, median over rounds; from /proc/<pid>/stat deltas over each run). outside: what\n'
printf 'the rest of the machine (other containers) used meanwhile; cores: busy CPUs of the machine during the run\n\n'
echo '| row | nginx | supergateway | session children | ContextForge | wrk | other in host | outside | server side (nginx + supergateway + children + ContextForge) | cores busy |'
echo '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
declare -A server_us sg_us
for row in a b c d p f s e; do
  [ -f "$OUT/$row.res" ] || continue
  line="| $row"
  for g in "${groups[@]}" outside; do
    line+=" | $(cpu_us "$row" "$g")"
  done
  server_us[$row]=$(awk -v a="$(cpu_us "$row" nginx)" -v b="$(cpu_us "$row" supergateway)" -v c="$(cpu_us "$row" children)" \
    -v d="$(cpu_us "$row" contextforge)" 'BEGIN { printf "%.1f", a + b + c + d }')
  sg_us[$row]=$(cpu_us "$row" supergateway)
  printf '%s | %s | %s |\n' "$line" "${server_us[$row]}" "$(cpu_us "$row" cores)"
done

# Issue #25's ratios: CPU per call of one group in two rows, the median of the same-round ratios.
cpu_round() {   # row group -> "round µs-per-call" lines, sorted by round
  join <(sort "$OUT/$1.res") <(sort "$OUT/$1.cpu") | awk -v g="$2" '{
    for (i = 8; i <= NF; i++) { split($i, kv, "="); if (kv[1] == g) printf "%s %.3f\n", $1, kv[2] * 1e6 / $4 } }' | sort
}
cpu_ratio() {   # row-a row-b group -> median over rounds of (row-a's µs per call / row-b's)
  join <(cpu_round "$1" "$3") <(cpu_round "$2" "$3") | awk '$3 > 0 {printf "%.3f\n", $2 / $3}' | med
}
gw_row=c
[ -f "$OUT/d.res" ] && gw_row=d
printf '\nnginx CPU per call, gateway (c) / plain TLS proxy (p): %s (target <= 1.6; %s µs / %s µs)\n' \
  "$(cpu_ratio c p nginx)" "$(cpu_us c nginx)" "$(cpu_us p nginx)"
printf 'nginx CPU per call, njs floor (f) / plain TLS proxy (p): %s (%s µs)\n' "$(cpu_ratio f p nginx)" "$(cpu_us f nginx)"
printf 'supergateway CPU per call, patched (a) / stock (s): %s (target <= 0.8; %s µs / %s µs)\n' \
  "$(cpu_ratio a s supergateway)" "$(cpu_us a supergateway)" "$(cpu_us s supergateway)"
printf 'gateway (%s) / one bare supergateway (a), req/s of the same round: %s (target >= 0.8)\n' "$gw_row" \
  "$(rps_ratio "$gw_row" a)"

# The model: clients elsewhere (no wrk on the host). One supergateway event loop serves at most
# 1e6 / (its µs per call) req/s whatever the cores; the host serves at most
# cores * 1e6 / (server-side µs per call). A row gets the lower of the two.
gw=c
[ -f "$OUT/d.res" ] && gw=d
# the role's cap on instances ("[nproc, 8] | min"), where it has one
cap_inst=$(grep -hoE '^(common_)?supergateway_instances:.*[0-9]+\] *\| *min' "${DEFAULTS[@]}" | grep -oE '[0-9]+\]' | tr -d ']' || true)
n_inst=$PREDICT_CORES
[ -n "$cap_inst" ] && [ "$cap_inst" -lt "$n_inst" ] && n_inst=$cap_inst
awk -v cores="$PREDICT_CORES" -v n="$n_inst" -v sa="${sg_us[a]}" -v ta="${server_us[a]}" \
  -v sg="${sg_us[$gw]}" -v tg="${server_us[$gw]}" -v gw="$gw" -v have_d="$instances" 'BEGIN {
  bare_loop = 1e6 / sa; bare_cpu = cores * 1e6 / ta; bare = (bare_loop < bare_cpu ? bare_loop : bare_cpu)
  g_loop = n * 1e6 / sg; g_cpu = cores * 1e6 / tg; g = (g_loop < g_cpu ? g_loop : g_cpu)
  printf "\nPrediction for a %d-core host, clients elsewhere (CPU per call from this run): one bare supergateway\n", cores
  printf "is one event loop: min(1e6/%.0f µs, %d cores x 1e6/%.0f µs) = %.0f req/s. The gateway with %d instances (row %s%s):\n", sa, cores, ta, bare, n, gw, (have_d ? "" : "'"'"'s costs, instances assumed")
  printf "min(%d x 1e6/%.0f µs, %d cores x 1e6/%.0f µs) = %.0f req/s, %.1fx one bare supergateway.\n", n, sg, cores, tg, g, g / bare
}'

[ -n "$spread" ] && printf '\nRow (d): the 8 sessions per instance, as the proxy placed them: %s\n' "$spread"
# CAPACITY children=.. pss_kb=.. tasks=.. pss_each=.. sg_pss_kb=.. sg_tasks=.. memory_max=.. memory_high=.. tasks_max=.. limit_unit=..
sed -n 's/^CAPACITY //p' <<<"$cap" | awk '{
  for (i = 1; i <= NF; i++) { split($i, kv, "="); c[kv[1]] = kv[2] }
  pss = c["pss_kb"]; sgp = c["sg_pss_kb"]; t = c["tasks"]; sgt = c["sg_tasks"]
  printf "\nCapacity (default server, %d session children after the run): PSS of one session'"'"'s server child %.1f MiB\n", c["children"], pss / 1024
  printf "(median; each: %s MiB), %d tasks; supergateway itself (%d instances) %.1f MiB, %d tasks.\n", c["pss_each"], t, c["instances"], sgp / 1024, sgt
  printf "%s: MemoryMax %.0f MiB, ", c["limit_unit"], c["memory_max"] / 1048576
  if (c["memory_high"] == "infinity") printf "no MemoryHigh, "; else printf "MemoryHigh %.0f MiB, ", c["memory_high"] / 1048576
  printf "TasksMax %d.\n", c["tasks_max"]
  high = (c["memory_high"] == "infinity" ? c["memory_max"] : c["memory_high"])
  by_mem = int((high / 1024 - sgp) / pss); by_tasks = int((c["tasks_max"] - sgt) / t)
  printf "Sessions of this server the limits admit: %d by memory, %d by tasks: %d. The proxy admits fewer\n", by_mem, by_tasks, (by_mem < by_tasks ? by_mem : by_tasks)
  printf "(proxy_max_sessions_total): the budget of common_supergateway_session_memory_mb and common_supergateway_session_tasks per session.\n"
}'
