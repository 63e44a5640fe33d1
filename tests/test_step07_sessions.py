"""Step 07 — sessions, attacked in-process: tokens that outlive a logout, a replayed refresh token,
a password change that leaves the thief in, a store that is down.

Runs on step 7 and every later step.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing

import pytest

from tests import jwt_tools
from tests.harness import error_message, free_port
from tests.verdict import check

PASSWORD = "violet kettle under a quiet moon"
NEW_PASSWORD = "a brand new passphrase, long enough"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


class Sessions:
    """An app with alice (and an admin, root); login() starts one more session of a user."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        r = self.client.post("/register", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 201, f"registering alice answered {r.status_code}"

    def login(self, name="alice", password=PASSWORD):
        r = self.client.post("/login", json={"username": name, "password": password})
        assert r.status_code == 200, f"{name} could not log in ({r.status_code})"
        body = r.get_json()
        assert "refresh_token" in body, "the login answer has no refresh_token next to the access_token"
        return body

    def works(self, access):
        return self.client.get("/protected", headers=bearer(access)).status_code == 200

    def refresh(self, refresh_token):
        return self.client.post("/refresh", headers=bearer(refresh_token))

    def admin(self):
        cli = self.app.test_cli_runner()
        r = cli.invoke(args=["create-admin", "root"], input=f"{PASSWORD}\n{PASSWORD}\n")
        assert r.exit_code == 0, f"`flask create-admin root` failed: {r.output}"
        return self.login("root")

    def store_rows(self, sql, *params):
        with closing(sqlite3.connect(self.app.config["DATABASE"])) as con:  # `with connect()` does not close
            rows = con.execute(sql, params).fetchall()
            con.commit()
        return rows

    def revocations_of(self, token):
        """The revocation store's live entries that refuse ``token``: its own (``jti:``) or its session's
        (``family:``), read the way a revocation check must read them (not expired)."""
        claims = jwt_tools.read(token)[1]
        keys = (f"jti:{claims.get('jti')}", f"family:{claims.get('fam')}")
        return [key for (key,) in self.store_rows("SELECT key FROM revoked WHERE key IN (?, ?) AND expires_at > ?",
                                                   *keys, int(time.time()))]


@pytest.fixture
def world(app):
    return Sessions(app)


def assert_refused(r, what):
    assert r.status_code == 401, f"{what}: answered {r.status_code}, expected 401"
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), f"{what}: the 401 has no WWW-Authenticate: Bearer"
    assert r.mimetype == "application/problem+json", f"{what}: the 401 is not a problem document"


def assert_ended(world, r, token, what):
    """``r``, a request with ``token`` after its session was ended (a logout, a detected replay, a new
    password, an admin's change), is refused. Accepted, the fix is where the chain broke: if the route
    recorded the end (the store holds the token's entry), the revocation check (7.1) let a token it
    should refuse through; if the store holds nothing for it, the route (the test's own exercise) did
    not record it. Tests that call this are marked ``exercise("revocation-check", when_named=True)``."""
    if r.status_code < 400:
        recorded = world.revocations_of(token)
        kind = jwt_tools.read(token)[1].get("type", "access")
        if recorded:
            check(False, "revocation-check",
                  f"{what}: answered {r.status_code}, although the revocation store holds {recorded[0]!r} for it. "
                  "The session was ended and recorded; the revocation check (@jwt.token_in_blocklist_loader) let "
                  f"this {kind} token through anyway: it must refuse every token, access and refresh, whose own "
                  "jti or whose session (fam) has a live entry in the store")
        what += " (the revocation store holds no entry for it: the end of the session was not recorded)"
    assert_refused(r, what)


# --------------------------------------------------------------------------------------------
# exercise 7.1 revocation-check
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("revocation-check")
def test_a_revoked_session_is_refused(world):
    """A token whose session is in the revocation store is refused (401), for access and refresh tokens."""
    tokens = world.login()
    family = jwt_tools.read(tokens["access_token"])[1].get("fam")
    assert family, "the access token carries no session id (claim 'fam')"
    world.store_rows("INSERT INTO revoked (key, expires_at) VALUES (?, ?)", f"family:{family}", int(time.time()) + 3600)
    assert_refused(world.client.get("/protected", headers=bearer(tokens["access_token"])),
                   "an access token of a revoked session was accepted (the revocation store is not checked)")
    assert_refused(world.refresh(tokens["refresh_token"]),
                   "a refresh token of a revoked session was accepted (the revocation store is not checked)")


