"""The notebooks' helper modules (notebooks/lab/), and what every stored notebook promises a learner:
the title and objectives in Markdown, a description on every figure, "your turn" cells with a
worked answer one click away, no exercise's solution before the exercise, honest minutes; and the
dev container that runs the course with nothing installed.

These tests read the stored notebooks and import the helpers; they run no notebook (nbval does).
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from pathlib import Path

import pytest

from workbook.course import NOTEBOOKS, README_FILE, SOLUTIONS, load
from workbook.exercises import parse
from workbook.notebook import intro_markdown, measured_notebook_minutes, outro_markdown, reading_minutes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(NOTEBOOKS))  # the notebooks import `lab` from their own folder

from lab import common  # noqa: E402

STEPS = load().steps
by_slug = pytest.mark.parametrize("step", STEPS, ids=[s.slug for s in STEPS])


def stored(step) -> list[dict]:
    return json.loads((NOTEBOOKS / step.notebook).read_text("utf-8"))["cells"]


def text_of(cell: dict) -> str:
    """A cell's source and every text form of its outputs."""
    parts = ["".join(cell["source"])]
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for key, value in output.get("data", {}).items():
            if key.startswith("text/"):
                parts.append("".join(value))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------
# lab.common
# ------------------------------------------------------------------------------------------------

def test_a_figure_without_a_description_is_refused():
    with pytest.raises(ValueError, match="alt text"):
        common.Picture(b"\x89PNG", "  ")


def test_a_figure_carries_its_description_in_html_and_as_text():
    figure = common.Picture(b"\x89PNG fake", 'two bars: "before" & <after>')
    html = figure._repr_html_()
    assert html.startswith('<img src="data:image/png;base64,'), "the image must be an <img> with a data URI"
    assert 'alt="two bars: &quot;before&quot; &amp; &lt;after&gt;"' in html, "the alt text must be escaped, not cut"
    assert repr(figure) == '[figure] two bars: "before" & <after>', "plain-text front ends (and nbval) see the description"


def test_a_drawn_figure_is_a_png_with_its_description():
    from lab import rate_limits

    figure = rate_limits.forwarded_for_picture()
    assert figure.png.startswith(b"\x89PNG\r\n\x1a\n"), "the picture is not a PNG"
    assert b"matplotlib" not in figure.png[:400], "the PNG names the matplotlib version (its bytes would change with it)"
    for fact in ("203.0.113.7", "192.0.2.99", "x_for=1", "never trusted"):
        assert fact in figure.alt, f"the X-Forwarded-For picture's description does not say {fact!r}"


def test_flask_environment_sets_exactly_the_given_variables_and_restores_the_shell(monkeypatch):
    monkeypatch.setenv("FLASK_SOMETHING", "from the shell")
    with common.flask_environment(FLASK_JWT_SECRET_KEY="k"):
        inside = {name: value for name, value in os.environ.items() if name.startswith("FLASK_")}
    assert inside == {"FLASK_JWT_SECRET_KEY": "k"}, "the shell's FLASK_* variables leaked into the block"
    assert os.environ.get("FLASK_SOMETHING") == "from the shell", "the shell's variable was not put back"
    assert "FLASK_JWT_SECRET_KEY" not in os.environ, "the block's variable outlived the block"
    with pytest.raises(RuntimeError):
        with common.flask_environment(FLASK_X="1"):
            raise RuntimeError
    assert "FLASK_X" not in os.environ and os.environ["FLASK_SOMETHING"] == "from the shell", (
        "a failing block must restore the environment too")


def test_a_guess_not_yet_written_says_so():
    assert "no guess yet" in common.guess(...)
    assert common.guess(401) == "401"


def test_the_reference_drops_markers_and_starter_lines():
    source = "\n".join(["def f():", "    # BEGIN EXERCISE x", "    return 1", "    # STARTER",
                        "    # return None", "    # END EXERCISE", ""])
    assert common.without_exercise_markers(source) == "def f():\n    return 1"


def test_solution_source_shows_the_named_definitions_with_their_decorators():
    shown = common.solution_source("step06_authorization", "authz.py", "admin_required").text
    assert "def admin_required" in shown and "BEGIN EXERCISE" not in shown and "# STARTER" not in shown
    with pytest.raises(LookupError, match="no nothing_here"):
        common.solution_source("step06_authorization", "authz.py", "nothing_here")


# ------------------------------------------------------------------------------------------------
# The other lab modules' logic (the pictures are checked through the stored notebooks)
# ------------------------------------------------------------------------------------------------

def test_simulated_clock_moves_only_when_told():
    import time

    from lab import rate_limits

    with rate_limits.simulated_clock() as clock:
        first = time.time()
        clock.advance(61)
        assert time.time() - first == 61 and clock.at() == " 1:01"
    assert abs(time.time() - first) > 3600, "time.time() stayed simulated after the block"


