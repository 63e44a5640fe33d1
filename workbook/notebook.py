"""The parts every notebook shares, rendered from the course metadata (one source of truth):
the opening (objectives, prerequisites, time) and the closing (exercise, key points, references).

In a notebook's first cell::

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root
    from workbook.notebook import intro, outro
    intro(1)
"""

from __future__ import annotations

from .course import load


class _Markdown:
    """Displayed as Markdown by Jupyter (and on GitHub), as plain text anywhere else."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def intro(number: int) -> _Markdown:
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
        f"**Time:** about {step.minutes} minutes (notebook and exercise).  ",
        f"**Prerequisites:** {prerequisites}  ",
        f"**Exercise folder:** `steps/{step.slug}/`",
        "",
        "**Objectives.** By the end of this step you can:",
        "",
        *[f"- {o}" for o in step.objectives],
    ]
    return _Markdown("\n".join(lines))


def outro(number: int) -> _Markdown:
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
    return _Markdown("\n".join(lines))