@pytest.mark.exercise("revocation-check")
def test_one_revoked_token_is_refused_and_only_that_one(world):
    """A single revoked token (its jti in the store) is refused; the user's other sessions still work."""
    first, second = world.login(), world.login()
    jti = jwt_tools.read(first["access_token"])[1]["jti"]
    world.store_rows("INSERT INTO revoked (key, expires_at) VALUES (?, ?)", f"jti:{jti}", int(time.time()) + 3600)
    assert_refused(world.client.get("/protected", headers=bearer(first["access_token"])),
                   "a revoked token (its jti is in the revocation store) was accepted")
    assert world.works(second["access_token"]), "revoking one token refused another session's token too"


@pytest.mark.exercise("revocation-check")
def test_a_token_without_a_session_is_refused(world):
    """A token signed with the key but without a session id ('fam') is refused: it cannot be checked."""
    header, payload = jwt_tools.read(world.login()["access_token"])
    del payload["fam"]
    forged = jwt_tools.forge(header, payload, world.app.config["JWT_SECRET_KEY"])
    assert_refused(world.client.get("/protected", headers=bearer(forged)),
                   "a token without a session id (no 'fam' claim) was accepted: no revocation can ever reach it")


@pytest.mark.exercise("revocation-check")
def test_an_unreachable_store_fails_closed(world, make_app):
    """When the revocation store cannot be reached, tokens are refused (503 + Retry-After), never accepted."""
    tokens = world.login()
    down = make_app(DATABASE=world.app.config["DATABASE"], JWT_SECRET_KEY=world.app.config["JWT_SECRET_KEY"],
                    REVOCATION_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    r = down.test_client().get("/protected", headers=bearer(tokens["access_token"]))
    assert r.status_code != 200, ("the revocation store was unreachable and the token was accepted anyway: "
                                  "the check fails open, so a revoked token works whenever the store is down")
    assert r.status_code == 503, f"with the revocation store down the API answered {r.status_code}, expected 503"
    assert r.headers.get("Retry-After"), "the 503 does not say when to retry (Retry-After)"
    assert r.mimetype == "application/problem+json", "the 503 is not a problem document"
    r = down.test_client().post("/refresh", headers=bearer(tokens["refresh_token"]))
    assert r.status_code == 503, f"a refresh with the store down answered {r.status_code}, expected 503"


@pytest.mark.exercise("revocation-check")
def test_an_unknown_store_is_refused_at_start(make_app):
    """REVOCATION_STORAGE_URI that is neither unset nor redis:// stops the app from starting, saying why."""
    with pytest.raises(Exception) as refused:
        make_app(REVOCATION_STORAGE_URI="memcached://127.0.0.1:11211")
    assert "REVOCATION_STORAGE_URI" in str(refused.value), (
        f"an unknown revocation store was refused without naming the setting: {refused.value}")


# --------------------------------------------------------------------------------------------
# exercise 7.2 refresh-rotation
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("refresh-rotation")
def test_refresh_rotates_the_refresh_token(world):
    """POST /refresh answers a new access token and a NEW refresh token; both work, no caching."""
    tokens = world.login()
    r = world.refresh(tokens["refresh_token"])
    assert r.status_code == 200, f"refreshing answered {r.status_code}"
    new = r.get_json()
    assert "no-store" in r.headers.get("Cache-Control", ""), "the refresh answer may be cached (RFC 6749 §5.1)"
    assert new.get("refresh_token") and new["refresh_token"] != tokens["refresh_token"], (
        "the refresh did not rotate the refresh token: the same one serves forever, and a copy of it too (RFC 9700 §4.14.2)")
    assert world.works(new["access_token"]), "the refreshed access token does not work"
    assert world.refresh(new["refresh_token"]).status_code == 200, "the rotated refresh token does not work"


@pytest.mark.exercise("refresh-rotation")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_a_replayed_refresh_token_ends_the_session(world):
    """Presenting a retired refresh token again is refused, and ends the whole session (reuse detection)."""
    tokens = world.login()
    rotated = world.refresh(tokens["refresh_token"]).get_json()
    assert rotated and "refresh_token" in rotated, "the first refresh failed"
    replay = world.refresh(tokens["refresh_token"])
    assert_refused(replay, "a refresh token that was used already worked again (no rotation: it must be retired)")
    assert_ended(world, world.refresh(rotated["refresh_token"]), rotated["refresh_token"],
                 "after a retired refresh token came back, the session's newest refresh token still works: "
                 "reuse detection must end the whole session, the thief may hold the new one")
    assert_ended(world, world.client.get("/protected", headers=bearer(rotated["access_token"])),
                 rotated["access_token"], "after reuse was detected, the session's access token still works")
    assert world.works(world.login()["access_token"]), "after reuse detection alice cannot log in again"


@pytest.mark.exercise("refresh-rotation")
def test_rotation_never_lengthens_a_session(world):
    """A refreshed session ends when its login's refresh token would have: rotation keeps the end."""
    tokens = world.login()
    end = jwt_tools.read(tokens["refresh_token"])[1]["exp"]
    later = world.refresh(tokens["refresh_token"]).get_json()
    header, payload = jwt_tools.read(later["refresh_token"])
    assert payload.get("fam") == jwt_tools.read(tokens["refresh_token"])[1].get("fam"), (
        "the refreshed tokens belong to a new session: reuse detection can no longer reach them")
    assert payload["exp"] <= end, (f"rotation moved the session's end {payload['exp'] - end} s later: "
                                   "a stolen session could be refreshed forever")


@pytest.mark.exercise("refresh-rotation")
def test_each_token_type_works_only_where_it_belongs(world):
    """A refresh token is no access token (401 on /protected), an access token no refresh token (401 on /refresh)."""
    tokens = world.login()
    assert_refused(world.client.get("/protected", headers=bearer(tokens["refresh_token"])),
                   "a refresh token was accepted as an access token")
    assert_refused(world.refresh(tokens["access_token"]), "an access token was accepted at /refresh")
    assert world.refresh(tokens["refresh_token"]).status_code == 200, "the refresh token was used up by the test"


class SlowStore:
    """The app's revocation store, answering in 20 ms a call as a store across a network does: a
    window between "was it used?" and "mark it used" is then wide open, as it is in production."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def slowly(*args, **kwargs):
            time.sleep(0.02)
            return value(*args, **kwargs)

        return slowly


@pytest.mark.exercise("refresh-rotation")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_simultaneous_refreshes_one_wins_and_the_session_ends(world, step):
    """8 simultaneous refreshes of one token: exactly one gets new tokens, and the session is then revoked."""
    tokens = world.login()
    extensions = getattr(world.app, "extensions", None)
    if not hasattr(step, "break_function") and isinstance(extensions, dict) and "revocation_store" in extensions:
        extensions["revocation_store"] = SlowStore(extensions["revocation_store"])  # (not when grading: remote app)
    start = threading.Barrier(8)
    answers = [None] * 8

    def refresh(i):
        client = world.app.test_client()
        start.wait()
        r = client.post("/refresh", headers=bearer(tokens["refresh_token"]))
        answers[i] = (r.status_code, r.get_json(silent=True))

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(code for code, _ in answers)
    assert codes.count(200) == 1, (f"{codes.count(200)} of 8 simultaneous refreshes of one token got new tokens "
                                   f"({codes}): retiring the token must be one atomic step, so exactly one wins")
    assert set(codes) == {200, 401}, f"simultaneous refreshes answered {codes}"
    winner = next(body for code, body in answers if code == 200)
    assert_ended(world, world.refresh(winner["refresh_token"]), winner["refresh_token"],
                 "after a refresh token was presented 8 times, the winner's new refresh token still works")


# --------------------------------------------------------------------------------------------
# exercise 7.3 logout
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("logout")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_logout_ends_the_access_and_the_refresh_token(world):
    """After POST /logout the session's access token AND its refresh token are refused; other sessions live."""
    phone, laptop = world.login(), world.login()
    r = world.client.post("/logout", headers=bearer(phone["access_token"]))
    assert r.status_code == 204, f"logout answered {r.status_code}"
    assert_ended(world, world.client.get("/protected", headers=bearer(phone["access_token"])), phone["access_token"],
                 "after logout the access token still works: a copy of it keeps the session")
    assert_ended(world, world.refresh(phone["refresh_token"]), phone["refresh_token"],
                 "after logout the refresh token still mints access tokens: the session did not end")
    assert world.works(laptop["access_token"]), "logging out on one device logged out another"


@pytest.mark.exercise("logout")
def test_the_logout_lasts_as_long_as_the_session_could(world):
    """The logout's entry in the store expires no sooner than the session's refresh token."""
    tokens = world.login()
    claims = jwt_tools.read(tokens["refresh_token"])[1]
    world.client.post("/logout", headers=bearer(tokens["access_token"]))
    rows = world.store_rows("SELECT expires_at FROM revoked WHERE key = ?", f"family:{claims['fam']}")
    assert rows, "logout did not record the session ('family:<fam>') in the revocation store"
    assert rows[0][0] >= claims["exp"], (
        f"the logout is forgotten {claims['exp'] - rows[0][0]} s before the refresh token expires: "
        "then the refresh token works again")


@pytest.mark.exercise("logout")
def test_the_store_forgets_what_has_expired(world):
    """Entries whose token has expired are dropped when the store is written: its size stays bounded."""
    world.store_rows("INSERT INTO revoked (key, expires_at) VALUES (?, ?)", "jti:long-gone", int(time.time()) - 60)
    tokens = world.login()
    assert world.client.post("/logout", headers=bearer(tokens["access_token"])).status_code == 204, "logout failed"
    left = world.store_rows("SELECT key FROM revoked WHERE expires_at <= ?", int(time.time()))
    assert not left, f"the revocation store keeps entries whose tokens have expired: {left} (it grows without bound)"


@pytest.mark.exercise("logout")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_logout_everywhere_ends_every_session(world):
    """POST /logout/all refuses every token of every session of the user; a new login works."""
    sessions = [world.login() for _ in range(3)]
    r = world.client.post("/logout/all", headers=bearer(sessions[0]["access_token"]))
    assert r.status_code == 204, f"/logout/all answered {r.status_code}"
    for i, tokens in enumerate(sessions):
        assert_ended(world, world.client.get("/protected", headers=bearer(tokens["access_token"])),
                     tokens["access_token"], f"after /logout/all session {i + 1}'s access token still works")
        assert_ended(world, world.refresh(tokens["refresh_token"]), tokens["refresh_token"],
                     f"after /logout/all session {i + 1}'s refresh token still works")
    assert world.works(world.login()["access_token"]), "after /logout/all alice cannot log in again"


@pytest.mark.exercise("logout")
def test_logout_needs_a_token(world):
    """Logout without a token, or with a refresh token, is a 401."""
    assert_refused(world.client.post("/logout"), "logout without a token")
    assert_refused(world.client.post("/logout/all"), "logout everywhere without a token")
    assert_refused(world.client.post("/logout", headers=bearer(world.login()["refresh_token"])),
                   "logout with a refresh token instead of an access token")


@pytest.mark.exercise("logout")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_disabling_and_enabling_an_account_ends_its_sessions(world):
    """An admin disables alice, then enables her again: her old tokens stay refused (ASVS 5.0 V7.4.2)."""
    root = world.admin()["access_token"]
    alice = world.login()
    user_id = jwt_tools.read(alice["access_token"])[1]["sub"]
    for disabled in (True, False):
        r = world.client.patch(f"/admin/users/{user_id}", json={"disabled": disabled}, headers=bearer(root))
        assert r.status_code == 200, f"the admin's PATCH disabled={disabled} answered {r.status_code}"
    assert_ended(world, world.client.get("/protected", headers=bearer(alice["access_token"])), alice["access_token"],
                 "a disabled, then re-enabled account's old access token works again (ASVS V7.4.2)")
    assert_ended(world, world.refresh(alice["refresh_token"]), alice["refresh_token"],
                 "a disabled, then re-enabled account's old refresh token works again (ASVS V7.4.2)")
    assert world.works(world.login()["access_token"]), "the re-enabled account cannot log in"


@pytest.mark.exercise("logout")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_a_demoted_admins_refresh_token_ends(world):
    """An admin demoted by another admin: their old refresh token is refused."""
    root = world.admin()
    world.client.post("/register", json={"username": "boss", "password": PASSWORD})
    boss_id = jwt_tools.read(world.login("boss")["access_token"])[1]["sub"]
    r = world.client.patch(f"/admin/users/{boss_id}", json={"role": "admin"}, headers=bearer(root["access_token"]))
    assert r.status_code == 200, f"promoting boss answered {r.status_code}"
    boss = world.login("boss")
    r = world.client.patch(f"/admin/users/{boss_id}", json={"role": "user"}, headers=bearer(root["access_token"]))
    assert r.status_code == 200, f"demoting boss answered {r.status_code}"
    assert_ended(world, world.refresh(boss["refresh_token"]), boss["refresh_token"],
                 "a demoted admin's old refresh token still works")


# --------------------------------------------------------------------------------------------
# exercise 7.4 password-change
# --------------------------------------------------------------------------------------------


def change(world, access, current=PASSWORD, new=NEW_PASSWORD):
    return world.client.post("/password", json={"current_password": current, "new_password": new},
                             headers=bearer(access))


@pytest.mark.exercise("password-change")
@pytest.mark.exercise("revocation-check", when_named=True)
def test_a_new_password_ends_every_old_session(world):
    """After a password change every old session's tokens are refused; this client gets a new session."""
    thief, mine = world.login(), world.login()
    r = change(world, mine["access_token"])
    assert r.status_code == 200, f"changing the password answered {r.status_code}: {error_message(r.get_json())}"
    for who, tokens in (("another device's (a thief's)", thief), ("this device's old", mine)):
        assert_ended(world, world.client.get("/protected", headers=bearer(tokens["access_token"])),
                     tokens["access_token"], f"after a password change {who} access token still works")
        assert_ended(world, world.refresh(tokens["refresh_token"]), tokens["refresh_token"],
                     f"after a password change {who} refresh token still works")
    assert world.works(r.get_json()["access_token"]), "the tokens answered by the password change do not work"
    assert world.works(world.login(password=NEW_PASSWORD)["access_token"]), "the new password does not log in"
    r = world.client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401, f"the old password still logs in ({r.status_code})"


@pytest.mark.exercise("password-change")
def test_the_current_password_is_required(world):
    """A wrong current password is refused (403); nothing changes, no session ends."""
    tokens = world.login()
    r = change(world, tokens["access_token"], current="not the right password at all")
    assert r.status_code == 403, (f"a password change with a wrong current password answered {r.status_code}: "
                                  "a stolen token alone must not be enough to take the account over")
    assert world.works(tokens["access_token"]), "a refused password change ended the session"
    r = world.client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200, (
        f"after a refused password change the old password no longer logs in ({r.status_code}): the new password "
        "was stored although the current one was wrong. Check the current password first, then change anything")
    r = world.client.post("/password", json={"new_password": NEW_PASSWORD}, headers=bearer(tokens["access_token"]))
    assert r.status_code == 400, f"a password change without the current password answered {r.status_code}"


@pytest.mark.exercise("password-change")
@pytest.mark.exercise("refresh-rotation", when_named=True)
def test_a_password_change_needs_a_fresh_login(world):
    """An access token from /refresh (not fresh) cannot change the password: 401."""
    refreshed = world.refresh(world.login()["refresh_token"]).get_json()
    r = change(world, refreshed["access_token"])
    fresh = jwt_tools.read(refreshed["access_token"])[1].get("fresh")
    check(r.status_code == 401 or not fresh, "refresh-rotation",
          f"an access token answered by /refresh is fresh (claim fresh: {fresh!r}), so it changed the password "
          f"({r.status_code}): a refresh proves only that someone holds the refresh token, not that the user just "
          "typed the password, and whoever stole it could lock the owner out. Only a login gives a fresh token")
    assert_refused(r, "a refreshed (not fresh) access token changed the password: whoever stole a refresh "
                      "token could lock the owner out")


@pytest.mark.exercise("password-change")
@pytest.mark.parametrize("new", ["short", "123456789qwerty", "alice is my name, forever"],
                         ids=["too-short", "common", "contains-username"])
def test_the_new_password_follows_the_policy(world, new):
    """The new password follows the registration policy (400), and nothing changes."""
    tokens = world.login()
    r = change(world, tokens["access_token"], new=new)
    assert r.status_code == 400, f"the new password {new!r} answered {r.status_code}, expected 400"
    assert world.works(tokens["access_token"]), "a refused password change ended the session"
