"""Step 07 — lifetimes, on the clock: an access token of 1 second, a session of 3 seconds (2 s of margin for a busy machine).

Short lifetimes from the configuration (seconds, as FLASK_JWT_*_EXPIRES=1 would set them) and
bounded polling, never a sleep through a real 15-minute window. In-process, but not in
`check --quick`: these wait a couple of seconds.
"""

from __future__ import annotations

import time

import pytest

from tests import jwt_tools

PASSWORD = "violet kettle under a quiet moon"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def wait_until(moment, bound=5.0):
    """Poll until time.time() is past `moment` (epoch seconds), at most `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.time() <= moment and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def client(make_app):
    app = make_app(JWT_ACCESS_TOKEN_EXPIRES=1, JWT_REFRESH_TOKEN_EXPIRES=3)
    client = app.test_client()
    assert client.post("/register", json={"username": "alice", "password": PASSWORD}).status_code == 201
    return client


def login(client):
    r = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200, f"login answered {r.status_code}"
    return r.get_json()


@pytest.mark.exercise("refresh-rotation")
def test_short_access_tokens_a_refresh_and_the_session_end(client):
    """A 1 s access token expires (401) and the refresh token renews it; the renewed session still ends
    when the login's would have (3 s), and then the refresh token is refused. One clock, about 3 s."""
    tokens = login(client)
    claims = jwt_tools.read(tokens["refresh_token"])[1]
    wait_until(jwt_tools.read(tokens["access_token"])[1]["exp"])
    r = client.get("/protected", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401, f"an expired access token answered {r.status_code}"
    r = client.post("/refresh", headers=bearer(tokens["refresh_token"]))
    assert r.status_code == 200, f"the refresh after the access token expired answered {r.status_code}"
    renewed = r.get_json()
    assert client.get("/protected", headers=bearer(renewed["access_token"])).status_code == 200, (
        "the renewed access token does not work")
    ends = jwt_tools.read(renewed["refresh_token"])[1]["exp"]
    assert ends <= claims["exp"], (
        f"the refreshed session ends {ends - claims['exp']} s later than the login's: refreshing "
        "lengthens a session, so a stolen one can be kept alive forever")
    wait_until(claims["exp"])
    r = client.post("/refresh", headers=bearer(renewed["refresh_token"]))
    assert r.status_code == 401, f"a refresh after the session's end answered {r.status_code}"
