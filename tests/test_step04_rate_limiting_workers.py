"""Step 04 — many processes: gunicorn with 3 workers, memory:// versus a real Redis.

With memory:// each worker keeps its own counters, so more than the limit gets through; with
redis:// the workers share them and exactly the limit does, even under concurrent requests.
POSIX only (gunicorn does not run on Windows); needs `redis-server` (CI installs it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import env_for
from tests.harness import LiveServer, free_port, strong_key, student_limits, wait_for_port

PASSWORD = "violet kettle under a quiet moon"
LIMIT = 5
ATTEMPTS = 30

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="gunicorn does not run on Windows (use WSL for this part)"),
    pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"),
]


WORKERS = 3

# A gunicorn hook that marks each worker ready once it has loaded the app: the test waits for
# all of them, or the first requests would all land on the one worker that booted first.
READY_HOOK = """
import pathlib
def post_worker_init(worker):
    (pathlib.Path({folder!r}) / f"ready-{{worker.pid}}").touch()

def post_request(worker, req, environ, resp):
    # Which worker answered which login, and how: the test then knows each worker's share.
    if req.path == "/login":
        with open(pathlib.Path({folder!r}) / f"served-{{worker.pid}}", "a") as log:
            log.write(str(resp.status_code) + "\\n")
"""


class Gunicorn(LiveServer):
    """The step's app under `gunicorn -w 3`, configured through FLASK_* variables."""

    def start(self, timeout: float = 30.0):
        if not (self.target.folder / "__init__.py").is_file():
            pytest.fail(f"{self.target.step.slug}/__init__.py is missing: the step's folder is not there", pytrace=False)
        ready = self.workdir / "ready"
        ready.mkdir()
        hook = self.workdir / "gunicorn_conf.py"
        hook.write_text(READY_HOOK.format(folder=str(ready)), encoding="utf-8")
        self.port = free_port()
        self.jwt_key = strong_key()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update(self.extra_env, FLASK_JWT_SECRET_KEY=self.jwt_key,
                   FLASK_DATABASE=str(self.workdir / "workers.sqlite"))
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
             "--config", str(hook), "--log-level", "warning", "--no-control-socket",
             f"{self.target.step.slug}:create_app()"],
            cwd=self.target.root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=student_limits(),
        )
        try:
            wait_for_port(self.port, self.process, "gunicorn", timeout)
            deadline = time.monotonic() + timeout
            while len(list(ready.iterdir())) < WORKERS:
                if self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {self.process.returncode}: the app did not load")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(list(ready.iterdir()))} of {WORKERS} workers started")
                time.sleep(0.05)
        except RuntimeError as exc:
            self.stop()
            pytest.fail(f"{exc}: {self.output()[-1500:]}", pytrace=False)
        return self


def read_served(ready, timeout: float = 10.0) -> dict[int, list[int]]:
    """Each worker's answers to the guesses. The hook runs just after a response is sent, so the
    last lines may land a moment after the client has its answer: wait for all of them."""
    deadline = time.monotonic() + timeout
    while True:
        served = {int(f.name.split("-")[1]): [int(line) for line in f.read_text().split()]
                  for f in ready.glob("served-*")}
        if sum(len(v) for v in served.values()) >= ATTEMPTS:
            return served
        if time.monotonic() > deadline:
            pytest.fail(f"the workers logged {sum(len(v) for v in served.values())} of {ATTEMPTS} guesses "
                        f"within {timeout:.0f} s", pytrace=False)
        time.sleep(0.02)


def guesses_per_worker(step, workdir, storage_uri, bursts: int = 3) -> dict[int, list[int]]:
    """ATTEMPTS simultaneous wrong guesses at one account under gunicorn -w 3: each worker's answers.

    Which worker takes which connection is up to the kernel: on a busy machine one worker may
    take them all, and then per-worker counters look exactly like shared ones. Up to ``bursts``
    bursts (a fresh account each) are sent until at least two workers have answered guesses."""
    config = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": storage_uri,
        "RATELIMIT_LOGIN_PER_ACCOUNT": f"{LIMIT} per minute",
        "RATELIMIT_LOGIN_PER_ADDRESS": "1000 per minute",
        # OWASP's minimum cost, ~20 ms a guess, so that the guesses overlap across workers.
        "ARGON2_TIME_COST": 2, "ARGON2_MEMORY_COST": 19456, "ARGON2_PARALLELISM": 1,
    }
    server = Gunicorn(step, workdir, env=env_for(config)).start()
    ready = workdir / "ready"
    try:
        for _ in range(bursts):
            for old in ready.glob("served-*"):
                old.unlink()
            victim = f"alice-{uuid.uuid4().hex[:8]}"  # the Redis server outlives one run: a fresh account each time
            assert server.post("/register", json_body={"username": victim, "password": PASSWORD}).status == 201

            def guess(i):
                return server.post("/login", json_body={"username": victim, "password": f"wrong guess {i:04d}"}).status

            with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
                codes = list(pool.map(guess, range(ATTEMPTS)))
            assert all(c in (401, 429) for c in codes), f"unexpected answers under gunicorn: {codes}"
            served = read_served(ready)
            if len(served) >= 2:
                break
    finally:
        server.stop()
    return served


# How memory:// behaves under several processes is the storage library's, not the step's code:
# shown on step 04, where the lesson is. Later steps keep the Redis test below, which fails if
# their limits stop reading RATELIMIT_STORAGE_URI or stop counting every attempt.
@pytest.mark.own_step_only
@pytest.mark.exercise("login-limits")
def test_memory_storage_counts_per_worker(step, tmp_path):
    """With memory:// and 3 workers, more than the limit of guesses gets through: each worker counts alone."""
    served = guesses_per_worker(step, tmp_path, "memory://")
    through = sum(codes.count(401) for codes in served.values())
    shares = ", ".join(f"{len(c)} guesses, {c.count(401)} let through" for c in served.values())
    for codes in served.values():
        assert codes.count(401) == min(len(codes), LIMIT), (
            f"with memory:// each worker should let through the first {LIMIT} guesses it sees; "
            f"the workers saw: {shares}")
    assert len(served) < 2 or through > LIMIT, (
        f"only {through} guesses got through with per-process counters over {len(served)} workers ({shares})")


# Exercise 4.2's: the likely mistake here is a login limit that does not count every attempt
# (deduct_when), which tests/test_step04_rate_limiting.py also catches in one process, without Redis.
@pytest.mark.exercise("login-limits")
def test_redis_storage_holds_the_limit_across_workers(step, tmp_path, redis_url):
    """With redis:// the 3 workers share one counter: exactly the limit of guesses gets through."""
    served = guesses_per_worker(step, tmp_path, redis_url, bursts=1)
    through = sum(codes.count(401) for codes in served.values())
    assert through == LIMIT, (
        f"{through} of {ATTEMPTS} simultaneous guesses got through with Redis over {len(served)} workers; "
        f"the limit is {LIMIT}. The login limits must count every attempt (no deduct_when: it checks before "
        "and counts after, so simultaneous guesses all pass), and the limiter must read RATELIMIT_STORAGE_URI"
    )
