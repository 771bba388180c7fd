#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, App tests, integration tests against cs2cs,
# ogr2ogr and the shared data, and screenshot tests under Xvfb with Mesa's software Vulkan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
# Build artefacts outside the clone, so repeated runs (and CI) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tvilling-target}"
cargo fmt --all -- --check
cargo test --profile ci --workspace --locked
