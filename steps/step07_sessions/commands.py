"""Operator commands: the only way to make an admin. No account is created by default.

    flask --app solutions.step06_authorization create-admin alice     (asks for the password)
    flask --app solutions.step06_authorization set-role alice user    (demote, or promote)

They run on the server, with access to its configuration and database: nothing an outsider
can reach through the API (ASVS 5.0 V6.3.2: no default accounts).
"""

import click
from flask.cli import with_appcontext
from marshmallow import ValidationError

from . import db, logs, passwords, schemas


@click.command("create-admin")
@click.argument("username")
@click.password_option(help="The new admin's password (asked twice, not echoed).")
@with_appcontext
def create_admin(username, password):
    """Create an admin account (the password policy applies)."""
    try:
        data = schemas.RegisterSchema().load({"username": username, "password": password})
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.messages.items())
        raise click.ClickException(f"Not created: {problems}") from None
    try:
        db.create_user(data["username"], passwords.hash_password(data["password"]), role="admin")
    except db.UsernameTaken:
        raise click.ClickException(
            f"{data['username']!r} exists already: make it an admin with `set-role {data['username']} admin`."
        ) from None
    click.echo(f"Created the admin {data['username']!r}.")


@click.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(["user", "admin"]))
@with_appcontext
def set_role(username, role):
    """Give USERNAME the role ROLE (user or admin); it applies to their very next request."""
    user = db.get_user(schemas.canonical_username(username))
    if user is None:
        raise click.ClickException(f"There is no user {username!r}.")
    db.update_user(user["id"], keep_an_admin=False, role=role)  # the operator may demote the last admin
    # The security log says who did it: an operator on the server (ASVS 5.0 V16.2.1).
    logs.security_log.info("admin.role_set by=operator(flask set-role) target_user_id=%r role=%r", user["id"], role)
    click.echo(f"{user['username']!r} is now {role}.")
