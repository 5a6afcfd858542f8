# shellcheck shell=bash
# Shared by bench/inner.sh (sourced) and bench/gateway_inner.sh (sent ahead of it on stdin).

us() {   # a wrk latency (812.00us, 1.43ms, 1.00s) -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'
}

median() {   # numbers on stdin, one a line -> their median
  sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2 }'
}
