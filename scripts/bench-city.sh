#!/usr/bin/env bash
# The whole city on one screen: a generated city of N buildings (a meter on each) plus L
# simulated street lamps, live at dusk. Prints, side by side in one run:
# - frame time (median, p95) with the markers in their 250 m chunks, and with each kind's
#   markers merged into one mesh (the renderer's limit: fewest draw calls);
# - peak memory (headless, no meshes) of the shipped extract, of the generated city without
#   devices, and with them: bytes per building (excluding its mesh) and per device.
# Runs under Xvfb (software Vulkan where there is no GPU). Usage:
#   scripts/bench-city.sh [PROFILE] [N] [L]   (PROFILE ci or release, default release;
#                                              N default 100000, L default 150000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tvilling-target}"
profile="${1:-release}"
n="${2:-100000}"
lamps="${3:-150000}"
cargo build --profile "$profile" -p tvilling
bin="$CARGO_TARGET_DIR/$profile/tvilling"
city="/tmp/tvilling-city-$n.osm"
[ -s "$city" ] || python3 scripts/gen-city.py "$n" "$city"
frames() {
  xvfb-run -a -s "-screen 0 1280x800x24" "$bin" --data "$city" --screenshot "/tmp/tvilling-city-$1.png" \
    --size 960x540 --sim-start 2026-11-23T15:30 --extra-lamps "$lamps" --frames 12 --no-ui \
    --frame-stats "${@:2}" 2>/dev/null | grep "frame time"
}
chunked=$(frames chunked)
merged=$(frames merged --marker-chunk-m 100000000)
echo "markers in 250 m chunks:        $chunked"
echo "each kind's markers, one mesh:  $merged"
median() { sed -E 's/.*median ([0-9.]+) ms.*/\1/'; }
awk -v a="$(echo "$chunked" | median)" -v b="$(echo "$merged" | median)" \
  'BEGIN { printf "ratio (chunks / merged, median): %.2fx\n", a / b }'
# Peak resident memory (KiB) of a headless run of one simulated minute, and its devices.
rss() {
  local snap="/tmp/tvilling-city-mem.geojson"
  /usr/bin/time -f "%M" "$bin" --headless --sim-start 2026-11-23T15:30 \
    --until 2026-11-23T15:31 --snapshot "$snap" "$@" > /dev/null 2> /tmp/tvilling-city-mem.err
  local kib devices
  kib=$(tail -1 /tmp/tvilling-city-mem.err)
  devices=$(python3 -c "import json,sys; d=json.load(open('$snap')); print(sum(1 for f in d['features'] if 'health' in f['properties']))")
  echo "$kib $devices"
}
read -r base _ < <(rss --data assets/osm/stockholm-norrmalm-ostermalm.osm --no-simulate)
read -r bare _ < <(rss --data "$city" --no-simulate)
read -r full devices < <(rss --data "$city" --extra-lamps "$lamps")
echo "peak memory: shipped extract $((base / 1024)) MiB; $n buildings $((bare / 1024)) MiB; with $devices devices $((full / 1024)) MiB"
awk -v a="$base" -v b="$bare" -v f="$full" -v n="$n" -v d="$devices" 'BEGIN {
  printf "per building (excluding its mesh): %.0f bytes (goal 2048)\n", (b - a) * 1024 / n
  printf "per device: %.0f bytes\n", (f - b) * 1024 / d
}'
