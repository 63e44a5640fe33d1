"""Step 06 — the admin role comes from the database alone: not from a name anyone can register.

Tutorials decide "admin" by the identity (`get_jwt_identity() == "admin"`) or by the account's
name. Registration is open: anyone can call themselves admin, root or administrator. Only the
role column, set on the server (`flask create-admin`, `flask set-role`) or by an admin, counts.
"""

from __future__ import annotations

import pytest

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
