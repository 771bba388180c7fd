#!/usr/bin/env bash
# The city-scale table (issue 22), each row beside its peer or its bar, in one run, release
# build, on this machine:
# - a simulated day of the whole city (261,100 devices) through the twin: ECS, apply, health,
#   alarms, metrics (history bench, no recording); bar 120 s;
# - a whole-city A/B of one day and of one year with the integrating engine (scenario bench:
#   today's lighting against an LED retrofit on a D60-style calendar), and the peer of the
#   year: a vectorised numpy reference (scripts/lighting-peer.py) computing the same lamps'
#   lighting energy over the same year, calendar and sun; the two must agree within 0.5 %;
# - bytes per stored value: a day of the whole city recorded (change-only; the file's every
#   page counted: the blocks with each hour's carried state, the device table, the metrics);
# - resident memory of the generated city (scripts/gen-city.py, 100,000 buildings with a meter
#   each) with 150,000 simulated lamps, headless.
# Last line, exactly: day_s=<s> ab_day_s=<s> ab_year_s=<s> bytes_per_value=<b> rss_mib=<m>
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tvilling-target}"
py="${TVILLING_PYTHON_ENV:-$HOME/.cache/tvilling-py}"
[ -x "$py/bin/python" ] || python3 -m venv "$py"
"$py/bin/python" -c "import numpy" 2>/dev/null || "$py/bin/pip" install -q --disable-pip-version-check numpy
cargo bench -p tvilling_twin --bench history --bench scenario --no-run
source scripts/bench-build.sh release
bench() { cargo bench -q -p tvilling_twin --bench "$1" 2>/dev/null; }
log=$(mktemp)

echo "== a simulated day of the whole city through the twin (bar 120 s)"
TVILLING_BENCH_ONLY=sim TVILLING_BENCH_SIM_MIN=1440 TVILLING_BENCH_RECORD=no bench history | tee "$log"
day_s=$(sed -nE 's/.*whole city \(([0-9]+) devices\): ([0-9.]+) s wall.*/\2/p' "$log" | tail -1)

echo "== whole-city A/B, a day (bar 60 s) and a year (bar 900 s), and the year's numpy peer"
lamps=$(mktemp --suffix .csv)
TVILLING_BENCH_LAMPS="$lamps" bench scenario | tee "$log"
last=$(tail -1 "$log")
field() { echo "$last" | tr ' ' '\n' | sed -nE "s/^$1=//p"; }
ab_day_s=$(field ab_day_s)
ab_year_s=$(field ab_year_s)
lamps_s=$(field lamps_year_s)
twin_kwh=$(field lighting_kwh_a)
read -r from to < <(sed -nE 's/^year_from_ms=([0-9]+) year_to_ms=([0-9]+)$/\1 \2/p' "$log")
peer=$("$py/bin/python" scripts/lighting-peer.py "$lamps" "$from" "$to")
echo "numpy peer, the same lamps' year: $peer"
peer_kwh=$(echo "$peer" | sed -nE 's/.*lighting_kwh=([0-9.]+).*/\1/p')
peer_s=$(echo "$peer" | sed -nE 's/.*seconds=([0-9.]+).*/\1/p')
awk -v t="$twin_kwh" -v p="$peer_kwh" -v ts="$lamps_s" -v ps="$peer_s" 'BEGIN {
  d = (t - p) / p * 100
  printf "annual lighting energy: twin %.1f kWh, numpy %.1f kWh: %+.3f %% (limit 0.5 %%) %s\n", t, p, d, (d < 0.5 && d > -0.5) ? "ok" : "OFF"
  printf "the lamps year alone: twin %.2f s, numpy %.2f s: twin/numpy %.2fx\n", ts, ps, ts / ps }'
rm -f "$lamps"

echo "== bytes per stored value: a day of the whole city recorded (bar 4)"
TVILLING_BENCH_ONLY=sim TVILLING_BENCH_SIM_MIN=1440 TVILLING_BENCH_RECORD=only bench history | tee "$log"
bytes_per_value=$(sed -nE 's/.*history of the simulated span: ([0-9.]+) bytes a value.*/\1/p' "$log" | tail -1)

echo "== resident memory: 100,000 generated buildings and their meters, 150,000 lamps, headless"
city=/tmp/tvilling-city-100000.osm
[ -s "$city" ] || python3 scripts/gen-city.py 100000 "$city"
/usr/bin/time -f "peak %M KiB" "$bin" --headless --data "$city" --extra-lamps 150000 \
  --sim-start 2026-11-23T15:30 --until 2026-11-23T15:31 --snapshot /tmp/tvilling-scale.geojson \
  > /dev/null 2> "$log" || { tail -5 "$log"; exit 1; }
twin_kib=$(sed -nE 's/.*memory before the snapshot: ([0-9]+) KiB resident.*/\1/p' "$log" | tail -1)
devices=$(sed -nE 's/.*simulator started: ([0-9]+) devices.*/\1/p' "$log" | tail -1)
echo "the twin's own resident memory with $devices devices: $((twin_kib / 1024)) MiB (bar 1024); $(tail -1 "$log")"
rss_mib=$((twin_kib / 1024))
rm -f "$log" /tmp/tvilling-scale.geojson

echo "day_s=$day_s ab_day_s=$ab_day_s ab_year_s=$ab_year_s bytes_per_value=$bytes_per_value rss_mib=$rss_mib"
