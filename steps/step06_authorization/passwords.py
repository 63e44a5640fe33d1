"""Password storage: argon2id, OWASP's first choice (Password Storage Cheat Sheet).

A password is never stored, logged or returned: only its argon2id hash, which embeds a random
salt and the cost parameters (`$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>`). A slow,
memory-hard hash turns a leaked table into years of guessing instead of seconds.
"""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app


def init_app(app):
    """One hasher per app, with the cost from the configuration, and a dummy hash (see below)."""
    hasher = PasswordHasher(
        time_cost=app.config["ARGON2_TIME_COST"],
        memory_cost=app.config["ARGON2_MEMORY_COST"],
        parallelism=app.config["ARGON2_PARALLELISM"],
    )
    app.extensions["password_hasher"] = hasher


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
