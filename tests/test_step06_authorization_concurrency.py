"""Step 06 — invariants under concurrent requests: no lost update, optimistic concurrency, an admin left.

- Two simultaneous PATCHes of different fields of one note both count: the update is one
  statement that changes only the fields sent, not read-merge-write (a lost update).
- A note carries its version as an ETag; `If-Match` with a stale one gets 412 Precondition
  Failed and changes nothing (RFC 9110 §13.1.1): a client can ask "only if nobody changed it".
- The API never leaves the service without an enabled admin, not even when two admins demote
  each other at the same instant: the check and the change are one transaction.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from tests.harness import flask_cli

PASSWORD = "violet kettle under a quiet moon"


def token(client, name):
    r = client.post("/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, f"{name} could not log in ({r.status_code})"
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def register(client, name):
    assert client.post("/register", json={"username": name, "password": PASSWORD}).status_code == 201


@pytest.fixture
def alice(app):
    client = app.test_client()
    register(client, "alice")
    return client, token(client, "alice")


# --- lost updates and ETags ----------------------------------------------------------------------


@contextmanager
def write_lock_held(database):
    """Hold the SQLite file's write lock, as a slow third writer would: readers go on, writers wait.

    Requests started meanwhile all get as far as their first write and wait there together, so
    what they do "at the same time" happens at the same time for certain, not by luck."""
    blocker = sqlite3.connect(database, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


def at_once(calls, database, settle=0.5):
    """Start every call while the write lock is held; let them run into it; release; their results."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool, write_lock_held(database):
        futures = [pool.submit(call) for call in calls]
        time.sleep(settle)  # long enough for each request to read and reach its write; the lock is released next
    return [f.result(timeout=30) for f in futures]


@pytest.mark.exercise("ownership")
def test_simultaneous_patches_of_different_fields_both_count(live_server):
    """Two PATCHes at the same moment, one of the title, one of the body: the note keeps both changes."""
    name = f"writer{uuid.uuid4().hex[:10]}"
    assert live_server.post("/register", json_body={"username": name, "password": PASSWORD}).status == 201
    r = live_server.post("/login", json_body={"username": name, "password": PASSWORD})
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    note = live_server.post("/notes", json_body={"title": "old title", "body": "old body"}, headers=auth).json()

    def patch(field, value):
        return lambda: live_server.request("PATCH", f"/notes/{note['id']}", json_body={field: value}, headers=auth).status

    statuses = at_once([patch("title", "new title"), patch("body", "new body")], live_server.database)
    assert statuses == [200, 200], f"simultaneous PATCHes answered {statuses}"
    final = live_server.get(f"/notes/{note['id']}", headers=auth).json()
    assert (final["title"], final["body"]) == ("new title", "new body"), (
        f"two simultaneous PATCHes, of the title and of the body, left {final['title']!r} / {final['body']!r}: "
        "one change was lost. The update read the note, merged and wrote both fields back, so the second "
        "write undid the first. Update only the fields sent, in one statement (a lost update)"
    )


@pytest.mark.exercise("ownership")
def test_a_stale_if_match_gets_412_and_changes_nothing(alice):
    """PATCH with If-Match of an old ETag: 412, nothing changed; with the current ETag or `*`: 200."""
    client, auth = alice
    created = client.post("/notes", json={"title": "plan", "body": "v1"}, headers=auth)
    first = created.headers.get("ETag")
    assert first and first.startswith('"'), f"a new note has no strong ETag: {first!r}"
    url = created.headers["Location"]
    assert client.get(url, headers=auth).headers.get("ETag") == first, "GET does not give the same ETag"
    r = client.patch(url, json={"body": "v2"}, headers={**auth, "If-Match": first})
    assert r.status_code == 200, f"If-Match with the current ETag answered {r.status_code}"
    second = r.headers.get("ETag")
    assert second and second != first, "a change did not change the ETag"
    for stale in (first, '"999"', 'W/' + second, "not-an-etag", f"{second}, {first}"):
        r = client.patch(url, json={"body": "overwritten"}, headers={**auth, "If-Match": stale})
        assert r.status_code == 412, f"If-Match: {stale} (not the current version) answered {r.status_code}, expected 412"
        assert r.mimetype == "application/problem+json"
    assert client.get(url, headers=auth).get_json()["body"] == "v2", "a refused PATCH changed the note"
    assert client.patch(url, json={"title": "any"}, headers={**auth, "If-Match": "*"}).status_code == 200


