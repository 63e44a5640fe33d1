"""Exercise integrity (DESIGN §6), like rustlings' `dev check` and nbgrader's `validate --invert`:

(a) steps/ is what the generator makes from solutions/;
(b) every solution passes its step's tests: that is the main test run itself, which runs each
    lesson's tests against solutions/ (see tests/conftest.py);
(c) every starter imports and starts, fails at least one test of each of its own exercises,
    and passes every test of the earlier lessons;
and the generator's own rules (markers, TODO text) behave.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess

import pytest

from workbook import exercises
from workbook.course import REPO, SOLUTIONS, load
from workbook.loader import StepTarget
from workbook.runner import HTTP_SUITES, lesson_files, quick_files, run_step_tests

COURSE = load()
STEP_IDS = [s.slug for s in COURSE.steps]


def _committed_files(slug: str) -> dict[str, bytes] | None:
    """steps/<slug> as committed in git (HEAD), or None outside a git checkout."""
    try:
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", "HEAD", "--", f"steps/{slug}"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    files = {}
    for name in listing:
        data = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=REPO, capture_output=True, check=True).stdout
        files[name[len(f"steps/{slug}/"):]] = data
    return files


def _uncommitted_changes(slug: str) -> bool:
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--", f"steps/{slug}"],
                              cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return bool(done.stdout.strip())


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_starters_are_generated_from_the_solutions(step):
    """(a) steps/<slug> is exactly what `python -m workbook dev sync` makes from solutions/."""
    problems = exercises.out_of_sync(step, COURSE)
    if problems and _uncommitted_changes(step.slug):
        # A learner is working in steps/: judge the committed starter instead of their work.
        committed = _committed_files(step.slug)
        if committed is not None:
            expected = exercises.starter_files(step, COURSE)
            problems = [name for name in sorted(set(expected) | set(committed))
                        if expected.get(name) != committed.get(name)]
    assert not problems, (
        f"steps/{step.slug} is out of sync with solutions/{step.slug}: {problems}. "
        "Maintainers: run `python -m workbook dev sync` and commit. "
        "(Learners who committed their own work here: this check is for the course's maintainers; "
        f"`python -m workbook check {step.number}` checks your work.)"
    )


@pytest.fixture(scope="module")
def fresh_starters(tmp_path_factory):
    """Every starter, generated from solutions/ into a scratch folder (the learner's steps/ may hold work)."""
    root = tmp_path_factory.mktemp("starters")
    for step in COURSE.steps:
        exercises.write_starter(step, COURSE, steps_root=root)
    return root


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_starter_imports_and_starts(step, fresh_starters, tmp_path):
    """(c) The starter imports and its create_app builds an app: the learner starts from something that runs."""
    app = StepTarget(step, fresh_starters).create_app(
        {"TESTING": True, "JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(tmp_path / "db.sqlite")}
    )
    assert app.name.endswith(step.slug), f"the starter of step {step.number} returned an unexpected app"


def quick_files_of_earlier(step):
    return [f for s in COURSE.steps if s.number < step.number for f in quick_files(s)]


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_starter_fails_each_exercise_and_keeps_earlier_lessons(step, fresh_starters):
    """(c) The starter fails >= 1 test of each of its exercises and passes all earlier lessons' tests."""
    # The step's own lesson and the earlier lessons through their in-process tests: every exercise
    # has in-process checks (test_every_exercise_is_checked_in_process), and the HTTP and
    # multi-process suites check the same properties against the solution in the main run.
    own = [f for f in step.test_files if not f.name.endswith(HTTP_SUITES)]
    files = [f for f in lesson_files(step, COURSE) if f in own or f in quick_files_of_earlier(step)]
    result = run_step_tests(step, fresh_starters, course=COURSE, files=files)
    assert not result.problem, f"the starter of step {step.number} could not be checked: {result.problem}"
    failing = set(result.failing_exercises())
    for ex in step.exercises:
        assert ex.id in failing, (
            f"exercise {ex.label} ({ex.id}): no test fails on the untouched starter, so a learner "
            "could pass it without doing anything (mark a test with @pytest.mark.exercise, or "
            "make the STARTER code not already solve it)"
        )
    broken = [t.nodeid for t in result.tests if t.lesson is not None and t.lesson < step.number and not t.passed]
    assert not broken, f"the starter of step {step.number} breaks earlier lessons: {broken}"


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_every_exercise_is_checked_in_process(step):
    """Each exercise has a check in the step's in-process tests, not only over HTTP: the fast part of
    `check`, the mutant run and the starter check all rely on it."""
    text = "\n".join(f.read_text("utf-8") for f in step.test_files if not f.name.endswith(HTTP_SUITES))
    for ex in step.exercises:
        assert re.search(rf'@pytest\.mark\.exercise\("{re.escape(ex.id)}"', text), (
            f"exercise {ex.id!r} is checked only over HTTP: add an in-process test")


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_every_exercise_has_tests_in_its_own_lesson(step):
    """Each exercise is checked by at least one test in tests/test_<slug>*.py."""
    text = "\n".join(f.read_text("utf-8") for f in step.test_files)
    assert step.test_files, f"step {step.number} has no tests/test_{step.slug}*.py"
    for ex in step.exercises:
        assert f'@pytest.mark.exercise("{ex.id}")' in text, f"no test is marked with exercise {ex.id!r}"


def _unmarked_lesson_tests():
    """(file, line, name) of every test function in a lesson file without @pytest.mark.exercise."""
    import ast

    found = []
    for path in sorted((REPO / "tests").glob("test_step*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                marks = [d for d in node.decorator_list
                         if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "exercise"]
                if not marks:
                    found.append((path.name, node.lineno, node.name))
    return found


def test_every_lesson_test_belongs_to_an_exercise():
    """Every test in tests/test_stepNN_*.py is marked with the exercise(s) it checks, so that `check` and
    `grade` judge exactly the same things (grading counts only exercise-marked tests)."""
    unmarked = _unmarked_lesson_tests()
    assert not unmarked, (
        f"{len(unmarked)} lesson test(s) belong to no exercise: "
        + "; ".join(f"{f}:{line} {name}" for f, line, name in unmarked)
        + '. Mark each with @pytest.mark.exercise("<id>") (course.toml), the exercise where a failure\'s fix belongs'
    )


def test_a_lesson_test_marks_only_its_own_steps_exercises():
    """A lesson's tests name exercises of that lesson's step (they also run on later steps)."""
    import re

    for step in COURSE.steps:
        own = {ex.id for ex in step.exercises}
        for path in step.test_files:
            for exercise in re.findall(r'@pytest\.mark\.exercise\("([^"]+)"', path.read_text("utf-8")):
                assert exercise in own, (
                    f"{path.name} marks a test with {exercise!r}, which is not an exercise of step {step.number}")


# --- the generator's rules ---------------------------------------------------------------------

SOLUTION = """\
def f():
    # BEGIN EXERCISE {id}
    return 42
    # STARTER
    # return None  # placeholder
    #
    #     # nested indentation survives
    # END EXERCISE
"""


def _first_step_with_exercises():
    return next(s for s in COURSE.steps if s.exercises)


def test_region_becomes_todo_and_uncommented_starter():
    step = _first_step_with_exercises()
    ex = step.exercises[0]
    out = exercises.render_starter(SOLUTION.format(id=ex.id), step, COURSE)
    assert "return 42" not in out, "the solution leaked into the starter"
    assert f"# TODO exercise {ex.label} ({ex.id})" in out
    assert f"python -m workbook hint {step.number} {ex.index}" in out
    assert "    return None  # placeholder" in out
    assert "        # nested indentation survives" in out
    assert "BEGIN EXERCISE" not in out and "END EXERCISE" not in out and "STARTER" not in out
    compile(out, "<starter>", "exec")


def _two_step_course():
    """A made-up course of two steps, so the rule holds whatever the real course contains."""
    from dataclasses import replace

    from workbook.course import Course, Exercise, Step

    def step(n):
        ex = Exercise(id=f"ex{n}", step=n, index=1, title=f"exercise {n}", todo="do it", hints=("h",))
        return Step(number=n, slug=f"step0{n}_x", title="x", concept="x", notebook=f"0{n}_x.ipynb",
                    minutes=1, exercises=(ex,))

    return replace(COURSE, steps=(step(1), step(2)))


def test_earlier_steps_regions_keep_their_solution():
    """In step 2's starter, step 1's exercise is done: its solution stays, without markers."""
    course = _two_step_course()
    out = exercises.render_starter(SOLUTION.format(id="ex1"), course.steps[1], course)
    assert "return 42" in out and "TODO" not in out and "EXERCISE" not in out


def test_later_steps_regions_are_refused():
    """A region for step 2's exercise cannot appear in step 1's solution."""
    course = _two_step_course()
    with pytest.raises(exercises.MarkerError, match="belongs to step 2"):
        exercises.render_starter(SOLUTION.format(id="ex2"), course.steps[0], course)


@pytest.mark.parametrize(
    "text, message",
    [
        ("# BEGIN EXERCISE health\nx = 1\n", "never closed"),
        ("# END EXERCISE\n", "without BEGIN"),
        ("# BEGIN EXERCISE health\n# BEGIN EXERCISE health\n# END EXERCISE\n", "inside another"),
        ("#BEGIN  EXERCISE health\n", "malformed"),
        ("# BEGIN EXERCISE no-such-exercise\nx = 1\n# END EXERCISE\n", "not in course.toml"),
        ("# BEGIN EXERCISE health\nx = 1\n# STARTER\nx = 2\n# END EXERCISE\n", "commented out"),
    ],
)
def test_marker_mistakes_are_reported(text, message):
    step = COURSE.step("step01_setup")
    with pytest.raises(exercises.MarkerError, match=message):
        exercises.render_starter(text, step, COURSE)


def test_a_solution_without_a_region_for_an_exercise_is_refused(tmp_path):
    step = _first_step_with_exercises()
    shutil.copytree(step.folder(SOLUTIONS), tmp_path / step.slug)
    for path in (tmp_path / step.slug).glob("*.py"):
        path.write_text(exercises.strip_markers(path.read_text("utf-8")), encoding="utf-8")
    with pytest.raises(exercises.MarkerError, match="no '# BEGIN EXERCISE' region"):
        exercises.starter_files(step, COURSE, solutions=tmp_path)


def test_generated_files_ignore_local_clutter(tmp_path):
    """Caches, databases and instance folders in a step folder are never part of a starter."""
    step = COURSE.steps[0]
    shutil.copytree(step.folder(SOLUTIONS), tmp_path / step.slug)
    (tmp_path / step.slug / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / step.slug / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / step.slug / "app.sqlite").write_bytes(b"")
    names = set(exercises.starter_files(step, COURSE, solutions=tmp_path))
    assert names == {p.as_posix() for p in exercises.step_files(SOLUTIONS / step.slug)} | {"README.md"}
    assert not any("pycache" in n or n.endswith(".sqlite") for n in names)
