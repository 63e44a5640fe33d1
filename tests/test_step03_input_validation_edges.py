"""Step 03 — more hostile bodies, in-process: lengths in characters, spaces, missing fields, no echo, no log.

Runs on step 3 and every later step. Apart from test_step03_input_validation.py, so that `check 3 --quick`
stays quick on a learner's unfinished work: pytest re-reads the source of a failing check's file for every
frame of its traceback, so each failure there costs more the longer that file is.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import closing

import pytest

from tests.test_step03_input_validation import (PASSWORD, errors_of, login, messages, refused, register,
                                                test_a_body_that_is_not_an_object_is_refused_with_a_message as
                                                not_an_object_is_refused)
from tests.verdict import check

PASSWORD_MIN, PASSWORD_MAX = 15, 128  # NIST SP 800-63B-4, as the course sets them


def stored_hash_is_of(app, username, password):
    """Is the hash stored for ``username`` one of exactly ``password`` (checked with argon2-cffi, not the app)?"""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    with closing(sqlite3.connect(app.config["DATABASE"])) as con:
        row = con.execute("SELECT password_hash FROM user WHERE username = ?", (username,)).fetchone()
    try:
        return bool(row) and PasswordHasher().verify(row[0], password)
    except (VerificationError, InvalidHashError):
        return False


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
def test_length_counts_characters_not_bytes(client):
    """The password's length is counted in characters (Unicode code points, as NIST says), not in bytes."""
    short = "ねこがすき"  # 5 characters, 15 bytes in UTF-8
    r = register(client, "alice", short)
    refused(r, "register-schema",
            f"the password {short!r}, {len(short)} characters ({len(short.encode())} bytes in UTF-8), was accepted "
            "({status}): count characters, not bytes (NIST SP 800-63B-4: each Unicode code point is one character)",
            "password")
    long = "Ο γρήγορος καφές ξυπνά την πόλη κάθε πρωί πριν ανοίξουν τα μαγαζιά στην παλιά πλατεία"
    r = register(client, "bob", long)
    check(r.status_code == 201, "register-schema",
          f"the Greek passphrase of {len(long)} characters ({len(long.encode())} bytes) was refused: {errors_of(r)}. "
          f"Count characters, not bytes: it is within {PASSWORD_MIN} to {PASSWORD_MAX} characters")


@pytest.mark.exercise("register-schema")
@pytest.mark.exercise("login-schema")
def test_spaces_at_the_ends_of_a_password_count(app):
    """A password that begins or ends with spaces logs in exactly as typed: nothing strips it (NIST: spaces are allowed)."""
    client = app.test_client()
    typed = "  violet kettle under a quiet moon  "
    check(register(client, "alice", typed).status_code == 201, "register-schema",
          f"the password {typed!r} was refused: spaces are allowed anywhere in a password")
    r = login(client, "alice", typed)
    if r.status_code != 200:
        stored_as_typed = stored_hash_is_of(app, "alice", typed)
        check(stored_as_typed, "register-schema",
              f"the password {typed!r} does not log in as typed: registration stored the hash of another "
              "password (stripped of its spaces?). Hash the password exactly as typed, spaces included")
        check(False, "login-schema",
              f"the password {typed!r} does not log in as typed ({r.status_code}), although registration stored "
              "its hash: the login changes it (strips its spaces?) before checking it")


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
def test_a_refusal_never_quotes_the_password(client):
    """The reason a password is refused never quotes it: error answers end up in logs, proxies and browser histories."""
    for password in ("short 7f3a", "x" * 129):
        r = register(client, "alice", password)
        refused(r, "register-schema", f"the password {password[:20]!r} was accepted ({{status}})", "password")
        check(password not in messages(r, "password"), "register-schema",
              f"the refusal of the password quotes it: {messages(r, 'password')[:120]!r}. Say what is wrong "
              "without the value ('{input}' in a validator's error message sends the password back)")
        check(password not in r.get_data(as_text=True), "validation-errors",
              "the 400 sends the refused password back: say what is wrong (error.messages), never what was sent")


INCOMPLETE_BODIES = ({"username": "alice"}, {"password": PASSWORD}, {"username": "alice", "password": None},
                     {"username": None, "password": PASSWORD})


def refuses_incomplete_bodies(client, path, what, exercise):
    """Each body of INCOMPLETE_BODIES sent to ``path`` gets a 400 naming the missing field, never a crash."""
    for body in INCOMPLETE_BODIES:
        try:
            r = client.post(path, json=body)
        except Exception as exc:  # testing mode: an exception in the view reaches the test
            pytest.fail(f"a {what} with {body} crashed ({type(exc).__name__}, a 500 in production): both "
                        "fields are required (required=True), and null is not a string", pytrace=False)
        missing = next(k for k in ("username", "password") if body.get(k) is None)
        refused(r, exercise, f"a {what} with {body} was accepted ({{status}}): both fields are required", missing)


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
def test_a_registration_without_both_fields_is_a_400(client):
    """A registration that lacks the username or the password (or sends null) gets 400, never a crash."""
    refuses_incomplete_bodies(client, "/register", "registration", "register-schema")


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("login-schema")
def test_a_login_without_both_fields_is_a_400(client):
    """A login body that lacks the username or the password (or sends null) gets 400, never a crash."""
    register(client)
    refuses_incomplete_bodies(client, "/login", "login", "login-schema")


@pytest.mark.exercise("validation-errors")
def test_a_refused_body_is_never_logged_with_its_password(client, caplog):
    """What a refused body held never reaches the log: the passwords of failed registrations and logins stay out."""
    caplog.set_level(logging.DEBUG)
    secret = "a passphrase for nobody's log 5c1e"
    client.post("/register", json={"username": "alice", "password": secret, "role": "admin"})
    client.post("/login", json={"username": "", "password": secret})
    assert secret not in caplog.text, (
        "a refused body's password was written to the log: logs are read by many and kept for long. Log what "
        "was wrong (the field names), never what was sent (OWASP Logging Cheat Sheet)"
    )


@pytest.mark.exercise("read-json", when_named=True)
@pytest.mark.exercise("validation-errors")
@pytest.mark.parametrize("body", [[], 0, False, ""], ids=["empty list", "zero", "false", "empty string"])
def test_a_falsy_body_is_refused_as_a_whole(client, body):
    """A JSON value that is not an object gets 400 with a message for the body as a whole, falsy ones too."""
    not_an_object_is_refused(client, body)


@pytest.mark.exercise("read-json")
def test_json_with_media_type_parameters_is_json(client):
    """Content-Type: application/json; charset=utf-8 (as many clients send it) is JSON: the body is read."""
    for name, content_type in (("alice", "application/json; charset=utf-8"), ("bob", "application/json;charset=UTF-8"),
                               ("carol", "Application/JSON")):
        r = client.post("/register", data=json.dumps({"username": name, "password": PASSWORD}), content_type=content_type)
        assert r.status_code == 201, (
            f"a registration sent as {content_type!r} answered {r.status_code}: that is JSON too (media types are "
            "case-insensitive and may carry parameters, RFC 9110 §8.3). Ask request.is_json, do not compare the "
            "header's text"
        )
