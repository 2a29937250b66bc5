#!/usr/bin/env bash
# herald-bench's default suite, what `make bench` runs: a fresh herald (and redis-server) per
# scenario, sizes chosen to stay well under five minutes on 2 cores.
#
#   bench/run.sh [build-dir]          (default: build)
#
# One progress line per step on stderr (what runs, elapsed, about how long is left), then each
# scenario's one-line summary. The JSON lines of this run go to <build>/bench/suite-<time>.jsonl,
# copied to latest.jsonl and appended to results.jsonl (the history); the baseline comparison to
# compare.jsonl; the charts (gnuplot) to <build>/bench/*.svg. Ends with a summary line against
# the targets (also in the .jsonl). Exit 1 when any scenario failed its checks.
#
# Environment: QUICK=1 shrinks every size (a smoke run of the whole suite, ~1 minute);
# SKIP_COMPARE=1 leaves out the baseline (needs node and npm ci in bench/baseline).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
build=$(cd "$build" && pwd)
bin="$build/bench/herald-bench"
herald="$build/herald"
for f in "$bin" "$herald"; do
  [ -x "$f" ] || { echo "run.sh: $f is not built (make build)" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "run.sh: redis-server is needed (scripts/install-deps.sh)" >&2; exit 2; }
py=/usr/bin/python3
[ -x $py ] || py=python3
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$build/bench/suite-$stamp.jsonl"
mkdir -p "$build/bench"
: >"$out"
failed=0
quick=${QUICK:-0}
q() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# The steps and a rough duration of each (seconds, measured on the 2-core machine): the ETA.
plan=(idle:3 idle:4 idle:5 idle:8 idle:11 idle:26 notify:6 ceiling:12 sweep:18 notify:2 batch:4 burst:8 replay:4
  churn:7 storm:23 compare:18 charts:3)
