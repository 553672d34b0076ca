#!/usr/bin/env bash
# Instructions per request, each client used directly (bare, and with its own deadline: the
# "direct" column) against httpfleet over it, for every backend and surface, counted by
# valgrind's callgrind (all threads of the client process; the server runs in another process). Instruction counts repeat to a few instructions per request
# whatever else the machine does, unlike wall-clock time.
#
# Per request = (I(N2) - I(N1)) / (N2 - N1): start-up and warm-up cancel out.
#   bash scripts/instructions.sh [BACKEND...]      (default: curl reqwest hyper ureq)
# VARY=1 gives every request its own URL (`?n=<i>`) on every side, instead of repeating one.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }
N1=${N1:-200}
N2=${N2:-1200}
RUNS=${RUNS:-1}
cargo build --release --features cli --bin httpfleet >/dev/null 2>&1
BIN=${CARGO_TARGET_DIR:-target}/release/httpfleet
url_file=$(mktemp)
"$BIN" serve --workers 1 >"$url_file" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$url_file"' EXIT
for _ in $(seq 50); do [ -s "$url_file" ] && break; sleep 0.1; done
url="$(head -n1 "$url_file")/small"

count() { # backend mode surface n
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" instr \
    --backend "$1" --mode "$2" --surface "$3" --url "$url" --requests "$4" ${VARY:+--vary} 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n1
}

per_request() { # backend mode surface
  local a b
  a=$(count "$1" "$2" "$3" "$N1")
  b=$(count "$1" "$2" "$3" "$N2")
  echo $(( (b - a) / (N2 - N1) ))
}

backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(curl reqwest hyper ureq)
printf "%-8s %-9s %10s %10s %10s %12s %12s\n" backend surface bare direct httpfleet "vs direct" "vs bare"
for backend in "${backends[@]}"; do
  for surface in async blocking; do
    for run in $(seq "$RUNS"); do
      b=$(per_request "$backend" bare "$surface")
      d=$(per_request "$backend" direct "$surface")
      h=$(per_request "$backend" httpfleet "$surface")
      printf "%-8s %-9s %10s %10s %10s %12s %12s\n" "$backend" "$surface" "$b" "$d" "$h" \
        "$(python3 -c "print(f'{$h/$d:.4f}')")" "$(python3 -c "print(f'{$h/$b:.4f}')")"
    done
  done
done
