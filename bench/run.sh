#!/usr/bin/env bash
# herald-bench's default suite, what `make bench` runs: the memory engine, a fresh herald per
# scenario, modest sizes — about a minute on 2 cores, bounded well under five.
#
#   bench/run.sh [build-dir]          (default: build)
#
# Progress and a one-line summary per scenario go to stderr. The JSON lines of this run are
# written to <build>/bench/suite-<time>.jsonl, copied to latest.jsonl and appended to
# results.jsonl (the history). Exit 1 when any scenario failed its checks.
set -u
build=${1:-build}
bin="$build/bench/herald-bench"
herald="$build/herald"
for f in "$bin" "$herald"; do
  [ -x "$f" ] || { echo "run.sh: $f is not built (make build)" >&2; exit 2; }
done
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$build/bench/suite-$stamp.jsonl"
failed=0

run() {
  echo "== herald-bench $*" >&2
  # herald-bench bounds itself (--timeout, then a watchdog); `timeout` is the belt to its braces.
  timeout 300 "$bin" --herald "$herald" --out "$out" --label "suite $stamp" --timeout 120 "$@" >/dev/null ||
    failed=$((failed + 1))
}

run idle --connections 1000
run idle --connections 10000
run idle --connections 19000
run notify --clients 100 --count 50000
for rate in 10000 20000 40000; do
  run notify --clients 100 --count 50000 --rate "$rate"
done
run batch --clients 100 --count 500000 --batch 100
run burst --clients 10000 --count 200000
run replay --clients 100 --backlog 1000
run churn --loops 64 --seconds 5

touch "$out"
cat "$out" >>"$build/bench/results.jsonl"
cp "$out" "$build/bench/latest.jsonl"
echo "results: $out (also $build/bench/latest.jsonl; appended to $build/bench/results.jsonl)" >&2
if [ "$failed" -ne 0 ]; then
  echo "run.sh: $failed scenario(s) failed their checks" >&2
  exit 1
fi
