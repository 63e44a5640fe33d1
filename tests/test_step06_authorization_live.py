"""Step 06 — an outsider with accounts of their own attacks authorization over real HTTP.

Several users and an admin (made with `flask create-admin`, as an operator would) on a real
server: no cross-user read or write, no privilege escalation, a demotion honoured on the next
request, no 5xx.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.harness import flask_cli, property_settings

PASSWORD = "violet kettle under a quiet moon"


@pytest.fixture(scope="module")
def town(live_server):
    """alice, bob and mallory with notes, and the admin 'root', on one server."""
    tokens = {}
    for name in ("alice", "bob", "mallory"):
        assert live_server.post("/register", json_body={"username": name, "password": PASSWORD}).status == 201
    made = flask_cli(live_server, "create-admin", "root", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert made.returncode == 0, f"`flask create-admin` failed: {made.stderr}"
    for name in ("alice", "bob", "mallory", "root"):
        r = live_server.post("/login", json_body={"username": name, "password": PASSWORD})
        assert r.status == 200, f"{name} could not log in over HTTP"
        tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    notes = {}
    for name in ("alice", "bob"):
        notes[name] = [live_server.post("/notes", json_body={"title": f"{name} {i}", "body": f"{name} secret {i}"},
                                        headers=tokens[name]).json()["id"] for i in range(3)]
    return live_server, tokens, notes


@pytest.mark.exercise("ownership")
def test_mallory_cannot_read_or_write_anyone_elses_notes(town):
    """Over HTTP, mallory walks ids 1..30 with GET, PATCH and DELETE: every one is 404, nothing changes."""
    server, tokens, notes = town
    for note_id in range(1, 31):
        for method, body in (("GET", None), ("PATCH", {"body": "pwned"}), ("DELETE", None)):
            r = server.request(method, f"/notes/{note_id}", json_body=body, headers=tokens["mallory"])
            assert r.status == 404, f"mallory's {method} /notes/{note_id} answered {r.status}"
    for name in ("alice", "bob"):
        for note_id in notes[name]:
            r = server.get(f"/notes/{note_id}", headers=tokens[name])
            assert r.status == 200 and "pwned" not in r.text, f"{name}'s note {note_id} was changed or deleted"


@pytest.mark.exercise("role-check")
def test_no_privilege_escalation(town):
    """mallory cannot list users, promote herself, or disable the admin."""
    server, tokens, _ = town
    assert server.get("/admin/users", headers=tokens["mallory"]).status == 403
    for user_id, change in ((3, {"role": "admin"}), (4, {"disabled": True})):
        r = server.request("PATCH", f"/admin/users/{user_id}", json_body=change, headers=tokens["mallory"])
        assert r.status == 403, f"mallory's PATCH /admin/users/{user_id} {change} answered {r.status}"
    r = server.post("/register", json_body={"username": "eve", "password": PASSWORD, "role": "admin"})
    assert r.status == 400, "registering with role=admin was not refused"
    assert server.get("/admin/users", headers=tokens["root"]).status == 200, "the admin lost access"


@pytest.mark.exercise("role-check")
def test_demotion_is_honoured_on_the_next_request(town):
    """The operator demotes root with `flask set-role`: root's next request over HTTP gets 403."""
    server, tokens, _ = town
    assert server.get("/admin/users", headers=tokens["root"]).status == 200
    done = flask_cli(server, "set-role", "root", "user")
    assert done.returncode == 0, done.stderr
    try:
        r = server.get("/admin/users", headers=tokens["root"])
        assert r.status == 403, f"a demoted admin's token still answered {r.status}"
    finally:
        flask_cli(server, "set-role", "root", "admin")


@pytest.mark.exercise("field-allowlist")
@property_settings(max_examples=60)
@given(method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
       path=st.sampled_from(["/notes", "/notes/1", "/notes/0", "/notes/-1", "/notes/abc", "/notes/1e9",
                             "/admin/users", "/admin/users/1", "/admin/users/99999999999999999999999"]),
       query=st.sampled_from(["", "?page=2", "?per_page=101", "?page=-1", "?page=%00", "?x=1"]),
       body=st.one_of(st.none(), st.dictionaries(st.sampled_from(["title", "body", "role", "disabled", "owner_id"]),
                                                 st.one_of(st.text(max_size=20), st.integers(), st.booleans(),
                                                           st.none()), max_size=3)))
def test_no_request_gets_a_5xx(town, method, path, query, body):
    """Random methods, paths, queries and bodies from a signed-in user over HTTP: never a 5xx."""
    server, tokens, _ = town
    data = json.dumps(body).encode() if body is not None else None
    r = server.request(method, path + query, body=data,
                       headers={**tokens["mallory"], "Content-Type": "application/json"})
    assert r.status < 500, f"{method} {path}{query} {body} answered {r.status}"
