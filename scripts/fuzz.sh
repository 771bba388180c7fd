#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder and parser that reads outside input, with cargo-fuzz
# (libFuzzer) on the nightly toolchain (the project itself builds on Rust 1.95).
#
#   scripts/fuzz.sh [RUNS] [TARGET ...]
#
# RUNS executions per target (default 1000000), two targets at a time (one per core). Each run
# starts from the committed seeds (fuzz/seeds/TARGET: real samples from shared/data and the
# tests' payloads, written by scripts/fuzz-seeds.py) and the committed corpus
# (fuzz/corpus/TARGET), stops an input that takes over 1 s (a hang) or 2 GB, and prints per
# target: executions, seconds, executions/s, the slowest input, peak RSS, and whether it
# crashed. Afterwards the corpus is minimised (libFuzzer -merge=1: the smallest set of inputs
# with the same coverage) and replaces fuzz/corpus/TARGET. A crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-1000000}"
shift || true
all=(senml chirpstack tts ngsi_ld sensorthings plain registry config osm geojson cityjson gltf)
[ $# -gt 0 ] && targets=("$@") || targets=("${all[@]}")
scripts/setup-debian.sh
rustup toolchain list | grep -q nightly || { echo "needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
[ -d fuzz/seeds ] || python3 scripts/fuzz-seeds.py
flags=(-O -a -s none)   # optimised, debug assertions on (overflow panics), no sanitizer: no unsafe code of ours
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")
logs=fuzz/target/logs
mkdir -p "$logs"
run_one() {
  t="$1"; runs="$2"
  work="fuzz/target/corpus/$t"; mkdir -p "$work" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  start=$(date +%s.%N)
  set +e
  (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$t" "../$work" "corpus/$t" "seeds/$t" -- \
      -runs="$runs" -timeout=1 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/") > "$logs/$t.log" 2>&1
  rc=$?
  set -e
  end=$(date +%s.%N)
  stat() { awk -v k="stat::$1:" '$1 == k { v = $2 } END { print v }' "$logs/$t.log"; }
  execs=$(stat number_of_executed_units)
  rss=$(stat peak_rss_mb)
  slowest=$(stat slowest_unit_time_sec)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  verdict=ok; [ $rc -ne 0 ] && verdict="FAILED (rc $rc, see $logs/$t.log and fuzz/artifacts/$t/)"
  printf '%-13s %10s execs %7.1f s %7s execs/s  slowest %2s s  peak RSS %5s MB  %s\n' \
    "$t" "${execs:-?}" "$secs" "$rate" "${slowest:-?}" "${rss:-?}" "$verdict"
  # Keep what added coverage, small: the minimal set over the old corpus and this run's finds.
  min="fuzz/target/min/$t"; rm -rf "$min"; mkdir -p "$min"
  if (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$t" "../$min" "corpus/$t" "../$work" -- \
      -merge=1 -max_len=65536) > "$logs/$t.merge.log" 2>&1; then
    rm -rf "fuzz/corpus/$t" && mv "$min" "fuzz/corpus/$t"
  fi
  [ $rc -eq 0 ]
}
export -f run_one
export logs
export flags_str="${flags[*]}"
status=0
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'flags=($flags_str); run_one "$@"' _ {} "$runs" || status=1
exit $status
