"""Step 07 — many processes: gunicorn with 2 workers sharing a real Redis revocation store.

A logout answered by one worker must count in the other; simultaneous refreshes of one token
spread over both workers must still have exactly one winner (Redis SET NX), and end the session.
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

from tests import jwt_tools
from tests.conftest import TEST_DEFAULTS, env_for
from tests.harness import LiveServer, free_port, strong_key, student_limits, wait_for_port

PASSWORD = "violet kettle under a quiet moon"
WORKERS = 2

pytestmark = [
    pytest.mark.skipif(os.name == "nt", reason="gunicorn does not run on Windows (use WSL for this part)"),
    pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"),
]

# Each worker marks itself ready, and logs which process answered each request (in order).
HOOKS = """
import os, pathlib
def post_worker_init(worker):
    (pathlib.Path({folder!r}) / f"ready-{{worker.pid}}").touch()

def post_request(worker, req, environ, resp):
    with open(pathlib.Path({folder!r}) / "served", "a") as log:
        log.write(f"{{worker.pid}} {{req.path}} {{resp.status_code}}\\n")
"""


class Gunicorn(LiveServer):
    """The step's app under `gunicorn -w 2`, configured through FLASK_* variables."""

    def start(self, timeout: float = 30.0):
        if not (self.target.folder / "__init__.py").is_file():
            pytest.fail(f"{self.target.step.slug}/__init__.py is missing: the step's folder is not there", pytrace=False)
        self.logs = self.workdir / "logs"
        self.logs.mkdir()
        hook = self.workdir / "gunicorn_conf.py"
        hook.write_text(HOOKS.format(folder=str(self.logs)), encoding="utf-8")
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
            while len(list(self.logs.glob("ready-*"))) < WORKERS:
                if self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited with {self.process.returncode}: the app did not load")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(list(self.logs.glob('ready-*')))} of {WORKERS} workers started")
                time.sleep(0.05)
        except RuntimeError as exc:
            self.stop()
            pytest.fail(f"{exc}: {self.output()[-1500:]}", pytrace=False)
        return self

    def served(self, at_least: int, timeout: float = 10.0) -> list[tuple[int, str, int]]:
        """(worker pid, path, status) of every request so far; the hook writes just after the
        answer is sent, so wait until at least ``at_least`` lines are there."""
        deadline = time.monotonic() + timeout
        while True:
            path = self.logs / "served"
            lines = path.read_text().split("\n") if path.exists() else []
            rows = [(int(pid), p, int(code)) for pid, p, code in (line.split() for line in lines if line.strip())]
            if len(rows) >= at_least or time.monotonic() > deadline:
                return rows
            time.sleep(0.02)


@pytest.fixture(scope="module")
def workers(step, tmp_path_factory, redis_url):
    config = {**TEST_DEFAULTS, "REVOCATION_STORAGE_URI": redis_url}
    server = Gunicorn(step, tmp_path_factory.mktemp("workers"), env=env_for(config)).start()
    server.redis_url = redis_url
    yield server
    server.stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def redis_client(server):
    import redis

    return redis.Redis.from_url(server.redis_url, socket_timeout=2)


def session(server):
    name = f"w{uuid.uuid4().hex[:12]}"
    assert server.post("/register", json_body={"username": name, "password": PASSWORD}).status == 201
    r = server.post("/login", json_body={"username": name, "password": PASSWORD})
    assert r.status == 200, f"login under gunicorn answered {r.status}: {server.output()[-800:]}"
    return r.json()


@pytest.mark.exercise("revocation-check")
def test_a_logout_in_one_worker_counts_in_the_other(workers):
    """Logout answered by worker A; the same token sent to worker B is refused (the store is shared)."""
    tokens = session(workers)
    assert workers.post("/logout", headers=bearer(tokens["access_token"])).status == 204, "logout failed"
    family = jwt_tools.read(tokens["refresh_token"])[1].get("fam")
    with redis_client(workers) as client:
        ttl = client.ttl(f"revocation:family:{family}")
    refresh_left = jwt_tools.read(tokens["refresh_token"])[1]["exp"] - time.time()
    assert ttl > 0, f"the logout's entry in Redis has no expiry (TTL {ttl}): the store grows without bound"
    assert ttl >= refresh_left - 5, f"the logout's entry expires {refresh_left - ttl:.0f} s before the refresh token"
    deadline = time.monotonic() + 10
    while not [row for row in workers.served(0) if row[1] == "/logout"] and time.monotonic() < deadline:
        time.sleep(0.02)
    rows = workers.served(0)
    logout_worker = next(row[0] for row in rows if row[1] == "/logout")
    before = len(rows)
    other = []
    for _ in range(3):  # which worker takes a connection is the kernel's choice: a few bursts
        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda _: workers.get("/protected", headers=bearer(tokens["access_token"])).status,
                                  range(16)))
        assert all(code == 401 for code in codes), (
            f"after a logout, the revoked token answered {codes} under gunicorn -w {WORKERS} with a Redis store")
        rows = workers.served(before + 16)
        other = [row for row in rows[before:] if row[0] != logout_worker]
        before = len(rows)
        if other:
            break
    if not other:
        pytest.skip("every request went to the worker that answered the logout; nothing learnt about the other")
    assert all(code == 401 for _, _, code in other), "the other worker accepted a token revoked by the first"


@pytest.mark.exercise("refresh-rotation")
def test_simultaneous_refreshes_across_workers_have_one_winner(workers):
    """16 simultaneous refreshes of one token over 2 workers and Redis: exactly one 200, the session ends."""
    tokens = session(workers)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: workers.post("/refresh", headers=bearer(tokens["refresh_token"])),
                                range(16)))
    codes = sorted(r.status for r in answers)
    assert codes.count(200) == 1, (f"{codes.count(200)} of 16 simultaneous refreshes won across {WORKERS} workers "
                                   f"({codes}): retiring a refresh token must be atomic in the shared store")
    assert set(codes) == {200, 401}, f"simultaneous refreshes answered {codes}"
    winner = next(r.json() for r in answers if r.status == 200)
    r = workers.post("/refresh", headers=bearer(winner["refresh_token"]))
    assert r.status == 401, f"the winner's new refresh token answered {r.status} after the reuse"


@pytest.mark.exercise("logout")
def test_logout_everywhere_with_redis(workers):
    """With the Redis store, /logout/all ends every session of the user, whichever worker answers."""
    name = f"w{uuid.uuid4().hex[:12]}"
    assert workers.post("/register", json_body={"username": name, "password": PASSWORD}).status == 201
    sessions = [workers.post("/login", json_body={"username": name, "password": PASSWORD}).json() for _ in range(3)]
    assert workers.post("/logout/all", headers=bearer(sessions[0]["access_token"])).status == 204, "/logout/all failed"
    for i, tokens in enumerate(sessions):
        for _ in range(2):  # more than one worker, likely
            r = workers.get("/protected", headers=bearer(tokens["access_token"]))
            assert r.status == 401, f"after /logout/all session {i + 1}'s access token answered {r.status} (Redis store)"
        r = workers.post("/refresh", headers=bearer(tokens["refresh_token"]))
        assert r.status == 401, f"after /logout/all session {i + 1}'s refresh token answered {r.status} (Redis store)"
