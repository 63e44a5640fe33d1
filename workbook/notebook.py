"""The parts every notebook shares, rendered from the course metadata (one source of truth):
the opening (objectives, prerequisites, time) and the closing (exercise, key points, references).

A notebook's build script (notebooks/build/NN_*.py) writes them as Markdown cells
(`intro_markdown(N)`, `outro_markdown(N)`), so they are there when outputs are cleared and on
GitHub; a test checks that each stored notebook has exactly its script's cells, so a change in
course.toml that is not rebuilt into the notebooks fails the test run. `intro(N)` and `outro(N)`
display the same text from a code cell.

`measured_notebook_minutes(path)` measures a notebook: its reading time (the words of its Markdown
and visible code, at 200 words a minute) plus 3 minutes per "your turn" cell. It is the floor of the
step's `notebook_minutes` in course.toml (tests/test_notebook_helpers.py checks it).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .course import load


class _Markdown:
    """Displayed as Markdown by Jupyter (and on GitHub), as plain text anywhere else."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


WORDS_PER_MINUTE = 200  # a common figure for reading technical prose on a screen


def intro(number: int) -> _Markdown:
    return _Markdown(intro_markdown(number))


def outro(number: int) -> _Markdown:
    return _Markdown(outro_markdown(number))


def _time_line(step) -> str:
    if step.notebook_minutes is not None and step.exercise_minutes is not None:
        return (f"**Time:** about {step.minutes} minutes: {step.notebook_minutes} for this notebook "
                f"(reading and the \"your turn\" cells), {step.exercise_minutes} for the exercise.  ")
    return f"**Time:** about {step.minutes} minutes (notebook and exercise).  "


def intro_markdown(number: int) -> str:
    course = load()
    step = course.step(number)
    before = [s for s in course.steps if s.number < number]
    if before:
        prev = before[-1]
        prerequisites = (
            f"Step {prev.label} ({prev.title}): its notebook `{prev.notebook}`, and its exercise "
            f"passing (`python -m workbook check {prev.number}`)."
        )
    else:
        prerequisites = (
            "Python 3.11–3.13 with `requirements.txt` installed, some Flask and HTTP basics. "
            "Nothing else: every request in this notebook goes to an app in this process."
        )
    lines = [
        f"# Step {step.label} — {step.title}",
        "",
        _time_line(step),
        f"**Prerequisites:** {prerequisites}  ",
        f"**Exercise folder:** `steps/{step.slug}/`",
        "",
        "**Objectives.** By the end of this step you can:",
        "",
        *[f"- {o}" for o in step.objectives],
    ]
    return "\n".join(lines)


def outro_markdown(number: int) -> str:
    step = load().step(number)
    lines = [
        "## Your turn: the exercise",
        "",
        f"Open `steps/{step.slug}/`. Each `# TODO exercise` comment says what to write:",
        "",
        *[f"- **{ex.label}** {ex.title} (`{ex.id}`)" for ex in step.exercises],
        "",
        "Then, from the repository root:",
        "",
        "```",
        f"python -m workbook check {step.number}      # your exercises first, then everything else",
        f"python -m workbook hint {step.number}       # one more hint each time",
        f"python -m workbook run {step.number}        # serve your app on http://127.0.0.1:5000",
        "```",
        "",
        "## Key points",
        "",
        *[f"- {k}" for k in step.key_points],
        "",
        "## References",
        "",
        *[f"- {r}" for r in step.references],
    ]
    return "\n".join(lines)


def words(text: str) -> int:
    """Words as a reader meets them: runs of letters or digits (code identifiers count once)."""
    return len(re.findall(r"[A-Za-z0-9_]+", text))


MINUTES_PER_YOUR_TURN = 3  # predict, write the attack, run it, compare with the worked answer


def _lesson_cells(notebook: Path) -> list[dict]:
    """The cells a learner reads on the way: up to the "after your check passes" section (read
    after the exercise), without the collapsed worked answers."""
    cells = []
    for cell in json.loads(Path(notebook).read_text("utf-8"))["cells"]:
        if cell.get("id") == "reference-intro":
            break
        if "worked-answer" in cell.get("metadata", {}).get("tags", []):
            continue
        cells.append(cell)
    return cells


def reading_minutes(notebook: Path) -> int:
    """Minutes to read a stored notebook's lesson: the words of its Markdown and of its visible code
    (outputs are skimmed, not counted), at 200 words a minute, rounded up."""
    total = sum(words("".join(cell["source"])) for cell in _lesson_cells(notebook)
                if not (cell["cell_type"] == "code"
                        and cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")))
    return math.ceil(total / WORDS_PER_MINUTE)


def your_turns(notebook: Path) -> int:
    """How many "your turn" cells the notebook has (a code cell with a `prediction = ...`)."""
    return sum(1 for cell in _lesson_cells(notebook)
               if cell["cell_type"] == "code" and "prediction = ..." in "".join(cell["source"]))


def measured_notebook_minutes(notebook: Path) -> int:
    """Reading time plus the "your turn" cells: the floor of a step's notebook_minutes."""
    return reading_minutes(notebook) + MINUTES_PER_YOUR_TURN * your_turns(notebook)
