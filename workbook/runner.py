"""The one way to run "step N's tests against folder X" — used by `check`, the integrity tests
and the grader alike.

pytest runs in a separate process (the learner's code never runs inside the CLI), with plugin
autoloading off: nbval alone costs over a second to import, and `check N --quick` has a budget
of one second (DESIGN §9; `python bench/check_latency.py` measures it). Verdicts come back as
JSON from ``workbook.pytest_report``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .course import REPO, Course, Step, lesson_of, load


def _why_pytest_stopped(output: str) -> str:
    """What to tell the learner when pytest stopped before any test ran. Almost always a Python
    without the course's packages (the venv not activated): then say that, not a traceback."""
    missing = re.findall(r"No module named '([\w.]+)'", output)
    if missing:
        return (f"this Python ({sys.executable}) does not have the course's packages ({missing[-1]} is "
                "missing). Activate the course's virtual environment (see the README), or install them "
                "into this one: python -m pip install -r requirements.txt. `python -m workbook doctor` "
                "checks the whole setup.")
    return "pytest stopped before running any test:\n" + output[-2000:]


@dataclass
class TestResult:
    nodeid: str
    test: str
    property: str
    exercises: list[str]
    lesson: int | None
    outcome: str  # passed, failed, error, skipped
    reason: str

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def skipped(self) -> bool:
        return self.outcome == "skipped"


@dataclass
class CheckResult:
    step: Step
    target: Path
    tests: list[TestResult] = field(default_factory=list)
    problem: str = ""  # the run itself went wrong: timeout, collection error, no tests
    seconds: float = 0.0
    pytest_output: str = ""

    @property
    def passed(self) -> bool:
        """Every test passed, or was skipped for a reason it states (e.g. no redis-server here)."""
        return not self.problem and bool(self.tests) and all(t.passed or t.skipped for t in self.tests)

    @property
    def failures(self) -> list[TestResult]:
        return [t for t in self.tests if not t.passed and not t.skipped]

    @property
    def skipped(self) -> list[TestResult]:
        return [t for t in self.tests if t.skipped]

    def failing_exercises(self) -> list[str]:
        """Ids of this step's exercises with at least one failing test, in course order."""
        failing = {ex for t in self.failures for ex in t.exercises}
        return [ex.id for ex in self.step.exercises if ex.id in failing]


def lesson_files(step: Step, course: Course) -> list[Path]:
    """Every test file step N must pass: its own lesson's and every earlier lesson's."""
    return [f for s in course.lessons_up_to(step.number) for f in s.test_files]


def quick_files(step: Step) -> list[Path]:
    """The first, fast part of `check N`: the step's own in-process tests, tests/test_<slug>.py."""
    own = REPO / "tests" / f"test_{step.slug}.py"
    return [own] if own.exists() else []


# The black-box suites: attacks over real HTTP (`flask run`), and the multi-process test.
HTTP_SUITES = ("_live.py", "_workers.py")


def split_rest(files: list[Path], in_process_parts: int = 2) -> list[list[Path]]:
    """The second part of `check N`, in parts that run side by side: the in-process tests in
    ``in_process_parts`` parts of about equal size (by the size of their files, a fair proxy for
    their number of tests), every lesson's `flask run` suites (``_live.py``), and the
    multi-process suites (``_workers.py``: gunicorn, Redis) apart from them. The HTTP suites
    mostly wait for the processes they start, one after the other: in one part they were the
    last to finish. Empty parts are left out."""
    live = [f for f in files if f.name.endswith("_live.py")]
    workers = [f for f in files if f.name.endswith(HTTP_SUITES) and f not in live]
    parts: list[list[Path]] = [[] for _ in range(max(1, in_process_parts))]
    sizes = [0] * len(parts)
    sized = sorted(((f.stat().st_size, f) for f in files if not f.name.endswith(HTTP_SUITES)), key=lambda s: -s[0])
    for size, f in sized:
        smallest = sizes.index(min(sizes))
        parts[smallest].append(f)
        sizes[smallest] += size
    return [part for part in (*parts, live, workers) if part]


def merge_results(results: list[CheckResult]) -> CheckResult:
    """One verdict from the parts of a check: all their tests, the first problem, the longest time."""
    merged = CheckResult(step=results[0].step, target=results[0].target)
    for result in results:
        merged.tests += result.tests
        merged.problem = merged.problem or result.problem
        merged.seconds = max(merged.seconds, result.seconds)
        merged.pytest_output += result.pytest_output
    return merged


def pytest_command(target: Path, report: Path, files: list[Path], options: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pytest", *(str(f.relative_to(REPO)) for f in files),
        "-q", "--no-header", "-p", "no:cacheprovider",
        # The verdict reads each failure from its exception (workbook/pytest_report.py), never from
        # pytest's traceback text; formatting that text for every failing check of a starter cost
        # ~0.8 s on step 03. `check -v`, which prints pytest's own output, asks for --tb=short.
        "--tb=line",
        "-o", "addopts=",  # no nbval, no xdist here: they are for the full test run
        "-p", "pytest_timeout",  # plugins do not autoload here; this one bounds every test:
        # A check takes ~2 s at most; a hung one stops the run (tests/conftest.py).
        "-o", f"timeout={os.environ.get('WORKBOOK_TEST_TIMEOUT', '60')}",
        "-p", "workbook.pytest_report", f"--workbook-report={report}",
        f"--workbook-target={target}", *options,
    ]


