#!/usr/bin/env bash
# Soak of the live pipeline (a benchmark, not a CI test):
#
#   scripts/soak.sh [MINUTES] [RATE]
#
# Mosquitto on a free loopback port (persistent sessions, nothing dropped for a client that is
# away); the twin with the whole city registered (150,000 lamps, 11,000 signal heads, 100,000
# meters, 100 air sensors) subscribed to SenML and ChirpStack topics; RATE messages/s (default
# 10,000) for MINUTES (default 10), 1% garbage; the broker restarted once in the middle. Prints
# the twin's RSS every 10 s, the RSS slope after warm-up (goal: flat within ±5%) and, per
# source, the accounting of every message sent (goal: none unaccounted).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
rate="${2:-10000}"
scripts/setup-debian.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tvilling-target}"
cargo bench -p tvilling_sensors --bench soak --no-run --locked 2>&1 | tail -1
bin=$(ls -t "$CARGO_TARGET_DIR"/release/deps/soak-* | grep -v '\.d$' | head -1)
dir=$(mktemp -d /tmp/tvilling-soak.XXXXXX)
# Mosquitto started as root drops to its own user: it must be able to save its database here.
chmod 0777 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $dir/
max_queued_messages 0
max_inflight_messages 0
CONF
broker() { mosquitto -c "$dir/mosquitto.conf" >> "$dir/broker.log" 2>&1 & echo $!; }
bpid=$(broker)
trap 'kill $bpid $tpid $ppid $spid 2>/dev/null || true' EXIT
sleep 1
echo "soak: $minutes min at $rate messages/s, Mosquitto on 127.0.0.1:$port, files in $dir"
"$bin" twin "$port" "$dir/sent.json" > "$dir/twin.log" 2>&1 &
tpid=$!
# The twin registers the city and connects before the first message.
until grep -q "devices registered" "$dir/twin.log"; do sleep 1; done
sleep 3
# The peer: mosquitto_sub with a persistent session at QoS 1 on the same topics, through the
# same restart; it tells whether a message the twin lacks ever left the broker.
mosquitto_sub -h 127.0.0.1 -p "$port" -c -i soak-peer -q 1 -v \
  -t 'soak/senml/#' -t 'application/+/device/+/event/up' > "$dir/peer.txt" 2> "$dir/peer.log" &
spid=$!
sleep 1
"$bin" publish "$port" "$minutes" "$rate" "$dir/sent.json" > "$dir/publisher.log" 2>&1 &
ppid=$!
half=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 30 }')
sleep "$half"
if [ "${SOAK_NO_RESTART:-}" = 1 ]; then
  echo "soak: no broker restart (SOAK_NO_RESTART=1)"
else
  echo "soak: restarting the broker at $half s"
  kill -TERM "$bpid"; wait "$bpid" 2>/dev/null || true
  bpid=$(broker)
fi
wait "$ppid"
wait "$tpid"
kill "$spid" 2>/dev/null || true
# Messages the peer received, a redelivered one counted once (each good payload carries its own
# millisecond time; repeated garbage is counted as often as it came).
python3 - "$dir/peer.txt" "$dir/sent.json" <<'PY'
import json, sys
timed, untimed = set(), 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        if b'"bt":' in line or b'"time":' in line:
            timed.add(line)
        else:
            untimed += 1
sent = json.load(open(sys.argv[2]))
acked = sum(v.get("acknowledged", 0) for v in sent.values())
got = len(timed) + untimed
print(f"peer mosquitto_sub (QoS 1, persistent session): {got} distinct messages of {acked} acknowledged by the broker; missing {acked - got}")
PY
grep -E "Saving|Error|Restored|restored" "$dir/broker.log" || true
cat "$dir/twin.log"
tail -2 "$dir/publisher.log"
