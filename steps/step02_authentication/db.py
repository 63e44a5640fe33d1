"""The user store: SQLite (the standard library's sqlite3), connections kept open and reused.

Every query is parameterized (`?` placeholders): user input is data, never SQL (OWASP SQL
Injection Prevention Cheat Sheet; ASVS V1.2.4). The schema is created on start, idempotently,
and UNIQUE(username) makes the database, not a check-then-insert in Python, decide who gets a
name when two registrations race.

Opening a connection costs far more than the query a request runs on it (the file opened, its
schema read: ~60 µs, against ~4 µs for a lookup by id, measured here), and every authenticated
request runs one: it re-reads its user. So each app keeps its connections in a small pool
(ConnectionPool below): a request takes one at its first query and gives it back when it ends;
the next request reuses it.
"""

import os
import sqlite3
import threading
import weakref

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


def connect(path):
    """A new connection to the database file."""
    # timeout: wait up to 10 s for another request's write lock instead of failing (SQLite's busy
    # timeout). check_same_thread=False: see ConnectionPool.
    connection = sqlite3.connect(path, timeout=10, check_same_thread=False)
    connection.row_factory = sqlite3.Row
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


def init_app(app):
    """Default DATABASE to the instance folder, create the schema, give connections back after each request."""
    if not app.config.get("DATABASE"):
        os.makedirs(app.instance_path, exist_ok=True)
        # One file per app package (solutions-step02_authentication.sqlite...): no two share users.
        app.config["DATABASE"] = os.path.join(app.instance_path, f"{app.name.replace('.', '-')}.sqlite")
    app.extensions["db_pool"] = ConnectionPool(app, app.config["DATABASE"])
    app.teardown_appcontext(close_db)
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
