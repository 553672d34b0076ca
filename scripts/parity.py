#!/usr/bin/env python3
"""Builds the generated tables of the docs from what the tests ran:

- the parity table (docs/parity.md, between `<!-- parity:begin -->` and `<!-- parity:end -->`):
  rows are the conformance and interop behaviours, columns the backends, cells `pass` (async and
  blocking surfaces both passed), `unsupported` (the test asserted the backend's Unsupported
  error), `FAIL` or `-` (not run). A test named `backend::surface::name` is a row of its file's
  suite; one named `group::backend::surface::name` (the conformance suite's `streaming` group) a
  row of suite `group`;
- the fault table (with --faults; docs/faults.md, between `<!-- faults:begin -->` and
  `<!-- faults:end -->`): rows are the faults of tests/faults.rs, columns the backends, cells the
  error kind and the measured time to it on the async / blocking surface.

    python3 scripts/parity.py LOG [--unsupported FILE] [--faults FILE] --write docs/parity.md docs/faults.md
    python3 scripts/parity.py LOG [--unsupported FILE] [--faults FILE] --check docs/parity.md docs/faults.md

--write and --check take one or more files and replace, in each, whichever of the two sections
it holds; each table must have a section in one of them (the fault table only with --faults).
--check compares the fault table's kinds only (its timings differ from run to run).

LOG is the output of `cargo test --all-features` (scripts/test.sh writes $CARGO_TARGET_DIR/test.log);
the other files are written by the tests into the target dir's tmp/.
"""
import argparse
import json
import re
import sys

BACKENDS = ["curl", "reqwest", "hyper", "ureq"]
SUITES = {"conformance": "conformance", "interop": "interop"}
BEGIN, END = "<!-- parity:begin -->", "<!-- parity:end -->"
FBEGIN, FEND = "<!-- faults:begin -->", "<!-- faults:end -->"
# `[group::]backend::surface::name ... outcome`; a group (a module of the suite, such as
# `streaming`) is the row's suite.
TEST = re.compile(
    r"test (?:(\w+)::)?(\w+)::(async_surface|blocking_surface)::(\w+) \.\.\. (\w+)")


def parse(log_text):
    suite = None
    results = {}  # (suite, name) -> backend -> list of outcomes
    for line in log_text.splitlines():
        m = re.search(r"Running (?:tests/)?(\w+)\.rs", line)
        if m:
            suite = SUITES.get(m.group(1))
            continue
        m = TEST.match(line)
        if m and suite:
            group, backend, _, name, outcome = m.groups()
            if backend in BACKENDS:
                key = (group or suite, name)
                results.setdefault(key, {}).setdefault(backend, []).append(outcome)
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


def replace_section(text, begin, end, body):
    return text[: text.index(begin)] + f"{begin}\n{body}\n{end}" + text[text.index(end) + len(end):]


def holds(text, begin, end):
    return begin in text and end in text


def strip_times(text):
    """The text without the fault table's timings, which differ from run to run."""
    return re.sub(r" · [^|]*", "", text)


def main():
    ap = argparse.ArgumentParser(
        description="Builds the parity and fault tables from a test run, and writes them into "
        "(--write) or checks them against (--check) the files that hold their sections.")
    ap.add_argument("log", help="output of `cargo test --all-features` (scripts/test.sh's test.log)")
    ap.add_argument("--unsupported", default="target/tmp/parity-unsupported.txt",
                    help="parity-unsupported.txt written by the tests")
    ap.add_argument("--faults", help="faults-report.jsonl written by tests/faults.rs")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", nargs="+", metavar="FILE",
                      help="replace the sections each FILE holds")
    mode.add_argument("--check", nargs="+", metavar="FILE",
                      help="fail when a section of a FILE differs from the run")
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
    try:
        faults = fault_table(args.faults) if args.faults else None
    except FileNotFoundError:
        sys.exit(f"parity: no fault report at {args.faults} (tests/faults.rs writes it)")
    targets = args.write or args.check
    if not targets:
        print(parity)
        if faults:
            print(faults)
        return
    sections = [("parity", BEGIN, END, parity)]
    if faults is not None:
        sections.append(("fault", FBEGIN, FEND, faults))
    placed = set()
    stale = []
    for target in targets:
        text = open(target, encoding="utf-8").read()
        new = text
        for name, begin, end, body in sections:
            if holds(new, begin, end):
                new = replace_section(new, begin, end, body)
                placed.add(name)
        if args.write:
            if new != text:
                open(target, "w", encoding="utf-8").write(new)
                print(f"parity: wrote {target}")
            else:
                print(f"parity: {target} unchanged")
        elif strip_times(new) != strip_times(text):
            stale.append(target)
    for name, begin, end, _ in sections:
        if name not in placed:
            sys.exit(f"parity: none of {', '.join(targets)} has a {begin} ... {end} section "
                     f"for the {name} table")
    if stale:
        faults_arg = f" --faults {args.faults}" if args.faults else ""
        sys.exit(f"parity: {', '.join(stale)} differ from what the tests ran; run: "
                 f"python3 scripts/parity.py {args.log}{faults_arg} --write {' '.join(targets)}")
    if args.check:
        print(f"parity: {', '.join(targets)} match the {len(results)} behaviours the tests ran")


if __name__ == "__main__":
    main()
