"""Step 06 — privilege by other means: a name that looks like a role, a field the server keeps.

- Tutorials decide "admin" by the identity (`get_jwt_identity() == "admin"`) or by the account's
  name. Registration is open: anyone can call themselves admin, root or administrator. Only the
  role column, set on the server (`flask create-admin`, `flask set-role`) or by an admin, counts.
- A note's owner, dates and version are the server's: a client that sends one, under whatever
  name, gets a 400, never a silent "yes" (OWASP Mass Assignment Cheat Sheet; API3:2023).
"""

from __future__ import annotations

import pytest

from tests.test_step06_authorization import World

PASSWORD = "violet kettle under a quiet moon"
ADMIN_LOOKING_NAMES = ["admin", "root", "administrator", "superuser", "sysadmin"]


@pytest.mark.exercise("role-check")
def test_an_admin_looking_name_is_no_admin(app):
    """A plain user who registered as "admin" or "root" gets 403 from the admin functions."""
    client = app.test_client()
    for name in ADMIN_LOOKING_NAMES:
        r = client.post("/register", json={"username": name, "password": PASSWORD})
        assert r.status_code == 201, f"registering {name!r} answered {r.status_code}"
        token = client.post("/login", json={"username": name, "password": PASSWORD}).get_json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, body in (("GET", "/admin/users", None), ("PATCH", "/admin/users/1", {"role": "admin"})):
            r = client.open(path, method=method, json=body, headers=headers)
            assert r.status_code == 403, (
                f"a plain user who registered the name {name!r} called {method} {path}: {r.status_code}. Anyone can "
                "register any free name: the admin is the account whose role (in the database) is admin, never the "
                "one with an admin-looking name or id (OWASP API5:2023)"
            )


SERVER_FIELDS = [{"updated_at": "1970-01-01T00:00:00+00:00"}, {"version": 99}, {"owner": 2}, {"user_id": 2},
                 {"author_id": 2}, {"owner_id": "2"}, {"is_admin": True}, {"deleted": True}]


@pytest.mark.exercise("field-allowlist")
def test_no_server_kept_field_can_be_sent(app):
    """POST and PATCH of a note with its dates, version or owner under any name are refused (400)."""
    world = World(app)
    target = world.notes["alice"][0]
    for extra in SERVER_FIELDS:
        r = world.client.post("/notes", json={"title": "mine", **extra}, headers=world.auth("alice"))
        assert r.status_code == 400, (
            f"creating a note with {extra} answered {r.status_code}: the server keeps that field. Declare only "
            "title and body in NoteIn, and let marshmallow refuse the rest (mass assignment, OWASP API3:2023)")
        r = world.client.patch(f"/notes/{target}", json={"title": "x", **extra}, headers=world.auth("alice"))
        assert r.status_code == 400, (
            f"updating a note with {extra} answered {r.status_code}: the server keeps that field, and a client told "
            "yes believes it was set. Declare only title and body in NotePatch (mass assignment, OWASP API3:2023)")

