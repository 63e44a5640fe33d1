"""Step 04 — slow the guesser, not the owner: device cookies, one ceiling for strangers, IPv6 networks.

A per-account limit that counts every client lets a stranger lock the owner out: five guesses
a minute from anywhere, and the owner's right password answers 429 too (a pentest of this
course's API found exactly that). OWASP's answer is the device cookie ("Slow Down Online
Guessing Attacks with Device Cookies"; Authentication Cheat Sheet, "Account Lockout"): a client
that logged in to an account before brings a signed cookie and is counted on its own budget, so
only unknown clients share the account's budget. These tests attack that design in-process,
with the client address set per request (REMOTE_ADDR) as different machines would have it.
"""

from __future__ import annotations

import threading

import pytest

from tests.test_step04_rate_limiting import PASSWORD, REFUSALS, WRONG
from tests.test_step04_rate_limiting import login as attempt
from tests.verdict import check

# Every test here counts refusals through login(): one answered with a success status is json-429's.
pytestmark = REFUSALS

BOB_PASSWORD = "seven paper lanterns drift north"

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_DEFAULT": "1000 per minute",
    "RATELIMIT_REGISTER_PER_ADDRESS": "1000 per minute",
    "RATELIMIT_LOGIN_PER_ADDRESS": "1000 per minute",  # not what these tests are about
    "RATELIMIT_LOGIN_PER_ACCOUNT": "3 per minute",
    "RATELIMIT_LOGIN_PER_DEVICE": "3 per minute",
    "RATELIMIT_LOGIN_EVERYONE": "1000 per minute",
}


def login(client, address, username="alice", password=WRONG, cookie=None):
    """step 04's login attempt from ``address``, with the device cookie ``cookie`` if given."""
    return attempt(client, address, username, password, headers={"Cookie": f"login_device={cookie}"} if cookie else None)


def device_cookie(response):
    """The value of the login_device cookie a response sets, or None."""
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == "login_device":
            return rest.split(";", 1)[0]
    return None


def burn(client, username="alice", tries=8):
    """A stranger guesses from a new address each time until the account answers 429; the answers."""
    answers = [login(client, f"203.0.113.{n}", username).status_code for n in range(1, tries + 1)]
    assert 429 in answers, (
        f"{tries} wrong guesses at {username} from {tries} addresses answered {answers}: the per-account limit "
        "(3 per minute here) must stop unknown clients"
    )
    return answers


@pytest.fixture
def world(make_app):
    """An app with small per-account and per-device limits, alice and bob, and alice's device cookie."""
    app = make_app(**LIMITS)
    client = app.test_client(use_cookies=False)  # every cookie is sent by hand
    for name, password in (("alice", PASSWORD), ("bob", BOB_PASSWORD)):
        r = client.post("/register", json={"username": name, "password": password},
                        environ_base={"REMOTE_ADDR": "192.0.2.250"})
        assert r.status_code == 201, f"registering {name} answered {r.status_code}"
    r = login(client, "192.0.2.10", password=PASSWORD)
    assert r.status_code == 200, f"alice's first login answered {r.status_code}"
    cookie = device_cookie(r)
    assert cookie, ("a successful login should set a device cookie (Set-Cookie: login_device=...): "
                    "it is what lets the owner in while strangers are throttled")
    r = login(client, "192.0.2.11", username="bob", password=BOB_PASSWORD)
    assert r.status_code == 200, f"bob's first login answered {r.status_code}"

    class World:
        pass

    world = World()
    world.app, world.client, world.alice_cookie, world.bob_cookie = app, client, cookie, device_cookie(r)
    return world


@pytest.mark.exercise("login-limits")
def test_the_owner_still_logs_in_while_a_stranger_burns_the_account(world):
    """A stranger's guesses throttle strangers; the owner, from a device they used before, still logs in."""
    burn(world.client)
    r = login(world.client, "192.0.2.10", password=PASSWORD, cookie=world.alice_cookie)
    assert r.status_code == 200, (
        f"while a stranger burned alice's budget, alice herself (right password, her device cookie) got "
        f"{r.status_code}: a stranger can lock the owner out. Exempt known devices from the account's limit "
        "(exempt_when=limits.known_device) and give them a budget of their own"
    )
    r = login(world.client, "192.0.2.99", password=PASSWORD)
    assert r.status_code == 429, (
        f"an unknown client with the right password answered {r.status_code} during the attack: the account's "
        "budget is shared by every unknown client, or a guesser would simply get lucky in it"
    )


