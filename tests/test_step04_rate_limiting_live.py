"""Step 04 — an outsider attacks the limits over real HTTP, from several loopback addresses.

Brute force from one address, a botnet of addresses (127.0.0.x) against one account, rotating
forwarding headers; innocent clients keep working; every 429 carries Retry-After.
"""

from __future__ import annotations

import pytest

from tests.harness import loopback_aliases_work
from tests.test_step04_rate_limiting import SMALL_LIMITS

PASSWORD = "violet kettle under a quiet moon"
WRONG = "definitely not the password"

needs_aliases = pytest.mark.skipif(
    not loopback_aliases_work(),
    reason="this machine cannot send from 127.0.0.2 (macOS: sudo ifconfig lo0 alias 127.0.0.2 up); "
           "the in-process tests cover the same properties",
)


@pytest.fixture(scope="module")
def server(start_server):
    s = start_server(**SMALL_LIMITS)
    for name in ("alice", "bob"):
        r = s.post("/register", json_body={"username": name, "password": PASSWORD}, source="127.0.0.1")
        assert r.status == 201, f"registering {name} over HTTP answered {r.status}"
    return s


def guess(server, source, username="alice", password=WRONG, headers=None):
    return server.post("/login", json_body={"username": username, "password": password},
                       source=source, headers=headers)


@pytest.mark.exercise("login-limits")
def test_brute_force_from_one_address_is_stopped(server):
    """Over HTTP, the 4th guess at alice from one address gets 429 with Retry-After."""
    answers = [guess(server, "127.0.0.1") for _ in range(5)]
    codes = [r.status for r in answers]
    assert codes[:3] == [401] * 3 and codes[3:] == [429, 429], f"brute force over HTTP: {codes}"
    assert answers[-1].headers.get("retry-after", "").isdigit(), "the 429 lacks a Retry-After header"


@needs_aliases
@pytest.mark.exercise("login-limits")
def test_a_botnet_against_one_account_is_stopped(server):
    """Guesses at bob from 127.0.0.2, .3, .4 ... share bob's limit."""
    codes = [guess(server, f"127.0.0.{i}", username="bob").status for i in range(2, 8)]
    assert codes.count(401) == 3 and set(codes[3:]) == {429}, f"6 addresses guessing bob's password: {codes}"


@needs_aliases
@pytest.mark.exercise("limiter-config")
def test_rotating_forwarding_headers_do_not_help(server):
    """From one address, a new X-Forwarded-For / X-Real-IP / Forwarded per request still hits the address limit."""
    codes = []
    for i in range(8):
        headers = {"X-Forwarded-For": f"10.1.{i}.1", "X-Real-IP": f"10.2.{i}.1", "Forwarded": f"for=10.3.{i}.1"}
        codes.append(guess(server, "127.0.0.20", username=f"nobody{i:03d}", headers=headers).status)
    assert codes[6:] == [429, 429], f"rotating forwarding headers, one address made 8 attempts: {codes}"


@needs_aliases
@pytest.mark.exercise("login-limits")
def test_innocent_clients_keep_working(server):
    """While attackers are blocked, a client at another address logs in to its own account."""
    for i in range(8):
        guess(server, "127.0.0.30", username=f"spray{i:03d}")
    r = server.post("/register", json_body={"username": "carol", "password": PASSWORD}, source="127.0.0.31")
    assert r.status == 201, f"an innocent registration answered {r.status}"
    r = guess(server, "127.0.0.32", username="carol", password=PASSWORD)
    assert r.status == 200, f"an innocent login answered {r.status} while another address was blocked"


@needs_aliases
@pytest.mark.exercise("login-limits")
def test_over_http_the_owner_logs_in_while_a_botnet_burns_the_account(server):
    """Over HTTP: dora's device cookie from an earlier login lets her in while strangers get 429."""
    r = server.post("/register", json_body={"username": "dora", "password": PASSWORD}, source="127.0.0.20")
    assert r.status == 201, f"registering dora over HTTP answered {r.status}"
    r = guess(server, "127.0.0.21", username="dora", password=PASSWORD)
    assert r.status == 200, f"dora's first login over HTTP answered {r.status}"
    set_cookie = r.headers.get("set-cookie", "")
    assert set_cookie.startswith("login_device="), f"a successful login over HTTP set no login_device cookie: {set_cookie!r}"
    cookie = set_cookie.split(";", 1)[0]
    codes = [guess(server, f"127.0.0.{i}", username="dora").status for i in range(22, 28)]
    assert 429 in codes, f"6 addresses guessing dora's password over HTTP: {codes}"
    r = guess(server, "127.0.0.21", username="dora", password=PASSWORD, headers={"Cookie": cookie})
    assert r.status == 200, (
        f"over HTTP, while a botnet burned dora's budget, dora with her device cookie got {r.status}: "
        "a stranger can lock the owner out"
    )
