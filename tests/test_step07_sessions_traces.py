"""Step 07 — the traces sessions leave: store entries that last as long as they matter and no
longer, and log lines for the events that mean an attack.

- Every entry of the revocation store expires with the last token it is about: an entry that
  expires sooner lets a revoked token back in; one that never expires makes the store grow with
  every logout and every refresh, for ever (OWASP API4:2023).
- A replayed refresh token is the one sign that a token was stolen, and a wrong current password
  at POST /password may be someone with a stolen token guessing: both leave a line in the
  security log (OWASP Logging Cheat Sheet; ASVS 5.0 V16.3).
"""

from __future__ import annotations

import logging
import re

import pytest

from tests import jwt_tools
from tests.test_step07_sessions import Sessions, bearer, change

SLACK = 60  # seconds: an entry may outlive the newest session by this much, no more


@pytest.fixture
def world(app):
    return Sessions(app)


def latest_possible_end(world):
    """When the newest session can end at the latest: a login made now, its refresh token's exp."""
    return jwt_tools.read(world.login()["refresh_token"])[1]["exp"]


def entries(world, prefix):
    return world.store_rows("SELECT key, expires_at FROM revoked WHERE key LIKE ?", prefix + "%")


@pytest.mark.exercise("logout")
def test_logout_entries_last_as_long_as_their_sessions_and_no_longer(world):
    """/logout and /logout/all record each session until its refresh token expires: not sooner, not for ever."""
    sessions = [world.login() for _ in range(3)]
    ends = {jwt_tools.read(s["refresh_token"])[1]["fam"]: jwt_tools.read(s["refresh_token"])[1]["exp"]
            for s in sessions}
    assert world.client.post("/logout", headers=bearer(sessions[0]["access_token"])).status_code == 204, "logout failed"
    assert world.client.post("/logout/all", headers=bearer(sessions[1]["access_token"])).status_code == 204, (
        "/logout/all failed")
    recorded = dict(entries(world, "family:"))
    bound = latest_possible_end(world) + SLACK
    for n, (family, end) in enumerate(ends.items(), start=1):
        how = "/logout" if n == 1 else "/logout/all"
        expires = recorded.get(f"family:{family}")
        assert expires is not None, f"after {how}, session {n} is not in the revocation store ('family:<fam>')"
        assert expires >= end, (
            f"after {how}, session {n}'s entry expires {end - expires} s before its refresh token does: then that "
            "refresh token works again. Record a session until its last token expires")
        assert expires <= bound, (
            f"after {how}, session {n}'s entry expires {expires - bound + SLACK} s after the newest session could "
            "end: the store keeps it long after any token it is about has expired, and grows with every logout. "
            "Record a session until its refresh token expires (auth.session_deadline()), no longer")


@pytest.mark.exercise("refresh-rotation")
def test_used_marks_last_as_long_as_their_tokens_and_no_longer(world):
    """The mark of a retired refresh token lasts until that token expires: not sooner, not for ever."""
    tokens = world.login()
    claims = jwt_tools.read(tokens["refresh_token"])[1]
    assert world.refresh(tokens["refresh_token"]).status_code == 200, "refreshing failed"
    marks = [expires for key, expires in entries(world, "used:") if claims["jti"] in key]
    bound = latest_possible_end(world) + SLACK
    assert marks, "the retired refresh token left no mark in the revocation store: its second use cannot be noticed"
    assert min(marks) >= claims["exp"], (
        f"the retired refresh token's mark expires {claims['exp'] - min(marks)} s before the token does: then a "
        "replay is taken for a first use. Keep the mark until the token's exp")
    assert max(marks) <= bound, (
        f"the retired refresh token's mark expires {max(marks) - bound + SLACK} s after the newest session could "
        "end: the store grows with every refresh, for ever. Keep the mark until the token's exp, no longer")


def security_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "api.security"]


def about_user(lines, user_id):
    """The log lines that name the user (user_id='1', as logs.event writes it, or user_id=1)."""
    return [line for line in lines if re.search(rf"user_id=['\"]?{re.escape(str(user_id))}['\"]?(\s|$)", line)]


@pytest.mark.exercise("refresh-rotation")
def test_a_replayed_refresh_token_is_logged(world, caplog):
    """A refresh token presented a second time leaves a line in the security log: a token was stolen."""
    tokens = world.login()
    user_id = jwt_tools.read(tokens["access_token"])[1]["sub"]
    assert world.refresh(tokens["refresh_token"]).status_code == 200, "the first refresh failed"
    caplog.set_level(logging.INFO)
    caplog.clear()
    world.refresh(tokens["refresh_token"])
    assert about_user(security_lines(caplog), user_id), (
        "a refresh token was presented a second time and the security log has no line about it that names the "
        "user: a replay means two parties hold the token, one of them a thief. Log it "
        f"(logs.event(\"refresh.reuse_detected\", user_id=..., family=...)): {security_lines(caplog)}")


@pytest.mark.exercise("password-change")
def test_a_refused_password_change_is_logged(world, caplog):
    """A wrong current password at POST /password leaves a line in the security log, without the password."""
    tokens = world.login()
    user_id = jwt_tools.read(tokens["access_token"])[1]["sub"]
    caplog.set_level(logging.INFO)
    caplog.clear()
    guess = "a guess at the current password"
    r = change(world, tokens["access_token"], current=guess)
    assert r.status_code == 403, f"a wrong current password answered {r.status_code}"
    assert about_user(security_lines(caplog), user_id), (
        "a password change with a wrong current password left no line in the security log: someone holding a "
        "stolen token and guessing the password goes unseen. Log it (logs.event(\"password.change_refused\", "
        f"user_id=...)): {security_lines(caplog)}")
    assert guess not in caplog.text, "the refused password reached the log"
