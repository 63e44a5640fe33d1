"""Grade one student, then a class: each graded copy's tests in a pytest process of their own, the
student's code only in that copy's bubblewrap sandboxes (bwrap.py, host.py, tests/remote.py).

In the grader's own temporary folder (never visible to any sandbox but the parts named):

    <id>/raw/              the zip, extracted (plain files only); removed once copied
    <id>/steps/            the student's graded copy (intake)
    run-<key>/steps/       the copy a run grades        -> bound read-only into its sandboxes
    run-<key>/tmp/         TMPDIR and pytest's --basetemp -> bound writable (SQLite files, server logs);
                           on /dev/shm when the student's memory limit bounds it (bwrap.writable_folder)
    run-<key>/spec.json    what the sandboxes see       (the grader's; not bound)
    run-<key>/events       limits tripped, as JSON lines (written by the grading pytest, outside)

<key> is the hash of everything a run reads: the graded copy's files (names and bytes), the tests,
the grader and the options. Submissions with one key (byte-identical copies: untouched starters,
copies of one another) are graded by one run, whose result is the same for each by construction:
no path or name in it is the student's. A flagged result (flags included) is theirs alike, and
cached for none of them.

The pytest process that decides runs outside the sandbox and writes its report into a folder of
its own (workbook/runner.py); it is read after the run's sandboxes are gone (PID namespaces:
when a sandbox's first process ends, every process in it ends). Then the run's folder and <id>/
are removed: nothing a student's run leaves behind outlives it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .. import exercises
from ..course import REPO, SOLUTIONS, TESTS, Course, lesson_of, load
from ..runner import TestResult, results_of, run_pytest
from . import bwrap, intake
from .report import flag_identical, write_outputs
from .rubric import Grade, check_extra_tests, score

STUDENT_TIMEOUT = 180.0  # seconds for one student's whole grading run
HTTP_SUITES = ("_live.py", "_workers.py")  # the attacks over real HTTP, the multi-process test
CACHE_VERSION = "3"  # bump when what a cached result means changes


@dataclass
class Run:
    """What every student's run of one grading session shares."""

    course: Course
    steps: list
    files: list[Path]  # the test files
    extra: list[Path]
    scratch: Path
    host_dir: Path
    out: Path
    key: str  # the tests, hidden tests, course and options: half of each cache key
    trusted: bool
    timeout: float
    answer_timeout: float
    hide: list[Path]  # the submissions, the output, the hidden tests: never in a sandbox's view


def suite_key(files: list[Path], extra_sources: list[Path], options: str) -> str:
    """What a grade depends on besides the student: the tests' and the hidden tests' contents
    (not their temporary paths), the grader, the course and the options."""
    digest = hashlib.sha256(CACHE_VERSION.encode() + options.encode())
    helpers = [f for f in sorted(TESTS.glob("*.py")) if not f.name.startswith("test_")]  # conftest, harness, remote...
    package = REPO / "workbook"
    graders = [*helpers, *(package / n for n in ("course.py", "course.toml", "loader.py", "runner.py", "pytest_report.py")),
               *sorted((package / "grading").glob("*.py"))]
    for path in [*graders, *files, *extra_sources]:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def own_files_fingerprint() -> str:
    """The grader's own code and tests: they must not change while a student's run goes on."""
    return intake.content_hash(REPO / "workbook") + intake.content_hash(TESTS)


def _read_events(path: Path) -> list[str]:
    flags = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh.read(64 * 1024).splitlines()[:50]:
                try:
                    event = json.loads(line)
                    flags.append(f"{event['kind']}: {event['detail']}")
                except (ValueError, KeyError, TypeError):
                    continue
    except OSError:
        pass
    return sorted(set(flags))


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total


@dataclass
class Prepared:
    """One student after intake: their grade so far, and the graded copy still to run (if any)."""

    grade: Grade
    work: Path  # the student's own folder in the scratch (raw/, steps/): removed when graded
    dest: Path | None = None  # the graded copy, when its tests are still to run
    files: list[Path] | None = None
    key: str = ""  # content + suite: everything a run reads (see run_once)


@dataclass
class Outcome:
    """What one run of a graded copy gave: the same for every submission with that copy."""

    tests: list[TestResult]
    notes: list[str]
    flags: list[str]
    seconds: float
    detail: str = ""  # why the run stopped early, with pytest's output: for the instructor (logs/<id>.txt)