class PytestRun:
    """One pytest process on ``files`` against ``target``, in its own process group, started at
    once and waited for later: `check` runs its parts side by side on a multi-core machine.

    ``background=True`` lowers the process's CPU priority (``nice`` on POSIX, below-normal priority
    on Windows), so that a part started speculatively never slows down the part whose verdict the
    learner is waiting for.
    """

    def __init__(self, files: list[Path], target: Path, options: list[str], *,
                 env: dict[str, str] | None = None, background: bool = False):
        self._scratch = tempfile.TemporaryDirectory(prefix="workbook-check-")
        self.report = Path(self._scratch.name) / "report.json"
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PYTEST_"))}
        # WORKBOOK_CHECK: fewer property-based examples, no shrinking (tests/harness.py).
        run_env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONDONTWRITEBYTECODE="1", WORKBOOK_CHECK="1")
        run_env.update(env or {})
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            pytest_command(target, self.report, files, options), cwd=REPO, env=run_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
            start_new_session=(os.name == "posix"),
            preexec_fn=_lower_priority if background and os.name == "posix" else None,
            creationflags=subprocess.BELOW_NORMAL_PRIORITY_CLASS if background and os.name == "nt" else 0,
        )

    def finish(self, timeout: float) -> tuple[dict | None, str, float, str]:
        """Wait for the run: (report, problem, seconds, output). On a timeout the whole process
        group is killed — servers and app hosts the tests started included."""
        try:
            output, _ = self.process.communicate(timeout=max(0.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            _kill_group(self.process)
            self.process.communicate()
            self._scratch.cleanup()
            return None, (f"the tests did not finish within {timeout:.0f} s: does the code wait forever "
                          "(an endless loop, a server started inside create_app)?"), timeout, ""
        finally:
            _kill_group(self.process)  # whatever the tests left running
        seconds = time.monotonic() - self.started
        try:
            if not self.report.exists():
                return None, _why_pytest_stopped(output), seconds, output
            return json.loads(self.report.read_text("utf-8")), "", seconds, output
        finally:
            self._scratch.cleanup()

    def cancel(self) -> None:
        """Stop the run and everything it started; its verdicts are not needed."""
        _kill_group(self.process)
        try:
            self.process.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            pass
        self._scratch.cleanup()


def _lower_priority() -> None:  # in the child, before pytest starts (POSIX)
    try:
        os.nice(10)
    except OSError:
        pass


def run_pytest(files: list[Path], target: Path, options: list[str], *, timeout: float,
               env: dict[str, str] | None = None) -> tuple[dict | None, str, float, str]:
    """Run pytest on ``files`` against ``target`` in its own process group: (report, problem, seconds, output)."""
    return PytestRun(files, target, options, env=env).finish(timeout)


def _kill_group(process: subprocess.Popen) -> None:
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
    elif process.poll() is None:
        process.kill()


def results_of(data: dict) -> list[TestResult]:
    return [
        TestResult(nodeid=raw["nodeid"], test=raw["test"], property=raw["property"], exercises=raw["exercises"],
                   lesson=lesson_of(raw["file"]), outcome=raw["outcome"], reason=raw["reason"])
        for raw in data["tests"]
    ]


class StepRun:
    """Step N's tests (lessons 1..N, or just ``files``) against ``target/<slug>``, running."""

    def __init__(self, step: Step, target: Path, *, course: Course | None = None,
                 env: dict[str, str] | None = None, files: list[Path] | None = None, background: bool = False,
                 options: tuple[str, ...] = ()):
        course = course or load()
        self.files = lesson_files(step, course) if files is None else files
        self.result = CheckResult(step=step, target=target)
        self.run: PytestRun | None = None
        if not step.folder(target).is_dir():
            self.result.problem = f"{step.folder(target)} does not exist"
        else:
            self.run = PytestRun(self.files, target, [f"--workbook-step={step.number}", *options], env=env,
                                 background=background)

    def finish(self, timeout: float = 300.0) -> CheckResult:
        """Wait for the verdicts."""
        result = self.result
        if self.run is None:
            return result
        data, result.problem, result.seconds, result.pytest_output = self.run.finish(timeout)
        self.run = None
        if data is None:
            return result
        result.tests = results_of(data)
        if data.get("collection_errors"):
            result.problem = "the tests could not be collected:\n" + data["collection_errors"][0]["reason"]
        elif not result.tests:
            result.problem = "no test ran:\n" + result.pytest_output[-2000:]
        return result

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.run = None


def run_step_tests(step: Step, target: Path, *, timeout: float = 300.0, course: Course | None = None,
                   env: dict[str, str] | None = None, files: list[Path] | None = None) -> CheckResult:
    """Run the tests of lessons 1..N (or just ``files``) against ``target/<slug>``; collect the verdicts."""
    return StepRun(step, target, course=course, env=env, files=files).finish(timeout)
