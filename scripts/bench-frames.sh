#!/usr/bin/env bash
# Frame time of the default Stockholm demo plus a generated 150,000-lamp city, live (the
# simulator drives every device), with the panels shown and with no panels, side by side.
# Runs under Xvfb (software Vulkan without a GPU). Usage: scripts/bench-frames.sh [PROFILE] [N]
# (PROFILE: ci or release, default release; N lamps, default 150000).
set -euo pipefail
source "$(dirname "$0")/bench-build.sh" "${1:-release}"
lamps="${2:-150000}"
run() {
  xvfb-run -a -s "-screen 0 1280x800x24" "$bin" --screenshot "/tmp/tvilling-frames-$1.png" \
    --size 960x540 --sim-start 2026-11-23T17:00 --extra-lamps "$lamps" --frames 16 \
    --frame-stats "${@:2}" 2>/dev/null | grep "frame time"
}
panels=$(run panels --open city,layers,live)
bare=$(run bare --no-ui)
echo "panels shown: $panels"
echo "no panels:    $bare"
median() { sed -E 's/.*median ([0-9.]+) ms.*/\1/'; }
awk -v a="$(echo "$panels" | median)" -v b="$(echo "$bare" | median)" \
  'BEGIN { printf "ratio (panels / none, median): %.2fx\n", a / b }'
