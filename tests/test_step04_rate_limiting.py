"""Step 04 — rate limiting, attacked in-process: brute force, spraying, spoofed addresses.

Runs on step 4 and every later step, with small limits (no test waits for a window to pass).
The client address is set per request (`REMOTE_ADDR`), as different machines would have.
"""

from __future__ import annotations

import re
import secrets
import threading
import warnings

import pytest
from limits import parse_many

from tests.harness import error_message
from tests.verdict import check

PASSWORD = "violet kettle under a quiet moon"
WRONG = "definitely not the password"

SMALL_LIMITS = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_LOGIN_PER_ADDRESS": "6 per minute",
    "RATELIMIT_LOGIN_PER_ACCOUNT": "3 per minute",
    "RATELIMIT_REGISTER_PER_ADDRESS": "4 per minute",
    "RATELIMIT_DEFAULT": "5 per minute",
}


@pytest.fixture
def limited(make_app):
    """A client of an app with small limits and the account alice (registered from its own address).

    It keeps no cookies: each request comes from an unknown client (no device cookie), as an
    attacker's would. Tests of device cookies send the Cookie header themselves.
    """
    client = make_app(**SMALL_LIMITS).test_client(use_cookies=False)
    r = client.post("/register", json={"username": "alice", "password": PASSWORD},
                    environ_base={"REMOTE_ADDR": "192.0.2.250"})
    assert r.status_code == 201, f"registering alice answered {r.status_code}"
    return client


# Where a refusal's status belongs: the limiter refuses, the 429 handler (exercise 4.3) answers. The
# requests whose refusals the tests count go through login(), call() or register(), which check first
# that a refusal is not answered with a success status (a 429 handler that drops its status answers
# 200); the tests that use them are marked REFUSALS, so that such a failure is reported under json-429,
# not under the limit the test is about (4.1's or 4.2's).
REFUSALS = pytest.mark.exercise("json-429", when_named=True)


def refusal_is_a_429(r, what, success):
    """``r``, once it is checked that it is not the limiter's refusal under a success status.

    ``success(r)`` says whether ``r`` is the route's own success (a login's token, a registration's 201).
    A 2xx or 3xx answer that is not, and that carries the limiter's Retry-After or X-RateLimit-* headers
    or an error message, is a refusal: the view would have answered otherwise (401 for a wrong password
    or no token). Its status is the 429 handler's."""
    if r.status_code < 400 and not success(r):
        signs = [name for name in ("Retry-After", "X-RateLimit-Remaining") if name in r.headers]
        message = error_message(r.get_json(silent=True))
        if signs or message:
            check(False, "json-429", (
                f"{what} was refused ({', '.join(signs + (['the message ' + repr(message)] if message else []))}, "
                f"no token) but answered {r.status_code}: clients, monitors and scripts read the status, and a "
                "refusal under a success status reads as success. The 429 handler must give its answer the "
                "status 429 (return body, 429)"))
    return r


def has_token(r):
    body = r.get_json(silent=True)
    return isinstance(body, dict) and "access_token" in body


def login(client, address, username="alice", password=WRONG, headers=None):
    r = client.post("/login", json={"username": username, "password": password},
                    environ_base={"REMOTE_ADDR": address}, headers=headers or {})
    return refusal_is_a_429(r, f"a login at {username!r} from {address}", success=has_token)


def call(client, address, headers=None):
    """GET /protected without a token, from ``address``: limited by RATELIMIT_DEFAULT (5 per minute) per
    address — the limiter's own key, whatever login's limits (exercise 4.2) do."""
    r = client.get("/protected", environ_base={"REMOTE_ADDR": address}, headers=headers or {})
    return refusal_is_a_429(r, f"a call of /protected without a token from {address}", success=lambda r: False)


def register(client, address, username, password=PASSWORD):
    r = client.post("/register", json={"username": username, "password": password},
                    environ_base={"REMOTE_ADDR": address})
    return refusal_is_a_429(r, f"registering {username!r} from {address}", success=lambda r: r.status_code == 201)


def statuses(responses):
    return [r.status_code for r in responses]


