"""The course metadata (``course.toml``), read once and shared by the CLI, the tests and the README."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COURSE_FILE = Path(__file__).with_name("course.toml")
SOLUTIONS = REPO / "solutions"
STEPS = REPO / "steps"
NOTEBOOKS = REPO / "notebooks"
TESTS = REPO / "tests"
README_FILE = REPO / "README.md"


LESSON_FILE = re.compile(r"^test_step(\d\d)_")


def lesson_of(path: str | Path) -> int | None:
    """``tests/test_step02_authentication_live.py`` -> 2 (its lesson); any other file -> None."""
    match = LESSON_FILE.match(Path(path).name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Exercise:
    id: str
    step: int
    index: int  # 1-based position within its step: exercise 1.2 is step 1's second
    title: str
    todo: str
    hints: tuple[str, ...]
    points: int = 1

    @property
    def label(self) -> str:
        return f"{self.step}.{self.index}"


@dataclass(frozen=True)
class Step:
    number: int
    slug: str
    title: str
    concept: str
    notebook: str
    minutes: int  # the whole step: notebook_minutes + exercise_minutes when both are given
    objectives: tuple[str, ...] = ()
    key_points: tuple[str, ...] = ()
    try_requests: tuple[dict, ...] = ()
    references: tuple[str, ...] = ()
    exercises: tuple[Exercise, ...] = field(default=())
    notebook_minutes: int | None = None  # reading the notebook and its "your turn" cells
    exercise_minutes: int | None = None  # the exercise, until `check` passes

    @property
    def minutes_split(self) -> str:
        """'15 + 20' (notebook + exercise) when the split is known, else the total."""
        if self.notebook_minutes is None or self.exercise_minutes is None:
            return str(self.minutes)
        return f"{self.notebook_minutes} + {self.exercise_minutes}"

    @property
    def label(self) -> str:
        return f"{self.number:02d}"

    def folder(self, root: Path) -> Path:
        return root / self.slug

    @property
    def test_files(self) -> tuple[Path, ...]:
        """This step's lesson tests: ``tests/test_<slug>*.py`` (they also run on every later step)."""
        return tuple(sorted(TESTS.glob(f"test_{self.slug}*.py")))

    def exercise(self, key: str | int) -> Exercise:
        """An exercise by id (``strong-secret``), by number in the step (``2``) or label (``1.2``)."""
        text = str(key)
        for ex in self.exercises:
            if text in (ex.id, str(ex.index), ex.label):
                return ex
        known = ", ".join(f"{ex.index} ({ex.id})" for ex in self.exercises)
        raise KeyError(f"step {self.number} has no exercise {key!r}; its exercises are {known}")


@dataclass(frozen=True)
class Course:
    title: str
    subtitle: str
    steps: tuple[Step, ...]

    def step(self, number: int | str) -> Step:
        for step in self.steps:
            if str(number).lstrip("0") == str(step.number) or str(number) == step.slug:
                return step
        raise KeyError(
            f"there is no step {number}; the steps are "
            + ", ".join(str(s.number) for s in self.steps)
        )

    @property
    def exercises(self) -> dict[str, Exercise]:
        return {ex.id: ex for step in self.steps for ex in step.exercises}

    def lessons_up_to(self, number: int) -> tuple[Step, ...]:
        """The steps whose lessons step ``number`` must pass: itself and every earlier one."""
        return tuple(s for s in self.steps if s.number <= number)


def _step_from_toml(raw: dict) -> Step:
    exercises = tuple(
        Exercise(
            id=ex["id"],
            step=raw["number"],
            index=i,
            title=ex["title"],
            todo=ex["todo"].strip(),
            hints=tuple(ex["hints"]),
            points=ex.get("points", 1),
        )
        for i, ex in enumerate(raw.get("exercises", []), start=1)
    )
    return Step(
        number=raw["number"],
        slug=raw["slug"],
        title=raw["title"],
        concept=raw["concept"],
        notebook=raw["notebook"],
        minutes=_minutes(raw),
        notebook_minutes=raw.get("notebook_minutes"),
        exercise_minutes=raw.get("exercise_minutes"),
        objectives=tuple(raw.get("objectives", ())),
        key_points=tuple(raw.get("key_points", ())),
        try_requests=tuple(raw.get("try", ())),
        references=tuple(raw.get("references", ())),
        exercises=exercises,
    )


def _minutes(raw: dict) -> int:
    """A step's total minutes: notebook_minutes + exercise_minutes, or the older single `minutes`."""
    if "notebook_minutes" in raw and "exercise_minutes" in raw:
        return raw["notebook_minutes"] + raw["exercise_minutes"]
    return raw["minutes"]


@functools.cache
def load(path: Path = COURSE_FILE) -> Course:
    """Read and check ``course.toml``. Mistakes in it are reported in words, not as a KeyError."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    steps = tuple(_step_from_toml(s) for s in raw["steps"])
    problems = []
    numbers = [s.number for s in steps]
    if numbers != list(range(1, len(steps) + 1)):
        problems.append(f"steps must be numbered 1, 2, 3, ... in order; found {numbers}")
    seen: set[str] = set()
    for step in steps:
        if not step.slug.startswith(f"step{step.number:02d}_"):
            problems.append(f"step {step.number}: slug {step.slug!r} must start with 'step{step.number:02d}_'")
        if not step.notebook.startswith(f"{step.number:02d}_"):
            problems.append(f"step {step.number}: notebook {step.notebook!r} must start with '{step.number:02d}_'")
        for ex in step.exercises:
            if ex.id in seen:
                problems.append(f"exercise id {ex.id!r} is used twice")
            seen.add(ex.id)
            if not ex.hints:
                problems.append(f"exercise {ex.id!r} has no hints")
    if problems:
        raise ValueError(f"{path} has problems:\n  - " + "\n  - ".join(problems))
    return Course(title=raw["course"]["title"], subtitle=raw["course"]["subtitle"], steps=steps)


def course_map_markdown(course: Course | None = None) -> str:
    """The README's course map, generated from the metadata (``python -m workbook dev sync``)."""
    course = course or load()
    split = all(s.notebook_minutes is not None and s.exercise_minutes is not None for s in course.steps)
    lines = [
        f"| step | concept | notebook | exercise folder | exercises | minutes{' (notebook + exercise)' if split else ''} |",
        "|---|---|---|---|---|---|",
    ]
    for s in course.steps:
        exercises = "<br>".join(f"{ex.label} {ex.title}" for ex in s.exercises)
        lines.append(
            f"| {s.label} {s.title} | {s.concept} | [`{s.notebook}`](notebooks/{s.notebook}) "
            f"| [`steps/{s.slug}/`](steps/{s.slug}/) | {exercises} | {s.minutes_split} |"
        )
    total = sum(s.minutes for s in course.steps)
    if split:
        reading = sum(s.notebook_minutes for s in course.steps)
        total = f"{reading} + {total - reading} = {total}"
    lines.append(f"| | | | | **total** | **{total}** |")
    return "\n".join(lines) + "\n"
