"""What the security layers cost, held down without weakening them (issue 15; DESIGN §9).

The reference solutions' two shortcuts, attacked where a shortcut could go wrong:
- db.py's connection pool (steps 02 on): an authenticated request opens no connection; a request
  that fails between a write and its commit leaves nothing for the next request to commit; a
  database file replaced under the running app (a restored backup) is followed, not the deleted
  one; a forked process never uses its parent's connections;
- limits.py's memory:// storage (steps 04 on): limited requests start no thread, and a limit
  still holds exactly while the storage cleans up.

These check the course's reference solutions (course infrastructure, not an exercise, as in
test_openapi.py): `check` and `grade` do not run them. The throughput itself is measured by
bench/api_throughput.py, never by a timed test.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import warnings
from contextlib import closing

import pytest

from tests.conftest import CHEAP_HASHING
from tests.harness import LearnerCodeError, StepTarget, strong_key
from workbook.course import SOLUTIONS, load

COURSE = load()
POOLED = [s for s in COURSE.steps if (s.folder(SOLUTIONS) / "db.py").is_file()]
LIMITED = [s for s in COURSE.steps if (s.folder(SOLUTIONS) / "limits.py").is_file()]
PASSWORD = "violet kettle under a quiet moon"


def build(step, tmp_path, **config):
    target = StepTarget(step, SOLUTIONS)
    settings = {"TESTING": True, "JWT_SECRET_KEY": strong_key(), "DATABASE": str(tmp_path / "api.sqlite"),
                "RATELIMIT_ENABLED": False, **CHEAP_HASHING, **config}
    try:
        return target, target.create_app(settings)
    except LearnerCodeError as exc:
        pytest.fail(str(exc), pytrace=False)


def register(client, username):
    return client.post("/register", json={"username": username, "password": PASSWORD})


def login(client, username):
    return client.post("/login", json={"username": username, "password": PASSWORD})


def token_of(client, username="alice"):
    assert register(client, username).status_code == 201, f"could not register {username}"
    r = login(client, username)
    assert r.status_code == 200, f"could not log in as {username}: {r.status_code}"
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def usernames(app):
    with closing(sqlite3.connect(app.config["DATABASE"])) as con:  # `with connect()` alone does not close
        return {row[0] for row in con.execute("SELECT username FROM user")}


@pytest.mark.parametrize("step", POOLED, ids=[s.slug for s in POOLED])
def test_an_authenticated_request_opens_no_new_connection(step, tmp_path, monkeypatch):
    """Once the app has served a request, the next ones reuse its SQLite connection."""
    _, app = build(step, tmp_path)
    client = app.test_client()
    headers = token_of(client)
    opened = []
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k))
    statuses = {client.get("/protected", headers=headers).status_code for _ in range(20)}
    assert statuses == {200}, f"GET /protected answered {statuses}"
    assert not opened, f"20 authenticated requests opened {len(opened)} new SQLite connections instead of reusing one"


@pytest.mark.parametrize("step", POOLED, ids=[s.slug for s in POOLED])
def test_a_request_that_fails_before_its_commit_leaves_nothing_behind(step, tmp_path):
    """A request that writes and then fails never commits: the next request on its connection
    (which commits work of its own) does not commit the failed one's write along with it."""
    target, app = build(step, tmp_path, TESTING=False)  # an exception is answered 500, not raised here
    db = target.module.db

    @app.post("/test-half-write")
    def half_write():
        db.get_db().execute("INSERT INTO user (username, password_hash) VALUES ('mallory', 'x')")
        raise RuntimeError("a bug between the write and its commit")

    client = app.test_client()
    assert client.post("/test-half-write").status_code == 500, "the failing request did not fail"
    assert register(client, "bob").status_code == 201, "the next registration failed"
    names = usernames(app)
    assert "bob" in names, "the registration after the failed request was not stored"
    assert "mallory" not in names, (
        "a failed request's uncommitted write was committed by the next request on the same connection: "
        "a connection must be rolled back when it is given back")


@pytest.mark.parametrize("step", POOLED, ids=[s.slug for s in POOLED])
def test_a_database_file_replaced_under_the_app_is_followed(step, tmp_path):
    """The operator restores a backup (a new file at DATABASE): the app serves the restored file,
    not the deleted one its idle connection still holds open."""
    _, app = build(step, tmp_path)
    client = app.test_client()
    database = app.config["DATABASE"]
    assert register(client, "alice").status_code == 201
    backup = tmp_path / "backup.sqlite"
    shutil.copyfile(database, backup)  # no transaction is open between requests
    assert register(client, "bob").status_code == 201
    os.replace(backup, database)
    assert login(client, "alice").status_code == 200, "alice, who is in the restored file, cannot log in"
    r = login(client, "bob")
    assert r.status_code == 401, (
        f"bob, who is not in the restored file, logged in ({r.status_code}): the app still reads the deleted file")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists on POSIX only")
@pytest.mark.parametrize("step", POOLED, ids=[s.slug for s in POOLED])
def test_a_forked_process_never_uses_its_parents_connection(step, tmp_path):
    """gunicorn forks its workers: a child must open its own connection, never use (or close) the
    parent's (SQLite: "How To Corrupt An SQLite Database File", §2.6)."""
    target, app = build(step, tmp_path)
    client = app.test_client()
    headers = token_of(client)
    assert client.get("/protected", headers=headers).status_code == 200
    with app.app_context():
        parents = target.module.db.get_db()  # the pooled connection, lent to this context
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() in a process with threads
        pid = os.fork()
    if pid == 0:  # the child: answer in one byte, then leave without running anything else
        verdict = b"?"
        try:
            with app.app_context():
                mine = target.module.db.get_db()
                verdict = b"P" if mine is parents else b"N"
                mine.execute("SELECT COUNT(*) FROM user").fetchone()
        except BaseException:
            verdict = b"E"
        finally:
            os.write(write, verdict)
            os._exit(0)
    os.close(write)
    try:
        verdict = os.read(read, 1)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert verdict != b"P", "the forked process was lent its parent's SQLite connection"
    assert verdict == b"N", f"the forked process could not use a connection of its own ({verdict!r})"
    assert client.get("/protected", headers=headers).status_code == 200, "the parent's connection broke"


@pytest.mark.parametrize("step", LIMITED, ids=[s.slug for s in LIMITED])
def test_limited_requests_start_no_thread(step, tmp_path, monkeypatch):
    """memory:// counts without starting a thread (limits' own storage starts a Timer every ~10 ms)."""
    _, app = build(step, tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="100000 per second")
    client = app.test_client()
    headers = token_of(client)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name) or real_start(self))
    for _ in range(100):
        r = client.get("/protected", headers=headers)
        assert r.status_code == 200 and "X-RateLimit-Remaining" in r.headers, "the request was not limited"
    assert not started, f"100 limited requests started {len(started)} threads"


@pytest.mark.parametrize("step", LIMITED, ids=[s.slug for s in LIMITED])
def test_a_limit_holds_while_the_storage_cleans_up(step, tmp_path):
    """The clean-up frees only what has expired: with it run before every request, the 4th request
    within the window is still refused."""
    target, app = build(step, tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="3 per hour")
    storage = target.module.limits.limiter.storage
    client = app.test_client()
    statuses = []
    for _ in range(4):
        storage.next_clean_up = 0  # due now: the next hit runs it
        statuses.append(client.get("/protected").status_code)  # no token: 401, and counted
    assert 429 not in statuses[:3], f"the first three requests were refused: {statuses}"
    assert statuses[3] == 429, f"3 per hour let a 4th request through when the storage cleaned up: {statuses}"
