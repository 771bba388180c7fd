#!/usr/bin/env bash
# The whole city on one screen: a generated city of N buildings (a meter on each) plus L
# simulated street lamps, live at dusk. Prints, side by side in one run:
# - frame time (median, p95) with the markers in 250 m chunks (the tiles' size), in 2 km
#   chunks (the default), and with each kind's markers merged into one mesh (the renderer's
#   limit: fewest draw calls);
# - peak memory (headless, no meshes) of the shipped extract, of the generated city without
#   devices, and with them: bytes per building (excluding its mesh) and per device.
# Runs under Xvfb (software Vulkan where there is no GPU). Usage:
#   scripts/bench-city.sh [PROFILE] [N] [L]   (PROFILE ci or release, default release;
#                                              N default 100000, L default 150000)
set -euo pipefail
source "$(dirname "$0")/bench-build.sh" "${1:-release}"
n="${2:-100000}"
lamps="${3:-150000}"
city="/tmp/tvilling-city-$n.osm"
[ -s "$city" ] || python3 scripts/gen-city.py "$n" "$city"
frames() {
  xvfb-run -a -s "-screen 0 1280x800x24" "$bin" --data "$city" --screenshot "/tmp/tvilling-city-$1.png" \
    --size 960x540 --sim-start 2026-11-23T15:30 --extra-lamps "$lamps" --frames 12 --no-ui \
    --frame-stats "${@:2}" 2>/dev/null | grep "frame time"
}
tiles=$(frames tiles --marker-chunk-m 250)
chunked=$(frames chunked)
merged=$(frames merged --marker-chunk-m 100000000)
echo "markers in 250 m chunks:        $tiles"
echo "markers in 2 km chunks:         $chunked"
echo "each kind's markers, one mesh:  $merged"
median() { sed -E 's/.*median ([0-9.]+) ms.*/\1/'; }
awk -v t="$(echo "$tiles" | median)" -v a="$(echo "$chunked" | median)" \
  -v b="$(echo "$merged" | median)" 'BEGIN {
  printf "ratio to one mesh per kind (median): 250 m %.2fx, 2 km %.2fx\n", t / b, a / b }'
# Memory of a headless run of one simulated minute (no meshes): peak and final resident KiB
# (the run logs the latter), the devices, and the bytes the buildings' components hold (from
# the snapshot's diagnostics).
mem() {
  local snap="/tmp/tvilling-city-mem.geojson"
  /usr/bin/time -f "%M" "$bin" --headless --sim-start 2026-11-23T15:30 \
    --until 2026-11-23T15:31 --snapshot "$snap" "$@" > /dev/null 2> /tmp/tvilling-city-mem.err
  local now twin
  now=$(sed -nE 's/.*memory: ([0-9]+) KiB resident.*/\1/p' /tmp/tvilling-city-mem.err | tail -1)
  # The twin's own memory: logged before the snapshot's JSON document is built.
  twin=$(sed -nE 's/.*memory before the snapshot: ([0-9]+) KiB resident.*/\1/p' /tmp/tvilling-city-mem.err | tail -1)
  python3 - "$snap" "$(tail -1 /tmp/tvilling-city-mem.err)" "$now" "$twin" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["diagnostics"]["memory"]
devices = sum(1 for f in d["features"] if "health" in f["properties"])
print(sys.argv[2], sys.argv[3], devices, m["buildings"], m["building_bytes"], sys.argv[4])
PY
}
read -r base_peak base_now _ _ _ base_twin < <(mem --data assets/osm/stockholm-norrmalm-ostermalm.osm --no-simulate)
read -r bare_peak bare_now _ nb held bare_twin < <(mem --data "$city" --no-simulate)
read -r full_peak full_now devices _ _ full_twin < <(mem --data "$city" --extra-lamps "$lamps")
echo "resident memory (peak / at the end, after the snapshot), MiB: shipped extract $((base_peak / 1024)) / $((base_now / 1024)); $nb buildings $((bare_peak / 1024)) / $((bare_now / 1024)); with $devices devices $((full_peak / 1024)) / $((full_now / 1024))"
echo "the twin's own resident memory (before the snapshot), MiB: shipped extract $((base_twin / 1024)); $nb buildings $((bare_twin / 1024)); with $devices devices $((full_twin / 1024)) (goal 1024)"
awk -v a="$base_twin" -v b="$bare_twin" -v f="$full_twin" -v n="$nb" -v d="$devices" -v h="$held" 'BEGIN {
  printf "per building, held by its components (excluding its mesh): %.0f bytes (goal 2048)\n", h / n
  printf "per building, the twin resident (excluding meshes; import leftovers included): %.0f bytes\n", (b - a) * 1024 / n
  printf "per device, the twin resident: %.0f bytes\n", (f - b) * 1024 / d
}'
