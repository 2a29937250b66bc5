#!/usr/bin/env bash
# Builds Herald's libFuzzer targets in build-fuzz/ (clang, ASan+UBSan) and runs each for SECONDS
# seconds (default 30), one after another. Exits non-zero if any target finds a crash, a leak or
# a timeout (the others still run).
#
# Targets: every NAME in $targets below whose source fuzz/NAME_fuzz.cpp and CMake target
# NAME_fuzz both exist; one that is missing is skipped with a message, so a target added later
# runs as soon as it is declared in fuzz/CMakeLists.txt. FUZZ_TARGETS="http resp" picks a subset.
#
# Each target runs over a working corpus build-fuzz/corpus/NAME, seeded (every run) from
# fuzz/corpus/NAME: the committed seeds stay as written, and what earlier runs found is kept
# for the next run. fuzz/NAME.dict, if present, is passed as a dictionary. Crash inputs land in
# build-fuzz/artifacts/NAME/; replay one with: build-fuzz/fuzz/NAME_fuzz <file>
#
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail

targets=(frame http resp jwt)

seconds=${1:-30}
shift $(($# > 0 ? 1 : 0))
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi
if [[ -n ${FUZZ_TARGETS:-} ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-fuzz"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja \
  -DHERALD_FUZZ=ON -DHERALD_TESTS=OFF -DHERALD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

declared=$(cmake --build "$build" --target help)
present=()
for t in "${targets[@]}"; do
  if [[ ! -f "$root/fuzz/${t}_fuzz.cpp" ]]; then
    echo "fuzz.sh: skipping $t: fuzz/${t}_fuzz.cpp is not in this tree"
  elif ! grep -q "^${t}_fuzz:" <<<"$declared"; then
    echo "fuzz.sh: skipping $t: fuzz/CMakeLists.txt declares no ${t}_fuzz target"
  else
    present+=("$t")
  fi
done
if ((${#present[@]} == 0)); then
  echo "fuzz.sh: no fuzz target to run" >&2
  exit 1
fi
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${present[@]/%/_fuzz}"

failed=()
summary=()
for t in "${present[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  # Seeds are refreshed every run; the fuzzer names its own finds by hash, so nothing clashes.
  if compgen -G "$root/fuzz/corpus/$t/*" >/dev/null; then cp -f "$root"/fuzz/corpus/"$t"/* "$corpus"/; fi
  dict=()
  if [[ -f "$root/fuzz/$t.dict" ]]; then dict=(-dict="$root/fuzz/$t.dict"); fi
  echo "fuzz.sh: running ${t}_fuzz for ${seconds}s"
  log="$build/$t.log"
  # libFuzzer exits non-zero on a crash, a leak or a timeout.
  status=0
  "$build/fuzz/${t}_fuzz" \
    -max_total_time="$seconds" \
    -artifact_prefix="$artifacts/" \
    -print_final_stats=1 \
    "${dict[@]}" \
    "$@" \
    "$corpus" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  units=$(find "$corpus" -type f | wc -l)
  if ((status != 0)); then
    failed+=("$t")
    echo "fuzz.sh: ${t}_fuzz FAILED (exit $status); its output:"
    tail -n 60 "$log"
    summary+=("$(printf '%-8s FAILED  executions=%s  see %s' "$t" "${execs:-?}" "$artifacts")")
  else
    summary+=("$(printf '%-8s ok      executions=%s (%s/s)  corpus=%s files' "$t" "${execs:-?}" "${rate:-?}" "$units")")
  fi
done

echo "fuzz.sh: summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: crashes found by: ${failed[*]}" >&2
  exit 1
fi
