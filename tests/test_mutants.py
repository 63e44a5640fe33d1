"""Mutation-tested exercises (DESIGN §6): the plausible WRONG answers fail their exercise's checks.

The catalogue is ``tests/mutants/stepNN_<slug>.toml``; the engine is ``workbook/mutants.py``.
For each step, one pytest process runs every mutant and every correct rewrite of that step:
- each mutant fails at least one check of its own exercise, with a message in words, and is
  reported under that exercise only (where the fix belongs);
- each correct rewrite ("equivalent": another order, a helper, a direct import) passes;
- grading gives no point for what `check` fails (the same results, scored by the grader's rubric).

`python -m workbook dev mutants [N]` prints the kill table.
"""

from __future__ import annotations

import functools
import shutil

import pytest

from workbook import mutants
from workbook.course import SOLUTIONS, load

COURSE = load()
CATALOGUE = mutants.load_catalogue(COURSE)
STEP_IDS = [s.slug for s in COURSE.steps]


@functools.cache
def step_run(number: int) -> mutants.StepRun:
    """The mutant run of one step, shared by the tests below (it is the expensive part)."""
    return mutants.run_step(COURSE.step(number), CATALOGUE, course=COURSE)


def test_every_exercise_has_at_least_three_mutants():
    """Each exercise has a catalogue of at least three plausible wrong solutions, each with its source."""
    for ex in COURSE.exercises.values():
        mine = [m for m in CATALOGUE if m.exercise == ex.id and m.kind == "mutant"]
        assert len(mine) >= 3, (f"exercise {ex.label} ({ex.id}) has {len(mine)} mutants in tests/mutants/; "
                                "write at least three plausible wrong solutions")
    for m in CATALOGUE:
        assert len(m.mistake) >= 20 and m.source, f"{m.catalogue}: {m.id} needs the mistake in a line and its source"
        assert m.catalogue == f"{COURSE.step(m.step).slug}.toml", (
            f"{m.id} is in {m.catalogue}; it belongs in {COURSE.step(m.step).slug}.toml (its exercise's step)")


@pytest.mark.parametrize("mutant", CATALOGUE, ids=[f"{m.kind}:{m.id}" for m in CATALOGUE])
def test_each_edit_applies_exactly_once_to_the_current_solution(mutant):
    """Every find/replace of the catalogue finds its text exactly once in today's solution."""
    problems = mutants.edit_problems(mutant, COURSE)
    assert not problems, "; ".join(problems) + " (update the catalogue after changing the solution)"


def test_an_entry_with_edit_tables_and_an_edit_of_its_own_is_refused(tmp_path, monkeypatch):
    """A top-level file/find/replace beside [[mutant.edit]] tables would be ignored without a word."""
    (tmp_path / "step01_setup.toml").write_text(
        '[[mutant]]\nexercise = "health"\nname = "x"\nmistake = "m"\nsource = "s"\n'
        'file = "__init__.py"\nfind = "a"\nreplace = "b"\n'
        '[[mutant.edit]]\nfile = "__init__.py"\nfind = "c"\nreplace = "d"\n', encoding="utf-8")
    monkeypatch.setattr(mutants, "catalogue_files", lambda: [tmp_path / "step01_setup.toml"])
    with pytest.raises(mutants.CatalogueError, match="would be ignored"):
        mutants.load_catalogue(COURSE)


def test_a_mutant_copy_is_the_solution_with_the_edit(tmp_path):
    """A mutant's folder is a copy of the step's solution that differs only where the edit says."""
    mutant = next(m for m in CATALOGUE if m.kind == "mutant")
    folder = mutants.materialize(mutant, tmp_path, COURSE)
    original = COURSE.step(mutant.step).folder(SOLUTIONS)
    for edit in mutant.edits:
        before = (original / edit.file).read_text("utf-8")
        assert (folder / edit.file).read_text("utf-8") == before.replace(edit.find, edit.replace)
    assert not (folder / "__pycache__").exists()
    shutil.rmtree(folder)


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_every_mutant_is_killed_and_every_rewrite_passes(step):
    """Each mutant of the step fails a check of its own exercise, in words, reported under that exercise;
    each correct rewrite passes every check of its exercise."""
    run = step_run(step.number)
    assert not run.problem, f"the mutant run of step {step.number} failed: {run.problem}"
    table = "\n".join(mutants.kill_table([run], COURSE))
    for o in run.outcomes:
        assert not o.problem, f"{o.mutant.kind} {o.mutant.id}: {o.problem}"
        if o.not_applicable:
            continue
        if o.mutant.kind == "equivalent":
            assert not o.failures and o.ran, (
                f"the correct rewrite {o.mutant.id} ({o.mutant.why if hasattr(o.mutant, 'why') else o.mutant.mistake}) "
                f"fails {mutants.describe(o.failures[0]) if o.failures else 'nothing ran'}: the check is fitted to "
                f"the reference's wording; test the property instead\n{table}")
            continue
        assert o.killed, (
            f"the mutant {o.mutant.id} SURVIVED: {o.mutant.mistake} ({o.mutant.source}). Write the check that "
            f"catches it — an attack, not a comparison with the reference\n{table}")
        assert not o.collateral, (
            f"the mutant {o.mutant.id} is also reported under another exercise "
            f"({o.collateral[0]['exercises']}: {o.collateral[0]['test']}): the learner would be sent to the "
            f"wrong exercise\n{table}")


