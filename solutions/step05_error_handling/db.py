"""The user store: SQLite (the standard library's sqlite3), one connection per request.

Every query is parameterized (`?` placeholders): user input is data, never SQL (OWASP SQL
Injection Prevention Cheat Sheet; ASVS V1.2.4). The schema is created on start, idempotently,
and UNIQUE(username) makes the database, not a check-then-insert in Python, decide who gets a
name when two registrations race.
"""

import os
import sqlite3

from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL
);
"""


class UsernameTaken(Exception):
    """Another account already has this username."""


def get_db():
    """This request's connection, opened on first use."""
    if "db" not in g:
        # timeout: wait up to 10 s for another request's write lock instead of failing.
        g.db = sqlite3.connect(current_app.config["DATABASE"], timeout=10)
        g.db.row_factory = sqlite3.Row
        g.db.execute("PRAGMA foreign_keys = ON")  # SQLite enforces REFERENCES only when asked, per connection
    return g.db


def close_db(exception=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def create_private(path):
    """Create the database file readable and writable by this process's user only (0600): it holds
    the password hashes. sqlite3 would create it with the umask's default, often world-readable."""
    if path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def init_app(app):
    """Default DATABASE to the instance folder, create the schema, close connections after each request."""
    if not app.config.get("DATABASE"):
        os.makedirs(app.instance_path, exist_ok=True)
        # One file per app package (solutions-step02_authentication.sqlite...): no two share users.
        app.config["DATABASE"] = os.path.join(app.instance_path, f"{app.name.replace('.', '-')}.sqlite")
    app.teardown_appcontext(close_db)
    create_private(app.config["DATABASE"])
    with app.app_context():
        db = get_db()
        db.executescript(SCHEMA)
        db.commit()


def create_user(username, password_hash):
    """Insert a user and return its id; raise UsernameTaken if the name is in use."""
    db = get_db()
    try:
        cursor = db.execute(
            "INSERT INTO user (username, password_hash) VALUES (?, ?)", (username, password_hash)
        )
        db.commit()
    except sqlite3.IntegrityError:
        db.rollback()
        raise UsernameTaken(username) from None
    return cursor.lastrowid


def get_user(username):
    return get_db().execute("SELECT * FROM user WHERE username = ?", (username,)).fetchone()


def get_user_by_id(user_id):
    return get_db().execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()


def update_password_hash(user_id, password_hash):
    db = get_db()
    db.execute("UPDATE user SET password_hash = ? WHERE id = ?", (password_hash, user_id))
    db.commit()
