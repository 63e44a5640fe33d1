"""Step 04 — stepping around the limits: exemptions, the counters' storage, a new password per guess, the wait.

The limits of test_step04_rate_limiting.py hold; these tests try the ways round them that
Flask-Limiter's own documentation and the tutorials open: a request filter or an exemption on a
header the client writes, loopback exempted (every client of a reverse proxy on the same host is
127.0.0.1), a storage typed in the constructor that the configuration cannot change, an account
key that changes with every guess, and a 429 that names the same wait whatever the limit.
"""

from __future__ import annotations

import re
import secrets

import pytest
from limits.storage import MemoryStorage as LimitsMemoryStorage

from tests.harness import error_message
from tests.test_step04_rate_limiting import (REFUSALS, SMALL_LIMITS, RecordingEnviron, call,
                                             forget_the_dead_storage, login)
from tests.verdict import check

# Headers that tools and tutorials use to spare "our own" clients from limits, and values that
# such an exemption looks for. The client writes every one of them.
EXEMPTING_HEADERS = ["X-Internal", "X-Internal-Request", "X-Bypass-Rate-Limit", "X-RateLimit-Bypass",
                     "X-Health-Check", "X-Monitoring", "X-Load-Test", "X-Admin", "X-Debug", "X-Test",
                     "X-Forwarded-For", "X-Real-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr",
                     "X-Client-IP", "X-Host", "X-Forwarded-Host", "Forwarded"]
EXEMPTING_VALUES = ["true", "1", "yes", "127.0.0.1", "localhost", "internal", "admin"]
# Not worth sending with another value: they change how the request itself is read.
PROTOCOL_HEADERS = {"Content-Type", "Content-Length", "Transfer-Encoding", "(every header)"}


def headers_read(app, method, path, **options):
    """The request headers the app reads (by name) while it answers one request, in-process only."""
    from werkzeug.test import EnvironBuilder

    environ = RecordingEnviron(EnvironBuilder(path=path, method=method, environ_base={"REMOTE_ADDR": "192.0.2.200"},
                                              **options).get_environ())
    environ.recording = True
    try:
        b"".join(app(environ, lambda status, headers, exc_info=None: None))
    finally:
        environ.recording = False
    return environ.read - PROTOCOL_HEADERS


def hostile_headers(step, app, method, path, **options):
    """The header names to try: the usual exempting ones, and (in-process) every header the app reads."""
    names = set(EXEMPTING_HEADERS)
    if not hasattr(step, "break_function"):  # grading: the app runs in a sandbox, ask it over requests only
        names |= headers_read(app, method, path, **options)
    return sorted(names)


# --------------------------------------------------------------------------------------------
# exercise 4.1 limiter-config
# --------------------------------------------------------------------------------------------


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_no_header_lifts_the_limits(step, make_app):
    """Whatever headers a client sends, with whatever value, its address is still limited."""
    app = make_app(**SMALL_LIMITS)
    client = app.test_client()
    names = hostile_headers(step, app, "GET", "/protected")
    for n, value in enumerate(EXEMPTING_VALUES):
        headers = {name: (f"for={value}" if name == "Forwarded" else value) for name in names}
        answers = [call(client, f"198.51.100.{100 + n}", headers=headers).status_code for _ in range(6)]
        assert answers[5] == 429, (
            f"6 calls of /protected from one address, each with the headers {', '.join(names)} set to {value!r}, "
            f"answered {answers} (limit 5 per minute): a header exempted the client from the limits. The client "
            "writes every header: no request_filter or exempt_when may trust one"
        )


@REFUSALS
@pytest.mark.exercise("limiter-config")
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.7", "172.17.0.1", "192.168.1.20", "fd00::7"])
def test_local_and_private_addresses_are_limited_like_any_client(limited_app, address):
    """A client at 127.0.0.1 or 10.0.0.7 is limited too: behind a reverse proxy or a load balancer, every
    client has the proxy's address."""
    client = limited_app.test_client()
    answers = [call(client, address).status_code for _ in range(6)]
    assert answers[5] == 429, (
        f"6 calls of /protected from {address} answered {answers} (limit 5 per minute): that address is exempted "
        "from the limits. Behind a reverse proxy on the same host (nginx to 127.0.0.1:5000), or a load balancer "
        "in a private network, every client comes from such an address, so nobody is limited: exempt no address"
    )


class SharedStorage(LimitsMemoryStorage):
    """An in-memory counter storage that every app configured with the same URI shares, as the
    workers of one server share Redis: the URI in RATELIMIT_STORAGE_URI says which counters."""

    STORAGE_SCHEME = ["workbook-shared"]
    shared: dict = {}

    def __new__(cls, uri=None, **options):
        if uri not in cls.shared:
            storage = super().__new__(cls)
            LimitsMemoryStorage.__init__(storage, uri, **options)
            cls.shared[uri] = storage
        return cls.shared[uri]

    def __init__(self, uri=None, **options):  # set up once, in __new__: a second app finds its counters
        pass