# --------------------------------------------------------------------------------------------
# exercise 4.2 login-limits
# --------------------------------------------------------------------------------------------


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_one_address_guessing_one_account_is_stopped(limited):
    """Brute force: the 4th guess at one account within the window gets 429."""
    answers = statuses(login(limited, "198.51.100.7") for _ in range(5))
    assert answers[:3] == [401, 401, 401], f"the first guesses should be answered normally: {answers}"
    assert answers[3:] == [429, 429], f"guessing went on after the account's limit (3 per minute): {answers}"


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_many_addresses_guessing_one_account_are_stopped(limited):
    """A botnet: guesses at one account from many addresses share the account's limit."""
    answers = statuses(login(limited, f"203.0.113.{i}") for i in range(1, 7))
    assert answers.count(401) == 3 and answers[3:] == [429, 429, 429], (
        f"6 addresses made 6 guesses at alice: {answers}. The per-account limit (3 per minute) must "
        "hold whatever the address (key the limit on the canonical username)"
    )


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_look_alike_names_share_the_account_limit(limited):
    """"ALICE" and "ａｌｉｃｅ" are alice: they cannot multiply the account's guesses."""
    answers = statuses(login(limited, f"203.0.113.{i}", username=u)
                       for i, u in enumerate(["alice", "ALICE", "ａｌｉｃｅ", "Alice", "aLiCe"], start=1))
    assert answers[3:] == [429, 429], f"look-alike names got past the account limit: {answers}"


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_one_address_spraying_many_accounts_is_stopped(limited):
    """Credential stuffing: one address trying a different account each time hits the address limit."""
    answers = statuses(login(limited, "198.51.100.9", username=f"user{i:03d}") for i in range(8))
    assert answers[:6] == [401] * 6 and answers[6:] == [429, 429], (
        f"one address tried 8 accounts: {answers}; the per-address limit (6 per minute) must stop it"
    )


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_other_clients_are_not_affected_by_one_clients_limit(limited):
    """When one address is blocked, another address logging in to another account is not."""
    for i in range(8):
        login(limited, "198.51.100.9", username=f"user{i:03d}")
    r = register(limited, "192.0.2.251", "bob")
    assert r.status_code == 201
    ok = login(limited, "192.0.2.99", username="bob", password=PASSWORD)
    assert ok.status_code == 200, f"an innocent client was refused ({ok.status_code}) because of another's limit"


HOSTILE_LOGINS = {
    "a JSON list": ("application/json", '["alice", "x"]'),
    "a JSON string": ("application/json", '"alice"'),
    "JSON null": ("application/json", "null"),
    "malformed JSON": ("application/json", '{"username": '),
    "nested 5,000 deep": ("application/json", "[" * 5000 + "]" * 5000),
    "a number as username": ("application/json", '{"username": 42, "password": "x"}'),
    "a list as username": ("application/json", '{"username": ["alice"], "password": "x"}'),
    "a lone surrogate": ("application/json", '{"username": "\\ud800", "password": "x"}'),
    "text/plain": ("text/plain", '{"username": "alice", "password": "x"}'),
}


