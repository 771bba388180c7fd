#!/usr/bin/env bash
# The co-simulation's speed and size, side by side in one run, on one network and demand
# (scripts/sumo-network.sh) over the morning peak, 07:00-09:00 local, after SUMO's 15-minute
# warm-up:
#   1. SUMO alone (`sumo`, no TraCI): steps per second of its simulation loop (SUMO's own
#      duration log);
#   2. the twin + SUMO through TraCI (`tvilling --headless --sumo`, the clock as fast as SUMO
#      allows, every vehicle and light subscribed, heads mirrored): steps per second from the
#      twin's connect to its end;
#   3. the ratio (goal >= 0.8), the share of the twin's time spent stepping SUMO over TraCI
#      (the coupling itself), and the most vehicles in the network at once;
#   4. frame time with the peak's vehicles drawn against none, in a window (Xvfb; software
#      rendering here unless a GPU is present: the ratio is what carries over).
# Usage: scripts/bench-sumo.sh [PROFILE] (ci or release, default release).
set -euo pipefail
source "$(dirname "$0")/bench-build.sh" "${1:-release}"
export SUMO_HOME="${SUMO_HOME:-/usr/share/sumo}"
net="$(mktemp -d)"
trap 'rm -rf "$net"' EXIT
scripts/sumo-network.sh "$net" >/dev/null
cfg="$net/stockholm.sumocfg"
# 07:00-09:00 local (CET) is 06:00-08:00 UTC; both start their 900 s warm-up at 06:45 local.
begin=$((7 * 3600 - 900))
end=$((9 * 3600))
alone=$(sumo -c "$cfg" --begin "$begin" --end "$end" --no-step-log --no-warnings \
  --duration-log.statistics 2>&1 | sed -nE 's/^ *Duration: ([0-9.]+)s.*/\1/p')
"$bin" --headless --simulate 1 --sim-start 2026-11-23T06:00 --until 2026-11-23T08:00 \
  --sumo "$cfg" --snapshot "$net/snap.geojson" 2>/dev/null
read -r steps wall stepping peak < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["diagnostics"]["sumo"]
print(s["steps"], s["wall_s"], s["stepping_s"], s["peak_vehicles"])' "$net/snap.geojson")
# A peer: SUMO stepped through its own Python TraCI client with nothing subscribed (the cost
# of a round trip a step, with no work on the client's side).
cat > "$net/peer.py" <<'PY'
import sys, time
import traci
cfg, begin, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
traci.start(["sumo", "-c", cfg, "--begin", str(begin), "--no-step-log", "--no-warnings"])
t = time.perf_counter()
for _ in range(end - begin):
    traci.simulationStep()
print(time.perf_counter() - t)
traci.close()
PY
peer=$(PYTHONPATH="$SUMO_HOME/tools" python3 "$net/peer.py" "$cfg" "$begin" "$end" 2>/dev/null | tail -1)
total=$((end - begin))
awk -v n="$total" -v a="$alone" -v s="$steps" -v w="$wall" -v t="$stepping" -v p="$peak" -v q="$peer" 'BEGIN {
  printf "SUMO alone:           %d steps in %.2f s: %.0f steps/s\n", n, a, n / a
  printf "twin + SUMO (TraCI):  %d steps in %.2f s: %.0f steps/s\n", s, w, s / w
  printf "ratio (twin + SUMO / SUMO alone): %.2f (goal >= 0.8)\n", (s / w) / (n / a)
  printf "of which stepping SUMO over TraCI and mirroring: %.2f s: %.0f steps/s, ratio %.2f\n", t, s / t, (s / t) / (n / a)
  printf "peer, SUMO Python TraCI client stepping with nothing subscribed: %.0f steps/s, ratio %.2f\n", n / q, (n / q) / (n / a)
  printf "vehicles in the network at once, most: %d\n", p
}'
frames() {
  xvfb-run -a -s "-screen 0 1280x800x24" "$bin" --screenshot "$net/frames-$1.png" \
    --size 960x540 --simulate 1 --sim-start 2026-11-23T07:00 --look-at 18.0660,59.3380,1200 \
    --frames 30 --frame-stats --no-ui "${@:2}" 2>/dev/null | grep "frame time"
}
with=$(frames vehicles --sumo "$cfg")
without=$(frames none)
echo "frame time, peak vehicles drawn: $with"
echo "frame time, no SUMO:             $without"
median() { sed -E 's/.*median ([0-9.]+) ms.*/\1/'; }
awk -v a="$(echo "$with" | median)" -v b="$(echo "$without" | median)" \
  'BEGIN { printf "ratio (vehicles / none, median): %.2fx\n", a / b }'
