"""The grader's parts that need no class to grade: intake, ids, the rubric of hidden tests, the
refusal without a sandbox, the protocol's caps, the sandbox's walls (one bwrap process each),
shards and merge, and the Classroom files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbook import exercises
from workbook.cli import main
from workbook.course import REPO, SOLUTIONS, load
from workbook.grading import bwrap, grade_class, intake
from workbook.grading.merge import MergeError, merge
from workbook.grading.rubric import RubricError, check_extra_tests

COURSE = load()
ONE = COURSE.step(1)
SLUGS = {s.slug for s in COURSE.steps}
needs_bwrap = pytest.mark.skipif(bool(bwrap.probe()), reason=f"no sandbox here: {bwrap.probe()}")


def test_ids_are_unique_ascii_and_stable():
    names = ["Zoë", "Zoé", "Zoe\u0308", "sam", "sam.zip", "李雷", "a/b", ""]
    ids = [intake.student_id(n) for n in names]
    assert all(i.isascii() and "/" not in i for i in ids)
    assert len(set(ids[:2] + ids[3:])) == len(ids) - 1, ids
    assert ids[0] == ids[2], "the same name in NFC and NFD is the same student"
    assert intake.student_id("Zoë") == intake.student_id("Zoë")


def test_steps_are_found_only_where_a_submission_keeps_them(tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(SOLUTIONS / ONE.slug, clone / "solutions" / ONE.slug)
    assert intake.find_steps_root(clone, SLUGS) is None, "a clone's solutions/ must never be graded"
    (clone / "steps" / ONE.slug).mkdir(parents=True)
    assert intake.find_steps_root(clone, SLUGS) == clone / "steps"
    nested = tmp_path / "nested" / "deeper" / "steps" / ONE.slug
    nested.mkdir(parents=True)
    assert intake.find_steps_root(tmp_path / "nested", SLUGS) is None, "only a zip's one top folder is looked into"


def test_windows_zips_and_lms_exports(tmp_path):
    subs = tmp_path / "subs"
    student = subs / "Doe, Jane_999_assignsubmission_file_"
    student.mkdir(parents=True)
    with zipfile.ZipFile(student / "jane.zip", "w") as zf:
        zf.writestr(zipfile.ZipInfo("jane\\"), "")
        zf.writestr(f"jane\\steps\\{ONE.slug}\\__init__.py", "x = 1\n")
        zf.writestr(f"jane\\steps\\{ONE.slug}\\sub\\", "")
    (entry,) = intake.discover(subs)
    assert entry.path.name == "jane.zip" and entry.name == student.name
    raw = tmp_path / "raw"
    notes: list[str] = []
    intake.unzip_safely(entry.path, raw, notes)
    assert notes == [] and (raw / "jane" / "steps" / ONE.slug / "__init__.py").read_text() == "x = 1\n"
    assert intake.find_steps_root(raw, SLUGS, from_zip=True) == raw / "jane" / "steps"


def test_hidden_tests_must_name_a_known_exercise_of_their_lesson(tmp_path):
    good = tmp_path / "test_step01_extra.py"
    good.write_text('import pytest\n\n@pytest.mark.exercise("health")\ndef test_a(client):\n    pass\n\n'
                    'pytestmark = pytest.mark.exercise("config-order")\n')
    check_extra_tests([good], COURSE)
    for body, words in [("def test_b(client):\n    pass\n", "no @pytest.mark.exercise"),
                        ('import pytest\n@pytest.mark.exercise("nope")\ndef test_c(client):\n    pass\n', "unknown exercise"),
                        ('import pytest\n@pytest.mark.exercise("hash-password")\ndef test_d(client):\n    pass\n',
                         "belongs to step 2")]:
        bad = tmp_path / "test_step01_bad.py"
        bad.write_text(body)
        with pytest.raises(RubricError, match=words):
            check_extra_tests([bad], COURSE)


def test_grade_refuses_hidden_tests_without_an_exercise(tmp_path):
    (tmp_path / "subs" / "s").mkdir(parents=True)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "test_step01_x.py").write_text("def test_x():\n    pass\n")
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"),
                                       "--extra-tests", str(hidden), "--trusted"])
    assert result.exit_code == 2 and "which exercise" in result.output, result.output


def test_without_bubblewrap_grading_refuses_and_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_NO_BWRAP", "1")
    bwrap.probe.cache_clear()
    try:
        (tmp_path / "subs" / "s").mkdir(parents=True)
        result = CliRunner().invoke(main, ["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert "bubblewrap" in result.output and "--trusted" in result.output and "apt-get install" in result.output
        assert not (tmp_path / "out" / "gradebook.csv").exists()
    finally:
        monkeypatch.delenv("WORKBOOK_NO_BWRAP")
        bwrap.probe.cache_clear()


def test_bwrap_failing_to_start_is_explained(monkeypatch, tmp_path):
    """Ubuntu 24.04's AppArmor makes bwrap fail at start: the message says what to do."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    bwrap.probe.cache_clear()
    bwrap._supports.cache_clear()
    try:
        problem = bwrap.probe()
    finally:
        monkeypatch.undo()
        bwrap.probe.cache_clear()
        bwrap._supports.cache_clear()  # what the fake bwrap said it supports must not stay
    if not sys.platform.startswith("linux"):
        pytest.skip("bubblewrap is Linux only")
    assert "uid map" in problem and "apparmor_restrict_unprivileged_userns" in problem and "sudo" in problem