@pytest.mark.exercise("login-limits")
@pytest.mark.parametrize("kind", HOSTILE_LOGINS)
def test_the_account_key_survives_any_body(limited, kind):
    """With the limits on, a login body of any shape gets a 4xx: the per-account key never crashes first."""
    content_type, body = HOSTILE_LOGINS[kind]
    try:
        r = limited.post("/login", data=body, content_type=content_type, environ_base={"REMOTE_ADDR": "198.51.100.80"})
    except Exception as exc:  # testing mode: an exception in a key function reaches the test
        pytest.fail(f"a login with {kind} crashed the app ({type(exc).__name__}, a 500 in production): the account "
                    "key function runs before the view, so it must cope with any body "
                    "(request.get_json(silent=True), check the types, catch RecursionError)", pytrace=False)
    assert 400 <= r.status_code < 500, (
        f"a login with {kind} answered {r.status_code}: the key function runs before the view, so it "
        "must cope with any body (request.get_json(silent=True), check the types, catch RecursionError)"
    )


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_every_attempt_counts_successful_ones_too(limited):
    """Every login attempt counts against the account's limit, a successful one too (count every attempt)."""
    answers = [login(limited, "198.51.100.12", password=PASSWORD).status_code for _ in range(3)]
    assert answers == [200, 200, 200], f"alice's own logins answered {answers}"
    r = login(limited, "198.51.100.13")
    assert r.status_code == 429, (
        f"after 3 logins at alice (limit 3 per minute), a 4th attempt answered {r.status_code}: successful "
        "attempts were not counted. A limit that counts only failures (deduct_when) checks before and counts "
        "after the request, so a burst of simultaneous guesses all pass the check: count every attempt"
    )


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_simultaneous_guesses_are_all_counted(step, make_app):
    """Guesses sent at the same moment all count: no burst gets past the account's limit (count every attempt)."""
    if hasattr(step, "break_function"):
        pytest.skip("the grading sandbox answers one request at a time; "
                    "test_every_attempt_counts_successful_ones_too checks the same rule")
    # OWASP's minimum argon2id cost (~20 ms a check): simultaneous guesses overlap, as a botnet's would.
    client_app = make_app(**{**SMALL_LIMITS, "RATELIMIT_LOGIN_PER_ADDRESS": "100 per minute"},
                          ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=4096, ARGON2_PARALLELISM=1)
    assert client_app.test_client().post("/register", json={"username": "alice", "password": PASSWORD}).status_code == 201
    guesses = 8
    start = threading.Barrier(guesses)
    codes = [None] * guesses
    failures = []

    def guess(i):
        client = client_app.test_client()
        start.wait()
        try:
            codes[i] = login(client, f"203.0.113.{i + 1}", password=f"wrong guess number {i}").status_code
        except AssertionError as exc:  # a refusal under a success status (json-429's): raised below
            failures.append(exc)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if failures:
        raise failures[0]
    assert codes.count(401) <= 3, (
        f"{guesses} simultaneous guesses at alice answered {codes}: {codes.count(401)} were checked, the account's "
        "limit is 3. A limit that counts only failures (deduct_when) checks before and counts after the request, "
        "so a burst of guesses all pass the check: count every attempt"
    )


# --------------------------------------------------------------------------------------------
# exercise 4.1 limiter-config: which address is the client's
# --------------------------------------------------------------------------------------------

SPOOFING_HEADERS = ["X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Client-IP", "True-Client-IP"]


@REFUSALS
@pytest.mark.exercise("limiter-config")
@pytest.mark.parametrize("header", SPOOFING_HEADERS)
def test_forwarding_headers_cannot_pick_a_new_bucket(limited, header):
    """Rotating X-Forwarded-For (or X-Real-IP, Forwarded...) does not escape the address limit."""
    answers = []
    for i in range(7):
        value = f"for=10.9.{i}.1" if header == "Forwarded" else f"10.9.{i}.1"
        answers.append(call(limited, "198.51.100.20", headers={header: value}).status_code)
    assert answers[5:] == [429, 429], (
        f"with a new {header} on every request, one address made 7 calls: {answers} (limit 5 per minute). The "
        "client chooses that header: key the limit on request.remote_addr"
    )


class RecordingEnviron(dict):
    """A WSGI environ that notes which request headers (HTTP_*) are read while ``recording``."""

    recording = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def _note(self, key):
        if self.recording and isinstance(key, str) and key.startswith("HTTP_"):
            self.read.add(key[5:].replace("_", "-").title())

    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)

    def items(self):
        if self.recording:
            self.read.add("(every header)")
        return super().items()

    def __iter__(self):
        if self.recording:
            self.read.add("(every header)")
        return super().__iter__()


