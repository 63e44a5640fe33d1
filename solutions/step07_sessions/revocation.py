"""The revocation store: which tokens and which sessions have ended before their tokens expire.

A JWT is valid until its `exp` by itself: a signature cannot be taken back. To end a session
early (logout, a changed password, a disabled account, a stolen refresh token) the server keeps
a list of what it revoked, and Flask-JWT-Extended asks it about every token it accepts
(`token_in_blocklist_loader`, auth.py). What the store holds, under keys:

- ``jti:<jti>``        one token revoked (say, by an operator who found it in a log);
- ``family:<id>``      a whole session: the login's tokens and every token refreshed from them
                       (each token carries its session's id in the claim ``fam``);
- ``used:<jti>``       a refresh token already exchanged once (rotation): a second use is theft;
- the live sessions of each user, so that "log out everywhere" can revoke them all.

Every entry expires with the token it revokes (its `exp`): after that the token is refused
anyway, so the store holds only what can still matter, and its size is bounded by the tokens
issued within one refresh lifetime.

Two backends, chosen by REVOCATION_STORAGE_URI:
- unset (the default): tables in the app's SQLite database. No server needed; right for one
  process, or several on one machine sharing the file.
- ``redis://host:6379/0``: Redis, shared by every process and machine that serves the API;
  entries expire by themselves (EX).

Fail closed. If the store cannot be reached, no token can be checked, so none is accepted: the
request is answered 503 Service Unavailable with Retry-After, as an RFC 9457 problem. Not 401:
the token may be perfectly good, and a 401 tells a client to throw its tokens away and send
the user to a login that cannot work either (it must record the new session); 503 says "the
server, not you, try again shortly", and monitoring sees an outage, not a wave of bad logins.
"""

import math
import sqlite3
import time

from flask import current_app

from . import config, db, errors, logs

SCHEMA = """
CREATE TABLE IF NOT EXISTS revoked (
    key        TEXT    PRIMARY KEY,  -- "jti:...", "family:...", "used:..."
    expires_at INTEGER NOT NULL      -- epoch seconds: the revoked token's exp
);
CREATE INDEX IF NOT EXISTS revoked_expiry ON revoked (expires_at);
CREATE TABLE IF NOT EXISTS session (
    family     TEXT    PRIMARY KEY,  -- the session's id, the tokens' "fam" claim
    user_id    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL      -- when its refresh token (the last to expire) expires
);
CREATE INDEX IF NOT EXISTS session_user ON session (user_id, expires_at);
"""

RETRY_AFTER = 5  # seconds: what a client is told to wait when the store is unreachable


class StoreUnavailable(Exception):
    """The revocation store cannot be read or written: refuse the request (fail closed)."""


class SqliteStore:
    """The store in the app's SQLite database (the same file as the users)."""

    def __init__(self, app):
        with app.app_context():
            connection = db.get_db()
            connection.executescript(SCHEMA)
            connection.commit()

    def _db(self):
        return db.get_db()

    def _run(self, work):
        try:
            return work(self._db())
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite: {error}") from error

    def add(self, key, expires_at):
        """Record ``key`` until ``expires_at``. True if this call added it, False if it was there:
        the database decides (PRIMARY KEY), so of two requests racing, exactly one gets True."""

        def work(connection):
            now = int(time.time())
            connection.execute("DELETE FROM revoked WHERE expires_at <= ?", (now,))  # bounded size
            cursor = connection.execute(
                "INSERT INTO revoked (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, int(expires_at)),
            )
            connection.commit()
            return cursor.rowcount == 1

        return self._run(work)

    def any_present(self, *keys):
        """True if one of ``keys`` is recorded and has not expired."""
        marks = ", ".join("?" for _ in keys)
        return self._run(lambda connection: connection.execute(
            f"SELECT 1 FROM revoked WHERE key IN ({marks}) AND expires_at > ? LIMIT 1",
            (*keys, int(time.time())),
        ).fetchone() is not None)

    def add_session(self, user_id, family, expires_at):
        def work(connection):
            connection.execute("DELETE FROM session WHERE expires_at <= ?", (int(time.time()),))
            connection.execute(
                "INSERT INTO session (family, user_id, expires_at) VALUES (?, ?, ?)",
                (family, user_id, int(expires_at)),
            )
            connection.commit()

        self._run(work)

    def sessions_of(self, user_id):
        """[(family, expires_at)] of the user's sessions that have not expired."""
        return self._run(lambda connection: [
            (row["family"], row["expires_at"]) for row in connection.execute(
                "SELECT family, expires_at FROM session WHERE user_id = ? AND expires_at > ?",
                (user_id, int(time.time())),
            )
        ])

    def forget_session(self, family):
        def work(connection):
            connection.execute("DELETE FROM session WHERE family = ?", (family,))
            connection.commit()

        self._run(work)


