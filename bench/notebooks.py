"""How long does each notebook take to execute, and does nbval still pass? (issue 18: ≤ 20 s each)

    python bench/notebooks.py [--runs 1] [N ...]

For each notebook (all, or the steps named), runs exactly what the test command runs on it, alone:
nbval with the course's sanitizer, in the current environment, one pytest process, no other work.
Prints the wall time of that run (its pytest start included, about a second), the time the kernel
spent in the notebook's cells (nbval's own test durations, summed) and the verdict. Other work on
the machine lengthens both; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbook.course import load  # noqa: E402

BUDGET = 20.0


def run_once(notebook: Path) -> tuple[float, float, str]:
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
               "-p", "tests.lean_imports", "-p", "no:schemathesis", "--nbval", "--nbval-current-env",
               "--nbval-sanitize-with=notebooks/sanitize.cfg", "-q", "--durations=0", "--durations-min=0",
               str(notebook.relative_to(REPO))]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    cells = sum(float(m.group(1)) for m in re.finditer(r"^(\d+\.\d+)s (?:call|setup|teardown)\s", done.stdout, re.M))
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
    return wall, cells, ("passes" if done.returncode == 0 else f"FAILS ({summary})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="*", type=int, help="step numbers (default: all)")
    parser.add_argument("--runs", type=int, default=1, help="runs per notebook; the median is shown")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    course = load()
    steps = [s for s in course.steps if not args.steps or s.number in args.steps]
    figures, worst = {}, 0.0
    print(f"{'notebook':28} {'wall':>7} {'cells':>7}  verdict")
    for step in steps:
        notebook = REPO / "notebooks" / step.notebook
        results = [run_once(notebook) for _ in range(args.runs)]
        wall = statistics.median(r[0] for r in results)
        cells = statistics.median(r[1] for r in results)
        verdicts = {r[2] for r in results}
        verdict = verdicts.pop() if len(verdicts) == 1 else "; ".join(sorted(verdicts | {"mixed"}))
        worst = max(worst, wall)
        figures[step.notebook] = {"wall_s": round(wall, 2), "cells_s": round(cells, 2), "verdict": verdict}
        print(f"{step.notebook:28} {wall:6.1f}s {cells:6.1f}s  {verdict}", flush=True)
    ok = worst <= BUDGET and all(f["verdict"] == "passes" for f in figures.values())
    print(f"\nslowest: {worst:.1f} s (budget {BUDGET:.0f} s each): {'within budget' if ok else 'NOT within budget'}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
