"""How long does `python -m workbook check N` take, keypress to verdict? (budget: 2 s, DESIGN §9)

    python bench/check_latency.py [--runs 7] [--solution]

Runs the real command in a fresh process each time, for every step, against the starters
(steps/, as a learner's first check) or the solutions, and prints the median and the worst run.
"""

from __future__ import annotations

import argparse
import statistics
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbook.course import load  # noqa: E402

BUDGET = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--solution", action="store_true", help="check solutions/ instead of steps/")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.runs} runs per step, "
          f"target {'solutions' if args.solution else 'steps'}/")
    print(f"{'step':<26}{'median':>9}{'worst':>9}  verdict")
    worst_median = 0.0
    # Keep the learner's own progress (.workbook/) out of it.
    env = {**os.environ, "WORKBOOK_STATE_DIR": tempfile.mkdtemp(prefix="bench-state-")}
    for step in load().steps:
        command = [sys.executable, "-m", "workbook", "check", str(step.number)]
        if args.solution:
            command.append("--solution")
        times, codes = [], set()
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run(command, cwd=REPO, capture_output=True, env=env)
            times.append(time.perf_counter() - started)
            codes.add(done.returncode)
        median = statistics.median(times)
        worst_median = max(worst_median, median)
        verdict = "passes" if codes == {0} else "fails" if codes == {1} else f"exit codes {sorted(codes)}"
        print(f"{step.slug:<26}{median:>8.2f}s{max(times):>8.2f}s  {verdict}")
    print(f"worst median {worst_median:.2f} s; budget {BUDGET:.1f} s: "
          f"{'within' if worst_median <= BUDGET else 'OVER'}")
    return 0 if worst_median <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