def prepare(entry: intake.Entry, run: Run, starter_hashes: dict[str, str]) -> Prepared:
    """Intake: unzip, find the steps, copy their plain files, look in the cache. Runs no student code."""
    grade = Grade(student=entry.name, id=entry.id)
    work = run.scratch / entry.id
    raw = work / "raw"
    raw.mkdir(parents=True)
    done = Prepared(grade, work)
    slugs = {s.slug for s in run.steps}
    if entry.path.is_dir():
        base, from_zip = entry.path, False
    else:
        try:
            intake.unzip_safely(entry.path, raw, grade.notes)
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
            grade.notes.append(f"the zip could not be read ({type(exc).__name__}: {str(exc)[:100]})")
        base, from_zip = raw, True
    root = intake.find_steps_root(base, slugs, from_zip=from_zip) if base.is_dir() else None
    if root is None:
        grade.notes.append("no step folder found (expected steps/stepNN_... or stepNN_... folders); "
                           "every step scores 0")
        score(grade, run.steps)
        return done
    dest = work / "steps"
    dest.mkdir()
    intake.copy_steps(root, dest, run.steps, grade.notes)
    shutil.rmtree(raw, ignore_errors=True)  # the graded copy is all that is needed from here on
    grade.content = intake.content_hash(dest)
    hashes = intake.step_hashes(dest, run.steps)
    grade.attempted = [s.slug for s in run.steps if s.slug in hashes and hashes[s.slug] != starter_hashes.get(s.slug)]
    key = hashlib.sha256((grade.content + run.key).encode()).hexdigest()
    cache = run.out / ".cache" / f"{entry.id}.json"
    if cache.exists():
        try:
            cached = json.loads(cache.read_text("utf-8"))
            if cached.get("key") == key:
                grade.tests = [TestResult(**t) for t in cached["tests"]]
                grade.notes = cached["notes"]
                grade.seconds = cached["seconds"]
                grade.cached = True
                score(grade, run.steps)
                return done
        except (ValueError, KeyError, TypeError):
            pass
    present = [s for s in run.steps if (dest / s.slug / "__init__.py").is_file()]
    for s in run.steps:
        if (dest / s.slug).is_dir() and s not in present:
            grade.notes.append(f"{s.slug}/__init__.py is missing: 0 points for step {s.number}")
    numbers = {s.number for s in present}
    files = [f for f in run.files if lesson_of(f) in numbers] + [f for f in run.extra if lesson_of(f) in numbers]
    if not files:
        score(grade, run.steps)
        cache.unlink(missing_ok=True)
        return done
    done.dest, done.files, done.key = dest, files, key
    return done


