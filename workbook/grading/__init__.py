"""Grading a class: `python -m workbook grade SUBMISSIONS --out DIR` (and `grade merge`).

One concern per module:
- intake.py     submissions as instructors have them -> one plain copy of each student's steps
- bwrap.py      the OS sandbox (bubblewrap) every process running a student's code runs in
- host.py       the app host inside the sandbox; the protocol it speaks (tests/remote.py is the other side)
- rubric.py     which tests decide which points; hidden tests must name their exercise
- run.py        one student's run, a class's run, shards, the cache
- report.py     gradebook.csv, feedback/, report.html, results.json; flags
- classroom.py  the GitHub Classroom workflow
- merge.py      joining the outputs of `grade --shard K/N` runs
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .bwrap import IsolationUnavailable, probe
from .classroom import classroom_workflow
from .intake import Entry, discover
from .merge import merge
from .rubric import Grade, RubricError
from .run import STUDENT_TIMEOUT, grade_class

__all__ = ["Entry", "Grade", "IsolationUnavailable", "RubricError", "STUDENT_TIMEOUT", "classroom_workflow",
           "discover", "grade_class", "grade_folder", "merge", "probe"]


def grade_folder(steps_root: Path, steps: list[int] | None = None, *, trusted: bool | None = None,
                 extra_tests: Path | None = None) -> dict[str, bool]:
    """Grade one folder of step packages exactly as a class is graded: exercise id -> earned.

    `trusted=None` sandboxes when bubblewrap works here and runs unsandboxed otherwise (for the
    course's own tests on its own code; never use it on a student's submission)."""
    if trusted is None:
        trusted = bool(probe())
    with tempfile.TemporaryDirectory(prefix="workbook-grade-folder-") as scratch:
        subs = Path(scratch) / "submissions"
        student = subs / "student"
        student.mkdir(parents=True)
        for path in sorted(Path(steps_root).iterdir()):
            if path.is_dir() and path.name.startswith("step"):
                shutil.copytree(path, student / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        (grade,) = grade_class(subs, Path(scratch) / "out", step_numbers=steps, trusted=trusted,
                               extra_tests=extra_tests, jobs=1)
    return {ex: bool(points) for ex, points in grade.exercises.items()}
