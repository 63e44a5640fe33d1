"""Configuration: safe defaults, and a refusal to run with a JWT secret anyone could guess.

Whoever holds the signing key can mint a valid token for any user, so the key is the API's
master password. It comes from the environment (FLASK_JWT_SECRET_KEY), never from the source
code (OWASP ASVS 5.0 V13.3.1), and it must be strong: at least as long as the HS256 hash, 256
bits (RFC 7518 §3.2), drawn from a CSPRNG (ASVS V11.5.1).
"""

import math
import re
import string
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
    # How many hashes or checks one process runs at once (passwords.py), so that memory for
    # hashing stays below slots x ARGON2_MEMORY_COST however many logins arrive. None: one per
    # CPU. A request that finds every slot taken waits PASSWORD_HASH_WAIT seconds at most, then
    # gets 503 with Retry-After. FLASK_PASSWORD_HASH_SLOTS=1 sets it (e.g. per gunicorn worker).
    "PASSWORD_HASH_SLOTS": None,
    "PASSWORD_HASH_WAIT": 1.0,  # seconds
    # Rate limits (limits.py). memory:// counts per process; set FLASK_RATELIMIT_STORAGE_URI
    # to redis://host:6379 when several processes serve the app. Explicit, so Flask-Limiter
    # does not warn that it picked memory by itself.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_DEFAULT": "120 per minute",  # every route without a limit of its own
    "RATELIMIT_LOGIN_PER_ADDRESS": "20 per minute; 200 per day",
    # Per account, for clients without this account's device cookie (limits.py): a stranger
    # burning it locks out only other strangers; the owner's known devices log in as before.
    "RATELIMIT_LOGIN_PER_ACCOUNT": "5 per minute; 100 per day",
    "RATELIMIT_LOGIN_PER_DEVICE": "5 per minute; 100 per day",  # each known device's own budget
    # All logins of clients without a device cookie, together: each costs a 64 MiB argon2 hash,
    # so this caps the work the whole API does for strangers (about 5 hashes a second).
    "RATELIMIT_LOGIN_EVERYONE": "300 per minute",
    # The device cookie goes over HTTPS only. Set FLASK_DEVICE_COOKIE_SECURE=false only for a
    # plain-HTTP development server (clients then send it over HTTP, too).
    "DEVICE_COOKIE_SECURE": True,
    "RATELIMIT_REGISTER_PER_ADDRESS": "10 per hour",
    # How many proxies in front of the app append to X-Forwarded-For. 0: trust no header.
    "TRUSTED_PROXY_COUNT": 0,
}

# RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits for
# "HS256") or larger MUST be used". PyJWT only warns below this; we refuse.
MIN_SECRET_BYTES = 32

# RFC 7518 §3.2 means 256 bits of key, and a key is worth the randomness it holds, not its
# length: the 32 hex characters of secrets.token_hex(16) are 32 bytes holding 128 random bits,
# "abcdefgh" * 4 holds next to none. estimated_entropy() below measures that.
MIN_SECRET_BITS = 256

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
        # Looks random, but it is the example output of `secrets.token_hex()` in Flask's own
        # documentation ("How to generate good secret keys"), and apps in the wild use it as is.
        "192b9bdd22ab9ed4d12e236c78afcb9a393ec15f71bbf5dc987d54727823bcbf",
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


_HEX_ALPHABETS = (frozenset("0123456789abcdef"), frozenset("0123456789ABCDEF"))
_BASE64_ALPHABETS = (frozenset(string.ascii_letters + string.digits + "+/"),
                     frozenset(string.ascii_letters + string.digits + "-_"))
_PATTERN = 8  # a repeat or a run this long is a pattern: in random keys it comes by chance < 1 in 10^6
_WORD_BITS = math.log2(20_000)  # a word from a 20,000-word vocabulary: ~14.3 bits, whatever its length
_SEPARATOR = re.compile(r"[\s\-_.,:;!?'\"/]+")
# One reading of each piece: "(?:[A-Z]?[a-z]+)+" says the same but backtracks exponentially on a long
# piece that fails at its end (2.5 s of CPU for the 62 letters and digits in order).
_WORD = re.compile(r"[A-Z]?[a-z]+(?:[A-Z][a-z]+)*|[A-Z]+|[0-9]+")  # "horse", "Horse", "HorseBattery", "API", "2024"
_CAPITALIZED = re.compile(r"[A-Z]?[a-z]+")
_JUDGED = 512  # longer keys are judged on their first 512 characters (enough for 3,000 bits)


