"""Mutation testing of the exercises: do the plausible WRONG answers fail their checks?

The starters fail their exercises' checks (tests/test_exercises.py); that is half of exercise
design. The other half: a learner's plausible mistake — the ones the OWASP cheat sheets, the
classic tutorial and its readers make — must fail too, with a message that names the security
property. Each such mistake is a *mutant*: a small find/replace edit of the reference solution,
kept in ``tests/mutants/stepNN_<slug>.toml`` with the exercise it belongs to, the mistake in one
line and its source. Beside them, *equivalents*: correct code written another way (another
order, a helper, a direct import), which must PASS — they keep the checks from being fitted to
the reference's wording.

One pytest process per step runs every mutant and equivalent of that step at once: each is a
copy of the step's solution folder with the edit applied, in a folder of its own, and
``workbook/loader.py`` imports each copy under a name of its own (``--workbook-targets``). For
each copy only the tests marked with its exercise run (the in-process suites; over HTTP only if
the mutant asks for it), with the cheap hashing parameters of the test harness, and a killed
mutant's remaining tests are skipped. ``attribution = true`` runs the whole lesson on a mutant
and reports every failure outside its exercise: the verdict must point where the fix belongs.

    python -m workbook dev mutants [N] [--all]     the kill table (--all: every killing check)

A mutant is *killed* when at least one test marked with its exercise fails with a message in
words (``workbook.pytest_report.names_property``), not a bare ``assert 200 == 401``.

This module is also the pytest plugin of that run (``-p workbook.mutants``): see the hooks at
the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .course import SOLUTIONS, TESTS, Course, Step, load

CATALOGUE = TESTS / "mutants"
HTTP_SUITES = ("_live.py", "_workers.py")
LIVE_FIXTURES = {"live_server", "start_server", "redis_url"}


@dataclass(frozen=True)
class Edit:
    file: str
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    """A plausible wrong solution (kind "mutant") or a correct rewrite (kind "equivalent")."""

    kind: str
    exercise: str
    step: int
    name: str
    mistake: str  # mutants: the mistake in one line; equivalents: why it is still right
    source: str
    edits: tuple[Edit, ...]
    catalogue: str
    http: bool = False
    attribution: bool = False
    only_if: str = ""

    @property
    def id(self) -> str:
        return f"{self.exercise}/{self.name}"


class CatalogueError(ValueError):
    """A catalogue file is malformed or does not apply to the current solution."""


def catalogue_files() -> list[Path]:
    return sorted(CATALOGUE.glob("step*.toml"))


def load_catalogue(course: Course | None = None) -> list[Mutant]:
    """Every mutant and equivalent of the course, checked for shape (not yet for applying)."""
    course = course or load()
    known = course.exercises
    found: list[Mutant] = []
    seen: set[tuple[str, str]] = set()
    for path in catalogue_files():
        raw = tomllib.loads(path.read_text("utf-8"))
        for kind, key in (("mutant", "mutant"), ("equivalent", "equivalent")):
            for i, entry in enumerate(raw.get(key, []), start=1):
                where = f"{path.name}, {key} #{i}"
                missing = [k for k in ("exercise", "name", "source") if not entry.get(k)]
                what = entry.get("mistake") or entry.get("why")
                if missing or not what:
                    raise CatalogueError(f"{where}: needs {', '.join(missing + ([] if what else ['mistake/why']))}")
                exercise = known.get(entry["exercise"])
                if exercise is None:
                    raise CatalogueError(f"{where}: unknown exercise {entry['exercise']!r}")
                if (kind, f"{entry['exercise']}/{entry['name']}") in seen:
                    raise CatalogueError(f"{where}: the name {entry['name']!r} is used twice for {entry['exercise']}")
                seen.add((kind, f"{entry['exercise']}/{entry['name']}"))
                if entry.get("edit") and any(k in entry for k in ("file", "find", "replace")):
                    raise CatalogueError(f"{where}: has [[mutant.edit]] tables and a file/find/replace of its own; "
                                         "move the top-level edit into an edit table (it would be ignored)")
                raw_edits = entry.get("edit") or [{k: entry.get(k) for k in ("file", "find", "replace")}]
                edits = []
                for e in raw_edits:
                    if not e.get("file") or not e.get("find") or e.get("replace") is None:
                        raise CatalogueError(f"{where}: every edit needs file, find and replace")
                    edits.append(Edit(e["file"], e["find"], e["replace"]))
                found.append(Mutant(
                    kind=kind, exercise=exercise.id, step=exercise.step, name=entry["name"], mistake=what,
                    source=entry["source"], edits=tuple(edits), catalogue=path.name,
                    http=bool(entry.get("http", False)), attribution=bool(entry.get("attribution", False)),
                    only_if=entry.get("only_if", ""),
                ))
    return found


def edit_problems(mutant: Mutant, course: Course | None = None, solutions: Path = SOLUTIONS) -> list[str]:
    """Why the mutant's edits do not apply exactly once each to the current solution ([] if they do)."""
    step = (course or load()).step(mutant.step)
    problems = []
    texts: dict[str, str] = {}
    for edit in mutant.edits:
        path = step.folder(solutions) / edit.file
        if edit.file not in texts:
            if not path.is_file():
                problems.append(f"{mutant.id}: solutions/{step.slug}/{edit.file} does not exist")
                continue
            texts[edit.file] = path.read_text("utf-8")
        count = texts[edit.file].count(edit.find)
        if count != 1:
            problems.append(f"{mutant.id}: the text to find occurs {count} times in solutions/{step.slug}/{edit.file} "
                            f"(it must occur exactly once): {edit.find[:80]!r}")
            continue
        if edit.find == edit.replace:
            problems.append(f"{mutant.id}: the edit changes nothing")
        texts[edit.file] = texts[edit.file].replace(edit.find, edit.replace)
    return problems


