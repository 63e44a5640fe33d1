"""What every notebook shares: figures with a description, the workbook's commands, a clean environment."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root: the workbook commands run from there


class Picture:
    """A PNG that carries its description.

    Jupyter (JupyterLab, Notebook 7, VS Code) and nbconvert's HTML show the `text/html` form, an
    `<img>` whose `alt` attribute is the description, so a screen reader reads what the figure
    shows (the plain `image/png` output has no place for one: nbconvert then writes "No description
    has been provided for this image"). Plain-text front ends and nbval see the description itself,
    so the stored output that nbval compares is words, not pixels.
    """

    def __init__(self, png: bytes, alt: str, width: int | None = None):
        if not alt or not alt.strip():
            raise ValueError("a figure needs a description (alt text)")
        self.png, self.alt, self.width = png, " ".join(alt.split()), width

    def _repr_html_(self) -> str:
        width = f' width="{self.width}"' if self.width else ""
        data = base64.b64encode(self.png).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(self.alt, quote=True)}"{width}>'

    def __repr__(self) -> str:
        return f"[figure] {self.alt}"


def new_figure(width: float, height: float, axes=(0, 0, 1, 1), dpi: int = 110):
    """A matplotlib Figure (no pyplot, no global state) and its one Axes."""
    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # a first run may log that it builds a font cache
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    return fig, fig.add_axes(list(axes))


def blank_figure(width: float, height: float, xlim, ylim, dpi: int = 110):
    """A figure to draw boxes and arrows on: data coordinates xlim × ylim, no axes shown."""
    fig, ax = new_figure(width, height, dpi=dpi)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return fig, ax


def picture(fig, alt: str) -> Picture:
    """The figure as a PNG with its description."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version in the file
    return Picture(buffer.getvalue(), alt)


class Markdown:
    """Displayed as Markdown by Jupyter (and on GitHub), as plain text anywhere else."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def call(app, method, path, token=None, body=None):
    """One request to `app`, in this process: a bearer token and a JSON body if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().open(path, method=method, json=body, headers=headers)


def masked_with(placeholders: dict[str, str], value):
    """A JSON answer with the values of the keys in `placeholders` (any depth) replaced by theirs:
    each notebook names the values that change on every run (request ids, times, tokens)."""
    if isinstance(value, dict):
        return {key: placeholders[key] if key in placeholders else masked_with(placeholders, item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [masked_with(placeholders, item) for item in value]
    return value


def shown_with(placeholders: dict[str, str], response) -> str:
    """The status and the JSON answer, masked ("" for an empty body)."""
    body = response.get_json(silent=True)
    return f"{response.status_code} {json.dumps(masked_with(placeholders, body)) if body is not None else ''}".rstrip()


def workbook(*args: str, show: bool = True) -> int:
    """Run `python -m workbook ARGS` from the repository root, print what it prints, return its exit code."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # the same symbols on every platform
    result = subprocess.run([sys.executable, "-m", "workbook", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, encoding="utf-8")
    if show:
        print(result.stdout + result.stderr, end="")
    return result.returncode


@contextmanager
def flask_environment(**variables: str):
    """Run the block with exactly these FLASK_* variables set, then restore the environment."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("FLASK_")}
    try:
        for name in saved:
            del os.environ[name]
        os.environ.update(variables)
        yield
    finally:
        for name in [name for name in os.environ if name.startswith("FLASK_")]:
            del os.environ[name]
        os.environ.update(saved)


def without_exercise_markers(source: str) -> str:
    """A solution file as the reference reads: the `# BEGIN EXERCISE` / `# END EXERCISE` markers
    and the commented-out starter lines between `# STARTER` and `# END EXERCISE` dropped."""
    import re

    shown, in_starter = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith("# BEGIN EXERCISE"):
            continue
        if marker == "# STARTER":
            in_starter = True
        elif marker == "# END EXERCISE":
            in_starter = False
        elif not in_starter:
            shown.append(line)
    return re.sub(r"\n\n\n(?=[ \t])", "\n\n", "\n".join(shown).strip())  # no double blank lines in a body


def solution_source(step_slug: str, file: str, *names: str) -> Markdown:
    """The reference solution's file (or only the named top-level functions and classes of it), as a
    Python code block. For the "after your check passes" sections: never before an exercise."""
    import ast

    source = without_exercise_markers((ROOT / "solutions" / step_slug / file).read_text(encoding="utf-8"))
    if names:
        tree = ast.parse(source)
        lines = source.splitlines()
        parts = []
        found = set()
        for node in tree.body:
            node_names = {getattr(node, "name", None)} | {
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
            if node_names & set(names):
                found |= node_names
                start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                parts.append("\n".join(lines[start - 1:node.end_lineno]))
        missing = set(names) - found
        if missing:
            raise LookupError(f"solutions/{step_slug}/{file} has no {', '.join(sorted(missing))}")
        source = "\n\n\n".join(parts)
    return Markdown(f"**`solutions/{step_slug}/{file}`**\n\n```python\n{source}\n```")


def guess(prediction) -> str:
    """How a "your turn" cell prints the learner's prediction (`...` until they write one)."""
    return "(no guess yet: replace the ...)" if prediction is Ellipsis else repr(prediction)
