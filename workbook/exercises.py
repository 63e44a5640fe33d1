"""Generate the learner's starters (``steps/``) from the solutions (``solutions/``).

A solution file marks the code of an exercise like this (nbgrader style)::

    # BEGIN EXERCISE strong-secret
    ...the solution...
    # STARTER
    # ...optional starter code, commented out; it is uncommented in the starter...
    # END EXERCISE

In step N's starter, every region of one of step N's exercises becomes a TODO, written from
the exercise's ``todo`` text in ``course.toml``, followed by the uncommented STARTER lines
(or nothing). Regions of earlier steps' exercises keep their solution code: those lessons
are done. The marker lines themselves never reach the starter. Other files are copied as-is.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .course import SOLUTIONS, STEPS, Course, Exercise, Step, load

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN EXERCISE (?P<id>[a-z0-9][a-z0-9-]*)[ \t]*$")
STARTER = re.compile(r"^[ \t]*# STARTER[ \t]*$")
END = re.compile(r"^[ \t]*# END EXERCISE[ \t]*$")
LOOSE = re.compile(r"^[ \t]*#[ \t]*(BEGIN|END)[ \t]+EXERCISE", re.IGNORECASE)  # a near-miss

# Files and folders that are never part of a step (caches, local databases, editor junk).
IGNORED_NAMES = {"__pycache__", ".DS_Store", "instance", ".pytest_cache"}
IGNORED_SUFFIXES = {".pyc", ".pyo", ".sqlite", ".sqlite3", ".db"}


class MarkerError(ValueError):
    """A solution file's exercise markers are malformed."""


@dataclass
class Region:
    exercise_id: str
    indent: str
    solution: list[str]
    starter: list[str]


def _uncomment(line: str, indent: str) -> str:
    """``    # code`` -> ``    code`` (the starter lines are stored commented out)."""
    stripped = line.strip()
    if not stripped:
        return ""
    if not stripped.startswith("#"):
        raise MarkerError(f"a STARTER line must be commented out: {line!r}")
    body = stripped[1:]
    if body.startswith(" "):
        body = body[1:]
    # Keep the line's own indentation relative to the region's.
    lead = line[: len(line) - len(line.lstrip())]
    extra = lead[len(indent):] if lead.startswith(indent) else ""
    return f"{indent}{extra}{body}" if body else ""


def parse(text: str, where: str = "<text>") -> list[str | Region]:
    """Split a file into plain lines and exercise regions."""
    out: list[str | Region] = []
    region: Region | None = None
    in_starter = False
    for number, line in enumerate(text.splitlines(), start=1):
        begin = BEGIN.match(line)
        if begin:
            if region is not None:
                raise MarkerError(f"{where}:{number}: BEGIN EXERCISE inside another exercise")
            region = Region(begin["id"], begin["indent"], [], [])
            in_starter = False
        elif STARTER.match(line):
            if region is None or in_starter:
                raise MarkerError(f"{where}:{number}: STARTER outside an exercise, or twice")
            in_starter = True
        elif END.match(line):
            if region is None:
                raise MarkerError(f"{where}:{number}: END EXERCISE without BEGIN EXERCISE")
            out.append(region)
            region = None
        elif LOOSE.match(line):
            raise MarkerError(f"{where}:{number}: malformed exercise marker: {line.strip()!r}")
        elif region is not None:
            (region.starter if in_starter else region.solution).append(line)
        else:
            out.append(line)
    if region is not None:
        raise MarkerError(f"{where}: BEGIN EXERCISE {region.exercise_id} is never closed")
    return out


def todo_comment(exercise: Exercise, indent: str) -> list[str]:
    """The TODO written into the starter in place of the solution."""
    width = max(40, 92 - len(indent))
    head = f"# TODO exercise {exercise.label} ({exercise.id}): {exercise.title}"
    lines = [f"{indent}{head}"]
    for paragraph in exercise.todo.split("\n\n"):
        for wrapped in textwrap.wrap(" ".join(paragraph.split()), width=width - 4):
            lines.append(f"{indent}#   {wrapped}")
    lines.append(
        f"{indent}#   Check: python -m workbook check {exercise.step}"
        f"    Stuck? python -m workbook hint {exercise.step} {exercise.index}"
    )
    return lines


def render_starter(text: str, step: Step, course: Course, where: str = "<text>") -> str:
    """The starter version of one solution file of ``step``."""
    known = course.exercises
    lines: list[str] = []
    for part in parse(text, where):
        if isinstance(part, str):
            lines.append(part)
            continue
        exercise = known.get(part.exercise_id)
        if exercise is None:
            raise MarkerError(f"{where}: exercise {part.exercise_id!r} is not in course.toml")
        if exercise.step > step.number:
            raise MarkerError(
                f"{where}: exercise {exercise.id!r} belongs to step {exercise.step}, "
                f"not to step {step.number} or earlier"
            )
        if exercise.step < step.number:
            lines.extend(part.solution)  # an earlier lesson: done
        else:
            lines.extend(todo_comment(exercise, part.indent))
            lines.extend(_uncomment(line, part.indent) for line in part.starter)
    return "\n".join(lines) + "\n"