@needs_bwrap
def test_the_sandbox_walls(tmp_path):
    """One sandboxed process: it sees its copy (read-only), its tmp, nothing of the grader; no network,
    no other process; its rlimits hold."""
    root = tmp_path / "student"
    root.mkdir()
    writable = tmp_path / "tmp"
    writable.mkdir()
    host = bwrap.stage_host(tmp_path / "host")
    spec = bwrap.write_spec(tmp_path / "spec.json", root=root, host_dir=host, writable=[writable], cgroup=None,
                            events=tmp_path / "events", mode="bwrap")
    probe = f"""
import os, socket, resource, json
seen = {{p: os.path.exists(p) for p in [{str(REPO)!r}, {str(SOLUTIONS)!r}, {str(tmp_path / 'spec.json')!r}, '/home', '/etc/shadow']}}
seen['/root holds more than the interpreter'] = os.path.isdir('/root') and bool(set(os.listdir('/root')) - {{'.pyenv'}})
try:
    open({str(Path(sysconfig.get_paths()['purelib']) / 'planted.pth')!r}, 'w'); seen['venv writable'] = True
except OSError:
    pass
try:
    open({str(root / 'x')!r}, 'w'); wrote_root = True
except OSError:
    wrote_root = False
open({str(writable / 'ok')!r}, 'w').write('ok')
try:
    socket.create_connection(('1.1.1.1', 53), timeout=1); net = True
except OSError:
    net = False
print(json.dumps({{"seen": seen, "wrote_root": wrote_root, "net": net, "pids": len([p for p in os.listdir('/proc') if p.isdigit()]),
                  "env": sorted(os.environ), "as": resource.getrlimit(resource.RLIMIT_AS)[0], "uid": os.getuid()}}))
"""
    argv = bwrap.wrap([sys.executable, "-I", "-c", probe], spec, env={"SECRET_TOKEN": "x", "FLASK_A": "1"})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, preexec_fn=bwrap.preexec(spec))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert not any(seen["seen"].values()), seen["seen"]
    assert not seen["wrote_root"] and (writable / "ok").exists() and not seen["net"]
    assert seen["pids"] <= 3, "the sandbox sees other processes"
    assert "SECRET_TOKEN" not in seen["env"] and "FLASK_A" in seen["env"]
    assert seen["as"] == bwrap.MEMORY_BYTES


