#!/usr/bin/env python3
"""Builds README's generated tables from what the tests ran:

- the parity table: rows are the conformance and interop behaviours, columns the backends, cells
  `pass` (async and blocking surfaces both passed), `unsupported` (the test asserted the
  backend's Unsupported error), `FAIL` or `-` (not run);
- the fault table (with --faults): rows are the faults of tests/faults.rs, columns the backends,
  cells the error kind and the measured time to it on the async / blocking surface.

    python3 scripts/parity.py LOG [--unsupported FILE] [--faults FILE] --write README.md
    python3 scripts/parity.py LOG [--unsupported FILE] [--faults FILE] --check README.md

LOG is the output of `cargo test --all-features` (scripts/test.sh writes target/test.log); the
other files are written by the tests into the target dir's tmp/.
"""
import argparse
import json
import re
import sys

BACKENDS = ["curl", "reqwest", "hyper", "ureq"]
SUITES = {"conformance": "conformance", "interop": "interop"}
BEGIN, END = "<!-- parity:begin -->", "<!-- parity:end -->"
FBEGIN, FEND = "<!-- faults:begin -->", "<!-- faults:end -->"


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


def fault_table(path):
    cells = {}  # case -> backend -> surface -> (outcome, ms)
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        cells.setdefault(r["case"], {}).setdefault(r["backend"], {})[r["surface"]] = (r["outcome"], r["ms"])
    rows = ["| fault | " + " | ".join(BACKENDS) + " |", "|---|" + "---|" * len(BACKENDS)]
    for case in sorted(cells):
        out = []
        for b in BACKENDS:
            by = cells[case].get(b, {})
            if not by:
                out.append("-")
                continue
            kinds = sorted({o for o, _ in by.values()})
            times = " / ".join(f"{by[s][1]} ms" for s in ("async", "blocking") if s in by)
            out.append(f"{' vs '.join(kinds)} · {times}")
        rows.append(f"| `{case}` | " + " | ".join(out) + " |")
    return "\n".join(rows)


def replace_section(text, begin, end, body, target):
    if begin not in text or end not in text:
        sys.exit(f"parity: {target} has no {begin} ... {end} section")
    return text[: text.index(begin)] + f"{begin}\n{body}\n{end}" + text[text.index(end) + len(end):]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--unsupported", default="target/tmp/parity-unsupported.txt")
    ap.add_argument("--faults", help="faults-report.jsonl written by tests/faults.rs")
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
    parity = table(results, unsupported)
    faults = fault_table(args.faults) if args.faults else None
    target = args.write or args.check
    if not target:
        print(parity)
        if faults:
            print(faults)
        return
    text = open(target, encoding="utf-8").read()
    new = replace_section(text, BEGIN, END, parity, target)
    if faults is not None:
        new = replace_section(new, FBEGIN, FEND, faults, target)
    if args.write:
        open(target, "w", encoding="utf-8").write(new)
        print(f"parity: wrote {len(results)} rows to {target}")
    elif args.faults is None and new != text:
        sys.exit(f"parity: {target}'s parity table differs from what the tests ran; "
                 f"run: python3 scripts/parity.py {args.log} --write {target}")
    elif args.faults is not None:
        # Timings differ from run to run: compare the fault table's kinds only.
        strip = lambda t: re.sub(r" · [^|]*", "", t)
        if strip(new) != strip(text):
            sys.exit(f"parity: {target}'s tables differ from what the tests ran; "
                     f"run: python3 scripts/parity.py {args.log} --faults FILE --write {target}")
    else:
        print(f"parity: {target} matches the {len(results)} behaviours the tests ran")


if __name__ == "__main__":
    main()
