"""The rubric: which tests decide which points (workbook/course.toml is the one source of truth).

Every test of a lesson belongs to an exercise (``@pytest.mark.exercise(id)``); an exercise earns
its ``points`` when every one of its tests that ran passed — the same tests ``check`` runs, so a
step that passes ``check`` earns every point of it. Hidden tests (``--extra-tests``) follow the
same rule, checked (for the course's tests too) before grading starts: a test without an
exercise, or naming an exercise the course does not have or another lesson's, is refused with a
message that names it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from ..course import Course, lesson_of
from ..runner import TestResult


@dataclass
class Grade:
    student: str  # the real name, Unicode kept
    id: str = ""  # unique ASCII id (file names, caches, merge)
    steps: dict[str, float] = field(default_factory=dict)  # slug -> points earned
    exercises: dict[str, float] = field(default_factory=dict)  # exercise id -> points earned
    maximum: dict[str, float] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # limits tripped, tamper check, identical submissions
    seconds: float = 0.0
    content: str = ""  # hash of the graded copy
    attempted: list[str] = field(default_factory=list)  # slugs that differ from the starter
    cached: bool = False

    @property
    def total(self) -> float:
        return sum(self.steps.values())


def score(grade: Grade, steps) -> None:
    for step in steps:
        grade.maximum[step.slug] = float(sum(ex.points for ex in step.exercises))
        earned = 0.0
        for ex in step.exercises:
            tests = [t for t in grade.tests if t.lesson == step.number and ex.id in t.exercises and not t.skipped]
            won = ex.points if tests and all(t.passed for t in tests) else 0
            grade.exercises[ex.id] = won
            earned += won
        grade.steps[step.slug] = earned


def grade_folder_results(tests: list[TestResult], steps) -> dict[str, bool]:
    """exercise id -> earned, from test results (what `grade_folder` returns)."""
    g = Grade(student="")
    g.tests = tests
    score(g, steps)
    return {ex: bool(points) for ex, points in g.exercises.items()}


class RubricError(ValueError):
    """Hidden tests that cannot be graded: the message says which and why."""


def _mark_ids(node: ast.AST) -> list[str] | None:
    """The exercise ids of `pytest.mark.exercise("id")` decorators/values; None when there is none."""
    ids = []
    found = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "exercise":
            found = True
            ids += [a.value for a in sub.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return ids if found else None


def check_extra_tests(files: list[Path], course: Course) -> None:
    """Refuse tests (hidden or the course's own) that do not say which exercise of their step they
    grade, or name one that does not exist."""
    problems = []
    known = course.exercises
    for path in files:
        lesson = lesson_of(path)
        if lesson is None or lesson not in {s.number for s in course.steps}:
            problems.append(f"{path.name}: not a lesson's test file (name it test_stepNN_<slug>_....py)")
            continue
        try:
            tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{path.name}: does not parse ({exc})")
            continue
        module_ids = None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
                module_ids = _mark_ids(node.value)

        def check(fn, inherited):
            ids = [*(inherited or []), *(_mark_ids(ast.Module(body=[], type_ignores=[]) if not fn.decorator_list
                                                   else ast.Module(body=[ast.Expr(d) for d in fn.decorator_list],
                                                                   type_ignores=[])) or [])]
            if not ids:
                problems.append(f"{path.name}::{fn.name}: no @pytest.mark.exercise(...): which exercise does it grade?")
            for ex in ids:
                if ex not in known:
                    problems.append(f"{path.name}::{fn.name}: unknown exercise {ex!r} (see workbook/course.toml)")
                elif known[ex].step != lesson:
                    problems.append(f"{path.name}::{fn.name}: exercise {ex!r} belongs to step {known[ex].step}, "
                                    f"not to this file's step {lesson}")

        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                check(node, module_ids)
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                class_ids = _mark_ids(ast.Module(body=[ast.Expr(d) for d in node.decorator_list], type_ignores=[]))
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                        check(item, [*(module_ids or []), *(class_ids or [])])
    if problems:
        raise RubricError("These tests cannot be graded:\n  - " + "\n  - ".join(problems)
                          + "\nEvery graded test names the exercise it checks: @pytest.mark.exercise(\"<id>\").")