# Headers that claim to carry the client's address, as CDNs, load balancers and proxies name them,
# and a random name: the black-box form of the check below, for the grading sandbox.
CLIENT_ADDRESS_HEADERS = ["X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Client-IP", "True-Client-IP",
                          "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP", "X-Original-Forwarded-For",
                          "X-Forwarded", "Forwarded-For", "Client-IP", "X-ProxyUser-Ip", "X-Azure-ClientIP",
                          "X-Envoy-External-Address", "X-Appengine-User-IP", "Akamai-Client-IP", "X-Remote-Addr",
                          "X-Originating-IP", "Remote-Addr"]


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_no_client_header_chooses_the_address_bucket(step, make_app):
    """No header the client writes, whatever its name, decides the per-address key: it is the TCP peer's address."""
    from werkzeug.test import EnvironBuilder

    app = make_app(**SMALL_LIMITS)
    if hasattr(step, "break_function"):  # grading: the app runs in a sandbox; ask it over requests only
        names = CLIENT_ADDRESS_HEADERS + [f"X-{secrets.token_hex(4)}-Addr"]
        client = app.test_client()
        answers = [call(client, "198.51.100.23",
                        headers={name: (f"for=10.8.{i}.1" if name == "Forwarded" else f"10.8.{i}.1")
                                 for name in names}).status_code for i in range(7)]
        assert answers[5:] == [429, 429], (
            f"with new client-address headers on every request, one address made 7 calls: {answers}. The "
            "client writes every header: key the limit on the TCP peer's address (get_remote_address)")
        return
    limiters = list(app.extensions.get("limiter", ()))
    assert limiters, "the app has no Flask-Limiter (limiter.init_app(app))"
    # Headers of every kind, with names nobody would list (the key must not depend on any header at all).
    headers = {"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.8", "Forwarded": "for=10.9.9.7",
               "CF-Connecting-IP": "10.9.9.6", "True-Client-IP": "10.9.9.5", "Fastly-Client-IP": "10.9.9.4",
               f"X-{secrets.token_hex(4)}-Client": "10.9.9.3"}
    keys = {}
    for address in ("198.51.100.21", "198.51.100.22"):
        environ = RecordingEnviron(EnvironBuilder(path="/login", method="POST", headers=headers,
                                                  environ_base={"REMOTE_ADDR": address}).get_environ())
        with app.request_context(environ):
            environ.recording = True
            try:
                keys[address] = {str(limiter._key_func()) for limiter in limiters}
            finally:
                environ.recording = False
        assert not environ.read, (
            f"the per-address rate-limit key reads the request header(s) {', '.join(sorted(environ.read))}: "
            "the client writes every header, so it can pick a fresh bucket for each guess. Key the limit on "
            "the TCP peer's address (get_remote_address); trust a proxy's header only through ProxyFix"
        )
    assert keys["198.51.100.21"] != keys["198.51.100.22"], (
        "two different client addresses got the same per-address key: the key must be the client's address"
    )


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_behind_one_trusted_proxy_the_forwarded_address_counts(make_app):
    """With TRUSTED_PROXY_COUNT=1, the address the proxy appended is the client; prepending fakes does not help."""
    client = make_app(**SMALL_LIMITS, TRUSTED_PROXY_COUNT=1).test_client()
    proxy = "10.0.0.2"
    # The real client 198.51.100.30 sends 8 guesses, writing a different fake address first each time;
    # the proxy appends the real one, and only that last entry is trusted.
    answers = [call(client, proxy, headers={"X-Forwarded-For": f"10.66.{i}.1, 198.51.100.30"}).status_code
               for i in range(7)]
    assert answers[5:] == [429, 429], f"fake entries in X-Forwarded-For escaped the limit: {answers}"
    # Another client behind the same proxy has a bucket of its own.
    other = call(client, proxy, headers={"X-Forwarded-For": "198.51.100.31"})
    assert other.status_code == 401, (
        f"a second client behind the proxy was refused ({other.status_code}): with TRUSTED_PROXY_COUNT=1 "
        "the app must use ProxyFix(x_for=1)"
    )


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_without_trusted_proxies_the_proxy_is_the_client(make_app):
    """With TRUSTED_PROXY_COUNT=0 (the default), X-Forwarded-For is ignored: the peer is the client."""
    client = make_app(**SMALL_LIMITS).test_client()
    answers = [call(client, "10.0.0.2", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
               for i in range(7)]
    assert answers[5:] == [429, 429], f"X-Forwarded-For was trusted without TRUSTED_PROXY_COUNT: {answers}"


# --------------------------------------------------------------------------------------------
# exercise 4.3 json-429
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("json-429")
def test_429_is_json_and_says_when_to_retry(limited):
    """A 429 is JSON with a message, and carries Retry-After and X-RateLimit-* headers."""
    for _ in range(5):
        limited.get("/protected", environ_base={"REMOTE_ADDR": "198.51.100.40"})
    r = limited.get("/protected", environ_base={"REMOTE_ADDR": "198.51.100.40"})
    assert r.status_code == 429, f"the 6th call of /protected (default limit 5 per minute) answered {r.status_code}"
    assert r.is_json, f"the 429 is {r.content_type}, not JSON: a JSON API answers in JSON"
    assert error_message(r.get_json()), "the 429 should say what happened (in 'msg', or 'detail' from step 05)"
    retry = r.headers.get("Retry-After", "")
    assert retry.isdigit() and 1 <= int(retry) <= 60, f"Retry-After should be 1-60 seconds, it is {retry!r}"
    message = error_message(r.get_json())
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    assert any(abs(n - int(retry)) <= 2 for n in numbers), (
        f"the 429 says {message!r}: it should say when to come back, in seconds (Retry-After says {retry}); "
        "limiter.current_limit.reset_at is when the limit resets"
    )
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name in r.headers, f"the 429 lacks the {name} header"


# --------------------------------------------------------------------------------------------
# Registration, the default limit, /health, the storage
# --------------------------------------------------------------------------------------------


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_registration_is_limited_per_address(make_app):
    """Registering many accounts (or probing which names are taken) from one address is limited."""
    client = make_app(**SMALL_LIMITS).test_client()
    answers = [register(client, "198.51.100.50", f"new{i:03d}").status_code for i in range(6)]
    assert answers == [201] * 4 + [429, 429], f"registration from one address: {answers} (limit 4 per minute)"


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_other_routes_have_the_default_limit(limited):
    """Routes without a limit of their own get RATELIMIT_DEFAULT."""
    answers = statuses(call(limited, "198.51.100.60") for _ in range(7))
    assert answers[:5] == [401] * 5 and answers[5:] == [429, 429], f"/protected from one address: {answers}"


@pytest.mark.exercise("limiter-config")
def test_health_is_not_limited(limited):
    """Load balancers may poll /health as often as they like."""
    answers = statuses(limited.get("/health") for _ in range(30))
    assert answers == [200] * 30, f"/health was limited: {answers}"


@pytest.mark.exercise("login-limits")
def test_production_limits_are_explicit_and_bounded(make_app):
    """The default configuration limits login per address and per account, to at most 100 guesses a day."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Flask-Limiter's "no storage was explicitly specified"
        app = make_app(RATELIMIT_ENABLED=None, RATELIMIT_STORAGE_URI=None)
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://", "the default storage should be explicitly memory://"
    assert app.config["RATELIMIT_ENABLED"] is True, "rate limiting must be on by default"
    per_account = parse_many(app.config["RATELIMIT_LOGIN_PER_ACCOUNT"])
    per_day = [item for item in per_account if item.get_expiry() <= 24 * 3600]
    assert per_day and min(item.amount * (24 * 3600 // item.get_expiry()) for item in per_day) <= 100, (
        "one account must not allow more than 100 guesses a day"
    )
    assert parse_many(app.config["RATELIMIT_LOGIN_PER_ADDRESS"]), "login needs a per-address limit"


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_an_unreachable_redis_still_limits(make_app, request):
    """If the counter storage is down, limits fall back to memory: no 500, and guessing is still stopped."""
    app = make_app(**SMALL_LIMITS, RATELIMIT_STORAGE_URI="redis://127.0.0.1:9")
    request.addfinalizer(lambda: forget_the_dead_storage(app))
    client = app.test_client()
    r = client.post("/register", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 201, f"with Redis down, registration answered {r.status_code}"
    answers = statuses(call(client, "198.51.100.70") for _ in range(7))
    assert all(s < 500 for s in answers), f"with Redis down, requests crashed: {answers}"
    assert answers[5:] == [429, 429], f"with Redis down, requests were not limited: {answers}"


def forget_the_dead_storage(app):
    """Flask-Limiter 4.1.1 keeps "the storage is dead" across init_app (one Limiter per step module),
    and its fallback re-checks the storage on a back-off of 1, 2, 4... seconds: a later test's app
    would switch from the fallback's counters to its own storage's in the middle of a test. Undo it
    (in-process; when grading, the app host does the same for every app it builds: workbook/grading/host.py)."""
    for limiter in getattr(app, "extensions", {}).get("limiter", ()):
        limiter._storage_dead = False
