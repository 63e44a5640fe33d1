"""The learner's CLI (`python -m workbook`): what a learner sees, including when things go wrong.

Each test works on a scratch copy of steps/ and a scratch state folder, never on the learner's
own progress.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from tests.harness import free_port
from workbook import cli, doctor, exercises, state
from workbook.course import REPO, SOLUTIONS, load

COURSE = load()
STEP = COURSE.steps[0]  # the CLI's behaviour does not depend on which step


@pytest.fixture
def learner(tmp_path, monkeypatch):
    """A fresh learner: untouched starters in a scratch steps/, no progress yet."""
    steps = tmp_path / "steps"
    for step in COURSE.steps:
        exercises.write_starter(step, COURSE, steps_root=steps)
    monkeypatch.setattr(cli, "STEPS", steps)
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FLASK_JWT_SECRET_KEY", raising=False)
    return steps


def invoke(*args, input=None):
    result = CliRunner().invoke(cli.main, [str(a) for a in args], prog_name="python -m workbook", input=input)
    assert "Traceback" not in result.output, f"the learner saw a traceback:\n{result.output}"
    assert "\x1b[" not in result.output, "colour codes were written to something that is not a terminal"
    return result


def solve(steps, step=STEP):
    shutil.rmtree(step.folder(steps))
    shutil.copytree(step.folder(SOLUTIONS), step.folder(steps), ignore=shutil.ignore_patterns("__pycache__"))


# --- the course map ------------------------------------------------------------------------------


def test_python_m_workbook_prints_the_map_and_the_next_step(tmp_path):
    env = {**os.environ, "WORKBOOK_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "workbook"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert COURSE.title in done.stdout
    for step in COURSE.steps:
        assert step.title in done.stdout, f"step {step.number} is missing from the course map"
    assert "Next:" in done.stdout or "Every step passes" in done.stdout


def test_map_prints_on_a_console_without_unicode(tmp_path):
    """Old Windows consoles (cp1252) and redirected output cannot print ✓ or █: no crash, ASCII instead."""
    env = {**os.environ, "WORKBOOK_STATE_DIR": str(tmp_path), "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "workbook"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "UnicodeEncodeError" not in done.stderr


def test_status_follows_the_learner(learner):
    first = invoke("status")
    assert "not started" in first.output and "jupyter lab notebooks/" in first.output
    config = STEP.folder(learner) / "config.py"
    config.write_text(config.read_text("utf-8") + "\n# my work\n", encoding="utf-8")
    assert "in progress" in invoke("status").output
    solve(learner)
    assert invoke("check", STEP.number).exit_code == 0
    after = invoke()
    assert "done" in after.output and f"1/{len(COURSE.steps)} steps done" in after.output


# --- check ---------------------------------------------------------------------------------------


def test_a_python_without_the_packages_is_told_to_activate_the_venv(tmp_path):
    """The commonest first-day mistake (the course's venv not active) gets one sentence, not a traceback."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60)
    python = bare / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    done = subprocess.run([str(python), "-m", "workbook", "check", "1"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert "virtual environment" in done.stderr and "pip install -r requirements.txt" in done.stderr, done.stderr


def test_a_pytest_that_cannot_load_its_plugins_is_explained():
    """When the workbook imports but pytest cannot (a plugin missing from this Python), check says so."""
    from workbook.runner import _why_pytest_stopped

    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "course_plugin_not_installed", "--co"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    message = _why_pytest_stopped(done.stdout + done.stderr)
    assert "course_plugin_not_installed is missing" in message, message
    assert "pip install -r requirements.txt" in message and "Traceback" not in message


def test_check_of_the_solution_passes():
    result = invoke("check", STEP.number, "--solution")
    assert result.exit_code == 0, result.output
    assert "passes" in result.output


def test_check_of_the_fresh_starter_fails_and_says_what_to_do(learner):
    result = invoke("check", STEP.number)
    assert result.exit_code == 1, "check must exit non-zero when the step does not pass"
    for ex in STEP.exercises:
        assert f"python -m workbook hint {STEP.number} {ex.index}" in result.output
    assert f"run `python -m workbook check {STEP.number}` again" in result.output
    assert "def test_" not in result.output and "=====" not in result.output, "pytest noise reached the learner"


def test_check_an_unknown_step():
    result = invoke("check", 42)
    assert result.exit_code == 2
    assert "there is no step 42" in result.output


def test_check_a_deleted_step_folder(learner):
    shutil.rmtree(STEP.folder(learner))
    result = invoke("check", STEP.number)
    assert result.exit_code == 1
    assert "does not exist" in result.output and f"python -m workbook reset {STEP.number}" in result.output


def test_check_a_syntax_error_names_the_file_and_line(learner):
    init = STEP.folder(learner) / "__init__.py"
    init.write_text(init.read_text("utf-8") + "\ndef broken(:\n", encoding="utf-8")
    result = invoke("check", STEP.number)
    assert result.exit_code == 1
    assert "SyntaxError" in result.output and "__init__.py" in result.output and "line" in result.output


# --- hint ----------------------------------------------------------------------------------------


def test_hints_come_one_at_a_time_and_are_remembered(learner):
    ex = STEP.exercises[0]
    first = invoke("hint", STEP.number, ex.index)
    assert f"Hint 1/{len(ex.hints)}" in first.output and f"Hint 2/{len(ex.hints)}" not in first.output
    second = invoke("hint", STEP.number, ex.index)
    assert f"Hint 2/{len(ex.hints)}" in second.output
    again = invoke("hint", STEP.number, ex.index, "--again")
    assert f"Hint 2/{len(ex.hints)}" in again.output and f"Hint 3/{len(ex.hints)}" not in again.output
    for _ in ex.hints:
        last = invoke("hint", STEP.number, ex.index)
    assert "That was the last hint" in last.output


def test_hint_picks_the_exercise_the_last_check_found_failing(learner):
    target = STEP.exercises[-1]
    state.record_check(STEP.folder(learner), False, [target.id])
    result = invoke("hint", STEP.number)
    assert f"Exercise {target.label} ({target.id})" in result.output


def test_hint_for_an_unknown_exercise(learner):
    result = invoke("hint", STEP.number, 99)
    assert result.exit_code == 2 and "has no exercise" in result.output


# --- run -----------------------------------------------------------------------------------------


def test_run_serves_on_loopback_with_debug_off_and_a_dev_key(learner, monkeypatch):
    calls = []
    monkeypatch.setattr("flask.Flask.run", lambda app, **kw: calls.append((app, kw)))
    result = invoke("run", STEP.number, "--solution", "--port", free_port())
    assert result.exit_code == 0, result.output
    app, kwargs = calls[0]
    assert kwargs["host"] == "127.0.0.1" and kwargs["debug"] is False
    key = state.dev_key_file().read_text("utf-8").strip()
    assert len(key) == 64 and app.config["JWT_SECRET_KEY"] == cli.app_key(key, STEP, SOLUTIONS)
    keys = {cli.app_key(key, s, SOLUTIONS) for s in COURSE.steps} | {cli.app_key(key, STEP, learner)}
    assert len(keys) == len(COURSE.steps) + 1 and key not in keys, "two apps were served with the same key"
    assert "Made a development JWT key" in result.output and "curl" in result.output
    again = invoke("run", STEP.number, "--solution", "--port", free_port())
    assert "Using the development JWT key" in again.output, "the key must be made once, then reused"


def test_run_when_the_port_is_taken(learner):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("run", STEP.number, "--port", port)
    assert result.exit_code == 1
    assert "already in use" in result.output and f"--port {port + 1}" in result.output


def test_run_with_a_syntax_error(learner):
    init = STEP.folder(learner) / "__init__.py"
    init.write_text("def create_app(:\n", encoding="utf-8")
    result = invoke("run", STEP.number, "--port", free_port())
    assert result.exit_code == 1 and "SyntaxError" in result.output


def serve_with_workbook_run(step, path, tmp_path) -> tuple[bytes, str]:
    """Start `python -m workbook run N --solution` on a free port, GET ``path`` once it answers, stop it:
    (the body, what `run` printed)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env["WORKBOOK_STATE_DIR"] = str(tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "workbook", "run", str(step.number), "--solution",
                               "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                    assert r.status == 200, f"{path} answered {r.status}"
                    body = r.read()
                    break
            except OSError:
                assert server.poll() is None, f"`workbook run` exited: {server.stdout.read()}"
                assert time.monotonic() < deadline, f"`workbook run` did not serve {path} within 20 s"
                time.sleep(0.1)
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    return body, out.replace(str(port), "<port>")


def test_run_really_serves_http(tmp_path):
    """`python -m workbook run 1 --solution` on a fresh clone: no setup, a real server answers."""
    body, out = serve_with_workbook_run(STEP, "/health", tmp_path)
    assert json.loads(body) == {"status": "ok"}
    assert "Made a development JWT key" in out


def test_run_serves_the_api_docs_in_development(tmp_path):
    """`workbook run N` (steps 03 on) serves /openapi.json and Swagger UI, and prints where."""
    step = next(s for s in COURSE.steps if (s.folder(SOLUTIONS) / "openapi.py").is_file())
    body, out = serve_with_workbook_run(step, "/openapi.json", tmp_path)
    assert json.loads(body)["openapi"].startswith("3.1")
    assert "http://127.0.0.1:<port>/docs" in out, f"`workbook run` does not say where the docs are:\n{out}"


def test_the_printed_requests_paste_into_each_shell():
    """Each JSON body `run` prints survives its shell's quoting: bash/zsh (curl) and PowerShell."""
    for step in COURSE.steps:
        for windows in (False, True):
            lines = cli.try_lines(step, 5000, windows=windows)
            requests = [line for line in lines if not line.startswith("(")]
            assert len(requests) == len(step.try_requests)
            for line, request in zip(requests, step.try_requests):
                if windows:  # a '...' string is literal in PowerShell; a ' inside would end it
                    assert line.count("'") % 2 == 0, f"step {step.number}: unbalanced quotes in {line}"
                    bodies = re.findall(r"-Body '([^']*)'", line)
                else:
                    words = shlex.split(line)
                    bodies = [words[i + 1] for i, word in enumerate(words) if word == "-d"]
                assert bodies == ([request["json"]] if "json" in request else []), (
                    f"step {step.number}: the body the shell passes on is not the one course.toml sends: {line}")
                for body in bodies:
                    json.loads(body)
            if windows:
                assert "-SkipHttpErrorCheck" in lines[-1], "PowerShell users need to know that 4xx answers throw"


@pytest.mark.skipif(os.name == "nt" or shutil.which("curl") is None or shutil.which("sh") is None,
                    reason="the curl lines are for bash/zsh/sh (macOS, Linux); the Windows forms are checked above")
def test_the_printed_curl_lines_work_against_the_served_app(tmp_path):
    """Paste what `run 6` prints into a shell, with $TOKEN set as the README says: each request
    reaches the app intact (a mangled body would be a 400, a lost token a 401)."""
    step = next(s for s in COURSE.steps if s.slug.startswith("step06"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(WORKBOOK_STATE_DIR=str(tmp_path), FLASK_DATABASE=str(tmp_path / "run.sqlite"))
    server = subprocess.Popen([sys.executable, "-m", "workbook", "run", str(step.number), "--solution",
                               "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def post(path, body):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                             {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.load(answer)

        account = {"username": "alice", "password": "violet kettle under a quiet moon"}
        deadline = time.monotonic() + 20
        while True:
            try:
                post("/register", account)
                break
            except OSError:
                assert server.poll() is None, f"`workbook run` exited: {server.stdout.read()}"
                assert time.monotonic() < deadline, "`workbook run` did not answer within 20 s"
                time.sleep(0.1)
        env["TOKEN"] = post("/login", account)["access_token"]
        statuses = []
        for line in cli.try_lines(step, port, windows=False):
            if line.startswith("("):
                continue
            done = subprocess.run(["sh", "-c", line], env=env, capture_output=True, text=True, timeout=20)
            assert done.returncode == 0, f"curl failed on `{line}`: {done.stderr}"
            statuses.append(int(done.stdout.split()[1]))
    finally:
        server.terminate()
        server.communicate(timeout=10)
    # course.toml's step 06 `try`: alice writes a note, lists hers, and is refused the admin page
    assert statuses == [201, 200, 403], f"the pasted requests were answered {statuses}"


# --- doctor and dev ------------------------------------------------------------------------------


def test_doctor_checks_the_machine(learner):
    result = invoke("doctor")
    assert result.exit_code in (0, 1)
    for section in ("Python", "Packages", "Jupyter", "The course"):
        assert section in result.output


def test_doctor_reports_a_problem_with_its_fix(learner, monkeypatch):
    monkeypatch.setattr(doctor, "pinned_requirements", lambda: [("surely-not-installed-xyz", "1.0", "")])
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "surely-not-installed-xyz is not installed" in result.output
    assert "Fix: python -m pip install -r requirements.txt" in result.output


def test_requirements_are_all_pinned():
    pins = doctor.pinned_requirements()
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    assert len(pins) == len([line for line in lines if line]), "every requirement must be pinned with =="


def test_dev_sync_check_agrees():
    result = invoke("dev", "sync", "--check")
    assert result.exit_code == 0, result.output


# --- watch, reset, diff -----------------------------------------------------------------------


def test_reset_restores_the_starter_and_keeps_a_backup(learner):
    config = STEP.folder(learner) / "config.py"
    config.write_text(config.read_text("utf-8") + "\n# my precious work\n", encoding="utf-8")
    refused = invoke("reset", STEP.number, input="n\n")
    assert "Nothing changed" in refused.output and "my precious work" in config.read_text("utf-8")
    result = invoke("reset", STEP.number, input="y\n")
    assert result.exit_code == 0 and "is the starter again" in result.output
    assert "my precious work" not in config.read_text("utf-8")
    backups = list((state.state_dir() / "backups").glob(f"{STEP.slug}-*"))
    assert backups and "my precious work" in (backups[0] / "config.py").read_text("utf-8"), "the learner's work was lost"
    assert "Your version is in" in result.output


def test_reset_brings_back_a_deleted_folder(learner):
    shutil.rmtree(STEP.folder(learner))
    result = invoke("reset", STEP.number, "--yes")
    assert result.exit_code == 0 and (STEP.folder(learner) / "__init__.py").is_file()


@pytest.mark.parametrize("step", COURSE.steps, ids=[s.slug for s in COURSE.steps])
def test_diff_shows_the_lesson_without_markers(step):
    result = invoke("diff", step.number)
    assert result.exit_code == 0
    assert "BEGIN EXERCISE" not in result.output and "END EXERCISE" not in result.output
    if step.number > 1:
        assert f"+++ {step.slug}/" in result.output, "the diff should show the files the lesson changes"


def test_diff_stat_lists_files():
    result = invoke("diff", COURSE.steps[-1].number, "--stat")
    assert result.exit_code == 0 and "+" in result.output


def test_watch_checks_and_moves_on(learner):
    """watch checks the step; when it passes, it moves on to the next one."""
    solve(learner)
    result = invoke("watch", STEP.number, "--max-checks", "2", "--interval", "0.05")
    assert f"Step {STEP.label}" in result.output and "passes" in result.output
    if len(COURSE.steps) > 1:
        assert f"Moving on to step {COURSE.steps[1].label}" in result.output


def test_a_check_that_hangs_stops_soon_and_names_the_line(learner, monkeypatch):
    """An endless loop in the learner's create_app: the verdict comes after one check's timeout (not
    minutes later), and it names the learner's line where the check was stuck."""
    monkeypatch.setenv("WORKBOOK_TEST_TIMEOUT", "1")
    init = STEP.folder(learner) / "__init__.py"
    text = init.read_text("utf-8")
    init.write_text(text.replace("    app = Flask(", "    while True:\n        pass\n    app = Flask(", 1),
                    encoding="utf-8")
    started = time.monotonic()
    result = invoke("check", STEP.number, "--quick")
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 30, "a hung check kept the learner waiting"
    assert "still running after 1 s" in result.output, result.output
    assert f"{STEP.slug}/__init__.py" in result.output and "while True" in result.output, result.output


def _save(folder, name="config.py"):
    path = folder / name
    path.write_text(path.read_text("utf-8") + "\n# saved\n", encoding="utf-8")


def test_watch_notices_a_save_made_while_a_check_runs(learner, monkeypatch):
    """A save that lands while a check is still running is a change: watch checks again at once.

    Deterministic: the fake check itself saves the file, the worst possible moment. Before the
    fix, watch took its snapshot after the check and then waited for a change that had already
    happened, forever."""
    calls = []

    def check_that_saves(step, *args, **kwargs):
        calls.append(step.number)
        if len(calls) == 1:
            _save(step.folder(learner))
        return False

    monkeypatch.setattr(cli, "run_check", check_that_saves)
    result = invoke("watch", STEP.number, "--max-checks", "2", "--interval", "0.01", "--give-up-after", "5")
    assert calls == [STEP.number, STEP.number], f"the save made during the first check was missed:\n{result.output}"
    assert "changed while the check ran" in result.output


def test_watch_rechecks_after_a_save(learner, monkeypatch):
    """After a failing check, watch waits for a save, then checks again (no sleep races the check)."""
    calls, looks = [], []

    def failing_check(step, *args, **kwargs):
        calls.append(step.number)
        return False

    real_sleep = time.sleep

    def sleep_then_save(seconds):  # the learner saves while watch is waiting
        looks.append(seconds)
        if len(looks) == 3:
            _save(STEP.folder(learner))
        real_sleep(0)

    monkeypatch.setattr(cli, "run_check", failing_check)
    monkeypatch.setattr(cli.time, "sleep", sleep_then_save)
    result = invoke("watch", STEP.number, "--max-checks", "2", "--interval", "0.01", "--give-up-after", "30")
    assert calls == [STEP.number, STEP.number], f"watch did not check again after the save:\n{result.output}"
    assert len(looks) == 3, "watch checked again before anything was saved"


def test_watch_waits_for_a_save_and_says_how(learner):
    """With nothing saved, watch checks once and waits (here: gives up after a moment); its advice
    is to save again, not to run `check`."""
    result = invoke("watch", STEP.number, "--interval", "0.01", "--give-up-after", "0.2")
    assert result.output.count("checking ") == 1, result.output
    assert "save the file again" in result.output and "workbook check" not in result.output


def test_a_test_skipped_for_a_missing_tool_does_not_fail_the_check(tmp_path):
    """Without redis-server (Windows, or not installed), step 04's Redis test skips and says why; the check passes."""
    from workbook.runner import run_step_tests

    step = next((s for s in COURSE.steps if any("workers" in f.name for f in s.test_files)), None)
    assert step is not None, "the multi-process tests are expected in step 04's lesson"
    # Only the Redis test: the other one of that file starts gunicorn (1.5 CPU-seconds) and is not about skips.
    files = [f.with_name(f"{f.name}::test_redis_storage_holds_the_limit_across_workers")
             for f in step.test_files if "workers" in f.name]
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_step_tests(step, SOLUTIONS, files=files, env={"PATH": str(empty)})
    assert result.skipped and all("redis-server" in t.reason for t in result.skipped), result.pytest_output[-800:]
    assert result.passed, "a skip was counted as a failure"


def test_grade_command_writes_the_gradebook(tmp_path):
    """`python -m workbook grade SUBMISSIONS --out DIR` on one perfect step-01 submission."""
    subs = tmp_path / "subs"
    shutil.copytree(STEP.folder(SOLUTIONS), subs / "ada" / STEP.slug, ignore=shutil.ignore_patterns("__pycache__"))
    result = invoke("grade", subs, "--out", tmp_path / "out", "--steps", STEP.number)
    assert result.exit_code == 0, result.output
    for name in ("gradebook.csv", "report.html", "results.json"):
        assert (tmp_path / "out" / name).is_file(), f"{name} was not written"
    assert [p.name.startswith("ada-") for p in (tmp_path / "out" / "feedback").glob("*.md")] == [True]
    assert "ada" in result.output


def test_grade_an_empty_folder(tmp_path):
    result = invoke("grade", tmp_path, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "no submissions" in result.output