def test_most_in_a_minute_counts_any_sixty_second_span():
    from lab.rate_limits import most_in_a_minute

    assert most_in_a_minute([0, 59, 59, 61, 61, 61]) == 5  # 59 to 61: the 0 is more than 60 s before 61
    assert most_in_a_minute([0, 60, 120]) == 1
    assert most_in_a_minute([]) == 0


def test_problem_titles_may_be_rfc_9110s_or_werkzeugs_phrase():
    from lab.errors import status_phrases

    assert status_phrases(413) == {"Content Too Large", "Request Entity Too Large"}
    assert status_phrases(422) == {"Unprocessable Content", "Unprocessable Entity"}
    assert status_phrases(404) == {"Not Found"}


def test_masking_hides_what_changes_between_runs():
    from lab import authorization, errors

    line = "2026-12-01 11:00:00,123 INFO api login.failure request_id=0123456789abcdef0123456789abcdef, in 59 seconds"
    assert errors.masked(line) == "<time> INFO api login.failure request_id=<request-id>, in <n> seconds"
    assert authorization.masked({"request_id": "x", "items": [{"created_at": "now", "title": "t"}]}) == {
        "request_id": "<request id>", "items": [{"created_at": "<time>", "title": "t"}]}


def test_a_race_sends_every_request_at_once_and_returns_every_answer():
    import threading
    import time

    from flask import Flask

    from lab import sessions

    app, inside, most = Flask("race"), [], []
    lock = threading.Lock()

    @app.post("/slow")
    def slow():
        with lock:
            inside.append(1)
            most.append(len(inside))
        time.sleep(0.05)
        with lock:
            inside.pop()
        return {"ok": True}

    answers = sessions.race(app, "/slow", "a-token", n=4)
    assert [a.status_code for a in answers] == [200] * 4
    assert max(most) > 1, "the requests were sent one after the other, not at once"


def test_only_owasp_grade_argon2id_settings_are_green():
    from lab.authentication import is_strong_enough

    assert not is_strong_enough("argon2id m=8 KiB t=1 p=1 (this workbook's tests)")
    assert not is_strong_enough("SHA-256 (one pass, no salt)")
    assert is_strong_enough("argon2id m=19 MiB t=2 p=1 (OWASP minimum)")


# ------------------------------------------------------------------------------------------------
# What every stored notebook promises
# ------------------------------------------------------------------------------------------------

@by_slug
def test_title_objectives_and_exercise_are_markdown_from_the_course_metadata(step):
    cells = stored(step)
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]) == intro_markdown(step.number), (
        f"{step.notebook} must open with the title, time and objectives of course.toml as a Markdown cell "
        f"(run `python -m workbook dev notebooks {step.number}`)")
    assert any(c["cell_type"] == "markdown" and "".join(c["source"]) == outro_markdown(step.number) for c in cells), (
        f"{step.notebook} must end its lesson with the exercise, key points and references as Markdown")


@by_slug
def test_every_figure_has_a_description(step):
    figures = 0
    for cell in stored(step):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            assert "image/png" not in data and "image/jpeg" not in data, (
                f"{step.notebook}, cell {cell['id']}: a bare image output has no place for alt text; "
                "return lab.common.picture(fig, alt) instead")
            html = "".join(data.get("text/html", ""))
            for img in re.findall(r"<img\b[^>]*>", html):
                figures += 1
                alt = re.search(r'\balt="([^"]*)"', img)
                assert alt and len(alt.group(1).split()) >= 8, (
                    f"{step.notebook}, cell {cell['id']}: a figure without a description a screen reader can read")
    assert figures >= 1, f"{step.notebook} has no figure at all"


@by_slug
def test_no_code_cell_is_a_hidden_helper(step):
    """Helpers and drawing code live in notebooks/lab/; only worked answers are collapsed."""
    for cell in stored(step):
        hidden = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")
        if cell["cell_type"] == "code" and hidden:
            assert "worked-answer" in cell["metadata"].get("tags", []), (
                f"{step.notebook}, cell {cell['id']}: collapsed code that is not a worked answer; move it to notebooks/lab/")


def text_of_outputs(cell) -> list[str]:
    """What a stored code cell shows under it: its printed text and its displays' plain text."""
    texts = []
    for output in cell.get("outputs", []):
        texts.append("".join(output.get("text", "")))
        texts.append("".join(output.get("data", {}).get("text/plain", "")))
    return texts


