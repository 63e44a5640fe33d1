"""Step 06 — the audit trail of admin actions says who did what to whom (ASVS 5.0 V16.2.1).

Through the API the acting admin's id is logged with the change; on the server, `flask set-role`
logs that an operator did it.
"""

from __future__ import annotations

import logging

import pytest

PASSWORD = "violet kettle under a quiet moon"


def security_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "api.security"]


@pytest.mark.exercise("role-check")
def test_an_admin_change_is_logged_with_the_acting_admin(make_app, caplog):
    """PATCH /admin/users/<id> logs the acting admin's id, the target and the change."""
    app = make_app()
    client, cli = app.test_client(), app.test_cli_runner()
    assert cli.invoke(args=["create-admin", "root"], input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    assert client.post("/register", json={"username": "bob", "password": PASSWORD}).status_code == 201
    token = client.post("/login", json={"username": "root", "password": PASSWORD}).get_json()["access_token"]
    users = {u["username"]: u["id"] for u in
             client.get("/admin/users", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]}
    caplog.set_level(logging.INFO)
    r = client.patch(f"/admin/users/{users['bob']}", json={"role": "admin"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    lines = [line for line in security_lines(caplog) if "admin.user_updated" in line]
    assert lines, "promoting bob left no admin.user_updated line in the security log"
    assert f"admin_user_id='{users['root']}'" in lines[-1] and f"target_user_id='{users['bob']}'" in lines[-1], (
        f"the log line does not say which admin changed which account: {lines[-1]}")


@pytest.mark.exercise("role-check")
def test_set_role_on_the_server_is_logged(make_app, caplog):
    """`flask set-role bob admin` leaves a line in the security log: who (an operator), whom, which role."""
    app = make_app()
    client, cli = app.test_client(), app.test_cli_runner()
    assert client.post("/register", json={"username": "bob", "password": PASSWORD}).status_code == 201
    caplog.set_level(logging.INFO)
    assert cli.invoke(args=["set-role", "bob", "admin"]).exit_code == 0
    lines = [line for line in security_lines(caplog) if "role" in line and "operator" in line]
    assert lines and "'admin'" in lines[-1], f"`flask set-role` left no line in the security log: {security_lines(caplog)}"
