"""The store: users and their notes in SQLite (the standard library's sqlite3), connections kept
open and reused.

Every query is parameterized (`?` placeholders): user input is data, never SQL (OWASP SQL
Injection Prevention Cheat Sheet; ASVS V1.2.4). The schema is created on start, idempotently,
and UNIQUE(username) makes the database, not a check-then-insert in Python, decide who gets a
name when two registrations race.

Opening a connection costs far more than the query a request runs on it (the file opened, its
schema read: ~60 µs, against ~4 µs for a lookup by id, measured here), and every authenticated
request runs one: it re-reads its user. So each app keeps its connections in a small pool
(ConnectionPool below): a request takes one at its first query and gives it back when it ends;
the next request reuses it.

Object-level authorization lives here, in one place: every function that reads or writes a
note takes the owner's id and puts it in the WHERE clause. A note of someone else's is never
loaded, so no view can forget to check (OWASP API1:2023, Broken Object Level Authorization).
"""

import os
import sqlite3
import threading
import weakref
from datetime import datetime, timezone

from flask import current_app, g

SCHEMA = """
CREATE TABLE IF NOT EXISTS user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS note (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER NOT NULL REFERENCES user (id),
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    version    INTEGER NOT NULL DEFAULT 1  -- +1 at every change: the note's ETag (notes.py)
);
CREATE INDEX IF NOT EXISTS note_owner ON note (owner_id, id);
"""

# Columns added since step 02: a database made by an earlier step gets them on start.
MIGRATIONS = {
    "role": "ALTER TABLE user ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'))",
    "disabled": "ALTER TABLE user ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
}


NOTE_MIGRATIONS = {
    "version": "ALTER TABLE note ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
}


class UsernameTaken(Exception):
    """Another account already has this username."""


class LastAdmin(Exception):
    """The change would leave no enabled admin."""


