"""Wall time of the README's test command, `python -m pytest` (budget: 90 s on 2 cores, DESIGN §9).

    python bench/full_suite.py [--runs 1]

Prints the wall time of each run, pytest's own summary line, and the ten slowest tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET = 90.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    walls = []
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "--durations=10", "-q"],
                              cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - started
        walls.append(wall)
        lines = done.stdout.strip().splitlines()
        print(f"run {run}: {wall:.1f} s wall, exit {done.returncode}: {lines[-1] if lines else '?'}")
        if run == 1:
            slowest = [line for line in lines if line.split(" ")[0].endswith("s") and "::" in line][:10]
            print("  slowest:\n    " + "\n    ".join(slowest))
    best = min(walls)
    print(f"best {best:.1f} s; budget {BUDGET:.0f} s: {'within' if best <= BUDGET else 'OVER'}")
    return 0 if best <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
