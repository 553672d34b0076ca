#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind over the client process (all its
# threads; the server runs in another process), from the release build (one codegen unit, so
# that a count does not move with how the compiler splits the crate).
#
# Per request = (I(N2) - I(N1)) / (N2 - N1): start-up and warm-up cancel out. What `malloc` and
# `memcpy` cost depends on where the heap happens to put each block, which moved a hyper GET by
# up to 300 instructions from one layout to the next (two modes, not a spread): every figure is
# the mean over several heap layouts (`instr --heap-layout L`, L in $LAYOUTS), the range over
# them beside it, and both sides of a comparison run over the same layouts.
#
#   bash scripts/instructions.sh [BACKEND...]   (default: curl reqwest hyper ureq)
#     each client used directly (bare, and with its own deadline: the "direct" column) against
#     httpfleet over it, for every backend and surface.
#   VARY=1 ...   every request gets its own URL (`?n=<i>`) on every side, instead of one repeated.
#   FLEET=1 bash scripts/instructions.sh
#     every fleet strategy over two healthy hyper members (with base URLs, and without: whole
#     URLs) against one hyper client; per layout the fleet's count less the client's, then the
#     mean (and range) over layouts. The fleet window starts past request 450, when its retry
#     budget is full.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }
LAYOUTS=(${LAYOUTS:-0 3 7 12 20 31 44 57 71 90})
cargo build --release --features cli --bin httpfleet >/dev/null 2>&1
BIN=${CARGO_TARGET_DIR:-target}/release/httpfleet
url_file=$(mktemp)
"$BIN" serve --workers 1 >"$url_file" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$url_file"' EXIT
for _ in $(seq 50); do [ -s "$url_file" ] && break; sleep 0.1; done
url="$(head -n1 "$url_file")/small"

count() { # n layout instr-args...
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" instr --url "$url" \
    --requests "$1" --heap-layout "$2" "${@:3}" ${VARY:+--vary} 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n1
}

per_request() { # n1 n2 layout instr-args...
  local a b
  a=$(count "$1" "$3" "${@:4}")
  b=$(count "$2" "$3" "${@:4}")
  echo $(( (b - a) / ($2 - $1) ))
}

mean() { printf '%s\n' "$@" | awk '{s+=$1} END {printf "%d", s/NR}'; }
range() { printf '%s\n' "$@" | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%d..%d", lo, hi}'; }
ratio() { python3 -c "print(f'{$1/$2:.4f}')"; }

if [ -n "${FLEET:-}" ]; then
  N1=${N1:-500}
  N2=${N2:-1500}
  configs=("single" "failover" "round-robin" "random" "adaptive" "hedged")
  declare -A over
  singles=()
  for layout in "${LAYOUTS[@]}"; do
    s=$(per_request "$N1" "$N2" "$layout" --backend hyper --surface async --mode httpfleet)
    singles+=("$s")
    for cfg in "${configs[@]}"; do
      for whole in "" "--whole-url"; do
        f=$(per_request "$N1" "$N2" "$layout" --backend hyper --surface async --mode fleet \
          --strategy "$cfg" $whole)
        over["$cfg$whole"]+="$((f - s)) "
      done
    done
  done
  single=$(mean "${singles[@]}")
  echo "one hyper client: $single per request (layouts ${LAYOUTS[*]}: ${singles[*]})"
  printf "%-12s %30s %30s\n" strategy "with base URLs" "without (whole URLs)"
  for cfg in "${configs[@]}"; do
    b=$(mean ${over[$cfg]})
    w=$(mean ${over[$cfg--whole-url]})
    printf "%-12s %8s (%5.2f%%) %12s %8s (%5.2f%%) %12s\n" "$cfg" \
      "+$b" "$(python3 -c "print($b/$single*100)")" "[$(range ${over[$cfg]})]" \
      "+$w" "$(python3 -c "print($w/$single*100)")" "[$(range ${over[$cfg--whole-url]})]"
  done
  exit 0
fi

N1=${N1:-200}
N2=${N2:-1200}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(curl reqwest hyper ureq)
printf "%-8s %-9s %10s %10s %10s %12s %12s\n" backend surface bare direct httpfleet "vs direct" "vs bare"
for backend in "${backends[@]}"; do
  for surface in async blocking; do
    bs=(); ds=(); hs=()
    for layout in "${LAYOUTS[@]}"; do
      bs+=("$(per_request "$N1" "$N2" "$layout" --backend "$backend" --surface "$surface" --mode bare)")
      ds+=("$(per_request "$N1" "$N2" "$layout" --backend "$backend" --surface "$surface" --mode direct)")
      hs+=("$(per_request "$N1" "$N2" "$layout" --backend "$backend" --surface "$surface" --mode httpfleet)")
    done
    b=$(mean "${bs[@]}"); d=$(mean "${ds[@]}"); h=$(mean "${hs[@]}")
    printf "%-8s %-9s %10s %10s %10s %12s %12s\n" "$backend" "$surface" "$b" "$d" "$h" \
      "$(ratio "$h" "$d")" "$(ratio "$h" "$b")"
  done
done
