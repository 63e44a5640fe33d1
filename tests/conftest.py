"""The test harness: which steps each test runs on, and the fixtures that build their apps.

A lesson's tests live in ``tests/test_<slug>*.py`` (``test_step01_setup.py`` is step 1's) and
run on that step and on every later one: features are tested on every step that has them.

    python -m pytest                                   every step's tests against solutions/
    python -m pytest --workbook-target steps           ... against your exercises in steps/
    python -m pytest --workbook-target steps --workbook-step 2    only step 2 (what `check 2` runs)

``python -m workbook check N`` is the friendlier way to do the last one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness import (LearnerCodeError, LiveServer, StepTarget, free_port, share_url_builders, strong_key,
                           ignores_test_config, wait_for_port)
from tests.verdict import ExerciseFailure
from workbook.course import REPO, lesson_of, load



def pytest_addoption(parser):
    group = parser.getgroup("workbook")
    group.addoption(
        "--workbook-target", default="solutions", metavar="FOLDER",
        help="folder holding the step packages to test: solutions (default), steps, or any path",
    )
    group.addoption(
        "--workbook-step", type=int, default=None, metavar="N",
        help="test only step N (with the lessons of steps 1..N)",
    )
    group.addoption(
        "--workbook-own-lessons", action="store_true",
        help="run each lesson's tests on its own step only (grading: earlier lessons are graded in their step)",
    )
    group.addoption(
        "--workbook-sandbox", action="store_true",
        help="never import the step's code here: run it in a separate, limited process (grading)",
    )
    group.addoption(
        "--workbook-targets", default=None, metavar="FOLDERS",
        help="several target folders at once, separated by os.pathsep (the mutant run: workbook/mutants.py); "
             "each test runs on each folder's step, its id prefixed with the folder's name",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(id): the test checks this exercise of course.toml")
    if config.getoption("--workbook-sandbox"):
        # Grading: every process started in the student's folder runs in their sandbox (bwrap).
        from tests.remote import install_subprocess_sandbox

        install_subprocess_sandbox()
    else:
        share_url_builders()  # the apps are built here, one per test: see tests/harness.py


def target_root(config) -> Path:
    value = config.getoption("--workbook-target")
    path = Path(value)
    if not path.is_absolute():
        path = (REPO / value) if (REPO / value).is_dir() else (Path.cwd() / value)
    return path.resolve()


def pytest_generate_tests(metafunc):
    if "step" not in metafunc.fixturenames:
        return
    lesson = lesson_of(metafunc.definition.path)
    if lesson is None:
        return  # not a lesson's test file: it parametrizes `step` itself, if at all
    only = metafunc.config.getoption("--workbook-step")
    own = metafunc.config.getoption("--workbook-own-lessons")
    root = target_root(metafunc.config)
    steps = [s for s in load().steps if s.number >= lesson and (only is None or s.number == only)
             and (not own or s.number == lesson)]
    several = metafunc.config.getoption("--workbook-targets")
    if several:  # many copies of a step in one process (mutants): the loader names each apart
        roots = [Path(p).resolve() for p in several.split(os.pathsep) if p]
        pairs = [(r, s) for r in roots for s in steps if s.folder(r).is_dir()]
        metafunc.parametrize("step", [target_for(metafunc.config, s, r) for r, s in pairs],
                             ids=[f"{r.name}-{s.slug}" for r, s in pairs], scope="module")
        return
    metafunc.parametrize(
        "step", [target_for(metafunc.config, s, root) for s in steps], ids=[s.slug for s in steps], scope="module"
    )


_remote_steps: dict = {}


def target_for(config, step, root):
    """The step as the tests see it: imported here, or (grading) behind a process of its own."""
    if not config.getoption("--workbook-sandbox"):
        return StepTarget(step, root)
    from tests.remote import RemoteStep

    key = (str(root), step.slug)
    if key not in _remote_steps:
        _remote_steps[key] = RemoteStep(step, root)
    return _remote_steps[key]


# In CI (.ci/run installs redis-server, bubblewrap, chromium) nothing may skip: a skip there hides a
# check that did not run (DESIGN §7). Elsewhere a skip says why, and is fine.
_skipped_in_ci: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true" and os.environ.get("WORKBOOK_CHECK") != "1"


def pytest_runtest_logreport(report):
    if report.skipped and _in_ci() and not os.environ.get("PYTEST_XDIST_WORKER"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_in_ci.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session):
    if _skipped_in_ci:
        print(f"\nIn CI nothing may skip, and {len(_skipped_in_ci)} test(s) did:\n  " + "\n  ".join(_skipped_in_ci[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    SERVERS.close()
    for remote in _remote_steps.values():
        remote.close()


def pytest_collection_modifyitems(config, items):
    known = load().exercises
    for item in items:
        for mark in item.iter_markers("exercise"):
            if not mark.args or mark.args[0] not in known:
                raise pytest.UsageError(f"{item.nodeid}: unknown exercise {mark.args!r} (see workbook/course.toml)")
    # own_step_only: a test of how a library behaves, shown on its lesson's step and not again on
    # the later ones. Deselected there (a skip would say that something was not verified).
    later = [item for item in items if item.get_closest_marker("own_step_only") and hasattr(item, "callspec")
             and getattr(item.callspec.params.get("step"), "number", None) != lesson_of(item.path)]
    if later:
        config.hook.pytest_deselected(items=later)
        items[:] = [item for item in items if item not in later]


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item, settings):
    """pytest-timeout's signal method, with a failure that says what the test was waiting for."""
    import signal
    import threading

    if (settings.method not in (None, "signal") or not hasattr(signal, "SIGALRM")
            or threading.current_thread() is not threading.main_thread()):
        return None  # pytest-timeout's own thread method (Windows): it dumps every stack

    def handler(signum, frame):
        if os.environ.get("WORKBOOK_CHECK") == "1" and not item.config.getoption("--workbook-sandbox"):
            # `check`: the next tests would most likely hang the same way; the verdict on this one
            # now beats minutes of waiting for the rest.
            item.session.shouldstop = "a check hung; the others were not run"
        pytest.fail(f"this check was still running after {settings.timeout:.0f} s and was stopped. "
                    f"It was waiting in {waiting_in(frame, target_root(item.config))}", pytrace=True)

    def cancel():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True