@by_slug
def test_at_least_two_your_turn_cells_each_with_a_worked_answer(step):
    cells = stored(step)
    turns = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "prediction = ..." in "".join(c["source"])]
    assert len(turns) >= 2, f"{step.notebook} has {len(turns)} 'your turn' cells; at least two"
    for i in turns:
        after = cells[i + 1:i + 4]
        answered = any("worked-answer" in c.get("metadata", {}).get("tags", []) or
                       (c["cell_type"] == "markdown" and "<details>" in "".join(c["source"])) for c in after)
        assert answered, f"{step.notebook}, cell {cells[i]['id']}: no worked answer one click away after it"
        shown = "".join(text_of_outputs(cells[i]))
        assert "run this cell again" in shown and "you predicted" not in shown, (
            f"{step.notebook}, cell {cells[i]['id']}: its stored output (the cell run as it is, with `...`) must "
            f"ask for the prediction, not show the answer; it shows: {shown.strip()[:120]!r}")


def _exercise_lines(step) -> set[str]:
    """The distinctive lines of the step's own exercise regions (what a learner must write), except
    those the exercise's own instruction already gives (its `todo`, written into the starter)."""
    todos = {ex.id: ex.todo for ex in step.exercises}
    lines = set()
    for path in sorted((SOLUTIONS / step.slug).glob("*.py")):
        for part in parse(path.read_text("utf-8"), str(path)):
            if isinstance(part, str):
                continue
            for line in part.solution:
                code = line.strip()
                if len(code) >= 30 and not code.startswith(("#", '"', "'")) and code not in todos.get(part.exercise_id, ""):
                    lines.add(code)
    return lines


@by_slug
def test_no_exercise_solution_before_the_exercise(step):
    cells = stored(step)
    end = next((i for i, c in enumerate(cells) if c["id"] == "reference-intro"), len(cells))
    lesson = "\n".join(text_of(c) for c in cells[:end])
    shown = sorted(line for line in _exercise_lines(step) if line in lesson)
    assert not shown, (f"{step.notebook} shows the solution of its own exercise before the exercise: {shown[:3]}; "
                       "move it after the outro, under 'After your check passes'")


@by_slug
def test_notebook_minutes_are_at_least_the_measured_reading_time(step):
    measured = measured_notebook_minutes(NOTEBOOKS / step.notebook)
    assert step.notebook_minutes is not None and step.exercise_minutes is not None, (
        f"course.toml: step {step.number} needs notebook_minutes and exercise_minutes")
    assert step.notebook_minutes >= measured, (
        f"course.toml says {step.notebook_minutes} minutes for {step.notebook}; it measures {measured} "
        f"({reading_minutes(NOTEBOOKS / step.notebook)} of reading at 200 words a minute, plus the 'your turn' cells)")
    assert step.notebook_minutes - measured < 5 + 5, f"{step.notebook}'s minutes overstate its measure ({measured})"


# ------------------------------------------------------------------------------------------------
# The dev container, and the README's Windows commands
# ------------------------------------------------------------------------------------------------

def test_the_dev_container_installs_what_the_readme_installs():
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text("utf-8"))
    readme = README_FILE.read_text("utf-8")
    install = re.search(r"^(python -m pip install -r requirements\.txt)", readme, re.MULTILINE)
    assert install, "the README's quick start no longer shows `python -m pip install -r requirements.txt`"
    assert install.group(1) in config["postCreateCommand"], "the dev container installs something else than the README"
    assert "redis-server" in config["postCreateCommand"], "step 04's and 07's multi-process parts need redis-server"
    assert re.search(r"python:\d+-3\.12\b", config["image"]), "the dev container's image must be Python 3.12"
    assert 8888 in config["forwardPorts"] and 5000 in config["forwardPorts"], "Jupyter's and `workbook run`'s ports"
    ast.literal_eval(repr(config))  # plain data, nothing else


def test_every_learner_command_with_a_variable_has_powershell_and_cmd_forms():
    """Each `export FLASK_…=` of the README's Windows section has `$env:FLASK_…` and `set FLASK_…=` beside it."""
    readme = README_FILE.read_text("utf-8")
    section = readme[readme.index("### On Windows"):]
    section = section[:section.index("\n## ")]
    for name in ("FLASK_JWT_SECRET_KEY", "TOKEN"):
        assert f"$env:{name}" in section or f"${name} =" in section, f"no PowerShell form for {name}"
        assert f"set {name}=" in section or f"set /p {name}=" in section or f"do set {name}=" in section, (
            f"no cmd form for {name}")
    assert f"set FLASK_JWT_SECRET_KEY=\n" in section or "set FLASK_JWT_SECRET_KEY=  " in section, (
        "cmd's way to unset a variable (`set NAME=`) is missing beside `unset`")
    assert "-SkipHttpErrorCheck" in section, "PowerShell 7's way to read a 4xx answer is missing"
    assert "create-admin" in section, "step 06's admin commands need a Windows form"
