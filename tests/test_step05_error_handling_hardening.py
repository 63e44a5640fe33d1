"""Step 05 — what every answer says about itself, and what the database file lets others read.

- Every API answer carries a Content-Security-Policy for a JSON API, `default-src 'none';
  frame-ancestors 'none'` (OWASP REST Security Cheat Sheet): should a browser ever render one
  (an error page, a reflected field), no script runs and no site can frame it.
- The SQLite file holds the password hashes: it is created readable by the server's user only.
- `flask run --debugger` (the debugger without debug mode) is refused like `--debug`.
- The last resort is for bugs only: an HTTP error (404, 405) keeps its status, and the log of
  a bug holds no password or token of the request that met it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import logging

from tests.harness import free_port, strong_key, subprocess_timeout
from tests.test_step05_error_handling import broken  # noqa: F401 (a fixture)
from tests.test_step05_error_handling import status_is_problems_fault
from tests.verdict import check

PASSWORD = "violet kettle under a quiet moon"


@pytest.mark.exercise("problem-details")
@pytest.mark.parametrize("method, path", [("GET", "/health"), ("POST", "/login"), ("GET", "/nothing-here"),
                                          ("DELETE", "/health"), ("GET", "/protected")])
def test_every_answer_forbids_scripts_and_framing(client, method, path):
    """Every answer, success or error, says Content-Security-Policy: default-src 'none'; frame-ancestors 'none'."""
    r = client.open(path, method=method, json={"username": "alice", "password": PASSWORD})
    policy = {d.strip().split(" ")[0]: d.strip() for d in r.headers.get("Content-Security-Policy", "").split(";") if d.strip()}
    assert policy.get("default-src") == "default-src 'none'", (
        f"{method} {path} ({r.status_code}) has no Content-Security-Policy with default-src 'none': "
        f"{r.headers.get('Content-Security-Policy')!r}")
    assert policy.get("frame-ancestors") == "frame-ancestors 'none'", f"{method} {path} may be framed by any site"


@pytest.mark.exercise("last-resort")
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX; on Windows the folder's ACL decides")
def test_the_database_file_is_private_to_the_server(make_app, tmp_path):
    """The SQLite file with the password hashes is created 0600: no other account on the machine can read it."""
    path = tmp_path / "private.sqlite"
    old = os.umask(0o022)  # the common default: new files readable by everyone
    try:
        app = make_app(DATABASE=str(path))
    finally:
        os.umask(old)
    assert app.test_client().post("/register", json={"username": "alice", "password": PASSWORD}).status_code == 201
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & 0o077 == 0, (
        f"the database file is created with mode {oct(mode)}: other users of the machine can read the password "
        "hashes. Create it 0600 before sqlite3 opens it")


@pytest.mark.exercise("last-resort")
def test_flask_debug_is_refused_from_the_command_line(step, tmp_path):
    """`flask --debug` (FLASK_DEBUG=1) stops with a message instead of serving the debugger."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(FLASK_JWT_SECRET_KEY=strong_key(), FLASK_DATABASE=str(tmp_path / "d.sqlite"))
    done = subprocess.run([sys.executable, "-m", "flask", "--app", step.step.slug, "--debug", "routes"],
                          cwd=step.root, env=env, capture_output=True, text=True, timeout=subprocess_timeout())
    assert done.returncode != 0 and "ebug" in done.stderr + done.stdout, (
        "`flask --debug` loaded the app: debug mode must be refused"
    )


@pytest.mark.exercise("last-resort")
def test_flask_run_with_the_debugger_alone_is_refused(step, tmp_path):
    """`flask run --debugger` (DEBUG stays off) stops with a message instead of serving the console at /console."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(FLASK_JWT_SECRET_KEY=strong_key(), FLASK_DATABASE=str(tmp_path / "d.sqlite"))
    command = [sys.executable, "-m", "flask", "--app", step.step.slug, "run", "--debugger", "--no-reload",
               "--host", "127.0.0.1", "--port", str(free_port())]
    try:
        done = subprocess.run(command, cwd=step.root, env=env, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("`flask run --debugger` started serving: the Werkzeug console at /console runs Python for "
                    "anyone who gets past its PIN. Refuse it in create_app, as --debug is refused", pytrace=False)
    assert done.returncode != 0 and "debugger" in done.stderr + done.stdout, (
        f"`flask run --debugger` exited {done.returncode} without saying why: {done.stderr[-300:]}")


HTTP_ERRORS = {
    "an unknown path": (lambda c: c.get("/no/such/thing"), 404),
    "a wrong method": (lambda c: c.delete("/login"), 405),
    "a body that is not JSON": (lambda c: c.post("/login", data="username=a", content_type="text/plain"), 415),
}


@pytest.mark.exercise("last-resort")
@pytest.mark.exercise("problem-details", when_named=True)
@pytest.mark.parametrize("kind", HTTP_ERRORS)
def test_an_http_error_is_not_a_bug(client, kind):
    """A 404 or a 405 keeps its status: the catch-all for bugs does not turn the client's mistakes into 500s."""
    send, status = HTTP_ERRORS[kind]
    r = send(client)
    status_fault = status_is_problems_fault(r, status, client)
    check(not status_fault, "problem-details", f"{kind}: {status_fault}")
    assert r.status_code != 500, (
        f"{kind} answered 500 instead of {status}: the handler for bugs caught an HTTP error (a 404 is an "
        "HTTPException, an Exception too). Keep errorhandler(HTTPException) for HTTP errors, or hand them on "
        "(if isinstance(error, HTTPException): return http_error(error)); monitors then page someone for every typo"
    )
    assert r.status_code == status, f"{kind} answered {r.status_code}, expected {status}"


@pytest.mark.exercise("last-resort")
@pytest.mark.exercise("problem-details", when_named=True)
def test_the_log_of_a_bug_holds_no_password_or_token(make_app, broken, caplog):  # noqa: F811 (the fixture)
    """The traceback of a bug is logged, but not the password or the token of the request that met it."""
    app = make_app()
    client = app.test_client()
    caplog.set_level(logging.DEBUG)
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLW9mLWEtcmVhbC10b2tlbg"
    r = client.post("/register", json={"username": "alice", "password": PASSWORD},
                    headers={"Authorization": f"Bearer {token}"})
    status_fault = status_is_problems_fault(r, 500, client)
    check(not status_fault, "problem-details", f"a registration whose hashing raised: {status_fault}")
    assert r.status_code == 500, f"a registration whose hashing raised answered {r.status_code}"
    text = caplog.text
    for secret, what in ((PASSWORD, "the password"), (token, "the bearer token")):
        assert secret not in text, (
            f"the log of the 500 holds {what} of the request: logs are read by more people, kept longer and copied "
            "further than the database. Log the request id, the path and the traceback, never the body or the "
            "headers (OWASP Logging Cheat Sheet; CWE-532)"
        )