def waiting_in(frame, target: Path) -> str:
    """Where a stopped test was: the innermost call, and the innermost call in the code under test
    (or else in the course's own code)."""
    import traceback

    stack = traceback.extract_stack(frame)
    under = [f for f in stack if Path(f.filename).resolve().is_relative_to(target)]
    ours = under or [f for f in stack if Path(f.filename).resolve().is_relative_to(REPO)]

    def show(f):
        path = Path(f.filename).resolve()
        base = target.parent if path.is_relative_to(target) else REPO
        where = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.name
        return f"{f.name}() at {where}:{f.lineno}" + (f" ({f.line.strip()})" if f.line else "")

    innermost = show(stack[-1]) if stack else "?"
    if ours and ours[-1] is not stack[-1]:
        return f"{innermost}, called from {show(ours[-1])}"
    return innermost


@pytest.fixture(autouse=True)
def _no_flask_environment(monkeypatch):
    """The learner's shell (FLASK_DEBUG=1, a key of their own...) must not change a verdict."""
    for name in list(os.environ):
        if name.startswith("FLASK_"):
            monkeypatch.delenv(name)


# Password hashing at the lowest argon2 cost, so that a test suite of hundreds of logins stays
# fast (from step 02 on; earlier steps ignore the keys). Production parameters are tested on
# their own, and the timing test chooses a realistic cost.
CHEAP_HASHING = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1}

# Rate limits off (from step 04 on), so that the earlier lessons' tests — hypothesis alone sends
# hundreds of logins from one address — test what they are about. Step 04's tests switch the
# limits on, with small numbers, explicitly.
NO_LIMITS = {"RATELIMIT_ENABLED": False}
TEST_DEFAULTS = {**CHEAP_HASHING, **NO_LIMITS}


# Where the in-process tests keep their SQLite files: on Linux a memory-backed folder, because
# every test builds a fresh app and creating the schema on disk waits for the disk (6 ms per app
# on /tmp here, 3 ms on /dev/shm). Elsewhere, and when grading, pytest's tmp_path.
MEMORY_DISK = Path("/dev/shm") if sys.platform.startswith("linux") and os.access("/dev/shm", os.W_OK) else None


