"""Grade a class of 30 mixed submissions × all steps (budget: 2 minutes on 2 cores, DESIGN §9).

    python bench/grade_class.py [--students 30] [--distinct] [--trusted]

Builds the class in a scratch folder — perfect ones, untouched starters, half-done ones, and
hostile ones (an endless loop, os._exit, a cheating conftest.py, a zip with ../ paths) — then
runs the real grader on it and prints the wall time, the slowest students and the peak memory.
Byte-identical copies (the perfect ones, the untouched starters...) are graded by one run each
(workbook/grading/run.py); `--distinct` makes every copy differ, to measure 30 runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbook import exercises  # noqa: E402
from workbook.course import SOLUTIONS, load  # noqa: E402
from workbook.grading import grade_class  # noqa: E402

BUDGET = 120.0


def build(root: Path, students: int, distinct: bool = False) -> None:
    """``distinct``: every student's copy differs from every other's (a comment with their name in each
    step), so that no two share a run: what a class of 30 different submissions costs."""
    course = load()
    kinds = ["perfect", "starter", "half", "perfect", "starter", "half", "loop", "exit", "cheat", "zip"]
    for i in range(students):
        kind = kinds[i % len(kinds)]
        dest = root / f"s{i:02d}-{kind}"
        for n, step in enumerate(course.steps, start=1):
            done = kind in ("perfect", "zip") or (kind == "half" and n <= len(course.steps) // 2)
            if done:
                shutil.copytree(step.folder(SOLUTIONS), dest / step.slug, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                exercises.write_starter(step, course, steps_root=dest)
        if distinct:
            for step in course.steps:
                with open(dest / step.slug / "__init__.py", "a", encoding="utf-8") as fh:
                    fh.write(f"\n# {dest.name}\n")
        first = dest / course.steps[0].slug / "__init__.py"
        marker = "    app = Flask(__name__, instance_relative_config=True)\n"
        hostile = {"loop": "    while True:\n        pass\n", "exit": "    import os\n    os._exit(0)\n"}.get(kind)
        if hostile:
            first.write_text(first.read_text("utf-8").replace(marker, hostile + marker, 1), encoding="utf-8")
        if kind == "cheat":
            (dest / "conftest.py").write_text("def pytest_runtest_logreport(report):\n    report.outcome = 'passed'\n")
        if kind == "zip":
            with zipfile.ZipFile(root / f"{dest.name}.zip", "w") as zf:
                for path in dest.rglob("*"):
                    if path.is_file():
                        zf.write(path, f"{dest.name}/steps/{path.relative_to(dest).as_posix()}")
                zf.writestr("../escape.txt", "x")
            shutil.rmtree(dest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--trusted", action="store_true", help="without the sandbox (to measure what it costs)")
    parser.add_argument("--distinct", action="store_true",
                        help="no two submissions byte-identical (each graded by a run of its own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        subs, out = Path(scratch) / "submissions", Path(scratch) / "out"
        subs.mkdir()
        build(subs, args.students, args.distinct)
        peak = {"kb": 0}
        stop = threading.Event()

        def sample():  # the sum of the resident memory of every process now running
            while not stop.wait(0.5):
                total = 0
                for status in Path("/proc").glob("[0-9]*/status"):
                    try:
                        for line in status.read_text().splitlines():
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1])
                    except OSError:
                        pass
                peak["kb"] = max(peak["kb"], total)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load_before = os.getloadavg()
        started = time.perf_counter()
        grades = grade_class(subs, out, trusted=args.trusted)
        wall = time.perf_counter() - started
        stop.set()
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs = len({g.content for g in grades if g.content and g.tests and not g.cached})
        print(f"{len(grades)} students x {len(load().steps)} steps: {wall:.1f} s wall, "
              f"{child.ru_utime + child.ru_stime:.0f} s CPU in the grading processes"
              + ("" if args.trusted else " outside the sandboxes (bwrap's children are not counted: --trusted counts all)"))
        print(f"{runs} grading runs: one per distinct graded copy "
              f"({'--distinct: none shared' if args.distinct else 'byte-identical copies share one'})")
        print(f"peak resident memory of the whole machine during grading: {peak['kb'] / 1024:.0f} MiB; "
              f"largest single process: {child.ru_maxrss / 1024:.0f} MiB")
        for g in grades:  # an honest submission that lost points: say which check, and why
            if g.student.split("-", 1)[1] in ("perfect", "zip") and g.total < sum(g.maximum.values()):
                lost = [f"{t.nodeid.split('::')[-1]}: {t.reason[:120]}" for t in g.tests if not t.passed and not t.skipped]
                print(f"  LOST POINTS: {g.student}: {lost[:3]} {g.flags}")
        for g in sorted(grades, key=lambda g: -g.seconds)[:5]:
            print(f"  slowest: {g.student:<16} {g.seconds:6.1f} s  {g.total:g} points  {'; '.join(g.notes)[:70]}")
        by_kind = {}
        for g in grades:
            by_kind.setdefault(g.student.split("-", 1)[1], set()).add(g.total)
        print("points by kind:", {k: sorted(v) for k, v in sorted(by_kind.items())})
        print(f"load average before/after: {load_before} / {os.getloadavg()}")
        print(f"budget {BUDGET:.0f} s: {'within' if wall <= BUDGET else 'OVER'}")
        return 0 if wall <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
