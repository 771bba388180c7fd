#!/usr/bin/env bash
# The shared alarm book's figures (tests/bench/store.rs) against a real PostgreSQL 15 server
# started here on a free loopback port (as the postgres user when run as root, which
# PostgreSQL requires), in a temporary folder removed at the end. Release build.
# Last line, from the bench: ack_p50_ms=... ack_p99_ms=... notify_p50_ms=... notify_p99_ms=...
# record_per_s=... copy_rows_per_s=...
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tvilling-target}"
bin=/usr/lib/postgresql/15/bin
cargo bench -p tvilling_twin --bench store --no-run
dir=$(mktemp -d /tmp/tvilling-bench-store.XXXXXX)
as_server=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$dir"
  as_server=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() { "${as_server[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap stop EXIT
"${as_server[@]}" "$bin/initdb" -D "$dir/data" -U owner --auth=trust -E UTF8 --locale=C >/dev/null
"${as_server[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
  -o "-p $port -c listen_addresses=127.0.0.1 -k $dir" -w start >/dev/null
"${as_server[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U owner city
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (fsync on, the server's defaults)"
TVILLING_BENCH_STORE="postgres://owner@127.0.0.1:$port/city" cargo bench -q -p tvilling_twin --bench store