def run_once(run: Run, copy: Path, files: list[Path], work: Path) -> Outcome:
    """Run the tests on one graded copy, in ``work`` (removed afterwards).

    What the run reads is the copy (its content hash), the suite, the options (``run.key``) and
    paths named after neither the student nor the submission: so byte-identical copies get one run
    (``grade_class``), and nothing in it depends on whose copy it is."""
    dest = work / "steps"
    cgroup = None if run.trusted else bwrap.Cgroup()
    writable = bwrap.writable_folder(cgroup) or work / "tmp"
    try:
        (writable / "pytest").mkdir(parents=True)
        shutil.copytree(copy, dest)
        events = work / "events"
        spec_path = work / "spec.json"
        bwrap.write_spec(spec_path, root=dest, host_dir=run.host_dir, writable=[writable], cgroup=cgroup,
                         events=events, mode="trusted" if run.trusted else "bwrap", hide=run.hide)
        content = intake.content_hash(dest)
        before = own_files_fingerprint() if run.trusted else ""
        outcome = Outcome(tests=[], notes=[], flags=[], seconds=0.0)
        try:
            data, problem, outcome.seconds, _ = run_pytest(
                # --tb=no: the verdicts are the report's (workbook/pytest_report.py, from each exception), never
                # the terminal's; printing 300 failing tests' tracebacks was a quarter of a starter run's CPU.
                files, dest, ["--workbook-own-lessons", "--workbook-sandbox", f"--basetemp={writable / 'pytest'}",
                              "--tb=no"],
                timeout=run.timeout,
                env={"WORKBOOK_SANDBOX": "1", "WORKBOOK_ANSWER_TIMEOUT": str(run.answer_timeout),
                     "WORKBOOK_SANDBOX_SPEC": str(spec_path), "TMPDIR": str(writable)})
        finally:
            if cgroup is not None:
                outcome.flags += [f"limit: {what} (the student's processes ran into it)" for what in cgroup.tripped()]
                cgroup.close()
                cgroup = None
        if data is None:
            outcome.detail = problem[-8000:]
            outcome.notes.append(f"grading stopped: {problem.splitlines()[0]}")
            outcome.flags.append("limit: time (the run did not finish)" if "did not finish" in problem
                                 else "the grading run stopped early")
        else:
            outcome.tests = results_of(data)
            if data.get("collection_errors"):  # the course's tests, not the student: say it loudly, cache nothing
                outcome.detail = str(data["collection_errors"][0].get("reason", ""))[-8000:]
                outcome.notes.append("the tests could not be collected: "
                                     + str(data["collection_errors"][0].get("reason", ""))[-300:])
                outcome.flags.append("the grading run stopped early")
        outcome.flags += _read_events(events)
        written = _size(writable)
        if written > bwrap.WRITTEN_BYTES:
            outcome.flags.append(f"limit: wrote {written // 1024**2} MiB of files (removed)")
        if intake.content_hash(dest) != content:  # read-only in the sandbox: only --trusted can get here
            outcome.flags.append("tamper: the graded copy changed during this run")
        if run.trusted and own_files_fingerprint() != before:
            outcome.flags.append("tamper: the grader's own files changed during this run: restore them from git")
        return outcome
    finally:
        if cgroup is not None:  # the run did not start
            cgroup.close()
        shutil.rmtree(writable, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def finish(prepared: Prepared, run: Run, outcome: Outcome) -> Grade:
    """A student's grade from a run of their graded copy; cached unless the run was flagged."""
    grade = prepared.grade
    grade.tests = list(outcome.tests)
    grade.notes += outcome.notes
    grade.flags += outcome.flags
    grade.seconds = outcome.seconds
    score(grade, run.steps)
    log = run.out / "logs" / f"{grade.id}.txt"  # the instructor's only: the feedback has the first line
    if outcome.detail:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(outcome.detail, encoding="utf-8")
    else:
        log.unlink(missing_ok=True)
    cache = run.out / ".cache" / f"{grade.id}.json"
    if not grade.flags:  # a flagged run is never cached: it is graded again next time
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": prepared.key, "suite": run.key, "content": grade.content,
                                     "notes": grade.notes, "seconds": grade.seconds,
                                     "tests": [t.__dict__ for t in grade.tests]}), encoding="utf-8")
    elif cache.exists():
        cache.unlink()
    return grade


def grade_group(run: Run, group: list[Prepared]) -> list[Grade]:
    """Grade submissions whose graded copies are byte-identical (one key) with one run.

    The run reads the same bytes at the same paths whoever's copy it is (``run_once``): its result,
    flags included, is each one's. A flagged result is cached for none of them (``finish``), so
    the next grading runs that copy again, for all of them."""
    try:
        outcome = run_once(run, group[0].dest, group[0].files, run.scratch / f"run-{group[0].key[:24]}")
        return [finish(p, run, outcome) for p in group]
    finally:
        for p in group:
            shutil.rmtree(p.work, ignore_errors=True)


def _starter_and_solution_hashes(course: Course, steps, scratch: Path) -> tuple[dict[str, str], dict[str, str]]:
    starter = scratch / "_starter"
    for step in steps:
        exercises.write_starter(step, course, steps_root=starter)
    notes: list[str] = []
    copied = scratch / "_starter_copy"
    intake.copy_steps(starter, copied, steps, notes)
    solutions = scratch / "_solutions_copy"
    intake.copy_steps(SOLUTIONS, solutions, steps, notes)
    known = {intake.content_hash(solutions): "the course's own solutions/"}
    return intake.step_hashes(copied, steps), known


def _failed(entry_or_grade, steps, exc: Exception) -> Grade:
    grade = Grade(student=entry_or_grade.name if isinstance(entry_or_grade, intake.Entry) else entry_or_grade.student,
                  id=entry_or_grade.id)
    grade.notes.append(f"could not be graded: {type(exc).__name__}: {str(exc)[:200]}")
    grade.flags.append("the grader failed on this submission")
    score(grade, steps)
    return grade