def materialize(mutant: Mutant, root: Path, course: Course | None = None, solutions: Path = SOLUTIONS) -> Path:
    """``root/<slug>``: a copy of the step's solution with the mutant's edits applied."""
    step = (course or load()).step(mutant.step)
    problems = edit_problems(mutant, course, solutions)
    if problems:
        raise CatalogueError("; ".join(problems))
    dest = step.folder(root)
    shutil.copytree(step.folder(solutions), dest,
                    ignore=shutil.ignore_patterns("__pycache__", "instance", "*.pyc", "*.sqlite"))
    for edit in mutant.edits:
        path = dest / edit.file
        path.write_text(path.read_text("utf-8").replace(edit.find, edit.replace), encoding="utf-8")
    return dest


# --- conditions a mutant may depend on --------------------------------------------------------

def _json_recursion_at_5000() -> bool:
    try:
        json.loads("[" * 5000 + "]" * 5000)
    except RecursionError:
        return True
    return False


CONDITIONS = {
    # Python 3.13's JSON parser goes deeper than the tests' 5,000 levels under the 16 KiB cap:
    # there, forgetting to catch RecursionError is not a bug a request can reach.
    "json-recursion": (_json_recursion_at_5000, "this Python's json parser does not hit its recursion "
                                                "limit at 5,000 levels (3.13 goes deeper)"),
}


def condition_unmet(mutant: Mutant) -> str:
    """Why the mutant cannot be killed on this Python ("" when it can)."""
    if not mutant.only_if:
        return ""
    test, why = CONDITIONS[mutant.only_if]
    return "" if test() else why


# --- running ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    mutant: Mutant
    ran: int = 0
    failures: list[dict] = field(default_factory=list)  # failing tests marked with the exercise
    collateral: list[dict] = field(default_factory=list)  # failing tests NOT marked with it (attribution)
    not_applicable: str = ""  # the mutant cannot be killed on this Python, and why
    problem: str = ""
    results: list = field(default_factory=list)  # its runner.TestResults (what `grade` would score)

    @property
    def killers(self) -> list[dict]:
        from .pytest_report import names_property

        return [f for f in self.failures if names_property(f["reason"])]

    @property
    def killed(self) -> bool:
        return bool(self.killers)

    @property
    def ok(self) -> bool:
        """A mutant is killed; an equivalent passes every check of its exercise."""
        if self.problem:
            return False
        if self.not_applicable:
            return True
        if self.mutant.kind == "mutant":
            return self.killed and not self.collateral
        return self.ran > 0 and not self.failures


@dataclass
class StepRun:
    step: Step
    outcomes: list[Outcome]
    seconds: float
    problem: str = ""
    tests: list = field(default_factory=list)  # every runner.TestResult, with its target folder's name