total_est=0
for p in "${plan[@]}"; do total_est=$((total_est + ${p#*:})); done
t0=$(date +%s)
step=0
done_est=0
mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
progress() {  # progress "what"
  local now el left
  now=$(date +%s)
  el=$((now - t0))
  # Scale what is left by how the steps so far compared with their estimates.
  if ((done_est > 0 && el > 0)); then left=$(((total_est - done_est) * el / done_est)); else left=$total_est; fi
  step=$((step + 1))
  printf '[bench %2d/%d] %s  (elapsed %s, about %s left)\n' "$step" "${#plan[@]}" "$1" "$(mmss $el)" \
    "$(mmss $left)" >&2
}
advance() { done_est=$((done_est + ${plan[$((step - 1))]#*:})); }

run() {  # run LABEL herald-bench-args...
  local label=$1
  shift
  # herald-bench bounds itself (--timeout, then a watchdog); `timeout` is the belt to its braces.
  timeout 300 "$bin" --herald "$herald" --out "$out" --label "$label" --timeout 120 "$@" >/dev/null ||
    failed=$((failed + 1))
}
# The figure `key` (a dotted path) of the last line labelled `label` in $out.
fig() {
  $py - "$out" "$1" "$2" <<'EOF'
import json, sys
path, label, key = sys.argv[1:]
v = None
for line in open(path):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("label") == label:
        v = r
for k in key.split("."):
    v = v.get(k) if isinstance(v, dict) else None
print(v if v is not None else 0)
EOF
}

redis2=(--engine redis --instances 2)

for n in 1000 5000 10000 19000; do
  progress "idle: $n connections, one herald (memory engine)"
  run "idle-memory-$n" idle --connections "$(q $n $((n / 10)))"
  advance
done
progress "idle: 19000 connections, one herald (redis engine)"
run "idle-redis-19000" idle --connections "$(q 19000 1900)" --engine redis
advance
progress "idle: 57000 connections over three heralds (redis engine)"
run "idle-redis-57000" idle --connections "$(q 57000 5700)" --engine redis --instances 3
advance

progress "notify flat out: durable, 2 heralds + 1 redis (clients on one, API on the other)"
run "notify-redis-max" notify "${redis2[@]}" --clients 100 --count "$(q 100000 10000)"
advance
# Right after, while the machine is in the same state: what Redis alone does with herald's notify
# script for as many clients.
progress "redis ceiling: redis-benchmark -P 16 on herald's notify script (100 clients' keys), XADD, PUBLISH"
ceiling_line=$(timeout 200 bash "$root/bench/redis_ceiling.sh" --requests "$(q 200000 20000)" --keyspace 100 2>/dev/null | tail -1)
[ -n "$ceiling_line" ] && echo "$ceiling_line" | sed 's/"scenario"/"label": "redis-ceiling", "scenario"/' >>"$out"
advance
max=$(fig notify-redis-max figures.deliveries_per_s)
max=${max%.*}
[ "${max:-0}" -gt 1000 ] 2>/dev/null || max=1000
progress "notify at 10/25/50/75/100% of the measured maximum ($max/s), same setup"
for pct in 10 25 50 75 100; do
  rate=$((max * pct / 100))
  # About three seconds of load per rate (at least 3,000 notifications).
  count=$((rate * $(q 3 1)))
  ((count < 3000)) && count=3000
  run "notify-redis-rate-$pct" notify "${redis2[@]}" --clients 100 --count "$count" --rate "$rate"
done
advance

progress "notify flat out, one herald (memory engine)"
run "notify-memory-max" notify --clients 100 --count "$(q 50000 10000)"
advance
progress "batch: 100 per request (memory engine)"
run "batch-memory" batch --clients 100 --count "$(q 500000 50000)" --batch 100
advance
progress "burst: 10000 clients, one notification each per batch (memory engine)"
run "burst-memory" burst --clients "$(q 10000 1000)" --count "$(q 200000 20000)"
advance
progress "replay: 100 clients x 1000 stored while offline, then connect (memory engine)"
run "replay-memory" replay --clients 100 --backlog "$(q 1000 100)"
advance
progress "churn: 64 connect-hello-close loops for 5 s"
run "churn-memory" churn --loops 64 --seconds "$(q 5 2)"
advance
progress "storm: 15000 clients on one of 3 heralds, SIGKILL, re-home with 2 pending each"
run "storm" storm --clients "$(q 15000 1500)" --pending 2
advance


if [ "${SKIP_COMPARE:-0}" = 1 ]; then
  progress "baseline comparison skipped (SKIP_COMPARE=1)"
else
  progress "baseline (Node ws + ioredis) beside herald: notify flat out, 2 instances + 1 redis each"
  HERALD="$herald" BENCH="$bin" COUNT="$(q 30000 5000)" SCENARIOS="notify" OUT="$build/bench/compare.jsonl" \
    timeout 300 bash "$root/bench/baseline/compare.sh" 2>/dev/null | tail -1 >/dev/null || true
  # The comparison's lines join this run's lines (label "compare").
  sed 's/^{/{"label": "compare", "scenario": "compare", /' "$build/bench/compare.jsonl" >>"$out" 2>/dev/null || true
fi
advance

$py "$root/bench/summary.py" "$out" | tee -a "$out" >/dev/null
progress "charts (gnuplot): $build/bench/*.svg"
$py "$root/bench/plot.py" "$out" "$build/bench" >&2 || echo "run.sh: the charts failed (gnuplot installed?)" >&2
advance

cat "$out" >>"$build/bench/results.jsonl"
cp "$out" "$build/bench/latest.jsonl"
$py "$root/bench/summary.py" --text "$out" >&2
echo "results: $out (also $build/bench/latest.jsonl; appended to $build/bench/results.jsonl); took $(mmss $(($(date +%s) - t0)))" >&2
if [ "$failed" -ne 0 ]; then
  echo "run.sh: $failed scenario(s) failed their checks" >&2
  exit 1
fi