def _grade_entries(pool, run: Run, entries, starter_hashes, progress) -> list[Grade]:
    """Intake every submission, then one run per distinct graded copy (``grade_group``)."""
    grades: list[Grade] = []

    def done(grade: Grade) -> None:
        grades.append(grade)
        if progress:
            progress(grade)

    groups: dict[str, list[Prepared]] = {}
    intakes = {pool.submit(prepare, e, run, starter_hashes): e for e in entries}
    for future in as_completed(intakes):
        try:
            prepared = future.result()
        except Exception as exc:  # noqa: BLE001 - one student's trouble never stops the class
            done(_failed(intakes[future], run.steps, exc))
            continue
        if prepared.dest is None:  # nothing to run: no steps, the cache, no test to run
            shutil.rmtree(prepared.work, ignore_errors=True)
            done(prepared.grade)
        else:
            groups.setdefault(prepared.key, []).append(prepared)
    # The largest groups first: their runs count for the most students.
    running = {pool.submit(grade_group, run, group): group
               for group in sorted(groups.values(), key=len, reverse=True)}
    for future in as_completed(running):
        try:
            graded = future.result()
        except Exception as exc:  # noqa: BLE001
            graded = [_failed(p.grade, run.steps, exc) for p in running[future]]
        for grade in graded:
            done(grade)
    return grades


def select_shard(entries: list[intake.Entry], shard: tuple[int, int] | None) -> list[intake.Entry]:
    """Shard K of N: every N-th student by id, so shards are balanced and stable as the class grows."""
    if not shard:
        return entries
    k, n = shard
    return [e for e in entries if int(hashlib.sha256(e.id.encode()).hexdigest(), 16) % n == k - 1]


def grade_class(submissions: Path, out: Path, *, extra_tests: Path | None = None, show_extra: bool = False,
                jobs: int | None = None, step_numbers: list[int] | None = None,
                timeout: float = STUDENT_TIMEOUT, answer_timeout: float = 5.0, http: bool = False,
                trusted: bool = False, shard: tuple[int, int] | None = None, progress=None) -> list[Grade]:
    """Grade every submission (or shard K/N of them); write gradebook.csv, feedback/, report.html and
    results.json into `out`. Raises bwrap.IsolationUnavailable when untrusted code cannot be isolated
    here (unless `trusted`), rubric.RubricError for hidden tests without an exercise."""
    if not trusted:
        bwrap.require()
    course = load()
    steps = [s for s in course.steps if not step_numbers or s.number in step_numbers]
    extra_sources = sorted(Path(extra_tests).glob("test_step*.py")) if extra_tests else []
    files = [f for s in steps for f in s.test_files if http or not f.name.endswith(HTTP_SUITES)]
    # Every test that runs belongs to an exercise, the course's own and the hidden ones alike: so
    # grading and `check` judge the same things, and no test runs for nothing.
    check_extra_tests(files + extra_sources, course)
    out.mkdir(parents=True, exist_ok=True)
    entries = select_shard(intake.discover(submissions), shard)
    extra_dir = None
    extra: list[Path] = []
    grades: list[Grade] = []
    try:
        if extra_sources:
            # Hidden tests join the instructor's suite for this run only (they need its conftest);
            # no sandbox sees tests/, so no student can read them.
            extra_dir = Path(tempfile.mkdtemp(prefix="_extra_", dir=TESTS))
            (extra_dir / "__init__.py").touch()
            for path in extra_sources:
                shutil.copyfile(path, extra_dir / path.name)
                extra.append(extra_dir / path.name)
        with tempfile.TemporaryDirectory(prefix="workbook-grade-") as scratch_name:
            scratch = Path(scratch_name)
            os.chmod(scratch, 0o700)
            host_dir = bwrap.stage_host(scratch / "_host")
            starter_hashes, known = _starter_and_solution_hashes(course, steps, scratch)
            run = Run(course=course, steps=steps, files=files, extra=extra, scratch=scratch, host_dir=host_dir,
                      out=out, key=suite_key(files, extra_sources, f"http={http};steps={[s.number for s in steps]};"
                                             f"trusted={trusted}"),
                      trusted=trusted, timeout=timeout, answer_timeout=answer_timeout,
                      hide=[submissions, out, *([Path(extra_tests)] if extra_tests else [])])
            # Twice as many students as cores, and one more: much of a run is waiting (a server
            # booting, a hanging submission's time-outs), not computing.
            with ThreadPoolExecutor(max_workers=jobs or 2 * (os.cpu_count() or 2) + 1) as pool:
                grades += _grade_entries(pool, run, entries, starter_hashes, progress)
    finally:
        if extra_dir:
            shutil.rmtree(extra_dir, ignore_errors=True)
        if not trusted:
            bwrap.sweep()
    grades.sort(key=lambda g: (g.student.casefold(), g.id))
    flag_identical(grades, known)
    write_outputs(grades, out, steps, show_extra)
    if shard:
        (out / "shard.json").write_text(json.dumps({"shard": list(shard), "steps": [s.number for s in steps],
                                                    "suite": run.key}), encoding="utf-8")
    return grades
