"""Step 07 — sessions attacked over real HTTP: a stolen token after logout, a replayed refresh token,
simultaneous refreshes, and random requests to the new routes (never a 5xx).
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import jwt_tools
from tests.harness import property_settings

PASSWORD = "violet kettle under a quiet moon"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def new_user(server):
    name = f"u{uuid.uuid4().hex[:12]}"  # the server is shared: a fresh name each time
    assert server.post("/register", json_body={"username": name, "password": PASSWORD}).status == 201
    return name


def login(server, name):
    r = server.post("/login", json_body={"username": name, "password": PASSWORD})
    assert r.status == 200, f"{name} could not log in over HTTP ({r.status})"
    return r.json()


@pytest.mark.exercise("logout")
def test_a_stolen_token_stops_working_after_logout(live_server):
    """Over HTTP: after the owner logs out, a copy of the access token and of the refresh token are refused."""
    tokens = login(live_server, new_user(live_server))
    stolen = dict(tokens)  # what an attacker copied from a log, a proxy, a shared machine
    assert live_server.post("/logout", headers=bearer(tokens["access_token"])).status == 204, "logout failed"
    r = live_server.get("/protected", headers=bearer(stolen["access_token"]))
    assert r.status == 401, f"a copied access token still answered {r.status} after logout"
    r = live_server.post("/refresh", headers=bearer(stolen["refresh_token"]))
    assert r.status == 401, f"a copied refresh token still answered {r.status} after logout"


@pytest.mark.exercise("refresh-rotation")
def test_a_thief_replaying_a_refresh_token_ends_the_session(live_server):
    """Over HTTP: the owner refreshes, the thief replays the old refresh token: both are out."""
    tokens = login(live_server, new_user(live_server))
    owner = live_server.post("/refresh", headers=bearer(tokens["refresh_token"]))
    assert owner.status == 200, f"the owner's refresh answered {owner.status}"
    thief = live_server.post("/refresh", headers=bearer(tokens["refresh_token"]))
    assert thief.status == 401, f"the replayed refresh token answered {thief.status}: no reuse detection"
    r = live_server.post("/refresh", headers=bearer(owner.json()["refresh_token"]))
    assert r.status == 401, f"after reuse was detected the session's newest refresh token answered {r.status}"


@pytest.mark.exercise("refresh-rotation")
def test_simultaneous_refreshes_over_http(live_server):
    """12 simultaneous refreshes of one token to a threaded server: exactly one wins, the session ends."""
    tokens = login(live_server, new_user(live_server))

    def refresh(_):
        return live_server.post("/refresh", headers=bearer(tokens["refresh_token"]))

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(refresh, range(12)))
    codes = sorted(r.status for r in answers)
    assert codes.count(200) == 1, f"{codes.count(200)} of 12 simultaneous refreshes won: {codes}"
    assert set(codes) == {200, 401}, f"simultaneous refreshes answered {codes}"
    winner = next(r.json() for r in answers if r.status == 200)
    r = live_server.post("/refresh", headers=bearer(winner["refresh_token"]))
    assert r.status == 401, f"the winner's refresh token answered {r.status} after the reuse"


@pytest.fixture(scope="module")
def tokens(live_server):
    """A user for the fuzzing, with a refresh token of a session that stays alive."""
    return login(live_server, new_user(live_server))


@pytest.mark.exercise("revocation-check")
@property_settings(max_examples=60)
@given(path=st.sampled_from(["/refresh", "/logout", "/logout/all", "/password"]),
       method=st.sampled_from(["POST", "GET", "PUT", "DELETE"]),
       auth=st.sampled_from(["none", "access", "refresh", "garbage", "edited", "no-fam", "other-aud"]),
       body=st.one_of(st.none(), st.text(max_size=30),
                      st.dictionaries(st.sampled_from(["current_password", "new_password", "refresh_token", "x"]),
                                      st.one_of(st.text(max_size=40), st.integers(), st.none(), st.booleans()),
                                      max_size=3)))
def test_no_request_to_the_session_routes_gets_a_5xx(live_server, tokens, path, method, auth, body):
    """Random methods, bodies and (forged) tokens on /refresh, /logout, /logout/all, /password: never a 5xx."""
    access = tokens["access_token"]
    header, payload = jwt_tools.read(access)
    key = live_server.jwt_key
    forged = {
        "none": None, "access": access, "refresh": tokens["refresh_token"], "garbage": "abc.def.ghi",
        "edited": jwt_tools.with_payload(access, fam="f" * 32),
        "no-fam": jwt_tools.forge(header, {k: v for k, v in payload.items() if k != "fam"}, key),
        "other-aud": jwt_tools.forge(header, {**payload, "aud": "another_api", "iss": "another_api"}, key),
    }[auth]
    if path.startswith("/logout") and auth == "access":
        forged = None  # do not end the session the other examples use
    data = json.dumps(body).encode() if body is not None and not isinstance(body, str) else body
    headers = {"Content-Type": "application/json", **(bearer(forged) if forged else {})}
    r = live_server.request(method, path, body=data, headers=headers)
    assert r.status < 500, f"{method} {path} with {auth} token and body {body!r} answered {r.status}"
    if auth in ("garbage", "edited", "no-fam", "other-aud") and method == "POST":
        assert r.status == 401, f"POST {path} with a forged token ({auth}) answered {r.status}, expected 401"