@pytest.mark.exercise("ownership")
def test_if_match_on_someone_elses_note_is_still_just_404(app, alice):
    """A 412 would confirm that the note exists: someone else's note answers 404, whatever If-Match says."""
    client, auth = alice
    url = client.post("/notes", json={"title": "mine"}, headers=auth).headers["Location"]
    register(client, "mallory")
    mallory = token(client, "mallory")
    for tag in ('"1"', '"2"', "*"):
        r = client.patch(url, json={"title": "hijacked"}, headers={**mallory, "If-Match": tag})
        assert r.status_code == 404, f"mallory's PATCH with If-Match: {tag} answered {r.status_code}, expected 404"


# --- at least one enabled admin --------------------------------------------------------------------


def admin_world(make_app, tmp_path, admins):
    app = make_app(DATABASE=str(tmp_path / f"admins-{uuid.uuid4().hex[:8]}.sqlite"))
    client = app.test_client()
    cli = app.test_cli_runner()
    ids = {}
    for name in admins:
        made = cli.invoke(args=["create-admin", name], input=f"{PASSWORD}\n{PASSWORD}\n")
        assert made.exit_code == 0, made.output
    register(client, "bob")
    tokens = {name: token(client, name) for name in [*admins, "bob"]}
    for user in client.get("/admin/users", headers=tokens[admins[0]]).get_json()["items"]:
        ids[user["username"]] = user["id"]
    return app, tokens, ids


@pytest.mark.exercise("role-check")
def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(make_app, tmp_path):
    """The only admin demoting or disabling itself: 409, and it is still an admin; with a second admin, it may."""
    app, tokens, ids = admin_world(make_app, tmp_path, ["root"])
    client = app.test_client()
    for change in ({"role": "user"}, {"disabled": True}):
        r = client.patch(f"/admin/users/{ids['root']}", json=change, headers=tokens["root"])
        assert r.status_code == 409, f"the last admin's {change} answered {r.status_code}: no admin would be left"
    assert client.get("/admin/users", headers=tokens["root"]).status_code == 200, "the last admin lost the role"
    assert client.patch(f"/admin/users/{ids['bob']}", json={"role": "admin"}, headers=tokens["root"]).status_code == 200
    r = client.patch(f"/admin/users/{ids['root']}", json={"role": "user"}, headers=tokens["root"])
    assert r.status_code == 200, f"with bob an admin too, root's demotion answered {r.status_code}"


@pytest.mark.exercise("role-check")
def test_two_admins_demoting_each_other_at_once_leave_one(start_server):
    """ann and ben, the only admins, demote each other at the same instant: exactly one succeeds, one admin stays."""
    server = start_server()  # its own database: ann and ben are its only admins
    for name in ("ann", "ben"):
        made = flask_cli(server, "create-admin", name, stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert made.returncode == 0, f"`flask create-admin {name}` failed: {made.stderr}"
    tokens = {}
    for name in ("ann", "ben"):
        r = server.post("/login", json_body={"username": name, "password": PASSWORD})
        assert r.status == 200, f"{name} could not log in over HTTP ({r.status})"
        tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    ids = {u["username"]: u["id"] for u in server.get("/admin/users", headers=tokens["ann"]).json()["items"]}

    def demote(actor, target):
        return lambda: server.request("PATCH", f"/admin/users/{ids[target]}", json_body={"role": "user"},
                                      headers=tokens[actor]).status

    statuses = sorted(at_once([demote("ann", "ben"), demote("ben", "ann")], server.database))
    admins = [name for name in ("ann", "ben") if server.get("/admin/users", headers=tokens[name]).status == 200]
    # The loser is refused as no longer an admin (403: the winner's change came first) or by the
    # invariant (409: both passed the role check, and the winner's change left one admin).
    assert len(admins) == 1 and statuses[0] == 200 and statuses[1] in (403, 409), (
        f"two admins demoting each other at once answered {statuses} and left {admins or 'no'} admin: the check "
        "\"is an admin left?\" and the change must be one transaction (BEGIN IMMEDIATE), or both get through"
    )


@pytest.mark.exercise("field-allowlist")
def test_disabled_takes_json_booleans_only(make_app, tmp_path):
    """`{"disabled": 1}` or `"yes"` is a 400: the field takes JSON true or false, nothing that merely looks true."""
    app, tokens, ids = admin_world(make_app, tmp_path, ["root"])
    client = app.test_client()
    for value in (1, 0, "true", "yes", None, [True]):
        r = client.patch(f"/admin/users/{ids['bob']}", json={"disabled": value}, headers=tokens["root"])
        assert r.status_code == 400, f'{{"disabled": {value!r}}} answered {r.status_code}, expected 400'
