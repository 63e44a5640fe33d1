"""Step 02 — an outsider attacks authentication over real HTTP (`flask run` on 127.0.0.1).

Everything here goes through a socket, as an attacker on the network would send it. One server
per step serves the whole module, so every test uses usernames of its own.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import jwt_tools
from tests.harness import without_request_id
from tests.test_step02_authentication import FORGERY_NAMES, PASSWORD, forgeries


def fresh_name(prefix="user"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def register(server, username, password=PASSWORD):
    return server.post("/register", json_body={"username": username, "password": password})


def login(server, username, password=PASSWORD):
    return server.post("/login", json_body={"username": username, "password": password})


def token_for(server, username):
    assert register(server, username).status == 201, "registration over HTTP failed"
    r = login(server, username)
    assert r.status == 200, f"login over HTTP answered {r.status}"
    return r.json()["access_token"]


@pytest.mark.exercise("protect-route")
def test_the_classic_flow_over_http(live_server):
    """Register, log in and call /protected over HTTP; the token response is not cacheable."""
    name = fresh_name()
    assert register(live_server, name).status == 201, "registration over HTTP failed"
    r = login(live_server, name)
    assert r.status == 200, f"login over HTTP answered {r.status}"
    assert "no-store" in r.headers.get("cache-control", ""), "the token response lacks Cache-Control: no-store"
    me = live_server.get("/protected", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status == 200, f"/protected with a valid token answered {me.status} over HTTP"
    assert me.json().get("logged_in_as") == name, f"/protected should say logged_in_as {name}, it said {me.text}"
    assert PASSWORD not in live_server.output(), "the server's log contains a password"


@pytest.mark.exercise("verify-password")
def test_enumeration_over_http_learns_nothing(live_server):
    """Over HTTP, an unknown user and a wrong password get byte-identical answers."""
    name = fresh_name()
    register(live_server, name)
    wrong = login(live_server, name, "not the password at all")
    unknown = login(live_server, fresh_name("ghost"), "not the password at all")
    assert wrong.status == unknown.status == 401, f"statuses {wrong.status} and {unknown.status}, expected 401"
    assert without_request_id(wrong.json()) == without_request_id(unknown.json()), (
        "the bodies differ: an attacker can tell which usernames exist"
    )
    assert sorted(wrong.headers) == sorted(unknown.headers), "the headers differ"


@pytest.mark.exercise("verify-password")
def test_the_classic_ghost_login_fails(live_server):
    """{"username": "ghost"} with no password (the classic tutorial's bypass) gets no token."""
    r = live_server.post("/login", json_body={"username": fresh_name("ghost")})
    assert 400 <= r.status < 500 and b"access_token" not in r.body, f"the ghost login answered {r.status}"


@pytest.mark.exercise("hash-password")
def test_a_stolen_database_holds_no_password(live_server):
    """Reading the server's SQLite file (a leaked backup) reveals no password."""
    name = fresh_name()
    secret = f"{PASSWORD} {uuid.uuid4().hex}"
    assert register(live_server, name, secret).status == 201
    assert secret.encode() not in live_server.database.read_bytes(), "the password is in the database file"
    with closing(sqlite3.connect(live_server.database)) as con:  # `with connect()` alone does not close
        (stored,) = con.execute("SELECT password_hash FROM user WHERE username = ?", (name,)).fetchone()
    assert stored.startswith("$argon2id$"), f"the stored value is not an argon2id hash: {stored[:20]!r}..."


@pytest.mark.exercise("protect-route")
@pytest.mark.parametrize("kind", FORGERY_NAMES)
def test_forged_tokens_over_http(live_server, kind):
    """A forged token sent over HTTP is refused."""
    token = token_for(live_server, fresh_name())
    forged = forgeries(token, live_server.jwt_key)[kind]
    r = live_server.get("/protected", headers={"Authorization": f"Bearer {forged}"})
    assert r.status in (401, 422), f"a token '{kind}' was accepted over HTTP ({r.status})"


@pytest.mark.exercise("protect-route")
def test_a_token_cannot_be_edited_into_another_user(live_server):
    """Changing `sub` to another user's id breaks the signature: mallory cannot become alice."""
    alice = token_for(live_server, fresh_name("alice"))
    mallory = token_for(live_server, fresh_name("mallory"))
    as_alice = jwt_tools.with_payload(mallory, sub=jwt_tools.read(alice)[1]["sub"])
    r = live_server.get("/protected", headers={"Authorization": f"Bearer {as_alice}"})
    assert r.status in (401, 422), "an edited token let one user act as another"


@pytest.mark.exercise("hash-password")
def test_racing_registrations_make_exactly_one_account(live_server):
    """24 simultaneous registrations of one name: exactly one 201, the rest 409, no 500."""
    name = fresh_name("race")
    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = sorted(pool.map(lambda i: register(live_server, name, f"{PASSWORD} {i}").status, range(24)))
    assert all(s < 500 for s in statuses), f"concurrent registrations crashed the server: {statuses}"
    assert statuses.count(201) == 1, f"{statuses.count(201)} accounts were created for one name: {statuses}"
    assert statuses.count(409) == 23, f"the losers should get 409: {statuses}"
    with closing(sqlite3.connect(live_server.database)) as con:  # `with connect()` alone does not close
        (count,) = con.execute("SELECT COUNT(*) FROM user WHERE username = ?", (name,)).fetchone()
    assert count == 1, f"the database holds {count} accounts named {name}"


@pytest.mark.exercise("verify-password")
def test_many_users_at_once(live_server):
    """20 different users registering and logging in at the same time all succeed."""
    names = [fresh_name("crowd") for _ in range(20)]

    def enroll(name):
        return register(live_server, name).status, login(live_server, name).status

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(enroll, names))
    assert results == [(201, 200)] * 20, f"some users failed under concurrency: {results}"


HOSTILE = {
    "a JSON list": ("application/json", b'["alice", "x"]'),
    "a JSON string": ("application/json", b'"alice"'),
    "JSON null": ("application/json", b"null"),
    "malformed JSON": ("application/json", b'{"username": '),
    "invalid UTF-8": ("application/json", b'{"username": "\xff\xfe", "password": "x"}'),
    "text/plain": ("text/plain", b'{"username": "a", "password": "b"}'),
    "no content type": (None, b'{"username": "a", "password": "b"}'),
}


@pytest.mark.exercise("verify-password")
@pytest.mark.parametrize("path", ["/register", "/login"])
@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_bodies_over_http(live_server, path, kind):
    """Raw hostile bodies over HTTP get a 4xx, never a 5xx or a token."""
    content_type, body = HOSTILE[kind]
    headers = {"Content-Type": content_type} if content_type else {}
    r = live_server.post(path, body=body, headers=headers)
    assert 400 <= r.status < 500, f"POST {path} with {kind} answered {r.status}"
    assert b"access_token" not in r.body, f"POST {path} with {kind} handed out a token"