def test_the_protocol_refuses_oversized_and_malformed_answers():
    from tests.remote import _check_answer

    assert _check_answer("request", {"status": 200, "headers": [["a", "b"]], "body": ""})["status"] == 200
    for bad in [[], {"status": "200", "headers": [], "body": ""}, {"status": 200, "headers": [["a"]], "body": ""},
                {"status": 200, "headers": [], "body": "", "logs": "x"}]:
        with pytest.raises(ValueError):
            _check_answer("request", bad)
    long = _check_answer("cli", {"exit_code": 0, "output": "", "logs": [{"levelno": 20, "msg": "x" * 10**6}] * 10**4})
    assert len(long["logs"]) == 200 and len(long["logs"][0]["msg"]) == 4000


@needs_bwrap
def test_shards_merge_into_the_whole_class(tmp_path):
    subs = tmp_path / "subs"
    for name in ("ann", "bob", "cy"):
        exercises.write_starter(ONE, COURSE, steps_root=subs / name)
        with open(subs / name / ONE.slug / "__init__.py", "a", encoding="utf-8") as fh:
            fh.write("# my attempt\n")  # ann and cy: the same attempt
    shutil.rmtree(subs / "bob" / ONE.slug)
    shutil.copytree(SOLUTIONS / ONE.slug, subs / "bob" / ONE.slug, ignore=shutil.ignore_patterns("__pycache__"))
    parts = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        grade_class(subs, out, step_numbers=[1], shard=(k, 2), jobs=2, timeout=30, answer_timeout=3)
        parts.append(out)
    with pytest.raises(MergeError, match="missing"):
        merge(tmp_path / "bad", parts[:1])
    grades = merge(tmp_path / "merged", parts)
    assert sorted(g.student for g in grades) == ["ann", "bob", "cy"]
    assert {g.student: g.total for g in grades} == {"ann": 0, "bob": 3, "cy": 0}
    assert any("identical submission" in f for f in next(g for g in grades if g.student == "ann").flags)
    result = CliRunner().invoke(main, ["grade", "merge", "--out", str(tmp_path / "cli"), *map(str, parts)])
    assert result.exit_code == 0 and (tmp_path / "cli" / "gradebook.csv").is_file(), result.output


def test_trusted_grading_runs_without_the_sandbox(tmp_path, monkeypatch):
    """--trusted (the course's own code) grades without bubblewrap, and says nothing is isolated."""
    monkeypatch.setenv("WORKBOOK_NO_BWRAP", "1")
    bwrap.probe.cache_clear()
    try:
        subs = tmp_path / "subs"
        shutil.copytree(SOLUTIONS / ONE.slug, subs / "me" / ONE.slug, ignore=shutil.ignore_patterns("__pycache__"))
        (grade,) = grade_class(subs, tmp_path / "out", step_numbers=[1], trusted=True, jobs=1, timeout=60)
        assert grade.total == 3, grade.notes
    finally:
        monkeypatch.delenv("WORKBOOK_NO_BWRAP")
        bwrap.probe.cache_clear()


def test_earned_reads_results_and_writes_the_summary(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"student": "s", "id": "s-1", "total": 1, "maximum": 2,
                                    "exercises": {"health": 1, "config-order": 0}, "notes": [], "flags": []}]))
    earned = REPO / "workbook" / "earned.py"
    run = lambda *a: subprocess.run([sys.executable, str(earned), str(results), *a], capture_output=True, text=True)  # noqa: E731
    assert run("health").returncode == 0 and run("config-order").returncode == 1
    points = run("--points")
    assert points.returncode == 0 and "1 / 2" in points.stdout