class RedisStore:
    """The store in Redis: one copy for every process; entries expire by themselves (EX)."""

    PREFIX = "revocation:"

    def __init__(self, uri):
        import redis  # only needed when configured

        self.errors = (redis.RedisError,)
        # Short timeouts: a store that does not answer must not hold a request for long.
        self.redis = redis.Redis.from_url(uri, socket_connect_timeout=1, socket_timeout=1)

    def _run(self, work):
        try:
            return work(self.redis)
        except self.errors as error:
            raise StoreUnavailable(f"Redis: {type(error).__name__}") from error

    def add(self, key, expires_at):
        # Whole seconds, rounded up: a token in its last second is still marked, for one second.
        ttl = max(1, math.ceil(expires_at - time.time()))
        # SET NX: atomic, so of two requests racing, exactly one gets True.
        return self._run(lambda r: bool(r.set(self.PREFIX + key, 1, nx=True, ex=ttl)))

    def any_present(self, *keys):
        return self._run(lambda r: r.exists(*(self.PREFIX + key for key in keys)) > 0)

    def add_session(self, user_id, family, expires_at):
        key = f"{self.PREFIX}sessions:{user_id}"

        def work(r):
            pipe = r.pipeline()
            pipe.zremrangebyscore(key, "-inf", int(time.time()))  # bounded: drop expired sessions
            pipe.zadd(key, {family: int(expires_at)})
            pipe.expireat(key, int(expires_at))  # the newest session lasts longest: the set lives as long
            pipe.execute()

        self._run(work)

    def sessions_of(self, user_id):
        key = f"{self.PREFIX}sessions:{user_id}"
        rows = self._run(lambda r: r.zrangebyscore(key, int(time.time()) + 1, "+inf", withscores=True))
        return [(family.decode(), int(score)) for family, score in rows]

    def forget_session(self, family):
        pass  # its entry in the user's set expires with it; revoked, it is refused anyway


def init_app(app):
    """The store named by REVOCATION_STORAGE_URI (default: the app's SQLite database)."""
    uri = app.config.get("REVOCATION_STORAGE_URI")
    if uri and str(uri).startswith(("redis://", "rediss://", "unix://")):
        store = RedisStore(uri)
    elif uri:
        # Refuse to start (a click exception: `flask run` prints just this) rather than guess.
        raise config.InsecureConfigError(
            f"REVOCATION_STORAGE_URI must be unset (the app's SQLite database) or redis://host:6379/0, "
            f"not {uri!r}: without a store that works, no session could ever be ended.")
    else:
        store = SqliteStore(app)
    app.extensions["revocation_store"] = store
    app.register_error_handler(StoreUnavailable, store_unavailable)


def store():
    return current_app.extensions["revocation_store"]


def revoke_session(family, expires_at):
    """End one session: every token of the family, access and refresh, is refused from now on."""
    store().add(f"family:{family}", expires_at)
    store().forget_session(family)


def revoke_sessions_of(user_id):
    """End every session of the user (log out everywhere, a new password, an admin's change)."""
    for family, expires_at in store().sessions_of(user_id):
        revoke_session(family, expires_at)


def store_unavailable(error):
    """Fail closed: without the store no token can be checked, so none is accepted."""
    logs.event("revocation.store_unavailable", error=str(error))
    response = errors.problem(
        503, "The server cannot check sessions right now, so it accepts no token. Try again shortly.",
        request_id=logs.request_id(),
    )
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response
