"""Step 02 — more attacks on authentication, in-process: unreadable stored hashes, tokens in the URL.

Runs on step 2 and every later step. Apart from test_step02_authentication.py, which is `check 2 --quick`
and close to its time budget.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from tests.harness import without_request_id
from tests.test_step02_authentication import login, register, stored_hashes, summary, token_for


UNREADABLE_HASHES = {
    "a locked account ('!')": lambda stored: "!",
    "an empty value": lambda stored: "",
    "a hash cut short": lambda stored: stored[:len(stored) // 2],
    "a hash of another scheme": lambda stored: "pbkdf2:sha256:600000$salt$" + "0" * 64,
}


@pytest.mark.exercise("verify-password")
def test_an_unreadable_stored_hash_logs_nobody_in(app):
    """A stored value that is not a valid hash (a locked account, a corrupted or legacy one) fails the login
    like a wrong password: no token, no crash (fail closed)."""
    client = app.test_client()
    register(client)
    stored = stored_hashes(app)["alice"]
    wrong = login(client, password="not the password at all")
    for kind, broken in UNREADABLE_HASHES.items():
        with closing(sqlite3.connect(app.config["DATABASE"])) as con:
            con.execute("UPDATE user SET password_hash = ? WHERE username = 'alice'", (broken(stored),))
            con.commit()
        try:
            r = login(client)
        except Exception as exc:  # testing mode: an exception in the view reaches the test
            pytest.fail(f"with {kind} stored as alice's hash, the login crashed ({type(exc).__name__}): a value "
                        "that is not a valid hash must fail the login like a wrong password. Catch every argon2 "
                        "error, not only VerifyMismatchError (passwords.verify_password does)", pytrace=False)
        assert r.status_code != 200 and b"access_token" not in r.data, (
            f"with {kind} stored as alice's hash, her login answered {summary(r)}: an unreadable hash let "
            "anyone in (fail open). A check that cannot be made is a failed check"
        )
        assert (r.status_code, without_request_id(r.get_json(silent=True))) == (
            wrong.status_code, without_request_id(wrong.get_json(silent=True))), (
            f"with {kind} stored as alice's hash, her login answered {summary(r)}, a wrong password {summary(wrong)}: "
            "answer it as any failed login"
        )


@pytest.mark.exercise("hash-password", when_named=True)
@pytest.mark.exercise("verify-password", when_named=True)
@pytest.mark.exercise("protect-route")
def test_a_token_in_the_url_is_not_accepted(client):
    """The token is read from the Authorization header only: one in the URL is refused (URLs are logged)."""
    token = token_for(client)
    for query in (f"?jwt={token}", f"?access_token={token}", f"?token={token}"):
        r = client.get(f"/protected{query}")
        assert r.status_code in (401, 422), (
            f"/protected{query[:5]}<a valid token> without an Authorization header answered {r.status_code}: a token in "
            "the URL ends up in server and proxy logs, browser history and Referer headers. Accept it in the "
            "Authorization: Bearer header only"
        )
