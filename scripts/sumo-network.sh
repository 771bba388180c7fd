#!/usr/bin/env bash
# Builds a SUMO network and a working day's demand from the shipped OSM extract, for the
# co-simulation (Debian packages sumo and sumo-tools: netconvert, duarouter, randomTrips.py).
#
#   scripts/sumo-network.sh OUTDIR      writes OUTDIR/stockholm.sumocfg and what it needs
#
# Coordinates: SWEREF 99 TM (EPSG:3006 is UTM zone 33 on GRS 80), as the twin's scene, so a
# SUMO position plus the network's offset is the twin's easting and northing.
# Demand: random trips weighted to the fringe (traffic crosses the inner city), a vehicle every
# so often by the hour of a working day. The hourly rates are an assumption, shaped as the
# city's inner-city counts are (morning and afternoon peaks, a quiet night), and scaled to what
# this imported network carries without gridlock: 720 vehicles an hour enter at the peaks.
# Measured with SUMO 1.15 over 07:00-09:00: at these rates 3 vehicles are teleported out of
# jams; at 1.33 times them, 55; at 3.3 times (an earlier choice), 430 and a locked network.
set -euo pipefail
out="${1:?usage: scripts/sumo-network.sh OUTDIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
osm="$root/assets/osm/stockholm-norrmalm-ostermalm.osm"
export SUMO_HOME="${SUMO_HOME:-/usr/share/sumo}"
tools="$SUMO_HOME/tools"
seed="${SUMO_SEED:-42}"
mkdir -p "$out"
cd "$out"

netconvert --osm-files "$osm" \
  --proj "+proj=utm +zone=33 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs" \
  --keep-edges.by-vclass passenger --remove-edges.isolated \
  --geometry.remove --roundabouts.guess --ramps.guess --junctions.join \
  --tls.guess-signals --tls.join --tls.default-type static \
  --output.street-names --output.original-names \
  --seed "$seed" --no-warnings \
  --output-file stockholm.net.xml

# Vehicles inserted per hour, 00-01 to 23-24 (a working day).
rates="45 30 24 24 45 150 420 720 660 450 390 420 450 420 450 570 690 720 540 360 270 210 135 75"
python3 "$tools/randomTrips.py" -n stockholm.net.xml -o stockholm.trips.xml \
  --begin 0 --end 86400 --insertion-rate $rates \
  --fringe-factor 10 --min-distance 300 --validate --seed "$seed" \
  --trip-attributes 'departLane="best" departSpeed="max"' >/dev/null
duarouter -n stockholm.net.xml --route-files stockholm.trips.xml \
  -o stockholm.rou.xml --ignore-errors --no-warnings --seed "$seed" >/dev/null

cat > stockholm.sumocfg <<CFG
<configuration>
  <input>
    <net-file value="stockholm.net.xml"/>
    <route-files value="stockholm.rou.xml"/>
  </input>
  <time>
    <begin value="0"/>
    <step-length value="1"/>
  </time>
  <processing>
    <time-to-teleport value="300"/>
  </processing>
  <random_number>
    <seed value="$seed"/>
  </random_number>
</configuration>
CFG
echo "$out/stockholm.sumocfg: $(grep -c '<tlLogic' stockholm.net.xml) traffic lights, $(grep -c '<edge id="[^:]' stockholm.net.xml) edges, $(grep -c '<vehicle ' stockholm.rou.xml) vehicles"
