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
#     each client used directly as its docs show it (bare, and with its own deadline: the
#     "direct" column) against httpfleet over it sending the same wire (no headers of its own,
#     the client's defaults as default headers: `bench::same_wire`), and httpfleet with its
#     default headers ("defaults"), for every backend and surface.
#   ROUTE=get-1MiB ...   the 1 MiB GET (the body read whole) instead of the 13-byte one.
#   VARY=1 ...   every request gets its own URL (`?n=<i>`) on every side, instead of one repeated.
#   STREAM=1 ROUTE=get-1MiB ...   each body read piece by piece as it streams (httpfleet's
#     `chunk()` against the client's own streaming read) instead of whole.
#   FLEET=1 bash scripts/instructions.sh
#     every fleet strategy over two healthy hyper members (with base URLs, and without: whole
#     URLs) against one hyper client over the same backend, in one process, their batches
#     interleaved with an A/A control (`instr --mode ab`); per request, the fleet's count less
#     the cheaper of the two single-client batches, the mean and range over heap layouts
#     $FLEET_LAYOUTS (default: $LAYOUTS), and the control less the first single batch.
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
url="$(head -n1 "$url_file")"
ROUTE=${ROUTE:-get-13B}

count() { # n layout instr-args...
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" instr --url "$url" \
    --route "$ROUTE" --requests "$1" --heap-layout "$2" "${@:3}" ${VARY:+--vary} \
    ${STREAM:+--stream} 2>&1 \
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
  # One process per strategy, URL form and heap layout: a single hyper client and a fleet of
  # two members share one backend (one connection pool, one connection), and their batches
  # alternate, single / fleet / single again (the A/A control), each in a function of its own
  # (`instr --mode ab`): callgrind's inclusive cost of each function is its requests' alone,
  # measured on one heap. Warm-up (connections, a full retry budget) runs outside them.
  REQ=${REQ:-1500}
  BATCH=${BATCH:-500}
  FLEET_LAYOUTS=(${FLEET_LAYOUTS:-${LAYOUTS[*]}})
  configs=("single" "failover" "round-robin" "random" "adaptive" "hedged")
  ab() { # layout strategy [--whole-url] -> "single fleet control" per request
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" instr --url "$url" \
      --requests "$REQ" --batch "$BATCH" --heap-layout "$1" --backend hyper --surface async \
      --mode ab --strategy "$2" "${@:3}" >/dev/null 2>&1
    callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$out" 2>/dev/null \
      | awk -v n="$REQ" '/httpfleet::ab_(single|fleet|control) /{gsub(",", "", $1)
          if ($0 ~ /ab_single/) a = $1; if ($0 ~ /ab_fleet/) b = $1; if ($0 ~ /ab_control/) c = $1}
          END {printf "%.1f %.1f %.1f", a / n, b / n, c / n}'
    rm -f "$out"
  }
  printf "%-12s %-11s %10s %14s %10s %16s\n" strategy URLs single "fleet - single" "(ratio)" \
    "control - single"
  for cfg in "${configs[@]}"; do
    for whole in "" "--whole-url"; do
      singles=(); overs=(); controls=()
      for layout in "${FLEET_LAYOUTS[@]}"; do
        read -r a b c <<<"$(ab "$layout" "$cfg" $whole)"
        singles+=("$a")
        # Against the cheaper of the two single-client batches: a layout that makes one of them
        # dearer (the control shows it) does not make the fleet look cheaper.
        overs+=("$(python3 -c "print(round($b - min($a, $c), 1))")")
        controls+=("$(python3 -c "print(round($c - $a, 1))")")
      done
      sm=$(printf '%s\n' "${singles[@]}" | awk '{s+=$1} END {printf "%.0f", s/NR}')
      om=$(printf '%s\n' "${overs[@]}" | awk '{s+=$1} END {printf "%.0f", s/NR}')
      cm=$(printf '%s\n' "${controls[@]}" | awk '{s+=$1} END {printf "%.0f", s/NR}')
      printf "%-12s %-11s %10s %8s [%s] (%5.2f%%) %6s\n" "$cfg" "$([ -n "$whole" ] && echo whole || echo base)" \
        "$sm" "+$om" "$(range "${overs[@]}")" "$(python3 -c "print($om/$sm*100)")" "$cm"
    done
  done
  exit 0
fi

N1=${N1:-200}
N2=${N2:-1200}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(curl reqwest hyper ureq)
printf "%-8s %-9s %10s %10s %10s %10s %12s %12s\n" backend surface bare direct httpfleet \
  defaults "vs direct" "defaults vs"
for backend in "${backends[@]}"; do
  for surface in async blocking; do
    bs=(); ds=(); hs=(); fs=()
    for layout in "${LAYOUTS[@]}"; do
      for mode in bare direct httpfleet httpfleet-defaults; do
        n=$(per_request "$N1" "$N2" "$layout" --backend "$backend" --surface "$surface" --mode "$mode")
        case $mode in bare) bs+=("$n");; direct) ds+=("$n");; httpfleet) hs+=("$n");; *) fs+=("$n");; esac
      done
    done
    b=$(mean "${bs[@]}"); d=$(mean "${ds[@]}"); h=$(mean "${hs[@]}"); f=$(mean "${fs[@]}")
    printf "%-8s %-9s %10s %10s %10s %10s %12s %12s\n" "$backend" "$surface" "$b" "$d" "$h" "$f" \
      "$(ratio "$h" "$d")" "$(ratio "$f" "$d")"
  done
done
