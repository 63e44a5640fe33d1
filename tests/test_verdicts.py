"""Verdicts that do not mislead: what `check`, `status` and `hint` say about a step's results.

The results are made up here (a fake of the runner's StepRun), so each wording is checked in
milliseconds; the real runs are covered by tests/test_cli.py and the mutant run.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from workbook import cli, exercises, state
from workbook.course import load
from workbook import runner
from workbook.runner import CheckResult

COURSE = load()
STEP4 = COURSE.step(4)


def result(test, exercise, outcome="passed", reason="", prop=None, lesson=4):
    return runner.TestResult(nodeid=f"tests/test_step04_rate_limiting.py::{test}", test=test,
                      property=prop or f"the property of {test.split('[')[0]}.", exercises=[exercise] if exercise else [],
                      lesson=lesson, outcome=outcome, reason=reason)


PASSING = [result(f"test_{ex.id.replace('-', '_')}[step04_rate_limiting]", ex.id) for ex in STEP4.exercises]
REDIS_SKIP = result("test_redis_storage_holds_the_limit_across_workers[step04_rate_limiting]", "login-limits",
                    outcome="skipped", prop="With redis:// the 3 workers share one counter.",
                    reason="Skipped: redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")


@pytest.fixture
def fake_runs(monkeypatch, tmp_path):
    """`check 4` on canned results: the first part's, then the rest's."""
    planned: list[list] = []

    class FakeRun:
        def __init__(self, step, root, *, files=None, course=None, background=False, **kwargs):
            self.step, self.root = step, root

        def finish(self, timeout: float = 300.0) -> CheckResult:
            tests = planned.pop(0) if planned else []
            return CheckResult(step=self.step, target=self.root, tests=tests, seconds=0.1)

        def cancel(self) -> None:
            pass

    steps = tmp_path / "steps"
    exercises.write_starter(STEP4, COURSE, steps_root=steps)
    monkeypatch.setattr(cli, "StepRun", FakeRun)
    monkeypatch.setattr(cli, "split_rest", lambda files: [files] if files else [])
    monkeypatch.setattr(cli, "STEPS", steps)
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path / "state"))
    return planned


def check(*args):
    out = CliRunner().invoke(cli.main, ["check", "4", *args], prog_name="python -m workbook")
    assert "Traceback" not in out.output, out.output
    return out


def test_a_skipped_check_is_never_all_checks_pass(fake_runs):
    """With a check skipped, the verdict says how many of how many pass, which one was not verified, and why."""
    fake_runs += [PASSING, [REDIS_SKIP, result("test_earlier[step04_rate_limiting]", "health", lesson=1)]]
    out = check()
    assert out.exit_code == 0, out.output
    assert "all " not in out.output.split("Step 04 passes")[-1].split("\n")[0], out.output
    assert "passes 4 of 5 checks" in out.output and "1 not verified here" in out.output, out.output
    assert "With redis:// the 3 workers share one counter." in out.output
    assert "redis-server is not installed" in out.output and "apt-get install redis-server" in out.output


def test_without_skips_all_checks_pass(fake_runs):
    fake_runs += [PASSING, [result("test_earlier[step04_rate_limiting]", "health", lesson=1)]]
    out = check()
    assert out.exit_code == 0 and "passes: all 4 checks" in out.output, out.output


def test_verbose_names_each_case_and_folded_cases_say_how_to_expand(fake_runs):
    """Without -v, cases of one failing check fold into a count that says how to see them; -v names each."""
    cases = ["X-Forwarded-For", "X-Real-IP", "Forwarded"]
    failing = [result(f"test_forwarding[step04_rate_limiting-{c}]", "limiter-config", outcome="failed",
                      reason=f"with a new {c} on every request, one address made 8 attempts\nsecond line {c}")
               for c in cases]
    fake_runs += [PASSING[1:] + failing]
    out = check()
    assert out.exit_code == 1
    assert "(and 2 more cases like it; check with -v names each)" in out.output, out.output
    assert "python -m workbook hint 4 1" in out.output
    fake_runs += [PASSING[1:] + failing]
    out = check("-v")
    for c in cases:
        assert f"[{c}]" in out.output and f"second line {c}" in out.output, out.output
    assert "more cases like it" not in out.output


def test_a_blamed_failure_is_reported_under_its_exercise_only(fake_runs):
    """A failure reported under 4.2 shows under 4.2 with 4.2's hint, and 4.1 still passes."""
    blamed = result("test_every_attempt_counts[step04_rate_limiting]", "login-limits", outcome="failed",
                    reason="after 3 logins at alice, a 4th attempt answered 401: count every attempt")
    fake_runs += [PASSING + [blamed]]
    out = check()
    lines = out.output.splitlines()
    first_fail = next(i for i, line in enumerate(lines) if "✗" in line or "[x]" in line.lower() or "X " in line[:6])
    assert "4.2" in lines[first_fail], out.output
    assert "python -m workbook hint 4 2" in out.output and "python -m workbook hint 4 1" not in out.output
    assert state.last_check(STEP4.folder(cli.STEPS))["failing"] == ["login-limits"]


def test_status_tells_changed_since_it_passed_from_in_progress(fake_runs):
    folder = STEP4.folder(cli.STEPS)
    (folder / "limits.py").write_text((folder / "limits.py").read_text("utf-8") + "\n# my work\n", encoding="utf-8")
    assert cli.step_state(STEP4) == "in progress"
    state.record_check(folder, True, [])
    assert cli.step_state(STEP4) == "done"
    (folder / "limits.py").write_text((folder / "limits.py").read_text("utf-8") + "\n# more work\n", encoding="utf-8")
    assert cli.step_state(STEP4) == "changed since it passed"
    out = CliRunner().invoke(cli.main, ["status"], prog_name="python -m workbook")
    assert "changed since it passed" in out.output
    state.record_check(folder, False, ["json-429"])
    assert cli.step_state(STEP4) == "changed since it passed", "a failing check of changed files: still changed"
    shutil.rmtree(folder)
    assert cli.step_state(STEP4) == "missing"
