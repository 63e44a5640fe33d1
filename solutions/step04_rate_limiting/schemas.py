"""Input validation with marshmallow 4: what a body must be before any of it is used.

Allowlists, not blocklists: a username is letters, digits and `._-` after normalizing, and
anything else is refused (OWASP Input Validation Cheat Sheet). Unknown fields are refused too,
so a client cannot slip in `"role": "admin"` (mass assignment, OWASP API3:2023).

Passwords follow NIST SP 800-63B-4 (§3.1.1.2): at least 15 characters for a password used
alone, up to 128 (NIST asks to allow at least 64; a cap bounds the hashing work), any Unicode
and spaces, no composition rules, never truncated or case-folded, and refused with the reason
when on a list of common passwords.

In marshmallow 4 a validator's return value is ignored: `validate=lambda p: len(p) >= 6`
accepts "". A validator must raise ValidationError.
"""

import functools
import gzip
import re
import unicodedata
from pathlib import Path

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

# 3 to 32 characters. \Z, not $: in Python, $ also matches just before a final newline, so
# "alice\n" would pass as a second alice (marshmallow's Regexp uses re.match).
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,30}[a-z0-9]\Z")
USERNAME_RULE = "Use 3 to 32 letters, digits, '.', '_' or '-', starting and ending with a letter or digit."
PASSWORD_MIN = 15  # NIST SP 800-63B-4: single-factor passwords are at least 15 characters
PASSWORD_MAX = 128  # NIST: allow at least 64; the cap bounds the hashing work per request
# Login checks shape and size only, never the registration policy (that would help guessing).
LOGIN_MAX = 1024

# 9,755 common passwords that are 15 to 128 characters long, most frequent first: a list of short
# ones would refuse nothing the length rule does not (ASVS 5.0 V6.2.4: at least the top 3,000 that
# meet the policy). From SecLists' million most frequent of Mark Burnett's 10 million leaked
# passwords, and Django's list; tools/build_common_passwords.py makes it, THIRD_PARTY_NOTICES.md
# names the sources and licences.
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt.gz")

# What to do instead, in every refusal of a guessable password.
ADVICE = "Use a few unrelated words instead: a passphrase is long and easy to remember."

# Alphabets and keyboard rows, in order. A password that walks along one of them, forwards or
# backwards ("abcdefghijklmno", "123456789012345", "qwertyuiopasdfg"), is an early guess.
SEQUENCES = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "1234567890qwertyuiopasdfghjklzxcvbnm",  # QWERTY, row after row
    "1234567890qwertzuiopasdfghjklyxcvbnm",  # QWERTZ
    "1234567890azertyuiopqsdfghjklmwxcvbn",  # AZERTY
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",  # QWERTY, column after column
    "!@#$%^&*()",  # the digit row, shifted
)
SEPARATORS = re.compile(r"[\s._,-]+")  # "a-b-c-d..." and "1 2 3 4..." are sequences too


def canonical_username(name):
    """One form per name: compatibility characters folded (NFKC), case folded, repeated until stable.

    "ALICE", "ａｌｉｃｅ" (fullwidth) and "ᴬᴸᴵᶜᴱ" (modifier letters) all become "alice", so they
    can never be three accounts. Spotify's 2013 account takeover came from a canonical form
    that changed when applied twice; this one is applied until it no longer changes.
    """
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
        if folded == name:
            break
        name = folded
    return name


@functools.cache
def common_passwords():
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