@pytest.mark.parametrize("step", COURSE.steps, ids=STEP_IDS)
def test_grading_gives_no_point_for_what_check_fails(step):
    """The grader's rubric, applied to each mutant's results, withholds the mutant's exercise's points,
    and gives them to each correct rewrite."""
    try:  # the grading package (workbook/grading/); workbook/grader.py before it
        from workbook.grading.rubric import grade_folder_results
    except ImportError:  # pragma: no cover - the older layout
        from workbook.grader import Grade, score

        def grade_folder_results(tests, steps):
            g = Grade(student="")
            g.tests = tests
            score(g, COURSE, steps)
            return {ex: bool(p) for ex, p in g.exercises.items()}

    run = step_run(step.number)
    for o in run.outcomes:
        if o.problem or o.not_applicable:
            continue
        earned = grade_folder_results(o.results, [step])
        if o.mutant.kind == "mutant":
            assert earned[o.mutant.exercise] is False, (
                f"`check` fails the mutant {o.mutant.id}, but grading gives exercise {o.mutant.exercise} its points")
        else:
            assert earned[o.mutant.exercise] is True, (
                f"the correct rewrite {o.mutant.id} passes `check` but grading withholds {o.mutant.exercise}'s points")


# The learner-reported mistakes of issue 14, graded for real: sandboxed app hosts, the instructor's
# tests, the rubric. One submission holding one of them in each of its steps.
# (Three steps, to keep the test run within its budget; the rubric test above covers every mutant.)
GRADED_FOR_REAL = ["verify-password/rehash-before-verify", "register-schema/unknown-fields-excluded",
                   "login-limits/count-only-failures"]
# ... and a correct rewrite that reaches the injected bug through a name of its own.
REWRITES_GRADED = ["last-resort/direct-import-and-logger-exception"]


def test_the_grader_withholds_exactly_the_mutated_exercises(tmp_path):
    """`grade` of a submission made of the reported mistakes: no point for each mistake's exercise,
    every point for the other exercises of those steps (correct code loses nothing)."""
    from workbook.grading import grade_folder

    chosen = [next(m for m in CATALOGUE if m.id == name and m.kind == "mutant") for name in GRADED_FOR_REAL]
    rewrites = [next(m for m in CATALOGUE if m.id == name and m.kind == "equivalent") for name in REWRITES_GRADED]
    for m in chosen + rewrites:
        mutants.materialize(m, tmp_path, COURSE)
    numbers = sorted({m.step for m in chosen + rewrites})
    earned = grade_folder(tmp_path, numbers)
    wrong = {m.exercise for m in chosen}
    for number in numbers:
        for ex in COURSE.step(number).exercises:
            if ex.id in wrong:
                assert earned.get(ex.id) is False, f"grading gave {ex.id} its points for a known wrong solution"
            else:
                assert earned.get(ex.id) is True, (
                    f"grading withheld {ex.id}'s points, but only another exercise of step {number} was wrong: "
                    "its failure is reported under the wrong exercise")


def test_a_mutant_run_that_could_not_run_claims_no_verdict():
    """A run that failed (the venv not active, a collection error) is no evidence: the kill table and
    the summary say the mutants were not run, never that they SURVIVED or that a rewrite FAILS."""
    step = COURSE.steps[0]
    outcomes = [mutants.Outcome(m) for m in CATALOGUE if m.step == step.number]
    run = mutants.StepRun(step, outcomes, 0.1, problem="this Python does not have the course's packages")
    table = "\n".join(mutants.kill_table([run], COURSE))
    assert "SURVIVED" not in table and "FAILS" not in table and "no verdict" in table, table
    assert any(line.startswith("NOT RUN") for line in mutants.summary([run], COURSE))
