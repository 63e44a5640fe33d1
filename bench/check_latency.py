"""How long does `python -m workbook check N` take, keypress to verdict? (DESIGN §9)

Budgets: `check N --quick` median ≤ 1.0 s, the full `check N` median ≤ 5 s, for every step.

    python bench/check_latency.py [--runs 5] [--solution]

Runs the real command in a fresh process, for every step, against the starters (steps/, a
learner's first check) or the solutions, twice over: `check N --quick` (the verdict on the
step's own exercises, the first thing a learner sees) and the full `check N` (then the earlier
lessons and the attacks over real HTTP). Prints the median and the worst run of each, the
median CPU-seconds of the full check (user + system of `check` and every process it waited
for), and the load average at the start and the end: other work on the machine lengthens wall
times, CPU-seconds much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbook.course import load  # noqa: E402

QUICK_BUDGET = 1.0
FULL_BUDGET = 5.0


def cpu_seconds() -> float:
    try:
        import resource  # POSIX
    except ImportError:
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except (OSError, AttributeError):  # Windows has no load average
        return "?"


def timed(command, env, runs):
    times, cpus, codes = [], [], set()
    for _ in range(runs):
        cpu, started = cpu_seconds(), time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
        cpus.append(cpu_seconds() - cpu)
        codes.add(done.returncode)
    verdict = "passes" if codes == {0} else "fails" if codes == {1} else f"exit codes {sorted(codes)}"
    return statistics.median(times), max(times), verdict, statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--solution", action="store_true", help="check solutions/ instead of steps/")
    args = parser.parse_args()
    # Keep the learner's own progress (.workbook/) out of it.
    env = {**os.environ, "WORKBOOK_STATE_DIR": tempfile.mkdtemp(prefix="bench-state-")}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} runs each, "
          f"target {'solutions' if args.solution else 'steps'}/, load average {load_average()}")
    print(f"{'step':<26}{'--quick median':>15}{'worst':>8}{'full median':>13}{'worst':>8}{'full CPU-s':>12}  verdict")
    worst_quick = worst_full = 0.0
    for step in load().steps:
        base = [sys.executable, "-m", "workbook", "check", str(step.number)] + (["--solution"] if args.solution else [])
        quick = timed(base + ["--quick"], env, args.runs)
        full = timed(base, env, args.runs)
        worst_quick = max(worst_quick, quick[0])
        worst_full = max(worst_full, full[0])
        print(f"{step.slug:<26}{quick[0]:>14.2f}s{quick[1]:>7.2f}s{full[0]:>12.2f}s{full[1]:>7.2f}s"
              f"{full[3]:>11.1f}s  {full[2]}")
    within = worst_quick <= QUICK_BUDGET and worst_full <= FULL_BUDGET
    print(f"worst --quick median {worst_quick:.2f} s (budget {QUICK_BUDGET:.1f} s), worst full median "
          f"{worst_full:.2f} s (budget {FULL_BUDGET:.1f} s): {'within' if within else 'OVER'}; "
          f"load average {load_average()}")
    return 0 if within else 1

if __name__ == "__main__":
    sys.exit(main())