@needs_bwrap
def test_a_cpu_limit_ends_the_process_and_is_told_apart(tmp_path, monkeypatch):
    """A process over its CPU time gets SIGXCPU in the sandbox; bwrap reports 128 + N, read as a limit."""
    from tests import remote

    root = tmp_path / "student"
    root.mkdir()
    host = bwrap.stage_host(tmp_path / "host")
    spec = bwrap.write_spec(tmp_path / "spec.json", root=root, host_dir=host, writable=[], cgroup=None,
                            events=tmp_path / "events", mode="bwrap")
    burn = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 2))\nwhile True:\n    pass\n"
    done = subprocess.run(bwrap.wrap([sys.executable, "-I", "-c", burn], spec), capture_output=True, timeout=60,
                          preexec_fn=bwrap.preexec(spec))
    monkeypatch.setenv("WORKBOOK_SANDBOX_SPEC", str(tmp_path / "spec.json"))
    assert remote.limit_signal(done.returncode) == "SIGXCPU", done.returncode
    assert remote.limit_signal(-9) is None, "bwrap stopped by the tests is not the student's limit"


def test_grade_usage_errors(tmp_path):
    (tmp_path / "subs").mkdir()
    for args, words in [(["--shard", "3/2"], "K/N"), (["--shard", "x"], "K/N")]:
        result = CliRunner().invoke(main, ["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2 and words in result.output, result.output
    result = CliRunner().invoke(main, ["grade", "merge", "--out", str(tmp_path / "o"), str(tmp_path / "subs")])
    assert result.exit_code == 2 and "results.json" in result.output, result.output


def test_a_venv_holding_the_repository_does_not_bring_it_into_view(tmp_path):
    """A folder to hide that lies inside a bound folder (a venv made in the repository) gets an empty
    tmpfs over it; one outside every bound folder needs nothing."""
    inside = os.path.join(sys.prefix, "course-repo")
    spec = {"host_dir": str(tmp_path), "root": str(tmp_path), "writable": [], "hide": [inside, str(tmp_path / "out")]}
    argv = bwrap.wrap(["true"], spec)
    pairs = list(zip(argv, argv[1:]))
    assert ("--tmpfs", inside) in pairs and ("--tmpfs", str(tmp_path / "out")) not in pairs
    assert argv.index(inside) > argv.index(sys.prefix), "the tmpfs must go over the venv's bind, after it"


def test_an_app_in_the_host_never_inherits_an_earlier_apps_dead_storage(tmp_path, monkeypatch):
    """Every test's app of a step is built in the student's one app host, and Flask-Limiter keeps "the
    storage is unreachable" on the step's module-level Limiter across init_app. An app built after one
    whose Redis was down must still count in its own storage from its first request: on the fallback, a
    back-off re-check moved it to its own storage mid-test and a correct limiter let 7 of 7 calls through
    (2 perfect students lost a step-04 point in the 30-student bench). The flag is read through a probe
    added to the student's copy: the re-check's timing would make a black-box test depend on the clock."""
    from tests.harness import strong_key
    from tests.remote import RemoteStep

    monkeypatch.delenv("WORKBOOK_SANDBOX_SPEC", raising=False)  # the host itself, with or without bwrap
    four = COURSE.step(4)
    root = tmp_path / "student"
    shutil.copytree(SOLUTIONS / four.slug, root / four.slug, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / four.slug / "limits.py", "a", encoding="utf-8") as fh:
        fh.write("\n\n_graded_init_app = init_app\n\n\ndef init_app(app):\n    _graded_init_app(app)\n\n"
                 "    @app.after_request\n    def probe(response):\n"
                 "        response.headers['X-Probe-Storage-Dead'] = str(limiter._storage_dead)\n"
                 "        return response\n")
    step = RemoteStep(four, root)
    made = []

    def make(**config):
        made.append(tmp_path / f"app{len(made)}.sqlite")
        return step.create_app({"TESTING": True, "JWT_SECRET_KEY": strong_key(), "DATABASE": str(made[-1]),
                                "RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "5 per minute", **config})

    try:
        down = make(RATELIMIT_STORAGE_URI="redis://127.0.0.1:9").test_client().get("/protected")
        assert down.status_code == 401 and down.headers["X-Probe-Storage-Dead"] == "True", (
            f"precondition: with Redis down the limiter should be on its fallback: {down.status_code} {down.headers}")
        fresh = make().test_client().get("/protected")
        assert fresh.headers["X-Probe-Storage-Dead"] == "False", (
            "an app built after one whose Redis was down started on the in-memory fallback: the app host must "
            "start every app with its own storage (workbook/grading/host.py, _forget_dead_storage)")
    finally:
        step.close()


def test_byte_identical_copies_share_one_run_and_are_graded_alike(tmp_path, monkeypatch):
    """Three byte-identical step-01 copies (one of them zipped, with an entry the intake refuses) and a
    different one: two runs, each in a folder named after no student; each student keeps their own
    intake notes. A flagged result is shared too, flags included, and cached for none of them."""
    from workbook.grading import run as grading_run

    subs = tmp_path / "subs"
    for name in ("ann", "bob", "cy"):
        shutil.copytree(SOLUTIONS / ONE.slug, subs / name / ONE.slug, ignore=shutil.ignore_patterns("__pycache__"))
    with zipfile.ZipFile(subs / "dee.zip", "w") as zf:
        for path in sorted((subs / "cy" / ONE.slug).rglob("*")):
            zf.write(path, f"dee/steps/{ONE.slug}/{path.relative_to(subs / 'cy' / ONE.slug).as_posix()}")
        zf.writestr("../escape.txt", "x")
    shutil.rmtree(subs / "cy")
    exercises.write_starter(ONE, COURSE, steps_root=subs / "eve")
    runs: list[Path] = []
    real = grading_run.run_once
    pretend_busy = []

    def counted(run, copy, files, work):
        runs.append(work)
        outcome = real(run, copy, files, work)
        if pretend_busy:
            outcome.flags.append("limit: time (pretend the machine was too busy)")
        return outcome

    monkeypatch.setattr(grading_run, "run_once", counted)
    out = tmp_path / "out"
    grades = {g.student: g for g in grade_class(subs, out, step_numbers=[1], trusted=True, jobs=2, timeout=60)}
    assert len(runs) == 2, f"3 identical copies and another should take 2 runs, took {len(runs)}: {runs}"
    assert not any(g.id in str(w) or g.student in w.name for g in grades.values() for w in runs), runs
    solved = grades["ann"].total
    assert solved > 0 and [grades[n].total for n in ("bob", "dee")] == [solved] * 2 and grades["eve"].total < solved
    assert grades["ann"].tests == grades["dee"].tests and not any("limit" in f for f in grades["ann"].flags)
    assert any("outside the submission" in n for n in grades["dee"].notes), grades["dee"].notes
    assert not any("outside the submission" in n for n in grades["ann"].notes), "one student's notes reached another"

    runs.clear()
    pretend_busy.append(True)
    shutil.rmtree(out)
    grades = {g.student: g for g in grade_class(subs, out, step_numbers=[1], trusted=True, jobs=2, timeout=60)}
    assert len(runs) == 2, runs
    for name in ("ann", "bob", "dee"):
        assert "limit: time (pretend the machine was too busy)" in grades[name].flags, (name, grades[name].flags)
        assert not (out / ".cache" / f"{grades[name].id}.json").exists(), f"{name}'s flagged result was cached"


def test_a_runs_writable_folder_is_in_memory_only_under_a_memory_limit_and_with_room(monkeypatch):
    """Files on /dev/shm are memory: only where the student's cgroup bounds it, and never on a small
    /dev/shm (a container's 64 MiB one would fill up and fail honest runs)."""

    class Limited:
        bounds_memory = True

    class Unlimited:
        bounds_memory = False

    assert bwrap.writable_folder(None) is None and bwrap.writable_folder(Unlimited()) is None
    if not os.access(bwrap.MEMORY_DISK, os.W_OK):
        pytest.skip("no /dev/shm here")
    monkeypatch.setattr(bwrap, "MEMORY_DISK_FREE", 10**18)
    assert bwrap.writable_folder(Limited()) is None, "a /dev/shm without room was used"
    monkeypatch.setattr(bwrap, "MEMORY_DISK_FREE", 0)
    folder = bwrap.writable_folder(Limited())
    assert folder is not None, "with a memory limit and room, the run's files should be on /dev/shm"
    try:
        assert folder.parent == bwrap.MEMORY_DISK and oct(folder.stat().st_mode)[-3:] == "700", folder
    finally:
        folder.rmdir()


def test_the_app_host_passes_a_cookie_sent_by_hand(tmp_path, monkeypatch):
    """A test that sends a Cookie header itself (``test_client(use_cookies=False)``, as step 04's device
    cookies do) must reach the student's app with it when grading, as it does in-process: the host's
    own test client must not drop it for want of a cookie jar."""
    from tests.remote import RemoteStep

    monkeypatch.delenv("WORKBOOK_SANDBOX_SPEC", raising=False)
    root = tmp_path / "student"
    (root / ONE.slug).mkdir(parents=True)
    (root / ONE.slug / "__init__.py").write_text(
        "from flask import Flask, request\n\n\ndef create_app(test_config=None):\n    app = Flask(__name__)\n\n"
        "    @app.get('/echo')\n    def echo():\n        return {'cookie': request.headers.get('Cookie')}\n\n"
        "    return app\n", encoding="utf-8")
    step = RemoteStep(ONE, root)
    try:
        client = step.create_app({}).test_client(use_cookies=False)
        seen = client.get("/echo", headers={"Cookie": "login_device=abc"}).get_json()
        assert seen == {"cookie": "login_device=abc"}, f"the app got {seen} instead of the Cookie header the test sent"
    finally:
        step.close()


def test_a_sweep_leaves_the_cgroups_of_a_grader_still_running():
    """Two graders on one machine (two shards, two courses): the sweep of stale cgroups at one's start
    must not remove the other's empty cgroup of a student whose run is about to start. It did: that
    student's processes could not join it, every test failed, and a perfect submission scored 0."""
    mine = bwrap.Cgroup()
    if not mine.dirs:
        assert bwrap.cgroup_root() is None, "cgroups are available here, but no student cgroup was made"
        return  # no per-student cgroups on this machine: nothing to sweep
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    stale = [d.parent / f"s-{exited.pid}-0123456789ab" for d in mine.dirs]
    try:
        for d in stale:
            d.mkdir()
        bwrap.sweep()
        assert all(d.is_dir() for d in mine.dirs), "the sweep removed an empty cgroup of a grader still running"
        assert not any(d.exists() for d in stale), "the sweep left the empty cgroup of a grader that has exited"
    finally:
        mine.close()
        for d in stale:
            if d.exists():
                d.rmdir()


def test_an_app_host_that_never_says_ready_is_the_machines_problem(tmp_path, monkeypatch):
    """The host's start is timed apart from its answers: one that never says "ready" (a machine too busy
    to start it) fails with a message that does not blame the student, and later calls fail at once
    instead of waiting again."""
    import time

    from tests import remote
    from workbook.loader import LearnerCodeError

    stuck = tmp_path / "host"
    stuck.mkdir()
    (stuck / "workbook_host.py").write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    monkeypatch.setattr(remote, "_stage_for_trusted", lambda: stuck)
    monkeypatch.setattr(remote, "STARTUP_TIMEOUT", 1.0)
    host = remote.Host(tmp_path)
    try:
        with pytest.raises(LearnerCodeError, match="grading machine's problem, not your code's"):
            host.call(op="create_app", slug="step01_setup", config={}, env={})
        started = time.monotonic()
        with pytest.raises(LearnerCodeError, match="grading machine's problem"):
            host.call(op="create_app", slug="step02_authentication", config={}, env={})
        assert time.monotonic() - started < 0.5, "a host that could not start was waited for again"
        assert host.process is None, "the stuck host process was left running"
    finally:
        host.stop()
