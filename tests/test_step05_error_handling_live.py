"""Step 05 — an outsider reads the error pages over real HTTP: one shape, nothing leaked.

The finished API (steps 01–05) under `flask run`: every error is clean problem+json, a bug
answers a generic 500 with a request id, and the server's log has the traceback under that id.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

PASSWORD = "violet kettle under a quiet moon"
LEAKS = re.compile(r"Traceback|Werkzeug|werkzeug|sqlite|\.py\b|/home/|/usr/|/srv/|site-packages|Exception|Error:")

REQUESTS = {
    "unknown path": ("GET", "/admin", None, {}),
    "path traversal": ("GET", "/../../etc/passwd", None, {}),
    "wrong method": ("PUT", "/login", None, {}),
    "not JSON": ("POST", "/login", b"username=admin&password=x", {"Content-Type": "application/x-www-form-urlencoded"}),
    "malformed JSON": ("POST", "/login", b'{"username": "admin", ', {"Content-Type": "application/json"}),
    "invalid UTF-8": ("POST", "/register", b'{"username": "\xc3\x28"}', {"Content-Type": "application/json"}),
    "deep JSON": ("POST", "/register", b"[" * 5000 + b"]" * 5000, {"Content-Type": "application/json"}),
    "huge body": ("POST", "/register", b"x" * 100_000, {"Content-Type": "application/json"}),
    "forged token": ("GET", "/protected", None, {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}),
    "no token": ("GET", "/protected", None, {}),
    "bad credentials": ("POST", "/login", json.dumps({"username": "admin", "password": "admin"}).encode(),
                        {"Content-Type": "application/json"}),
}


@pytest.mark.exercise("problem-details")
@pytest.mark.parametrize("kind", REQUESTS)
def test_error_pages_over_http_are_clean_problems(live_server, kind):
    """Over HTTP, each error is application/problem+json, status in the body, no internals, no HTML."""
    method, path, body, headers = REQUESTS[kind]
    r = live_server.request(method, path, body=body, headers=headers)
    assert 400 <= r.status < 500, f"{kind} answered {r.status}"
    assert r.headers.get("content-type", "").startswith("application/problem+json"), (
        f"{kind} answered {r.headers.get('content-type')}: {r.text[:120]!r}"
    )
    problem = r.json()
    assert problem.get("status") == r.status and problem.get("title"), f"{kind}: not a valid problem: {problem}"
    assert not LEAKS.search(r.text), f"{kind} leaks internals: {r.text[:300]!r}"
    assert r.headers.get("x-content-type-options") == "nosniff", f"{kind} lacks nosniff"


@pytest.mark.exercise("jwt-loaders")
def test_a_forged_token_over_http_is_a_401_with_a_challenge(live_server):
    """Over HTTP, an alg=none token gets 401 with WWW-Authenticate: Bearer error="invalid_token"."""
    method, path, body, headers = REQUESTS["forged token"]
    r = live_server.request(method, path, headers=headers)
    assert r.status == 401, f"a forged token answered {r.status}"
    assert 'error="invalid_token"' in r.headers.get("www-authenticate", ""), r.headers.get("www-authenticate")


@pytest.mark.exercise("last-resort")
def test_a_broken_database_gives_a_500_with_an_id_found_in_the_log(start_server):
    """The database vanishes under a running server: the client gets a generic 500 and an id; the log, the traceback."""
    server = start_server()
    assert server.post("/register", json_body={"username": "alice", "password": PASSWORD}).status == 201
    server.database.unlink()
    server.database.mkdir()  # sqlite3 cannot open a folder: an unexpected error in every query
    try:
        r = server.post("/login", json_body={"username": "alice", "password": PASSWORD})
    finally:
        shutil.rmtree(server.database)
    assert r.status == 500, f"a broken database answered {r.status}"
    assert r.headers.get("content-type", "").startswith("application/problem+json"), "the 500 is not a problem"
    assert not LEAKS.search(r.text), f"the 500 leaks internals: {r.text[:300]!r}"
    request_id = r.json().get("request_id")
    assert request_id and request_id in server.output(), "the server's log does not mention the 500's request id"
    assert "Traceback" in server.output(), "the server's log has no traceback for the 500"
