#!/usr/bin/env bash
# CPU use of the twin in a window, side by side in one run, each measured the same way: the
# process's CPU seconds per wall second over 60 s, after 20 s to load. Under Xvfb (software
# rendering unless a GPU is present):
#   1. a still city (--no-simulate --open none): render on change, nothing changes;
#   2. the default simulated demo (--open none): redraws as its devices report;
#   3. the still city with --continuous: every frame redrawn (the loop before render on change).
# Usage: scripts/bench-idle.sh [PROFILE] [SECONDS] (ci or release, default release; default 60).
set -euo pipefail
source "$(dirname "$0")/bench-build.sh" "${1:-release}"
span="${2:-60}"
ticks=$(getconf CLK_TCK)
# CPU seconds used so far by a process and its threads.
cpu() { awk -v t="$ticks" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
measure() {
  local name="$1"; shift
  xvfb-run -a -s "-screen 0 1280x800x24" "$bin" --size 960x540 "$@" >/dev/null 2>&1 &
  local runner=$!
  local pid=""
  for _ in $(seq 1 100); do
    pid=$(pgrep -n -f "^$bin --size 960x540" || true)
    [ -n "$pid" ] && break
    sleep 0.2
  done
  [ -n "$pid" ] || { echo "$name: did not start"; return 1; }
  sleep 20
  local a b
  a=$(cpu "$pid")
  sleep "$span"
  b=$(cpu "$pid")
  kill "$pid" 2>/dev/null || true
  wait "$runner" 2>/dev/null || true
  awk -v a="$a" -v b="$b" -v s="$span" -v n="$name" \
    'BEGIN { printf "%-40s %.3f CPU s/s (%.1f CPU s in %d s)\n", n, (b - a) / s, b - a, s }'
}
measure "still city (render on change)" --no-simulate --open none
measure "default simulated demo" --open none
measure "still city, --continuous" --no-simulate --open none --continuous
echo "goal for the still city: at most 0.05 of a core (0.84 before render on change)"