def run_step(step: Step, mutants: list[Mutant], *, every_killer: bool = False, timeout: float = 240.0,
             course: Course | None = None) -> StepRun:
    """Run all of ``step``'s mutants and equivalents in one pytest process; one Outcome each."""
    from .runner import results_of, run_pytest

    course = course or load()
    mine = [m for m in mutants if m.step == step.number]
    outcomes = {m.id + m.kind: Outcome(m) for m in mine}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"workbook-mutants-{step.number:02d}-") as scratch:
        roots, spec = [], {}
        for i, m in enumerate(mine, start=1):
            why = condition_unmet(m)
            if why:
                outcomes[m.id + m.kind].not_applicable = why
                continue
            root = Path(scratch) / f"{'m' if m.kind == 'mutant' else 'e'}{i:02d}"
            try:
                materialize(m, root, course)
            except CatalogueError as exc:
                outcomes[m.id + m.kind].problem = str(exc)
                continue
            roots.append(root)
            mode = "pass" if m.kind == "equivalent" else ("all" if m.attribution else "kill")
            spec[root.name] = {"id": m.id, "exercise": m.exercise, "mode": mode, "http": m.http,
                               "every_killer": every_killer}
        if not roots:
            return StepRun(step, list(outcomes.values()), time.monotonic() - started)
        spec_file = Path(scratch) / "mutants.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        http = any(s["http"] for s in spec.values())
        files = [f for f in step.test_files if http or not f.name.endswith(HTTP_SUITES)]
        data, problem, _, output = run_pytest(
            files, Path(scratch), [f"--workbook-targets={os.pathsep.join(str(r) for r in roots)}",
                                   f"--workbook-step={step.number}", "-p", "workbook.mutants",
                                   f"--workbook-mutants={spec_file}"],
            timeout=timeout)
    run = StepRun(step, list(outcomes.values()), time.monotonic() - started)
    if data is None:
        run.problem = problem
        return run
    if data.get("collection_errors"):
        run.problem = "the tests could not be collected: " + data["collection_errors"][0]["reason"][-1500:]
        return run
    by_root = {name: outcomes[s["id"] + ("equivalent" if name.startswith("e") else "mutant")]
               for name, s in spec.items()}
    raw_by_node = {t["nodeid"]: t for t in data["tests"]}
    run.tests = results_of(data)
    for result in run.tests:
        raw = raw_by_node.get(result.nodeid, {})
        outcome = by_root.get(raw.get("target"))
        if outcome is None:
            continue
        outcome.results.append(result)
        if result.outcome == "skipped":
            continue
        outcome.ran += 1
        if result.passed:
            continue
        entry = {"test": result.test, "property": result.property, "reason": result.reason,
                 "case": raw.get("case", ""), "exercises": result.exercises}
        # A failure counts for the mutant only where it is reported: under the mutant's exercise.
        # One reported elsewhere (too) points the learner, and the grader, at the wrong exercise.
        if outcome.mutant.exercise in result.exercises:
            outcome.failures.append(entry)
        if set(result.exercises) - {outcome.mutant.exercise}:
            outcome.collateral.append(entry)
    for outcome in by_root.values():
        if outcome.ran == 0 and not outcome.problem:
            outcome.problem = "no test of its exercise ran on it"
    return run


def run_all(step_numbers: list[int] | None = None, *, every_killer: bool = False,
            whole_lesson: bool = False) -> list[StepRun]:
    """Each step's run. ``whole_lesson``: every mutant meets every test of its lesson (as
    ``attribution = true`` asks for one), so a failure reported under another exercise shows."""
    course = load()
    mutants = load_catalogue(course)
    if whole_lesson:
        mutants = [dataclasses.replace(m, attribution=True) if m.kind == "mutant" else m for m in mutants]
    steps = [s for s in course.steps if step_numbers is None or s.number in step_numbers]
    return [run_step(s, mutants, every_killer=every_killer, course=course) for s in steps]


def describe(failure: dict, width: int = 160) -> str:
    """``test_name[case]: the first line of its message`` (the test's name without the copy's id)."""
    name = failure["test"].split("[", 1)[0]
    case = f"[{failure['case']}]" if failure.get("case") else ""
    reason = (failure["reason"].strip().splitlines() or [""])[0]
    text = f"{name}{case}: {reason}"
    return text if len(text) <= width else text[: width - 3] + "..."


def kill_table(runs: list[StepRun], course: Course | None = None) -> list[str]:
    """The kill table, as lines: exercise, mutant, verdict, the check that killed it."""
    course = course or load()
    lines = []
    for run in runs:
        lines.append(f"Step {run.step.label} {run.step.title}  ({run.seconds:.1f} s)")
        if run.problem:
            # Nothing ran: no mutant "survived" and no rewrite "fails"; say that once, not 20 times.
            lines.append(f"  the run failed, so no verdict for its {len(run.outcomes)} mutants and rewrites: "
                         f"{run.problem}")
            continue
        for o in run.outcomes:
            ex = course.exercises[o.mutant.exercise]
            head = f"  {ex.label:<4} {ex.id:<18} {o.mutant.name:<38}"
            if o.problem:
                lines.append(f"{head} ERROR     {o.problem}")
            elif o.not_applicable:
                lines.append(f"{head} n/a       {o.not_applicable}")
            elif o.mutant.kind == "equivalent":
                verdict = "passes" if o.ok else "FAILS"
                detail = (describe(o.failures[0]) if o.failures
                          else f"correct rewrite, {o.ran} checks pass")
                lines.append(f"{head} {verdict:<9} {detail}")
            elif o.killed:
                for n, k in enumerate(o.killers):
                    lines.append(f"{head if n == 0 else ' ' * len(head)} {'killed' if n == 0 else '':<9} "
                                 f"{describe(k)}")
                for c in o.collateral:
                    lines.append(f"{' ' * len(head)} MISATTRIBUTED  also failed under {c['exercises']}: {c['test']}")
            else:
                weak = f" (failed without a message: {o.failures[0]['test']})" if o.failures else ""
                lines.append(f"{head} SURVIVED  {o.mutant.mistake}{weak}")
    return lines


