#!/usr/bin/env bash
# The project's test command: start the interop servers (scripts/interop.sh: httpbin, nginx,
# tinyproxy on loopback, installed if missing), run `cargo test --all-features [ARGS...]`
# against them, always stop the servers, and exit with cargo's exit code.
# The output is kept in $CARGO_TARGET_DIR/test.log (for scripts/parity.py).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=$PWD/target/interop
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
trap 'bash scripts/interop.sh stop "$DIR" || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/interop.sh start "$DIR"
# shellcheck source=/dev/null
source "$DIR/env"

mkdir -p "$TARGET/tmp"
rm -f "$TARGET/tmp/parity-unsupported.txt" "$TARGET/tmp/faults-report.jsonl"
cargo test --all-features "$@" 2>&1 | tee "$TARGET/test.log"
exit "${PIPESTATUS[0]}"
