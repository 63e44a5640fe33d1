"""A pytest plugin that writes each test's verdict as JSON, in the learner's words.

Loaded by the runner (``-p workbook.pytest_report --workbook-report FILE``) in the pytest
process that checks a step; the CLI and the grader read the file, never pytest's output.
Per test: the security property it checks (its docstring's first line), the exercises it
covers, the outcome, and for a failure the reason (the assertion's message, or where the
learner's code crashed).
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
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else item.name
    return first


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
    root = item.config.getoption("--workbook-target", default=None)
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
        step = None
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "step" in callspec.params:
            step = getattr(callspec.params["step"], "number", None)
        _results.append(
            {
                "nodeid": item.nodeid,
                "file": Path(str(item.path)).name,
                "test": item.name,
                "property": _property_of(item),
                "exercises": [m.args[0] for m in item.iter_markers("exercise") if m.args],
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