@REFUSALS
@pytest.mark.exercise("limiter-config")
def test_the_configured_storage_holds_the_counters(step, make_app):
    """Two workers configured with one RATELIMIT_STORAGE_URI count together: the storage is the configured one."""
    if hasattr(step, "break_function"):
        pytest.skip("the grading sandbox cannot load a storage of the tests' own; "
                    "test_step04_rate_limiting_workers.py checks the same with Redis")
    uri = f"workbook-shared://{secrets.token_hex(4)}"

    def worker():
        app = make_app(**SMALL_LIMITS, RATELIMIT_STORAGE_URI=uri)
        # A worker starts with its storage alive. Flask-Limiter keeps "the storage is dead" across
        # init_app, and takes any exception while it checks the limits (a key function that crashed
        # on an earlier test's body: login-limits') for a dead storage: from then on it counts in
        # its own memory, whatever the configuration. When grading, each app starts alive
        # (workbook/grading/host.py); here too, so that this test sees the storage, nothing else.
        forget_the_dead_storage(app)
        return app.test_client()

    try:
        first = worker()
        answers = [call(first, "198.51.100.90").status_code for _ in range(5)]
        # Another worker of the same server starts: the same configuration, so the same counters.
        second = worker()
        answers.append(call(second, "198.51.100.90").status_code)
    finally:
        SharedStorage.shared.pop(uri, None)
    assert answers[:5] == [401] * 5 and answers[5] == 429, (
        f"5 calls to one worker, then a 6th to another worker configured with the same RATELIMIT_STORAGE_URI, "
        f"answered {answers} (limit 5 per minute): the second worker did not see the first one's counters. The "
        "storage must come from the configuration (RATELIMIT_STORAGE_URI), never be typed into Limiter(...), or "
        "every gunicorn worker counts on its own"
    )


@pytest.fixture
def limited_app(make_app):
    return make_app(**SMALL_LIMITS)


# --------------------------------------------------------------------------------------------
# exercise 4.2 login-limits
# --------------------------------------------------------------------------------------------


@REFUSALS
@pytest.mark.exercise("login-limits")
def test_a_new_password_for_each_guess_shares_the_account_budget(limited_app):
    """A guesser tries a different password each time: every guess still counts against the account."""
    client = limited_app.test_client(use_cookies=False)
    answers = [login(client, f"203.0.113.{60 + n}", password=f"guess number {n} {secrets.token_hex(3)}").status_code
               for n in range(5)]
    assert answers[3:] == [429, 429], (
        f"5 guesses at alice, each with another password, answered {answers} (account limit 3 per minute): the "
        "account's key changes with the guess. Key the per-account limit on the canonical username alone, never "
        "on the password or the whole body"
    )


@REFUSALS
@pytest.mark.exercise("login-limits")
@pytest.mark.exercise("limiter-config", when_named=True)
def test_no_header_lifts_the_account_limit(step, limited_app):
    """Whatever headers a client sends, with whatever value, the account's budget holds for unknown clients."""
    client = limited_app.test_client(use_cookies=False)
    body = {"username": "alice", "password": "a wrong password"}
    names = hostile_headers(step, limited_app, "POST", "/login", json=body)
    for n, value in enumerate(EXEMPTING_VALUES):
        headers = {name: (f"for={value}" if name == "Forwarded" else value) for name in names}
        answers = [login(client, f"203.0.113.{10 * n + i}", username=f"victim{n}", headers=headers).status_code
                   for i in range(4)]
        if answers[3] != 429:
            # Which limits do these headers lift? If the default limit of /protected too, not only the
            # account's, the exemption is the limiter's own (a request_filter): exercise 4.1's.
            default = [call(client, f"198.51.100.{200 + n}", headers=headers).status_code for _ in range(6)]
            check(default[5] == 429, "limiter-config", (
                f"the headers {', '.join(names)} set to {value!r} lifted every limit: 4 guesses at one account "
                f"answered {answers} (account limit 3 per minute), and 6 calls of /protected from one address "
                f"{default} (default limit 5 per minute). The client writes every header: no request_filter "
                "may trust one"))
        check(answers[3] == 429, "login-limits", (
            f"4 guesses at one account from 4 addresses, each with the headers {', '.join(names)} set to {value!r}, "
            f"answered {answers} (account limit 3 per minute): a header exempted the guesses from the account's "
            "limit. The client writes every header: only a device cookie the server signed (limits.known_device) "
            "may exempt a login"))


# --------------------------------------------------------------------------------------------
# exercise 4.3 json-429
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("json-429")
def test_the_wait_is_the_limit_s_own(make_app):
    """A 429 of a limit per hour says to come back in about an hour, as its Retry-After does."""
    client = make_app(**{**SMALL_LIMITS, "RATELIMIT_DEFAULT": "2 per hour"}).test_client()
    answers = [call(client, "198.51.100.95") for _ in range(3)]
    r = answers[-1]
    assert r.status_code == 429, f"the 3rd call of /protected (default limit 2 per hour) answered {r.status_code}"
    retry = r.headers.get("Retry-After", "")
    assert retry.isdigit() and 3000 <= int(retry) <= 3600, f"Retry-After should be about 3600 seconds, it is {retry!r}"
    message = error_message(r.get_json(silent=True))
    numbers = [int(n) for n in re.findall(r"\d+", message)]
    assert any(abs(n - int(retry)) <= 2 for n in numbers), (
        f"with a limit of 2 per hour the 429 says {message!r}, but the limit resets in {retry} seconds (Retry-After): "
        "a client told a fixed wait retries too early, again and again. Compute the wait from the limit that was "
        "hit (limiter.current_limit.reset_at)"
    )
