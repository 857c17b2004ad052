#!/usr/bin/env python3
"""Run a client against every case of the conformance suite and compare with expected.json.

    python conformance/run.py [--cases DIR] [--jobs N] -- COMMAND [ARG...]

For each case the harness runs ``COMMAND ARG... CASE_DIR``; the command prints one line,
``accept`` or ``refuse:<error class>``, and exits 0 (docs/conformance.md). The harness prints
one line per case that disagrees and a summary, and exits 1 unless every case agrees.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def outcome(command: list[str], case: Path) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - the command the user gave, by design
            [*command, str(case)], capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        return "crash: no answer in 600 s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or len(lines) != 1:
        return f"crash: exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
    return lines[0].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=Path("var/conformance"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the runner command after --")
    expected = json.loads((args.cases / "expected.json").read_text())["cases"]
    names = sorted(expected)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda name: outcome(command, args.cases / name), names))
    wrong = 0
    for name, got in zip(names, results, strict=True):
        want = expected[name]["expect"]
        if got != want:
            wrong += 1
            print(f"DISAGREES {name}: expected {want}, got {got}")
    print(f"{len(names) - wrong}/{len(names)} cases agree ({' '.join(command)})")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