def estimated_entropy(secret):
    """At most how many bits of randomness ``secret`` holds, roughly, and why: ``(bits, why)``.

    No test can prove that a string is random. This one counts what an attacker must guess, and
    finds the usual ways in which a key that looks long is not random:
    - its alphabet: a character of a hex key is one of 16 (4 bits), of a base64 key one of 64
      (6 bits); so 32 hex characters hold 128 bits, whatever their 32 bytes;
    - patterns: a part that repeats an earlier part ("abcdefgh" * 4), or a run like "abcdefghij",
      "0000000000" or "9876543210", costs an attacker almost nothing beyond its first characters;
    - words: a phrase is guessed a word at a time, at most ~14 bits a word, not 6 bits a letter.
    secrets.token_hex(32) scores 256 bits, secrets.token_urlsafe(32) 258.
    """
    text = secret[:_JUDGED]
    if any(set(text.rstrip("=")) <= a for a in _BASE64_ALPHABETS):
        text = text.rstrip("=")  # base64 padding carries nothing
    chars = set(text)
    kinds = [len(kind) for kind in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
             if chars & set(kind)]
    if any(chars <= a for a in _HEX_ALPHABETS) and len(kinds) == 2:
        size, alphabet = 16, "hex characters (4 bits each)"
    elif any(chars <= a for a in _BASE64_ALPHABETS) and len(kinds) >= 2:
        size, alphabet = 64, "base64 characters (6 bits each)"  # a random sample may lack a kind
    else:  # every kind of character it uses, in full; anything beyond ASCII counts as 1,000 more
        size = sum(kinds) + 33 * bool(chars & set(string.punctuation + " "))
        if size >= 26 + 10 + 33:
            size = 95  # three kinds of ASCII: all printable ASCII, as a random sample may lack a kind
        size += 1000 * any(ord(c) > 127 or not c.isprintable() for c in chars)
        alphabet = f"characters of {size} possible ({math.log2(max(size, 2)):.1f} bits each)"
    per_char = math.log2(max(size, 2))
    # Count the characters an attacker cannot predict from the ones before them.
    unpredictable, i = 0, 0
    while i < len(text):
        repeat, run = _repeat_length(text, i), _run_length(text, i)
        if max(repeat, run) >= _PATTERN:
            unpredictable += 1 if repeat >= run else 2  # where the repeat starts / a run's first two
            i += max(repeat, run)
        else:
            unpredictable += 1
            i += 1
    bits = unpredictable * per_char
    if unpredictable < len(text):
        why = f"it repeats or continues a pattern ({unpredictable} of its {len(text)} characters are unpredictable)"
    else:
        why = f"it is {len(text)} {alphabet}"
    words = _words(text)
    if len(words) >= 3 and len(words) * _WORD_BITS < bits:
        bits, why = len(words) * _WORD_BITS, f"it is a phrase of {len(words)} words, which attackers guess whole"
    return round(bits), why


def _words(text):
    """The words of ``text`` if it reads like a phrase ("correct horse", "CorrectHorse"), else []."""
    words = []
    for piece in _SEPARATOR.split(text):
        if piece and not _WORD.fullmatch(piece):
            return []  # random keys mix cases and digits inside a piece: "x14uzmu", "gphdjUZ"
        words += _CAPITALIZED.findall(piece) if piece[:1].isalpha() and not piece.isupper() else [piece] * bool(piece)
    letters = "".join(w for w in words if w.isalpha()).lower()
    if not letters or sum(c in "aeiouy" for c in letters) < 0.3 * len(letters):
        return []  # English letters are about 40 % vowels (y included), random letters 23 %
    if len(words) == 1 and len(letters) >= 20:
        return ["word"] * round(len(letters) / 4.7)  # words run together: 4.7 letters a word, on average
    return words


def _repeat_length(text, i):
    """How long the text from ``i`` on repeats text that starts earlier (overlaps allowed)."""
    probe, best = text[i:i + _PATTERN], 0
    if len(probe) < _PATTERN:
        return 0
    j = text.find(probe, 0, i + _PATTERN - 1)  # only starts before i
    while j != -1:
        length = _PATTERN
        while i + length < len(text) and text[j + length] == text[i + length]:
            length += 1
        best = max(best, length)
        j = text.find(probe, j + 1, i + _PATTERN - 1)
    return best


def _run_length(text, i):
    """How long the run from ``i`` on is, in which each character is the last one -1, +0 or +1."""
    if i + 1 >= len(text) or abs(ord(text[i + 1]) - ord(text[i])) > 1:
        return 1
    step, length = ord(text[i + 1]) - ord(text[i]), 2
    while i + length < len(text) and ord(text[i + length]) - ord(text[i + length - 1]) == step:
        length += 1
    return length


def check_jwt_secret(secret):
    """Raise InsecureConfigError unless ``secret`` is fit to sign tokens."""
    # BEGIN EXERCISE strong-secret
    if not secret:
        raise InsecureConfigError(f"JWT_SECRET_KEY is not set.\n\n{HOW_TO_MAKE_ONE}")
    if not isinstance(secret, str):
        # from_prefixed_env() parses values as JSON first: an all-digit key becomes an int.
        raise InsecureConfigError(
            f"JWT_SECRET_KEY must be a string, not {type(secret).__name__}: app.config.from_prefixed_env() "
            "reads FLASK_* values as JSON first, so a key of digits only became a number (and `true` a "
            f"bool; either is far too weak a key anyway).\n\n{HOW_TO_MAKE_ONE}"
        )
    if secret.strip().lower() in KNOWN_PLACEHOLDERS:  # a published key with a newline is still published
        raise InsecureConfigError(
            "JWT_SECRET_KEY is a published placeholder: anyone can forge tokens with it."
            f"\n\n{HOW_TO_MAKE_ONE}"
        )
    size = len(secret.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        raise InsecureConfigError(
            f"JWT_SECRET_KEY is too short: {size} bytes, HS256 needs at least "
            f"{MIN_SECRET_BYTES} (RFC 7518 §3.2).\n\n{HOW_TO_MAKE_ONE}"
        )
    bits, why = estimated_entropy(secret)
    if bits < MIN_SECRET_BITS:
        raise InsecureConfigError(
            f"JWT_SECRET_KEY is not random enough: {why}, about {bits} bits of randomness where "
            f"HS256 needs {MIN_SECRET_BITS} (RFC 7518 §3.2). Length is not randomness: only a "
            f"cryptographic random generator makes a key (ASVS V11.5.1).\n\n{HOW_TO_MAKE_ONE}"
        )
    # STARTER
    # pass
    # END EXERCISE
