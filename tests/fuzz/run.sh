#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of tests/fuzz (cargo fuzz, libFuzzer, on
# the nightly toolchain) for FUZZ_SECONDS seconds each (default 60), FUZZ_JOBS
# targets at a time (default 1), then prints one table row per target: runs,
# seconds, runs per second, corpus size, crashes found in this run.
# FUZZ_TARGETS="a b" runs only those. Exits 1 if any target crashed; the
# inputs that did are in target/fuzz/artifacts/TARGET/ (to reproduce:
# cargo +nightly fuzz run --fuzz-dir tests/fuzz TARGET FILE).
#
# Each target's corpus lives in target/fuzz/corpus/TARGET/ (kept between
# runs) and is seeded from fixtures/fuzz/seeds/TARGET/, the inputs that once
# crashed it (fixtures/fuzz/regressions/TARGET/) and, for the bencode and
# metainfo targets, every .torrent under fixtures/.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_DIR=tests/fuzz
WORK=target/fuzz
CARGO_FUZZ=(cargo +nightly fuzz)

"${CARGO_FUZZ[@]}" build --fuzz-dir "$FUZZ_DIR" >&2
TARGETS=${FUZZ_TARGETS:-$("${CARGO_FUZZ[@]}" list --fuzz-dir "$FUZZ_DIR")}

mkdir -p "$WORK/logs"
for t in $TARGETS; do
  corpus="$WORK/corpus/$t"
  mkdir -p "$corpus"
  rm -rf "$WORK/artifacts/$t"
  mkdir -p "$WORK/artifacts/$t"
  for dir in "fixtures/fuzz/seeds/$t" "fixtures/fuzz/regressions/$t"; do
    [ -d "$dir" ] && cp -n "$dir"/* "$corpus"/ 2>/dev/null || true
  done
  case "$t" in
    bencode|metainfo)
      find fixtures -name '*.torrent' -size -1M -exec cp -n {} "$corpus"/ \; ;;
  esac
done

run_one() {
  local t=$1
  # -malloc_limit_mb: one allocation over 128 MiB from a few KiB of input
  # is an allocation sized by an unchecked length, reported as a crash
  # ("out-of-memory (malloc(...))"); -timeout: one input over 10 s is a hang.
  cargo +nightly fuzz run --fuzz-dir "$FUZZ_DIR" "$t" "$WORK/corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=1024 -malloc_limit_mb=128 -timeout=10 \
    -artifact_prefix="$WORK/artifacts/$t/" -print_final_stats=1 \
    > "$WORK/logs/$t.log" 2>&1 || true
}
export -f run_one
export FUZZ_SECONDS FUZZ_DIR WORK
# shellcheck disable=SC2016
printf '%s\n' $TARGETS | xargs -P "$FUZZ_JOBS" -I{} bash -c 'run_one "$1"' _ {}

crashed=0
# The figures come from libFuzzer's final lines ("Done N runs in S second(s)",
# -print_final_stats); a target that crashed stops early and shows its time so far.
stat() { grep -o "$1 *[0-9]*" "$2" | grep -o '[0-9]*$' | tail -1 || true; }
printf '\n| target | runs | seconds | runs/s | corpus | crashes |\n| --- | ---: | ---: | ---: | ---: | ---: |\n'
for t in $TARGETS; do
  log="$WORK/logs/$t.log"
  runs=$(stat 'stat::number_of_executed_units:' "$log")
  rate=$(stat 'stat::average_exec_per_sec:' "$log")
  secs=$( { grep -o 'Done [0-9]* runs in [0-9]*' "$log" || true; } | awk '{print $5}' | tail -1)
  crashes=$(find "$WORK/artifacts/$t" -type f | wc -l)
  corpus=$(find "$WORK/corpus/$t" -type f | wc -l)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "${runs:--}" "${secs:--}" "${rate:--}" "$corpus" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    crashed=1
    find "$WORK/artifacts/$t" -type f | sed 's/^/    crash input: /'
  fi
done
exit $crashed
