#!/usr/bin/env python3
"""Builds README's parity table from what the tests ran: rows are the conformance and interop
behaviours, columns the backends, cells `pass` (async and blocking surfaces both passed),
`unsupported` (the test asserted the backend's Unsupported error), `FAIL` or `-` (not run).

    python3 scripts/parity.py LOG [--unsupported FILE] --write README.md
    python3 scripts/parity.py LOG [--unsupported FILE] --check README.md

LOG is the output of `cargo test --all-features` (scripts/test.sh writes target/test.log).
"""
import argparse
import re
import sys

BACKENDS = ["curl", "reqwest", "hyper", "ureq"]
SUITES = {"conformance": "conformance", "interop": "interop"}
BEGIN, END = "<!-- parity:begin -->", "<!-- parity:end -->"


def parse(log_text):
    suite = None
    results = {}  # (suite, name) -> backend -> list of outcomes
    for line in log_text.splitlines():
        m = re.search(r"Running (?:tests/)?(\w+)\.rs", line)
        if m:
            suite = SUITES.get(m.group(1))
            continue
        m = re.match(r"test (\w+)::(async_surface|blocking_surface)::(\w+) \.\.\. (\w+)", line)
        if m and suite:
            backend, _, name, outcome = m.groups()
            if backend in BACKENDS:
                results.setdefault((suite, name), {}).setdefault(backend, []).append(outcome)
    return results


def table(results, unsupported):
    rows = ["| suite | behaviour | " + " | ".join(BACKENDS) + " |",
            "|---|---|" + "---|" * len(BACKENDS)]
    for (suite, name) in sorted(results):
        cells = []
        for b in BACKENDS:
            outcomes = results[(suite, name)].get(b, [])
            if not outcomes:
                cells.append("-")
            elif any(o != "ok" for o in outcomes):
                cells.append("FAIL")
            elif (name, b) in unsupported:
                cells.append("unsupported")
            else:
                cells.append("pass" if len(outcomes) == 2 else "pass (one surface)")
        rows.append(f"| {suite} | `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--unsupported", default="target/tmp/parity-unsupported.txt")
    ap.add_argument("--write")
    ap.add_argument("--check")
    args = ap.parse_args()
    results = parse(open(args.log, encoding="utf-8", errors="replace").read())
    if not results:
        sys.exit("parity: no conformance or interop test results in " + args.log)
    unsupported = set()
    try:
        for line in open(args.unsupported, encoding="utf-8"):
            parts = line.split()
            if len(parts) == 2:
                unsupported.add((parts[0], parts[1]))
    except FileNotFoundError:
        pass
    block = f"{BEGIN}\n{table(results, unsupported)}\n{END}"
    target = args.write or args.check
    if not target:
        print(block)
        return
    text = open(target, encoding="utf-8").read()
    if BEGIN not in text or END not in text:
        sys.exit(f"parity: {target} has no {BEGIN} ... {END} section")
    new = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    if args.write:
        open(target, "w", encoding="utf-8").write(new)
        print(f"parity: wrote {len(results)} rows to {target}")
    elif new != text:
        sys.exit(f"parity: {target}'s parity table differs from what the tests ran; "
                 f"run: python3 scripts/parity.py {args.log} --write {target}")
    else:
        print(f"parity: {target} matches the {len(results)} behaviours the tests ran")


if __name__ == "__main__":
    main()
