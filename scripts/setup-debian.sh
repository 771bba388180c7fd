#!/usr/bin/env bash
# Installs the Debian packages Tvilling needs to build, run and test (idempotent).
# Rust itself comes from rustup (rustc 1.95); Debian's cargo is too old.
set -euo pipefail
packages=(
  # build: PROJ (proj-sys links Debian's libproj via pkg-config; bindgen needs libclang), mold
  pkg-config libproj-dev libclang-dev clang mold
  # window and Vulkan (software rendering through Mesa when there is no GPU)
  libx11-dev libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libvulkan1 mesa-vulkan-drivers
  # tests: a virtual X display, PROJ's cs2cs and GDAL's ogr2ogr as reference peers
  xvfb xauth proj-bin gdal-bin
  # a real MQTT broker and its command-line clients for the live-source tests
  mosquitto mosquitto-clients
  # openssl makes the test CA and certificates for the TLS listener
  openssl
  # screenshot tests read the panels' text with OCR
  tesseract-ocr
  # traffic co-simulation: SUMO (TraCI server, netconvert, duarouter) and its tools
  # (randomTrips.py), for scripts/sumo-network.sh and the TraCI tests
  sumo sumo-tools
  # the shared store's tests start a real PostgreSQL 15 server (initdb, pg_ctl) themselves
  postgresql-15 postgresql-client-15
  # the Parquet export is read back by an independent reader (pyarrow, from PyPI, in a venv)
  python3-venv
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 with rustup first" >&2; exit 1; }
# pyarrow reads the Parquet exports in the tests (an independent reader of the format).
py="${TVILLING_PYTHON_ENV:-$HOME/.cache/tvilling-py}"
if ! "$py/bin/python" -c "import pyarrow.parquet" 2>/dev/null; then
  python3 -m venv "$py"
  "$py/bin/pip" install -q --disable-pip-version-check "pyarrow>=14"
fi
