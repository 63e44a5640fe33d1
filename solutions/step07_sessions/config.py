"""Configuration: safe defaults, and a refusal to run with a JWT secret anyone could guess.

Whoever holds the signing key can mint a valid token for any user, so the key is the API's
master password. It comes from the environment (FLASK_JWT_SECRET_KEY), never from the source
code (OWASP ASVS 5.0 V13.3.1), and it must be strong: at least as long as the HS256 hash, 256
bits (RFC 7518 §3.2), drawn from a CSPRNG (ASVS V11.5.1).
"""

from datetime import timedelta
from pathlib import Path

import click

# This API's name in its tokens' `iss` and `aud`: its folder's name, e.g. "step02_authentication".
API_NAME = Path(__file__).resolve().parent.name

# Code defaults: the first of the three configuration layers (see create_app).
DEFAULTS = {
    # No default key on purpose: a default would be published with the code.
    "JWT_SECRET_KEY": None,
    # Explicit, although it is Flask's default: debug mode serves an interactive Python
    # console to anyone who can trigger an error (ASVS V13.4.2). Never on by default.
    "DEBUG": False,
    # Bodies over 16 KiB are refused with 413 before anything reads them: no request needs
    # more, and a cap bounds the work an attacker can ask for (OWASP API4:2023).
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # The OpenAPI document (/openapi.json) and Swagger UI (/docs): a map of the API, for its
    # developers. Off unless asked for (FLASK_API_DOCS=true; `python -m workbook run` does).
    "API_DOCS": False,
    # Tokens: short-lived (FLASK_JWT_ACCESS_TOKEN_EXPIRES=600 sets seconds), one algorithm
    # only, in the Authorization header only. Pinning the algorithm is what makes a token
    # with "alg": "none" or "HS512" worthless (ASVS V9.1.2).
    "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=15),
    # Sessions (step 07): a refresh token is good for POST /refresh only, and a session ends at
    # the latest this long after its login, however often it is refreshed (rotation keeps the
    # login's end). FLASK_JWT_REFRESH_TOKEN_EXPIRES=3600 sets seconds.
    "JWT_REFRESH_TOKEN_EXPIRES": timedelta(hours=12),
    # Where revoked tokens and sessions are kept (revocation.py): unset = the SQLite database;
    # several processes on several machines: FLASK_REVOCATION_STORAGE_URI=redis://host:6379/0.
    "REVOCATION_STORAGE_URI": None,
    "JWT_ALGORITHM": "HS256",
    "JWT_DECODE_ALGORITHMS": ["HS256"],
    "JWT_TOKEN_LOCATION": ["headers"],
    # Whose tokens these are (RFC 8725 §3.9, §3.11): each app names itself as issuer and
    # audience and refuses tokens that do not, so a token minted by another API that shares
    # the key (another step, a sibling service) is worthless here. FLASK_JWT_ENCODE_ISSUER etc.
    # override it (several processes of one API must agree on the name).
    "JWT_ENCODE_ISSUER": API_NAME,
    "JWT_DECODE_ISSUER": API_NAME,
    "JWT_ENCODE_AUDIENCE": API_NAME,
    "JWT_DECODE_AUDIENCE": API_NAME,
    # Password hashing: argon2id with argon2-cffi's default profile (RFC 9106's "low memory"
    # choice: 64 MiB, 3 passes, 4 lanes), above OWASP's minimum of 19 MiB, 2 passes, 1 lane
    # (Password Storage Cheat Sheet). Tests lower these to stay fast; production must not.
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_COST": 65536,  # KiB = 64 MiB
    "ARGON2_PARALLELISM": 4,
    # Rate limits (limits.py). memory:// counts per process; set FLASK_RATELIMIT_STORAGE_URI
    # to redis://host:6379 when several processes serve the app. Explicit, so Flask-Limiter
    # does not warn that it picked memory by itself.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_DEFAULT": "120 per minute",  # every route without a limit of its own
    "RATELIMIT_LOGIN_PER_ADDRESS": "20 per minute; 200 per day",
    "RATELIMIT_LOGIN_PER_ACCOUNT": "5 per minute; 100 per day",
    "RATELIMIT_REGISTER_PER_ADDRESS": "10 per hour",
    # How many proxies in front of the app append to X-Forwarded-For. 0: trust no header.
    "TRUSTED_PROXY_COUNT": 0,
}

# RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits for
# "HS256") or larger MUST be used". PyJWT only warns below this; we refuse.
MIN_SECRET_BYTES = 32

# 32 copies of one character pass a length check and guess in seconds.
MIN_DISTINCT_CHARACTERS = 8

# Keys published in tutorials, READMEs and .env examples. An attacker tries these first.
# (The short ones are rejected by length anyway; listing them gives a clearer message.)
KNOWN_PLACEHOLDERS = frozenset(
    {
        "your_jwt_secret_key",  # the classic Flask-JWT tutorial's key
        "your-jwt-secret-key",
        "your_secret_key",
        "your-secret-key",
        "jwt_secret_key",
        "jwt-secret-key",
        "super-secret",
        "super_secret_key",
        "supersecretkey",
        "secret",
        "secret_key",
        "secret-key",
        "changeme",
        "change-me",
        "change_me",
        "change-this-secret-key-in-production",
        "please-change-this-to-a-long-random-string",
        "replace-with-a-long-random-secret-key",
        "dev",
        "development",
        "test",
        "testing",
    }
)

HOW_TO_MAKE_ONE = """\
Make a strong key (64 hex characters = 32 random bytes) and put it in the environment:

    python -c "import secrets; print(secrets.token_hex(32))"

    macOS/Linux:  export FLASK_JWT_SECRET_KEY=<the key>
    Windows cmd:  set FLASK_JWT_SECRET_KEY=<the key>
    PowerShell:   $env:FLASK_JWT_SECRET_KEY = "<the key>"

Never commit the key; in production, keep it in your platform's secret store.
(`python -m workbook run N` makes a development key for you in a git-ignored file.)"""


class InsecureConfigError(click.ClickException):
    """The app refuses to start with this configuration.

    A click exception, so that `flask run` prints just the message ("Error: ...") instead of a
    traceback; in Python code it is an ordinary exception.
    """


def check_not_debug(debug):
    """Refuse debug mode, and the debugger on its own: the Werkzeug debugger is a Python console for
    anyone who can reach it. `flask run --debugger` turns it on without turning DEBUG on, so the
    options of the `flask run` that is loading this app are read too."""
    run = click.get_current_context(silent=True)
    if run is not None and run.info_name == "run" and run.params.get("debugger"):
        raise InsecureConfigError(
            "`flask run --debugger` serves the Werkzeug debugger, a Python console at /console, to anyone "
            "who can reach the server and get past its PIN (ASVS 5.0 V13.4.2). Run without --debugger."
        )
    if debug:
        raise InsecureConfigError(
            "Debug mode is on (FLASK_DEBUG or `flask run --debug`). Its debugger runs Python code "
            "sent by any visitor who gets past a PIN (ASVS 5.0 V13.4.2). Unset FLASK_DEBUG; use "
            "your editor's debugger, and the request id in the log, to find bugs."
        )


def check_jwt_secret(secret):
    """Raise InsecureConfigError unless ``secret`` is fit to sign tokens."""
    # BEGIN EXERCISE strong-secret
    if not secret:
        raise InsecureConfigError(f"JWT_SECRET_KEY is not set.\n\n{HOW_TO_MAKE_ONE}")
    if not isinstance(secret, str):
        # from_prefixed_env() parses values as JSON first: an all-digit key becomes an int.
        raise InsecureConfigError(
            f"JWT_SECRET_KEY must be a string, got a {type(secret).__name__}: app.config.from_prefixed_env() "
            "reads FLASK_* values as JSON first, so a key of digits only became a number (and a "
            f"number is too small a key anyway).\n\n{HOW_TO_MAKE_ONE}"
        )
    size = len(secret.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        raise InsecureConfigError(
            f"JWT_SECRET_KEY is too short: {size} bytes, HS256 needs at least "
            f"{MIN_SECRET_BYTES} (RFC 7518 §3.2).\n\n{HOW_TO_MAKE_ONE}"
        )
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        raise InsecureConfigError(
            f"JWT_SECRET_KEY is too repetitive: it uses only {len(set(secret))} different "
            f"characters.\n\n{HOW_TO_MAKE_ONE}"
        )
    if secret.lower() in KNOWN_PLACEHOLDERS:
        raise InsecureConfigError(
            "JWT_SECRET_KEY is a published placeholder: anyone can forge tokens with it."
            f"\n\n{HOW_TO_MAKE_ONE}"
        )
    # STARTER
    # pass
    # END EXERCISE
