#!/usr/bin/env bash
# Builds the libFuzzer target frame_fuzz in build-fuzz/ (clang, ASan+UBSan) and runs it for
# SECONDS seconds (default 30). Exits non-zero if the fuzzer finds a crash.
#
# The fuzzer writes new inputs into its corpus directory, so it runs over a working copy in
# build-fuzz/corpus/frame seeded from fuzz/corpus/frame: the committed seeds stay as written,
# and what earlier runs found is kept for the next run. Crash inputs land in
# build-fuzz/artifacts/; replay one with: build-fuzz/fuzz/frame_fuzz <file>
#
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail

seconds=${1:-30}
shift $(($# > 0 ? 1 : 0))
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-fuzz"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" \
  -DHERALD_FUZZ=ON -DHERALD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" --target frame_fuzz -j "$(nproc)"

corpus="$build/corpus/frame"
artifacts="$build/artifacts"
mkdir -p "$corpus" "$artifacts"
# Seeds are refreshed every run; the fuzzer names its own finds by hash, so nothing clashes.
cp -f "$root"/fuzz/corpus/frame/* "$corpus"/

# libFuzzer exits non-zero on a crash, a leak or a timeout; set -e passes that on.
"$build/fuzz/frame_fuzz" \
  -max_total_time="$seconds" \
  -artifact_prefix="$artifacts/" \
  -print_final_stats=1 \
  "$@" \
  "$corpus"
