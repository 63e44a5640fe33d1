"""A pytest plugin that writes each test's verdict as JSON, in the learner's words.

Loaded by the runner (``-p workbook.pytest_report --workbook-report FILE``) in the pytest
process that checks a step; the CLI and the grader read the file, never pytest's output.
Per test: the security property it checks (its docstring's first paragraph), the exercises it
covers, the outcome, and for a failure the reason (the assertion's message, or where the
learner's code crashed).

A test that covers several exercises can say which one a failing assertion belongs to: an
AssertionError with an ``exercise`` attribute (``tests/verdict.py``'s ``check``). The failure
is then reported under that exercise only — where the fix belongs — by `check` and `grade` alike.
An exercise marked ``@pytest.mark.exercise(id, when_named=True)`` gets a failure only when a check
names it (e.g. the login that a protected-route test needs first).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from workbook.loader import describe_exception

_results: list[dict] = []
_started = time.monotonic()


def pytest_addoption(parser):
    parser.getgroup("workbook").addoption(
        "--workbook-report", default=None, metavar="FILE", help="write the verdicts as JSON to FILE"
    )


def _property_of(item) -> str:
    """The docstring's first paragraph, on one line (a sentence may wrap), or the test's name."""
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    paragraph = doc.strip().split("\n\n")[0]
    return " ".join(paragraph.split()) or item.name


def _target(item):
    """The StepTarget (or RemoteStep) the item runs on, if it takes the ``step`` fixture."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("step") if callspec is not None else None


def _case(item) -> str:
    """The parametrized case in words (``alg none, no signature``), without the step's id."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    text = callspec.id
    target = _target(item)
    slug = getattr(getattr(target, "step", None), "slug", None)
    if slug:
        root = getattr(target, "root", None)
        for step_id in ([f"{root.name}-{slug}"] if root is not None else []) + [slug]:
            if step_id in text:
                text = text.replace(step_id, "", 1)
                break
    return text.strip("-")


def reported_exercises(item, call, failed: bool) -> list[str]:
    """The exercises a result is reported under. A pass counts for every marked exercise. A failure
    counts where its fix belongs: the exercise a failing check names (tests/verdict.py), else every
    marked exercise except those marked ``when_named=True`` (reported only when a check names them)."""
    marks = [m for m in item.iter_markers("exercise") if m.args]
    marked = [m.args[0] for m in marks]
    if not failed:
        return marked
    blamed = blamed_exercise(call)
    if blamed in marked:
        return [blamed]
    return [m.args[0] for m in marks if not m.kwargs.get("when_named")] or marked


def blamed_exercise(call) -> str | None:
    """The exercise a failing assertion names as the place of the fix, if it names one."""
    exc = call.excinfo.value if call is not None and call.excinfo is not None else None
    value = getattr(exc, "exercise", None)
    return value if isinstance(value, str) and value else None


def reason_of(report, call, item) -> str:
    """The failure in the learner's words: the assertion's message, or where their code crashed."""
    return _reason(report, call, item)


def names_property(reason: str) -> bool:
    """Does this failure say in words what is wrong — a check's own message, not a bare
    ``assert 200 == 401`` nor a crash of the code under test?"""
    return bool(reason.strip()) and not reason.startswith(("a check failed: ", "the code raised "))


def _reason(report, call, item) -> str:
    excinfo = call.excinfo
    if excinfo is None:
        return str(report.longrepr)[-500:] if report.longrepr else ""
    exc = excinfo.value
    if isinstance(exc, AssertionError):
        text = str(exc).strip()
        if not text or text.startswith("assert "):  # no message was written for this check
            return "a check failed: " + (text.splitlines()[0] if text else "(no details)")
        # pytest's assertion rewriting appends "\nassert <expression>": keep the human part.
        return text.split("\nassert ")[0].strip()
    if excinfo.typename in ("Failed", "Skipped", "XFailed"):
        return str(exc).strip()
    # The learner's code raised: name the exception and the last line of theirs it went through.
    target = _target(item)
    root = getattr(target, "root", None) or item.config.getoption("--workbook-target", default=None)
    return f"the code raised {describe_exception(exc, Path(root) if root else None)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when in ("setup", "teardown") and not report.passed):
        if report.when == "setup" and report.skipped:
            outcome = "skipped"
        elif report.when != "call" and report.failed:
            outcome = "error"
        else:
            outcome = report.outcome
        target = _target(item)
        step = getattr(target, "number", None)
        marked = [m.args[0] for m in item.iter_markers("exercise") if m.args]
        reported = reported_exercises(item, call, outcome in ("failed", "error"))
        _results.append(
            {
                "nodeid": item.nodeid,
                "file": Path(str(item.path)).name,
                "test": item.name,
                "property": _property_of(item),
                # Where the fix belongs: the exercise a failing assertion names, else every marked one.
                "exercises": reported,
                "marked": marked,
                "case": _case(item),
                "target": getattr(getattr(target, "root", None), "name", None),
                "step": step,
                "outcome": outcome,
                "reason": "" if outcome == "passed" else _reason(report, call, item),
                "duration": round(report.duration, 4),
            }
        )
    return report


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--workbook-report")
    if not path:
        return
    errors = [
        {"nodeid": r.nodeid, "reason": str(r.longrepr)[-2000:]}
        for r in session.config.pluginmanager.get_plugin("terminalreporter").stats.get("error", [])
        if getattr(r, "when", None) == "collect" or not hasattr(r, "when")
    ] if session.config.pluginmanager.get_plugin("terminalreporter") else []
    data = {
        "exitstatus": int(exitstatus),
        "collection_errors": errors,
        "tests": _results,
        "seconds": round(time.monotonic() - _started, 3),
        "python": sys.version.split()[0],
    }
    Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")