def summary(runs: list[StepRun], course: Course | None = None) -> list[str]:
    course = course or load()
    outcomes = [o for r in runs for o in r.outcomes]
    mutants = [o for o in outcomes if o.mutant.kind == "mutant" and not o.not_applicable]
    killed = [o for o in mutants if o.killed]
    equivalents = [o for o in outcomes if o.mutant.kind == "equivalent"]
    per_exercise = {}
    for o in outcomes:
        if o.mutant.kind == "mutant":
            per_exercise[o.mutant.exercise] = per_exercise.get(o.mutant.exercise, 0) + 1
    counts = ", ".join(f"{course.exercises[e].label} {n}" for e, n in per_exercise.items())
    rate = f"{len(killed) / len(mutants):.0%}" if mutants else "-"
    na = sum(1 for o in outcomes if o.not_applicable)
    return [
        f"mutants per exercise: {counts}",
        f"{len(killed)} of {len(mutants)} mutants killed ({rate})"
        + (f"; {na} not applicable on this Python" if na else "")
        + f"; {sum(1 for o in equivalents if o.ok)} of {len(equivalents)} correct rewrites pass"
        + f"; {sum(r.seconds for r in runs):.1f} s",
    ] + ([f"NOT RUN: the mutant runs of step {', '.join(r.step.label for r in runs if r.problem)} failed "
          "(see above): these figures count them as not killed"] if any(r.problem for r in runs) else [])


# --- the pytest plugin of a mutant run ---------------------------------------------------------

_spec: dict = {}
_killed: set[str] = set()


def pytest_addoption(parser):
    parser.getgroup("workbook").addoption(
        "--workbook-mutants", default=None, metavar="FILE",
        help="the mutant run's plan (JSON, written by workbook/mutants.py): which tests run on which copy",
    )


def _root_name(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    target = callspec.params.get("step") if callspec is not None else None
    root = getattr(target, "root", None)
    return root.name if root is not None else None


def pytest_configure(config):
    path = config.getoption("--workbook-mutants")
    if path:
        _spec.update(json.loads(Path(path).read_text("utf-8")))


def pytest_collection_modifyitems(config, items):
    if not _spec:
        return
    keep, drop = [], []
    for item in items:
        plan = _spec.get(_root_name(item))
        marked = {m.args[0] for m in item.iter_markers("exercise") if m.args}
        live = bool(LIVE_FIXTURES & set(getattr(item, "fixturenames", ())))
        wanted = plan is not None and (plan["mode"] == "all" or plan["exercise"] in marked) \
            and (plan["http"] or not live)
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # One copy after the other, each in the files' order, but the tests that start processes
    # (`flask routes`, ...) last: most mutants are killed before them, and their remaining
    # tests are then skipped.
    roots = list(dict.fromkeys(_root_name(item) for item in keep))
    items[:] = sorted(keep, key=lambda item: (roots.index(_root_name(item)), _starts_processes(item)))


def _starts_processes(item) -> bool:
    code = getattr(getattr(item, "function", None), "__code__", None)
    return bool(code and "subprocess" in code.co_names)


@pytest.hookimpl(tryfirst=True)  # before any fixture is set up: a skipped copy costs nothing
def pytest_runtest_setup(item):
    name = _root_name(item)
    plan = _spec.get(name)
    if plan and plan["mode"] == "kill" and not plan["every_killer"] and name in _killed:
        pytest.skip("this mutant is already killed")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    name = _root_name(item)
    plan = _spec.get(name)
    if plan and call.when == "call" and report.failed:
        from .pytest_report import names_property, reason_of, reported_exercises

        if plan["exercise"] in reported_exercises(item, call, True) and names_property(reason_of(report, call, item)):
            _killed.add(name)
    return report


if __name__ == "__main__":  # python -m workbook.mutants: the same as `python -m workbook dev mutants`
    results = run_all([int(a) for a in sys.argv[1:]] or None)
    print("\n".join(kill_table(results) + summary(results)))