def connect(path):
    """A new connection to the database file."""
    # timeout: wait up to 10 s for another request's write lock instead of failing (SQLite's busy
    # timeout). check_same_thread=False: see ConnectionPool.
    connection = sqlite3.connect(path, timeout=10, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")  # SQLite enforces REFERENCES only when asked, per connection
    return connection


class ConnectionPool:
    """The app's open connections, each lent to one request at a time and reused by the next.

    - A connection given back with a transaction still open (a request that failed between a
      write and its commit) is rolled back first: the next request's commit must never commit
      the half-done work of another. One that cannot even be rolled back is closed.
    - Connections belong to the process that opened them. SQLite's file locks are per process,
      and a connection carried across fork() into a child can corrupt the database (sqlite.org,
      "How To Corrupt An SQLite Database File", §2.6). gunicorn forks its workers before they
      serve anything, so each worker opens its own; a pool that finds itself in a new process
      leaves what it inherited untouched and starts empty.
    - A connection follows the file, not the inode: if DATABASE is replaced (a restored backup)
      or removed, the connections to the old file are closed and a new one is opened, which
      fails loudly if the file is gone, instead of serving a deleted database.
    - check_same_thread=False: a threaded server (Werkzeug's, gunicorn's gthread) may give a
      connection back from, or lend it to, another thread than the one that opened it. That is
      safe because the pool lends each connection to one request at a time, and Python's
      sqlite3 is built serialized (sqlite3.threadsafety == 3: SQLite itself locks too).
    - A sync gunicorn worker keeps one connection; a threaded server one per simultaneous
      request, KEEP of them at most when idle. All are closed when the app is garbage-collected
      or the process exits (weakref.finalize).
    """

    KEEP = 8

    def __init__(self, app, path):
        self.path = path
        self.lock = threading.Lock()
        self.idle = []  # (connection, the file's (st_dev, st_ino) when it was opened)
        self.pid = os.getpid()
        self.inherited = []  # a parent process's connections: never used, never closed here
        weakref.finalize(app, self.close)

    def take(self):
        try:
            identity = self._file_identity()
        except OSError:  # the file is gone: no reuse; connect() says what is wrong
            self.close()
            return connect(self.path), None
        with self.lock:
            self._forget_if_forked()
            stale = [connection for connection, opened in self.idle if opened != identity]
            self.idle = [(connection, opened) for connection, opened in self.idle if opened == identity]
            taken = self.idle.pop()[0] if self.idle else None
        for connection in stale:
            connection.close()
        return (taken or connect(self.path)), identity

    def give_back(self, connection, identity):
        try:
            if connection.in_transaction:
                connection.rollback()
        except sqlite3.Error:
            connection.close()
            return
        with self.lock:
            if identity is not None and self.pid == os.getpid() and len(self.idle) < self.KEEP:
                self.idle.append((connection, identity))
                return
        connection.close()

    def close(self):
        with self.lock:
            self._forget_if_forked()
            idle, self.idle = self.idle, []
        for connection, _ in idle:
            connection.close()

    def _forget_if_forked(self):
        if self.pid != os.getpid():
            self.inherited, self.idle, self.pid = self.inherited + self.idle, [], os.getpid()

    def _file_identity(self):
        stat = os.stat(self.path)
        return stat.st_dev, stat.st_ino


def get_db():
    """This request's connection: taken from the app's pool on first use, given back at teardown."""
    if "db" not in g:
        g.db, g.db_file = current_app.extensions["db_pool"].take()
    return g.db


def close_db(exception=None):
    db = g.pop("db", None)
    if db is not None:
        current_app.extensions["db_pool"].give_back(db, g.pop("db_file", None))


def create_private(path):
    """Create the database file readable and writable by this process's user only (0600): it holds
    the password hashes. sqlite3 would create it with the umask's default, often world-readable."""
    if path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def init_app(app):
    """Default DATABASE to the instance folder, create the schema, give connections back after each request."""
    if not app.config.get("DATABASE"):
        os.makedirs(app.instance_path, exist_ok=True)
        # One file per app package (solutions-step02_authentication.sqlite...): no two share users.
        app.config["DATABASE"] = os.path.join(app.instance_path, f"{app.name.replace('.', '-')}.sqlite")
    app.extensions["db_pool"] = ConnectionPool(app, app.config["DATABASE"])
    app.teardown_appcontext(close_db)
    create_private(app.config["DATABASE"])
    with app.app_context():
        db = get_db()
        columns = {row["name"] for row in db.execute("PRAGMA table_info(user)")}
        if columns:  # an existing user table: add what is missing (CREATE ... IF NOT EXISTS won't)
            for column, statement in MIGRATIONS.items():
                if column not in columns:
                    db.execute(statement)
        note_columns = {row["name"] for row in db.execute("PRAGMA table_info(note)")}
        if note_columns:
            for column, statement in NOTE_MIGRATIONS.items():
                if column not in note_columns:
                    db.execute(statement)
        db.executescript(SCHEMA)
        db.commit()


def create_user(username, password_hash, role="user"):
    """Insert a user and return its id; raise UsernameTaken if the name is in use."""
    db = get_db()
    try:
        cursor = db.execute(
            "INSERT INTO user (username, password_hash, role) VALUES (?, ?, ?)", (username, password_hash, role)
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


def list_users(limit, offset):
    db = get_db()
    total = db.execute("SELECT COUNT(*) FROM user").fetchone()[0]
    rows = db.execute("SELECT * FROM user ORDER BY id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
    return rows, total


def update_user(user_id, keep_an_admin=True, **changes):
    """Set `role` and/or `disabled` (the only columns an admin may change); False if no such user.

    With keep_an_admin (the API; the operator's `flask set-role` may do anything), raises
    LastAdmin and changes nothing if no enabled admin would be left. The check and the change
    are one transaction, begun IMMEDIATE (it takes the write lock first): two admins demoting
    each other at the same moment are serialized, and the second one is refused. Checking
    first and writing after, in two steps, would let both through.
    """
    allowed = {key: changes[key] for key in ("role", "disabled") if key in changes}
    db = get_db()
    db.execute("BEGIN IMMEDIATE")
    try:
        for column, value in allowed.items():  # column names come from the tuple above, never from input
            db.execute(f"UPDATE user SET {column} = ? WHERE id = ?", (value, user_id))
        admins = db.execute("SELECT COUNT(*) FROM user WHERE role = 'admin' AND disabled = 0").fetchone()[0]
        if keep_an_admin and admins == 0:
            raise LastAdmin(user_id)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return get_user_by_id(user_id) is not None


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def create_note(owner_id, title, body):
    db = get_db()
    now = _now()
    cursor = db.execute(
        "INSERT INTO note (owner_id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (owner_id, title, body, now, now),
    )
    db.commit()
    return cursor.lastrowid


def list_notes(owner_id, limit, offset):
    db = get_db()
    total = db.execute("SELECT COUNT(*) FROM note WHERE owner_id = ?", (owner_id,)).fetchone()[0]
    rows = db.execute(
        "SELECT * FROM note WHERE owner_id = ? ORDER BY id LIMIT ? OFFSET ?", (owner_id, limit, offset)
    ).fetchall()
    return rows, total


# BEGIN EXERCISE ownership
def get_note(note_id, owner_id):
    """The note, if it exists AND belongs to owner_id; otherwise None (the caller answers 404)."""
    return get_db().execute(
        "SELECT * FROM note WHERE id = ? AND owner_id = ?", (note_id, owner_id)
    ).fetchone()


def update_note(note_id, owner_id, title=None, body=None, if_version=None):
    """Change the fields given (None: keep it) in one statement; with if_version, only if the note
    is still at that version. True if the note was changed.

    One UPDATE, not read-merge-write: a field this request does not change keeps whatever value
    another request gave it meanwhile (no lost update).
    """
    db = get_db()
    cursor = db.execute(
        "UPDATE note SET title = COALESCE(?, title), body = COALESCE(?, body), updated_at = ?,"
        " version = version + 1 WHERE id = ? AND owner_id = ? AND (? IS NULL OR version = ?)",
        (title, body, _now(), note_id, owner_id, if_version, if_version),
    )
    db.commit()
    return cursor.rowcount == 1


def delete_note(note_id, owner_id):
    db = get_db()
    cursor = db.execute("DELETE FROM note WHERE id = ? AND owner_id = ?", (note_id, owner_id))
    db.commit()
    return cursor.rowcount == 1
# STARTER
# def get_note(note_id, owner_id):
#     """The note, if it exists AND belongs to owner_id; otherwise None (the caller answers 404)."""
#     return get_db().execute("SELECT * FROM note WHERE id = ?", (note_id,)).fetchone()
#
#
# def update_note(note_id, owner_id, title=None, body=None, if_version=None):
#     """Change the fields given (None: keep it) in one statement; with if_version, only if the note
#     is still at that version. True if the note was changed."""
#     db = get_db()
#     cursor = db.execute(
#         "UPDATE note SET title = COALESCE(?, title), body = COALESCE(?, body), updated_at = ?,"
#         " version = version + 1 WHERE id = ? AND (? IS NULL OR version = ?)",
#         (title, body, _now(), note_id, if_version, if_version),
#     )
#     db.commit()
#     return cursor.rowcount == 1
#
#
# def delete_note(note_id, owner_id):
#     db = get_db()
#     cursor = db.execute("DELETE FROM note WHERE id = ?", (note_id,))
#     db.commit()
#     return cursor.rowcount == 1
# END EXERCISE