@pytest.mark.exercise("login-limits")
def test_the_device_cookie_is_private_to_the_login(world):
    """The device cookie is HttpOnly, Secure, SameSite=Strict, sent to /login only, and holds no name or password."""
    r = login(world.client, "192.0.2.10", password=PASSWORD, cookie=world.alice_cookie)
    header = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("login_device="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
    for flag in ("httponly", "secure", "samesite", "path"):
        assert flag in flags, f"the device cookie lacks {flag}: {header}"
    assert flags["samesite"].lower() == "samesite=strict" and flags["path"] == "Path=/login", header
    value = device_cookie(r)
    assert "alice" not in value and PASSWORD.split()[0] not in value, f"the device cookie shows who it is for: {value}"


@pytest.mark.exercise("login-limits")
def test_a_device_cookie_of_another_account_is_worth_nothing(world):
    """Bob's device cookie does not make bob's client a known device of alice's account."""
    burn(world.client)
    r = login(world.client, "192.0.2.11", password=PASSWORD, cookie=world.bob_cookie)
    assert r.status_code == 429, (
        f"during an attack on alice, a login for alice with bob's device cookie answered {r.status_code}: "
        "any one account's cookie would then unlock every account (a device cookie is bound to its account)"
    )


FORGERIES = {
    "a made-up value": "hello",
    "alice's cookie with one character changed": None,  # made from the real one below
    "a cookie of another app (another key)": None,
}


@pytest.mark.exercise("login-limits")
@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_device_cookie_is_worth_nothing(world, make_app, kind):
    """A device cookie that the server did not sign, or that was altered, counts as no cookie."""
    cookie = FORGERIES[kind]
    if kind.startswith("alice's"):
        real = world.alice_cookie
        position = len(real) // 2  # inside the payload or the signature: either must be refused
        cookie = real[:position] + ("A" if real[position] != "A" else "B") + real[position + 1:]
    elif kind.startswith("a cookie of another app"):
        other = make_app(**LIMITS).test_client(use_cookies=False)
        other.post("/register", json={"username": "alice", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
        cookie = device_cookie(login(other, "192.0.2.1", password=PASSWORD))
    burn(world.client)
    r = login(world.client, "198.51.100.66", password=PASSWORD, cookie=cookie)
    assert r.status_code == 429, (
        f"during an attack, a login for alice with {kind} as device cookie answered {r.status_code}: only a cookie "
        "the server signed for this account makes a known device (limits.device() checks the signature)"
    )


@pytest.mark.exercise("login-limits")
def test_a_stolen_device_cookie_buys_one_device_budget_only(world):
    """A device cookie in a guesser's hands is limited too: its own budget, not the freedom to guess."""
    answers = [login(world.client, f"198.51.100.{n}", cookie=world.alice_cookie).status_code for n in range(1, 7)]
    assert 429 in answers, (
        f"6 wrong guesses with alice's device cookie answered {answers}: a known device must have a budget of "
        "its own (RATELIMIT_LOGIN_PER_DEVICE, 3 per minute here), or a stolen cookie guesses without end"
    )


@pytest.mark.exercise("login-limits")
def test_simultaneous_guesses_with_one_device_cookie_are_all_counted(world):
    """Twelve guesses at once with one device cookie: no more than its budget gets through."""
    answers, failures, start = [], [], threading.Barrier(12)

    def guess(n):
        start.wait(timeout=10)
        try:
            answers.append(login(world.client, f"198.51.100.{n}", cookie=world.alice_cookie).status_code)
        except AssertionError as exc:  # a refusal under a success status (json-429's): raised below
            failures.append(exc)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(1, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if failures:
        raise failures[0]
    passed = [a for a in answers if a != 429]
    assert len(answers) == 12 and len(passed) <= 3, (
        f"12 simultaneous guesses with one device cookie: {len(passed)} got past the limit of 3 ({sorted(answers)}): "
        "every attempt must be counted when it is checked, not after the request (no deduct_when)"
    )


@pytest.mark.exercise("login-limits")
def test_unknown_clients_share_one_ceiling_and_known_devices_are_not_stopped_by_it(make_app):
    """All logins of unknown clients together hit one ceiling; the owners' known devices still log in."""
    app = make_app(**{**LIMITS, "RATELIMIT_LOGIN_PER_ACCOUNT": "100 per minute", "RATELIMIT_LOGIN_EVERYONE": "6 per minute"})
    client = app.test_client(use_cookies=False)
    r = client.post("/register", json={"username": "alice", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert r.status_code == 201
    cookie = device_cookie(login(client, "192.0.2.10", password=PASSWORD))  # 1 of the 6
    assert cookie, "a successful login should set a device cookie"
    answers = [login(client, f"203.0.113.{n}", username=f"user{n}").status_code for n in range(1, 9)]
    assert 429 in answers, (
        f"8 logins of 8 accounts from 8 addresses answered {answers} with a ceiling of 6 per minute for all unknown "
        "clients: a botnet spreading over accounts and addresses makes the API hash without bound "
        "(a limit keyed on limits.everyone)"
    )
    r = login(client, "192.0.2.10", password=PASSWORD, cookie=cookie)
    assert r.status_code == 200, (
        f"with the ceiling for strangers reached, alice from her known device got {r.status_code}: the ceiling must "
        "not count known devices (exempt_when=limits.known_device), or a botnet keeps every user out"
    )


def one_address_is_stopped(client, address, limit):
    """The precondition of the two tests below, which watch the key function through login's per-address
    limit (exercise 4.2's): one plain IPv4 address, alone, is stopped at the configured limit."""
    answers = [login(client, address, username=f"precondition-{n}").status_code for n in range(limit + 1)]
    check(answers[limit] == 429, "login-limits", (
        f"{limit + 1} logins from the one address {address}, each at another account, answered {answers} with "
        f"RATELIMIT_LOGIN_PER_ADDRESS = {limit} per minute: login's per-address limit does not hold at its "
        "configured value, so one address tries one password against thousands of accounts. Limit login per "
        "address with the configured limit (a callable that reads RATELIMIT_LOGIN_PER_ADDRESS, not a string "
        "typed in the decorator)"))


IPV6_SAME_HOST = ["2001:db8:1:2::1", "2001:db8:1:2:aaaa::7", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2:1234::"]


@pytest.mark.exercise("limiter-config")
@pytest.mark.exercise("login-limits", when_named=True)
def test_an_ipv6_host_cannot_take_a_new_address_for_each_guess(make_app):
    """An IPv6 client is counted by its /64: a host picks any of its 2^64 addresses at will."""
    app = make_app(**{**LIMITS, "RATELIMIT_LOGIN_PER_ADDRESS": "3 per minute", "RATELIMIT_LOGIN_PER_ACCOUNT": "100 per minute"})
    client = app.test_client(use_cookies=False)
    one_address_is_stopped(client, "192.0.2.76", 3)
    answers = []
    for address in IPV6_SAME_HOST:
        try:
            answers.append(login(client, address, username=f"victim-{len(answers)}").status_code)
        except Exception as exc:  # testing mode: a crash in the key function reaches the test
            pytest.fail(f"a login from the IPv6 address {address} crashed the app ({type(exc).__name__}: {exc}): "
                        "ipaddress.ip_network(f'{address}/64') needs strict=False for a host address", pytrace=False)
    assert answers[:3] != [429] * 3 and answers[3] == 429, (
        f"4 logins from 4 addresses of one /64 ({', '.join(IPV6_SAME_HOST)}) answered {answers} with a limit of 3 per "
        "address: each IPv6 address got a bucket of its own, so a host guesses without end. Key IPv6 clients on "
        "their /64 network (RFC 4291 §2.5.1)"
    )
    other = login(client, "2001:db8:1:3::1", username="victim-x").status_code
    assert other != 429, f"a client of another /64 (2001:db8:1:3::/64) answered {other}: only one network was limited"


@pytest.mark.exercise("limiter-config")
@pytest.mark.exercise("login-limits", when_named=True)
def test_an_ipv4_client_is_one_client_however_its_address_is_written(make_app):
    """198.51.100.7 and ::ffff:198.51.100.7 (IPv4-mapped, from a dual-stack socket) share one bucket."""
    app = make_app(**{**LIMITS, "RATELIMIT_LOGIN_PER_ADDRESS": "2 per minute", "RATELIMIT_LOGIN_PER_ACCOUNT": "100 per minute"})
    client = app.test_client(use_cookies=False)
    one_address_is_stopped(client, "192.0.2.77", 2)
    answers = [login(client, address, username=f"v{n}").status_code
               for n, address in enumerate(["198.51.100.7", "::ffff:198.51.100.7", "::ffff:198.51.100.7"])]
    assert answers[2] == 429, (
        f"3 logins from 198.51.100.7, written as IPv4 and as IPv4-mapped IPv6, answered {answers} with a limit of 2: "
        "an IPv4-mapped address is the IPv4 client (ipaddress: ip.ipv4_mapped)"
    )