def strip_markers(text: str, where: str = "<text>") -> str:
    """A solution file without its marker lines and starter code: what the lesson diff shows."""
    lines: list[str] = []
    for part in parse(text, where):
        lines.extend([part] if isinstance(part, str) else part.solution)
    return "\n".join(lines) + "\n"


def _is_ignored(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    return any(p in IGNORED_NAMES for p in rel.parts) or path.suffix in IGNORED_SUFFIXES


def step_files(folder: Path) -> list[Path]:
    """The files that make a step folder, relative to it, in a stable order."""
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and not _is_ignored(p, folder)
    )


def step_readme(step: Step, course: Course) -> str:
    """steps/<slug>/README.md: the exercise's brief, written from course.toml."""
    before = [s for s in course.steps if s.number < step.number]
    prerequisites = (f"step {before[-1].label} ({before[-1].title}) — its starter is already inside this folder, "
                     "solved" if before else "Python 3.11–3.13 with requirements.txt installed")
    lines = [
        f"# Step {step.label} — {step.title}",
        "",
        f"{step.concept}.",
        "",
        (f"- **Time:** about {step.minutes} minutes: {step.notebook_minutes} for the notebook "
         f"`notebooks/{step.notebook}`, {step.exercise_minutes} for the exercise."
         if step.notebook_minutes is not None and step.exercise_minutes is not None else
         f"- **Time:** about {step.minutes} minutes, with the notebook `notebooks/{step.notebook}`."),
        f"- **Prerequisites:** {prerequisites}.",
        "",
        "## Objectives",
        "",
        *[f"- {o}" for o in step.objectives],
        "",
        "## Your exercises",
        "",
        "Each one is a `# TODO exercise` comment in this folder's files.",
        "",
    ]
    for ex in step.exercises:
        lines += [f"### {ex.label} {ex.title} (`{ex.id}`)", "", " ".join(ex.todo.split()), ""]
    lines += [
        "## Check, hints, run",
        "",
        "From the repository root:",
        "",
        "```",
        f"python -m workbook check {step.number}    # the verdict; exits 0 when the step passes",
        f"python -m workbook hint {step.number}     # one more hint each time (hint {step.number} 2: exercise 2)",
        f"python -m workbook watch {step.number}    # check again at every save",
        f"python -m workbook run {step.number}      # serve this folder on http://127.0.0.1:5000",
        f"python -m workbook reset {step.number}    # back to the starter (your version is kept)",
        "```",
        "",
        "## Key points",
        "",
        *[f"- {k}" for k in step.key_points],
        "",
        "---",
        "Generated from `workbook/course.toml` by `python -m workbook dev sync`; do not edit by hand.",
        "",
    ]
    return "\n".join(lines)


def starter_files(step: Step, course: Course | None = None, solutions: Path = SOLUTIONS) -> dict[str, bytes]:
    """Every file of step ``step``'s starter, generated in memory: {relative path: content}."""
    course = course or load()
    folder = step.folder(solutions)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist")
    files: dict[str, bytes] = {}
    regions_seen: set[str] = set()
    for rel in step_files(folder):
        data = (folder / rel).read_bytes()
        if rel.suffix == ".py":
            text = data.decode("utf-8")
            where = f"solutions/{step.slug}/{rel.as_posix()}"
            files[rel.as_posix()] = render_starter(text, step, course, where).encode("utf-8")
            regions_seen.update(
                p.exercise_id for p in parse(text, where) if isinstance(p, Region)
            )
        else:
            files[rel.as_posix()] = data
    files["README.md"] = step_readme(step, course).encode("utf-8")
    missing = [ex.id for ex in step.exercises if ex.id not in regions_seen]
    if missing:
        raise MarkerError(
            f"solutions/{step.slug}: no '# BEGIN EXERCISE' region for {', '.join(missing)}"
        )
    return files


def out_of_sync(step: Step, course: Course | None = None, steps_root: Path = STEPS) -> list[str]:
    """Files of ``steps/<slug>`` that differ from what the generator makes (empty: in sync)."""
    expected = starter_files(step, course)
    folder = step.folder(steps_root)
    actual = {rel.as_posix(): (folder / rel).read_bytes() for rel in step_files(folder)}
    problems = [f"{name}: missing" for name in sorted(expected.keys() - actual.keys())]
    problems += [f"{name}: not in the solution" for name in sorted(actual.keys() - expected.keys())]
    problems += [
        f"{name}: differs" for name in sorted(expected.keys() & actual.keys())
        if expected[name] != actual[name]
    ]
    return problems


def write_starter(step: Step, course: Course | None = None, steps_root: Path = STEPS) -> list[str]:
    """(Re)write ``steps/<slug>`` from the solution; returns the files written or removed."""
    expected = starter_files(step, course)
    folder = step.folder(steps_root)
    changed = []
    for rel in step_files(folder):
        if rel.as_posix() not in expected:
            (folder / rel).unlink()
            changed.append(f"removed {rel.as_posix()}")
    for name, data in expected.items():
        target = folder / name
        if not target.exists() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            changed.append(f"wrote {name}")
    return changed
