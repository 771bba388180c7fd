# Sourced by the bench scripts (`source "$(dirname "$0")/bench-build.sh" "$1"`): moves to the
# repository root, builds the app with PROFILE (ci or release, default release) and sets
# $profile and $bin, the binary to measure.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tvilling-target}"
profile="${1:-release}"
cargo build --profile "$profile" -p tvilling
bin="$CARGO_TARGET_DIR/$profile/tvilling"