@pytest.fixture
def database_path(request):
    """A fresh SQLite file name for one test, removed afterwards."""
    if MEMORY_DISK is None or request.config.getoption("--workbook-sandbox"):
        yield request.getfixturevalue("tmp_path") / "app.sqlite"
        return
    folder = Path(tempfile.mkdtemp(prefix="workbook-db-", dir=MEMORY_DISK))
    yield folder / "app.sqlite"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def make_app(step, database_path):
    """Build the step's app with a strong key and a fresh SQLite file; ``KEY=None`` drops a key."""

    def make(**overrides):
        config = {
            "TESTING": True,
            "JWT_SECRET_KEY": strong_key(),
            "DATABASE": str(database_path),
            **TEST_DEFAULTS,
        }
        config.update(overrides)
        config = {k: v for k, v in config.items() if v is not None}
        try:
            return step.create_app(config)
        except LearnerCodeError as exc:
            pytest.fail(str(exc), pytrace=False)
        except Exception:
            # A refusal of the strong key this fixture put in test_config: if the same key from the
            # environment starts the app, test_config is not applied, and that is 1.1's to fix,
            # whichever exercise the test is about (the refusal would point at 1.2).
            if "JWT_SECRET_KEY" not in overrides and ignores_test_config(step, config, refused=True):
                raise ExerciseFailure(
                    "config-order",
                    "create_app(test_config) refused the strong key that test_config gave it, yet starts with the "
                    "same key from FLASK_JWT_SECRET_KEY: test_config is not applied. Load it last, with "
                    "app.config.from_mapping(test_config)") from None
            raise

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def env_for(config: dict) -> dict[str, str]:
    """Configuration as the FLASK_* environment variables a real server reads."""
    return {f"FLASK_{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


class ServerPool:
    """The `flask run` servers shared by a whole pytest session: one per step folder, started once.

    Starting a server costs a Python process importing Flask and the app (0.2–0.3 s of CPU), and
    every lesson's HTTP tests run on every later step: one server per step folder instead of one
    per test module, launched in the background as soon as the tests are collected
    (``pytest_collection_finish``), so it boots while the in-process tests run.

    Shared means shared: a test on ``live_server`` registers fresh names and leaves the server
    working. A test that needs its own configuration, or breaks the server on purpose, uses
    ``start_server(...)``: a private server, stopped after its module.
    """

    def __init__(self):
        self.servers: dict[tuple[str, str], LiveServer] = {}
        self.folder: Path | None = None

    def _workdir(self, target) -> Path:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="workbook-live-"))
        workdir = self.folder / f"{len(self.servers):02d}-{target.step.slug}"
        workdir.mkdir()
        return workdir

    def launch(self, target) -> LiveServer:
        key = (str(target.root), target.step.slug)
        if key not in self.servers:
            server = LiveServer(target, self._workdir(target), env=env_for(TEST_DEFAULTS))
            self.servers[key] = server
            try:
                server.launch()
            except OSError as exc:  # e.g. the process limit: reported by the test that needs it
                server.failure = f"The server could not be started: {exc}"
        return self.servers[key]

    def get(self, target) -> LiveServer:
        return self.launch(target).wait_until_ready()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


SERVERS = ServerPool()


def pytest_collection_finish(session):
    """Launch the shared servers the collected tests will need, in the background.

    Not in an xdist worker: each worker runs only some of the files it collected, so it starts
    a server when a test first asks for one."""
    if session.config.getoption("collectonly") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if "live_server" in getattr(item, "fixturenames", ()) and callspec and "step" in callspec.params:
            SERVERS.launch(callspec.params["step"])


@pytest.fixture(scope="module")
def start_server(step, tmp_path_factory):
    """Start a private server for this module: `flask run` of the step's app with this configuration."""
    servers = []

    def start(**config):
        env = env_for({**TEST_DEFAULTS, **config})
        server = LiveServer(step, tmp_path_factory.mktemp(f"live-{step.step.slug}"), env=env)
        try:
            server.start()
        except LearnerCodeError as exc:
            pytest.fail(str(exc), pytrace=False)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def live_server(step):
    """The step's app served by a real `flask run` process on 127.0.0.1, shared by the session
    (see ServerPool): register fresh names, and leave it working."""
    try:
        return SERVERS.get(step)
    except LearnerCodeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, for this module only (the multi-process tests)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; "
                    "macOS: brew install redis); CI installs it, so there this test runs")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