def repeats(text):
    """Whether ``text`` is one character or a short part typed again and again: "aaaa...",
    "abcabc...", "passwordpassword" (a last copy may be cut short)."""
    return any(text == (text[:size] * (len(text) // size + 1))[:len(text)]
               for size in range(1, (len(text) + 1) // 2 + 1))


def runs(text):
    """How many runs along SEQUENCES make up ``text``: "abcdefghijklmno" is 1, "1234567abcdefgh" 2,
    and a sentence about as many as it has characters."""
    count, run = 1, None  # run: the (sequence, direction) pairs the current run can still be on
    for before, after in zip(text, text[1:]):
        steps = set()
        for sequence in SEQUENCES:
            i, j = sequence.find(before), sequence.find(after)
            if i >= 0 and j >= 0 and (j - i) % len(sequence) in (1, len(sequence) - 1):
                steps.add((sequence, 1 if (j - i) % len(sequence) == 1 else -1))
        run = steps if run is None else run & steps
        if not run:  # `after` does not go on from `before`: it starts the next run
            count, run = count + 1, None
    return count


def not_predictable(password):
    """Refuse a password that is a repetition or a sequence, whatever its length (NIST SP 800-63B
    rev. 3 §5.1.1.2 names "repetitive or sequential characters"; rev. 4 §3.1.1.2 "expected" values),
    and say which. Only the whole password counts: "aaa" or "123" inside a passphrase is fine (NIST
    rules out composition rules, such as refusing repeated characters)."""
    folded = password.casefold()
    squeezed = SEPARATORS.sub("", folded)
    forms = [folded] + ([squeezed] if len(squeezed) >= 8 else [])
    if any(repeats(form) for form in forms):
        raise ValidationError(
            "This password is one character or a short part repeated (like 'aaaa...', 'abcabc...' or "
            f"'passwordpassword'), which attackers try early. {ADVICE}"
        )
    if any(runs(form) <= 2 for form in forms):
        raise ValidationError(
            "This password is a sequence (like '12345...', 'abcde...' or a keyboard row such as "
            f"'qwerty...'), which attackers try early. {ADVICE}"
        )


class Text(fields.String):
    """A string that is valid Unicode: JSON's "\\ud800" (a lone surrogate) cannot be stored or hashed."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Not valid Unicode text.") from None
        return text


class Username(Text):
    """A username, in its canonical form."""

    def _deserialize(self, value, attr, data, **kwargs):
        return canonical_username(super()._deserialize(value, attr, data, **kwargs))


class Password(Text):
    """A password, Unicode-normalized (NFKC, as NIST advises) so that "é" typed two ways matches."""

    def _deserialize(self, value, attr, data, **kwargs):
        return unicodedata.normalize("NFKC", super()._deserialize(value, attr, data, **kwargs))


# BEGIN EXERCISE register-schema
def not_common(password):
    """Refuse a password that is on the list of common passwords, and say so."""
    if password.casefold() in common_passwords():
        raise ValidationError(f"This password is on a list of common passwords that attackers try first. {ADVICE}")


class RegisterSchema(Schema):
    username = Username(required=True, validate=validate.Regexp(USERNAME_PATTERN, error=USERNAME_RULE))
    password = Password(
        required=True,
        validate=[
            validate.Length(
                min=PASSWORD_MIN, max=PASSWORD_MAX,
                error=f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters: a few words make a good password.",
            ),
            not_common,
            not_predictable,
        ],
    )

    @validates_schema
    def password_is_not_the_username(self, data, **kwargs):
        if data["username"] in data["password"].casefold():
            raise ValidationError("Choose a password that does not contain your username.", "password")
# STARTER
# def not_common(password):
#     """Refuse a password that is on the list of common passwords, and say so."""
#     return password.casefold() not in common_passwords()
#
#
# class RegisterSchema(Schema):
#     username = fields.String(required=True, validate=validate.Length(min=1))
#     password = fields.String(required=True, validate=[validate.Length(min=1), not_common])
# END EXERCISE


class LoginSchema(Schema):
    # BEGIN EXERCISE login-schema
    username = Username(required=True, validate=validate.Length(min=1, max=LOGIN_MAX))
    password = Password(required=True, validate=validate.Length(min=1, max=LOGIN_MAX))
    # STARTER
    # username = fields.String(required=True, validate=validate.Length(min=1))
    # password = fields.String(required=True, validate=validate.Length(min=1))
    # END EXERCISE
