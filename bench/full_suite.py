"""Wall time of the README's test command, `python -m pytest` (budget: 90 s on 2 cores, DESIGN §9).

    python bench/full_suite.py [--runs 1] [--hog]

Prints the wall time of each run with the CPU-seconds it used (user + system, this process's
children: pytest, its workers and everything they waited for; processes in a bubblewrap sandbox
are not counted) and the machine's load average before and after it (other work on the machine
makes wall times longer; CPU-seconds much less so), pytest's own summary line, and the ten
slowest tests.

``--hog`` keeps one core busy with another process for the whole run (a pure-Python busy loop,
as a browser or a video call would), to show that no test depends on having the machine to
itself: the run must still pass, only slower. The budget applies to the quiet run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET = 90.0


def load() -> str:
    try:
        return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except (OSError, AttributeError):  # Windows has no load average
        return "load ?"


def cpu_seconds() -> float:
    try:
        import resource  # POSIX
    except ImportError:
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_loop() -> None:  # the other process: one core at 100 %
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--hog", action="store_true", help="keep one core busy with another process")
    args = parser.parse_args()
    hog = None
    if args.hog:
        hog = multiprocessing.Process(target=busy_loop, daemon=True)
        hog.start()
        print(f"one core kept busy by process {hog.pid}")
    walls, codes = [], []
    try:
        for run in range(1, args.runs + 1):
            before, cpu, started = load(), cpu_seconds(), time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "pytest", "--durations=10", "-q"],
                                  cwd=REPO, capture_output=True, text=True)
            wall = time.perf_counter() - started
            cpu = cpu_seconds() - cpu
            walls.append(wall)
            codes.append(done.returncode)
            lines = done.stdout.strip().splitlines()
            print(f"run {run}: {wall:.1f} s wall, {cpu:.0f} CPU-s ({before} before, {load()} after), "
                  f"exit {done.returncode}: {lines[-1] if lines else '?'}")
            if done.returncode != 0:
                failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
                print("  " + "\n  ".join(failed[:20] or lines[-30:]))
            if run == 1:
                slowest = [line for line in lines if line.split(" ")[0].endswith("s") and "::" in line][:10]
                print("  slowest:\n    " + "\n    ".join(slowest))
    finally:
        if hog is not None:
            hog.terminate()
            hog.join()
    best = min(walls)
    passed = all(code == 0 for code in codes)
    if args.hog:
        print(f"with one core busy: best {best:.1f} s, {'passed' if passed else 'FAILED'} "
              f"(the {BUDGET:.0f} s budget is for a quiet machine)")
        return 0 if passed else 1
    print(f"best {best:.1f} s; budget {BUDGET:.0f} s: {'within' if best <= BUDGET else 'OVER'}")
    return 0 if passed and best <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
