"""The grader, on built submissions: a perfect one, the untouched starter, a half-done one, and
hostile ones. Hostile code costs only its own points, earns nothing it did not deserve, and the
run completes.

These grade steps 01 and 02 only (the same code path as all six steps, in a fraction of the time).
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from workbook import exercises
from workbook.course import SOLUTIONS, load
from workbook.grader import grade_class

COURSE = load()
STEPS = [1, 2]
ONE, TWO = COURSE.step(1), COURSE.step(2)
FULL = sum(ex.points for s in (ONE, TWO) for ex in s.exercises)


def solved(dest: Path, *steps):
    for step in steps:
        shutil.copytree(step.folder(SOLUTIONS), dest / step.slug, ignore=shutil.ignore_patterns("__pycache__"))


def starter(dest: Path, *steps):
    for step in steps:
        exercises.write_starter(step, COURSE, steps_root=dest)


def sabotage(folder: Path, code: str) -> None:
    """Put hostile code at the top of a step's create_app (the app still imports)."""
    init = folder / "__init__.py"
    text = init.read_text("utf-8")
    marker = '    app = Flask(__name__, instance_relative_config=True)\n'
    init.write_text(text.replace(marker, code + marker, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    # A perfect student who sent the whole repository layout.
    solved(subs / "perfect" / "steps", ONE, TWO)
    # The untouched starters.
    starter(subs / "untouched", ONE, TWO)
    # Step 01 done, step 02 not.
    solved(subs / "half", ONE)
    starter(subs / "half", TWO)
    # Only step 01 sent.
    solved(subs / "partial", ONE)
    # An empty folder.
    (subs / "empty").mkdir()
    # A conftest.py that marks every test passed, and app code that patches pytest.
    cheat = subs / "cheater"
    starter(cheat, ONE, TWO)
    hook = ("import pytest\n@pytest.hookimpl(wrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    report = yield\n    report.outcome = 'passed'\n    return report\n")
    (cheat / "conftest.py").write_text(hook, encoding="utf-8")
    (cheat / ONE.slug / "conftest.py").write_text(hook, encoding="utf-8")
    sabotage(cheat / ONE.slug, "    import sys, json\n"
             "    for name in list(sys.modules):\n"
             "        if name.startswith(('_pytest', 'pytest', 'workbook.pytest_report')):\n"
             "            mod = sys.modules[name]\n"
             "            if hasattr(mod, '_results'): mod._results.clear()\n"
             "    for arg in sys.argv:\n"
             "        if arg.startswith('--workbook-report='):\n"
             "            open(arg.split('=', 1)[1], 'w').write(json.dumps({'tests': []}))\n")
    # An app that exits the interpreter, one that prints megabytes, one that forks.
    quitter = subs / "quitter"
    starter(quitter, ONE, TWO)
    sabotage(quitter / ONE.slug, "    import os\n    os._exit(0)\n")
    noisy = subs / "noisy"
    solved(noisy, ONE)
    sabotage(noisy / ONE.slug, "    print('x' * 5_000_000)\n")
    forker = subs / "forker"
    starter(forker, ONE, TWO)
    sabotage(forker / ONE.slug, "    import os, time\n    for _ in range(5):\n"
             "        if os.fork() == 0:\n            time.sleep(120)\n            os._exit(0)\n")
    # An endless loop.
    looper = subs / "looper"
    starter(looper, ONE, TWO)
    sabotage(looper / ONE.slug, "    while True:\n        pass\n")
    # A zip whose entries try to escape, next to a good step 01.
    archive = subs / "zipper.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(ONE.folder(SOLUTIONS).glob("*.py")):
            zf.write(path, f"zipper-main/steps/{ONE.slug}/{path.name}")
        zf.writestr("../../escaped.txt", "outside")
        zf.writestr("/tmp/absolute-escape.txt", "outside")
    out = tmp_path_factory.mktemp("out")
    grades = grade_class(subs, out, step_numbers=STEPS, jobs=3, timeout=15, answer_timeout=3)
    return {g.student: g for g in grades}, out, subs


def test_a_perfect_submission_gets_full_marks(graded):
    grades, _, _ = graded
    assert grades["perfect"].total == FULL, grades["perfect"].notes


def test_the_untouched_starter_gets_nothing(graded):
    grades, _, _ = graded
    assert grades["untouched"].total == 0


def test_half_done_and_partial_get_step_01_only(graded):
    grades, _, _ = graded
    for name in ("half", "partial"):
        assert grades[name].steps[ONE.slug] == sum(ex.points for ex in ONE.exercises), (name, grades[name].notes)
        assert grades[name].steps[TWO.slug] == 0
    assert any("missing" in note for note in grades["partial"].notes), "a missing step should be reported"


def test_an_empty_submission_is_reported_not_fatal(graded):
    grades, _, _ = graded
    assert grades["empty"].total == 0 and any("no step folder" in n for n in grades["empty"].notes)


def test_cheating_code_earns_nothing(graded):
    """A conftest.py that marks tests passed and app code that patches pytest earn no points."""
    grades, _, _ = graded
    assert grades["cheater"].total == 0, "hostile code changed its own grade"
    assert any("conftest.py" in note for note in grades["cheater"].notes), "the left-out conftest.py should be noted"


@pytest.mark.parametrize("name", ["quitter", "looper", "forker"])
def test_code_that_exits_or_hangs_costs_only_its_own_points(graded, name):
    grades, _, _ = graded
    assert grades[name].total == 0
    assert grades["perfect"].total == FULL, "another student's hostile code cost the perfect one points"


def test_printing_code_is_graded_on_what_it_does(graded):
    """Megabytes of output do not break grading: the step is still judged on its behaviour."""
    grades, _, _ = graded
    assert grades["noisy"].steps[ONE.slug] == sum(ex.points for ex in ONE.exercises), grades["noisy"].notes


def test_a_zip_cannot_write_outside_its_folder(graded):
    grades, _, subs = graded
    assert grades["zipper"].steps[ONE.slug] == sum(ex.points for ex in ONE.exercises), grades["zipper"].notes
    assert sum("outside the submission" in n for n in grades["zipper"].notes) == 2
    assert not (subs.parent / "escaped.txt").exists() and not Path("/tmp/absolute-escape.txt").exists()


def test_the_outputs(graded):
    grades, out, _ = graded
    with open(out / "gradebook.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["student"] for r in rows} == set(grades)
    assert all(r["maximum"] == f"{FULL:g}" for r in rows)
    feedback = (out / "feedback" / "half.md").read_text("utf-8")
    assert "python -m workbook hint 2" in feedback and "✗" in feedback and "✓" in feedback
    report = (out / "report.html").read_text("utf-8")
    assert "<svg" in report and "struggled" in report
    results = json.loads((out / "results.json").read_text("utf-8"))
    assert len(results) == len(grades)


def test_unchanged_submissions_are_not_graded_again(graded):
    """A second run reuses every unchanged student's results; a changed one is graded again."""
    _, out, subs = graded
    caches = {p.name: p.stat().st_mtime_ns for p in (out / ".cache").glob("*.json")}
    init = subs / "half" / TWO.slug / "__init__.py"
    init.write_text(init.read_text("utf-8") + "\n# changed\n", encoding="utf-8")
    grade_class(subs, out, step_numbers=STEPS, jobs=3, timeout=15, answer_timeout=3)
    after = {p.name: p.stat().st_mtime_ns for p in (out / ".cache").glob("*.json")}
    changed = sorted(name for name in caches if after[name] != caches[name])
    assert changed == ["half.json"], f"re-graded: {changed}; only the changed submission should be"
