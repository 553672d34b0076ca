#!/usr/bin/env bash
# The Python package: build its wheel (maturin, release), install it into a fresh virtual
# environment, check that `import httpfleet` works there, and run its tests (pytest) with that
# environment against the interop servers (scripts/interop.sh, started and stopped here).
#
#   bash scripts/python.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TARGET_DIR=$TARGET
CACHE=${HTTPFLEET_INTEROP_CACHE:-$TARGET/interop}
DIR=$PWD/target/interop-python
TOOLS=$CACHE/python-tools
FRESH=$TARGET/python-venv
WHEELS=$TARGET/wheels

# The servers first: starting them installs what is missing (python3-venv included).
trap 'bash scripts/interop.sh stop "$DIR" || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/interop.sh start "$DIR" >/dev/null
# shellcheck source=/dev/null
source "$DIR/env"

# maturin, kept between runs.
[[ -x $TOOLS/bin/maturin ]] || {
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q "maturin>=1.5,<2"
}
rm -rf "$WHEELS"
# The wheel links the system's libcurl, as the crate does: not repaired into a manylinux one.
"$TOOLS/bin/maturin" build --release --auditwheel skip -m python/Cargo.toml -o "$WHEELS"

# A fresh environment with nothing but the wheel and the test tools.
rm -rf "$FRESH"
python3 -m venv "$FRESH"
"$FRESH/bin/pip" install -q "$WHEELS"/httpfleet-*.whl "pytest>=8" "pytest-asyncio>=0.23" uvloop
(cd /tmp && "$FRESH/bin/python" -c 'import httpfleet; print("import httpfleet", httpfleet.__version__, "from", httpfleet.__file__)')

# importlib mode: the tests import the installed wheel, never the source tree.
"$FRESH/bin/python" -m pytest -c python/pyproject.toml --rootdir python --import-mode=importlib \
    -p no:cacheprovider python/tests "$@"
