"""Password storage: argon2id, OWASP's first choice (Password Storage Cheat Sheet).

A password is never stored, logged or returned: only its argon2id hash, which embeds a random
salt and the cost parameters (`$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>`). A slow,
memory-hard hash turns a leaked table into years of guessing instead of seconds.

The server pays that cost too, for every login and registration, and anyone can make it pay:
60 simultaneous logins from 3 addresses, within every rate limit, made one `flask run` process
hold 1.3-1.7 GB and answer in 8-28 s. So each process bounds its hashing work (OWASP API4:2023
Unrestricted Resource Consumption: limit the memory one request can make the server allocate):
- every hash and every check first takes one of PASSWORD_HASH_SLOTS slots (a semaphore of this
  app's, kept on its hasher: ``app.extensions["password_hasher"].slots``), and gives it back
  when done, also when it fails;
- a request waits at most PASSWORD_HASH_WAIT seconds for a slot; then it is answered 503 Service
  Unavailable with Retry-After (RFC 9110 §15.6.4, §10.2.3): "busy, come back in a moment" — never
  a 500, never a queue that grows without end;
- so memory for hashing stays below slots x ARGON2_MEMORY_COST (64 MiB each), whatever arrives.
  The default is one slot per CPU: argon2 is pure computation (and lets other threads run while
  it works), so more hashes at once than cores only make each one slower, each holding its
  64 MiB the whole time. The bound is per process: with gunicorn -w N it is N x slots x 64 MiB,
  so give each worker fewer slots (FLASK_PASSWORD_HASH_SLOTS=1) where memory is tight.
Rate limits (step 04) decide how often one client may try; this decides how much the server
does at once for everyone.
"""

import os
import threading
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, request
from werkzeug.exceptions import ServiceUnavailable

from . import errors, logs

RETRY_AFTER = 2  # seconds, in the 503's Retry-After: a few hashes' time


class HashingBusy(ServiceUnavailable):
    """Every hashing slot stayed taken for PASSWORD_HASH_WAIT seconds: 503, try again shortly."""

    description = f"The server is busy checking other passwords. Try again in {RETRY_AFTER} seconds."


class BoundedHasher(PasswordHasher):
    """argon2-cffi's PasswordHasher, but at most ``slots`` hashes or checks run at once."""

    __slots__ = ["slots", "wait"]

    def __init__(self, slots, wait, **parameters):
        super().__init__(**parameters)
        self.slots = threading.BoundedSemaphore(slots)
        self.wait = wait

    def hash(self, password, **kwargs):
        with self.slot():
            return super().hash(password, **kwargs)

    def verify(self, hash, password):
        with self.slot():
            return super().verify(hash, password)

    # check_needs_rehash only reads the parameters written in the hash: it takes no slot.

    @contextmanager
    def slot(self):
        """Hold one slot for a ``with`` block (HashingBusy if none frees up in time); always given back."""
        if not self.slots.acquire(timeout=self.wait):
            raise HashingBusy(retry_after=RETRY_AFTER)
        try:
            yield
        finally:
            self.slots.release()


def init_app(app):
    """One hasher per app, with the cost and the slots from the configuration, and a dummy hash (see below)."""
    slots = app.config["PASSWORD_HASH_SLOTS"]
    if slots is None:  # one per CPU (see above)
        slots = os.cpu_count() or 1
    wait = app.config["PASSWORD_HASH_WAIT"]
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ValueError(f"PASSWORD_HASH_SLOTS must be a whole number of 1 or more, not {slots!r}")
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 60:
        raise ValueError(f"PASSWORD_HASH_WAIT must be a number of seconds from 0 to 60, not {wait!r}")
    hasher = BoundedHasher(
        slots,
        wait,
        time_cost=app.config["ARGON2_TIME_COST"],
        memory_cost=app.config["ARGON2_MEMORY_COST"],
        parallelism=app.config["ARGON2_PARALLELISM"],
    )
    app.extensions["password_hasher"] = hasher
    app.register_error_handler(HashingBusy, hashing_busy)


def hashing_busy(error):
    """503 as a problem, like the API's other errors, with Retry-After; logged: a flood shows."""
    logs.event("password.busy", path=request.path)
    response = errors.problem(503, error.description, request_id=logs.request_id())
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def _hasher():
    hasher = current_app.extensions["password_hasher"]
    if "dummy_password_hash" not in current_app.extensions:
        # Checked against when the username is unknown, so that "no such user" costs as much time
        # as "wrong password" and the response time does not reveal which usernames exist. Made
        # by the first request that hashes or checks anything, known user or not (so that first
        # request says nothing either), rather than at start: every app, every worker, and every
        # test would pay one hash at full cost otherwise.
        current_app.extensions["dummy_password_hash"] = hasher.hash("dummy password, never matches anything")
    return hasher


def hash_password(password):
    """The argon2id hash of ``password``, with a fresh random salt."""
    return _hasher().hash(password)


def verify_password(password_hash, password):
    """True if ``password`` matches; False for a wrong password or a stored value that is not a hash."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_dummy(password):
    """Spend the time of a real check when there is no user to check against."""
    _hasher()  # the dummy hash exists from the first call on
    verify_password(current_app.extensions["dummy_password_hash"], password)
    return False


def needs_rehash(password_hash):
    """True when the hash was made with other parameters than today's (then re-hash on login)."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True
