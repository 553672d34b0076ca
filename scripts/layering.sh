#!/usr/bin/env bash
# Structure checks, run by .ci/run before the tests (docs/architecture.md says why):
#   1. shared types (src/config, src/request, src/response, src/error.rs, src/url.rs,
#      src/headers.rs, src/kind.rs) name nothing of crate::backend, crate::fleet, crate::client
#      or crate::exchange;
#   2. src/backend names nothing of crate::client, crate::fleet or crate::exchange;
#   3. src/fleet names nothing of crate::client;
#   4. no .rs file under src/ is over 800 lines;
#   5. README.md is at most 12288 bytes.
# A path counts wherever it appears in code (a `use` line, `crate::backend::block_on(..)` in a
# body, a `use crate::{backend::..}` group), and so does a type the crate root re-exports from
# such a module (`crate::Client`, `crate::Backend`); comment lines (doc links) do not.
# Prints every violation and exits 1 if there is any.
set -uo pipefail
cd "$(dirname "$0")/.."

MAX_LINES=800
MAX_README=12288
fail=0

# forbid WHAT NAMES PATH...: every code line under PATH... that names one of NAMES (an
# alternation of modules and of the types the crate root re-exports from them, such as
# `fleet|FleetBuilder`) as crate::NAME, or at the top of a `use crate::{..}` group.
forbid() {
  local what=$1 names=$2
  shift 2
  local hits
  hits=$(grep -rnE --include='*.rs' \
      "crate::($names)\b|use crate::\{([^}]*[{,[:space:]])?($names)\b" "$@" 2>/dev/null \
    | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//')
  # A `use crate::{` group spread over lines (rustfmt ends it with a `};` line of its own).
  local f
  for f in $(grep -rlE --include='*.rs' 'use crate::\{[[:space:]]*$' "$@" 2>/dev/null); do
    hits+=$'\n'$(awk '/use crate::\{[[:space:]]*$/ {g=1; next} g && /^[[:space:]]*\};/ {g=0} g {print FILENAME ":" FNR ":" $0}' "$f" \
      | grep -E "^[^:]+:[0-9]+:(.*[{,[:space:]])?($names)\b")
  done
  if [ -n "${hits//$'\n'/}" ]; then
    echo "layering: $what"
    echo "$hits" | sed '/^$/d; s/^/  /'
    fail=1
  fi
}

forbid "shared types must not use backend, fleet, client or exchange" \
  'backend|fleet|client|exchange|Backend|Client|FleetBuilder|Member|Strategy' \
  src/config src/request src/response src/error.rs src/url.rs src/headers.rs src/kind.rs
forbid "backend must not use client, fleet or exchange" \
  'client|fleet|exchange|Client|FleetBuilder|Member|Strategy' src/backend
forbid "fleet must not use client" 'client|Client' src/fleet

long=$(find src -name '*.rs' -print0 | xargs -0 wc -l | awk -v max="$MAX_LINES" \
  '$2 != "total" && $1 > max {print "  " $2 ": " $1 " lines"}')
if [ -n "$long" ]; then
  echo "layering: files over $MAX_LINES lines"
  echo "$long"
  fail=1
fi

size=$(wc -c < README.md)
if [ "$size" -gt "$MAX_README" ]; then
  echo "layering: README.md is $size bytes, over $MAX_README"
  fail=1
fi

if [ "$fail" -eq 0 ]; then
  echo "layering: ok (module boundaries, files under $MAX_LINES lines, README $size bytes)"
fi
exit "$fail"
