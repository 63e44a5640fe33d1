"""Step 05 — error handling, attacked in-process: every error one shape, nothing leaked, all logged.

Runs on step 5 and every later step.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from werkzeug.http import HTTP_STATUS_CODES

from tests import jwt_tools
from tests.verdict import check
from tests.harness import property_settings, strong_key

PASSWORD = "violet kettle under a quiet moon"
PROBLEM = "application/problem+json"
# RFC 9110's newer phrases, where Werkzeug still has the old ones (LIBRARY-FACTS §9).
RFC_9110_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def is_problem(r, status):
    """Why the response is not an RFC 9457 problem with this status ("" when it is)."""
    if r.status_code != status:
        return f"answered {r.status_code}, expected {status}"
    if r.mimetype != PROBLEM:
        return f"answered {r.mimetype}, not {PROBLEM}"
    body = r.get_json(silent=True)
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    missing = [k for k in ("type", "title", "status") if k not in body]
    if missing:
        return f"the problem lacks {missing} (RFC 9457)"
    if body["status"] != status:
        return f"the body's status is {body['status']!r}, the HTTP status {status}: they must be equal"
    if not body.get("request_id"):
        return "the problem lacks a request_id to quote"
    return ""


NOT_FOUND = "/no/such/thing"


def shape_is_the_fault(r, status) -> bool:
    """The app's problem() answered (the body has RFC 9457 members), with the right status, but the
    document is wrong: the fix belongs in problem() (5.1), not in whoever called it."""
    return r.status_code == status and made_by_problem(r) and bool(is_problem(r, status))


def made_by_problem(r) -> bool:
    """The answer comes from the app's problem(): problem+json, or a body with RFC 9457 members."""
    body = r.get_json(silent=True)
    return r.mimetype == PROBLEM or (isinstance(body, dict) and ("type" in body or "title" in body))


def problem_sends_no_status(client) -> bool:
    """Do the app's problem documents go out with another HTTP status than the one they name? Asked of
    the app's 404 for an unknown path, which nothing but problem() (5.1) answers."""
    r = client.get(NOT_FOUND)
    body = r.get_json(silent=True)
    return isinstance(body, dict) and body.get("status") == 404 and r.status_code != 404


def status_is_problems_fault(r, status, client) -> str:
    """Why the wrong HTTP status is problem()'s fault (5.1), "" when it is not: the app's problem
    document names the expected status but goes out with another, and so does its 404 — problem()
    does not set the response's status, whoever calls it. (A caller that changes the status of a
    right problem, as a loader answering 422 would, leaves the 404 alone: the fix is the caller's.)"""
    body = r.get_json(silent=True)
    if r.status_code == status or not made_by_problem(r) or not isinstance(body, dict) or body.get("status") != status:
        return ""
    if not problem_sends_no_status(client):
        return ""
    return (f"the problem document says \"status\": {status} but the answer goes out {r.status_code}, and so does "
            f"the 404 of an unknown path: problem() must set the response's HTTP status to the status it names "
            "(RFC 9457 §3.1.2): clients, caches and monitors read the status line, not the body")


def http_errors_become_500s(r, status, client) -> bool:
    """A client's error answered as a bug: a 500 problem where a 4xx was due, and the 404 of an unknown
    path — which no code of the app can raise as a bug — is a 500 too. Only the last resort (5.3)
    answers 500: it caught the HTTPExceptions that errorhandler(HTTPException) should answer."""
    if status >= 500 or r.status_code != 500 or not made_by_problem(r):
        return False
    probe = r if status == 404 else client.get(NOT_FOUND)
    return probe.status_code == 500


def the_library_answered(r) -> bool:
    """Flask-JWT-Extended's own answer to a token failure — {"msg": ...} as application/json, no request
    id, no challenge: the app's loader for it (5.2) never ran."""
    body = r.get_json(silent=True)
    return (r.mimetype == "application/json" and isinstance(body, dict) and set(body) == {"msg"}
            and "WWW-Authenticate" not in r.headers)


SWALLOWED = ("{kind} answered 500 instead of {status}, as the 404 of an unknown path does: the handler for bugs "
             "caught an HTTP error (an HTTPException is an Exception too). Keep errorhandler(HTTPException) for "
             "HTTP errors, or hand them on (if isinstance(error, HTTPException): return http_error(error))")


def token_for(client, username="alice"):
    assert client.post("/register", json={"username": username, "password": PASSWORD}).status_code == 201
    r = client.post("/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, f"login answered {r.status_code}"
    return r.get_json()["access_token"]


# --------------------------------------------------------------------------------------------
# exercise 5.1 problem-details
# --------------------------------------------------------------------------------------------

ERRORS = {
    "404 unknown path": (lambda c: c.get(NOT_FOUND), 404),
    "405 wrong method": (lambda c: c.delete("/login"), 405),
    "413 oversized body": (lambda c: c.post("/login", data="x" * 20_000, content_type="application/json"), 413),
    "415 not JSON": (lambda c: c.post("/login", data="username=a", content_type="text/plain"), 415),
    "400 malformed JSON": (lambda c: c.post("/login", data="{", content_type="application/json"), 400),
    "400 a JSON list": (lambda c: c.post("/register", json=[1, 2]), 400),
    "400 invalid fields": (lambda c: c.post("/register", json={"username": "a", "password": "b"}), 400),
    "401 bad credentials": (lambda c: c.post("/login", json={"username": "nobody", "password": "x"}), 401),
    "401 no token": (lambda c: c.get("/protected"), 401),
}


# The HTTP errors (HTTPExceptions: Flask's, Werkzeug's, abort()) that a catch-all for bugs (5.3) could
# swallow, and the error a missing unauthorized_loader (5.2) leaves to Flask-JWT-Extended: a failure
# of theirs is reported there when the answer shows it.
HTTP_ERROR_KINDS = {"404 unknown path", "405 wrong method", "413 oversized body", "415 not JSON", "400 malformed JSON"}
TOKEN_ERROR_KINDS = {"401 no token"}


def error_case(kind):
    marks = []
    if kind in HTTP_ERROR_KINDS:
        marks.append(pytest.mark.exercise("last-resort", when_named=True))
    if kind in TOKEN_ERROR_KINDS:
        marks.append(pytest.mark.exercise("jwt-loaders", when_named=True))
    return pytest.param(kind, marks=marks, id=kind)


@pytest.mark.exercise("problem-details")
@pytest.mark.parametrize("kind", [error_case(kind) for kind in ERRORS])
def test_every_error_is_a_problem_document(client, kind):
    """Every error answers application/problem+json with type, title, status (= the HTTP status) and a request id."""
    send, status = ERRORS[kind]
    r = send(client)
    if kind in TOKEN_ERROR_KINDS:
        check(not the_library_answered(r), "jwt-loaders",
              f"{kind}: Flask-JWT-Extended answered itself ({r.get_json(silent=True)}, {r.mimetype}, no challenge): "
              "the app's unauthorized_loader never ran. Register one that answers the 401 problem")
    if kind in HTTP_ERROR_KINDS:
        check(not http_errors_become_500s(r, status, client), "last-resort", SWALLOWED.format(kind=kind, status=status))
    why = is_problem(r, status)
    assert not why, f"{kind}: {why}"
    types = r.headers.getlist("Content-Type")
    assert len(types) == 1, (
        f"{kind}: the answer carries {len(types)} Content-Type headers ({types}): a client may read any of them, "
        "the HTML one too. Copy the error's own headers except its Content-Type"
    )
    body = r.get_json()
    assert body["type"] == "about:blank" and body["title"], f"{kind}: type 'about:blank' needs the status's title"
    phrases = {HTTP_STATUS_CODES.get(status), RFC_9110_PHRASES.get(status)}
    assert body["title"] in phrases, (
        f"{kind}: the title is {body['title']!r}; with type about:blank it is the status's phrase "
        f"({HTTP_STATUS_CODES.get(status)!r}), the same for every such error (RFC 9457 §4.2.1); "
        "what happened this time goes in 'detail'"
    )


@pytest.mark.exercise("problem-details")
def test_no_error_answer_echoes_what_was_sent(client):
    """An error answer says what is wrong, never what was sent: the password does not come back."""
    secret = "a passphrase nobody may see again 7f3a"
    attempts = {
        "a failed login": lambda: client.post("/login", json={"username": "nobody", "password": secret}),
        "an invalid registration": lambda: client.post("/register", json={"username": "a", "password": secret}),
        "an unknown field": lambda: client.post("/login", json={"username": "x", "password": secret, "role": "admin"}),
    }
    for kind, send in attempts.items():
        r = send()
        assert r.status_code >= 400, f"{kind} answered {r.status_code}"
        assert secret not in r.get_data(as_text=True), (
            f"the answer to {kind} echoes the submitted password: error answers end up in logs, proxies and "
            "browser histories. A problem says what is wrong, never what was sent"
        )


@pytest.mark.exercise("problem-details")
def test_validation_problems_keep_the_messages_per_field(client):
    """A 400 for a bad body carries the per-field messages in the "errors" extension member."""
    r = client.post("/register", json={"username": "a", "password": "short", "role": "admin"})
    assert not is_problem(r, 400), is_problem(r, 400)
    assert set(r.get_json().get("errors", {})) >= {"username", "password", "role"}, (
        f"the problem should list the fields' messages under 'errors': {r.get_json()}"
    )


@pytest.mark.exercise("problem-details")
@pytest.mark.exercise("last-resort", when_named=True)
def test_405_keeps_its_allow_header(client):
    """The 405 problem still says which methods are allowed (Allow header)."""
    r = client.delete("/login")
    check(not http_errors_become_500s(r, 405, client), "last-resort",
          SWALLOWED.format(kind="DELETE /login", status=405) + "; the 500 has no Allow header either")
    assert "POST" in r.headers.get("Allow", ""), "the 405 lost its Allow header"


@pytest.mark.exercise("problem-details")
def test_429_is_a_problem_that_keeps_its_headers(make_app):
    """A 429 is a problem too, and keeps Retry-After and X-RateLimit-*."""
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2 per minute").test_client()
    for _ in range(2):
        client.get("/protected")
    r = client.get("/protected")
    assert not is_problem(r, 429), is_problem(r, 429)
    assert r.headers.get("Retry-After", "").isdigit(), "the 429 problem lost its Retry-After header"
    assert "X-RateLimit-Limit" in r.headers, "the 429 problem lost its X-RateLimit-* headers"


# --------------------------------------------------------------------------------------------
# exercise 5.2 jwt-loaders
# --------------------------------------------------------------------------------------------


def token_failures(app):
    """Every way a token can fail, as the Authorization header to send (None: no header)."""
    client = app.test_client()
    token = token_for(client)
    header, payload = jwt_tools.read(token)
    key = app.config["JWT_SECRET_KEY"]
    past = int((datetime.now(timezone.utc) - timedelta(minutes=5)).timestamp())
    return client, {
        "no token": None,
        "wrong scheme (Token ...)": f"Token {token}",
        "lower-case bearer": f"bearer {token}",
        "malformed": "Bearer abc",
        "empty": "Bearer ",
        "alg none": "Bearer " + jwt_tools.forge({"alg": "none", "typ": "JWT"}, payload),
        "edited payload": "Bearer " + jwt_tools.with_payload(token, sub="2"),
        "another key": "Bearer " + jwt_tools.forge(header, payload, strong_key()),
        "HS512": "Bearer " + jwt_tools.forge({**header, "alg": "HS512"}, payload, key),
        "expired": "Bearer " + jwt_tools.forge(header, {**payload, "exp": past, "iat": past - 900, "nbf": past - 900}, key),
        "subject not a string": "Bearer " + jwt_tools.forge(header, {**payload, "sub": 1}, key),
        "a refresh token": "Bearer " + jwt_tools.forge(header, {**payload, "type": "refresh"}, key),
        "a deleted user": "Bearer " + jwt_tools.forge(header, {**payload, "sub": "4242"}, key),
    }


TOKEN_FAILURES = ["no token", "wrong scheme (Token ...)", "lower-case bearer", "malformed", "empty", "alg none",
                  "edited payload", "another key", "HS512", "expired", "subject not a string", "a refresh token",
                  "a deleted user"]


@pytest.mark.exercise("jwt-loaders")
@pytest.mark.exercise("problem-details", when_named=True)
@pytest.mark.parametrize("kind", TOKEN_FAILURES)
def test_every_token_failure_is_a_401_problem(app, kind):
    """Missing, malformed, forged, expired or wrong-type tokens all get 401 problem+json with WWW-Authenticate: Bearer."""
    client, failures = token_failures(app)
    value = failures[kind]
    try:
        r = client.get("/protected", headers={"Authorization": value} if value is not None else {})
    except Exception as exc:  # testing mode: an exception raised in a loader reaches the test
        pytest.fail(f"a token that is '{kind}' crashed the app in its loader ({type(exc).__name__}: {exc}), a 500 in "
                    "production: Flask-JWT-Extended 4 calls unauthorized_loader and invalid_token_loader with a reason, "
                    "expired_token_loader and the others with (jwt_header, jwt_payload)", pytrace=False)
    why = is_problem(r, 401)
    status_fault = status_is_problems_fault(r, 401, client) if why else ""
    check(not why, "problem-details" if status_fault or shape_is_the_fault(r, 401) else "jwt-loaders",
          f"a token that is '{kind}': {status_fault}" if status_fault else
          f"a token that is '{kind}' {why} (Flask-JWT-Extended answers 422 by default: use its loaders)")
    challenge = r.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), f"the 401 for '{kind}' lacks WWW-Authenticate: Bearer (RFC 6750 §3)"


@pytest.mark.exercise("jwt-loaders")
def test_no_token_gets_a_challenge_without_an_error_code(client):
    """RFC 6750 §3: when no token was sent, WWW-Authenticate says Bearer without an error code."""
    r = client.get("/protected")
    assert r.headers.get("WWW-Authenticate") == "Bearer", f"got {r.headers.get('WWW-Authenticate')!r}"


# --------------------------------------------------------------------------------------------
# exercise 5.3 last-resort
# --------------------------------------------------------------------------------------------

SECRET_DETAIL = "sqlite3 /srv/app/secret.db SELECT password_hash FROM user"


@pytest.fixture
def broken(step, monkeypatch):
    """The app's hashing raises an unexpected exception whose text holds internals."""
    if hasattr(step, "break_function"):  # grading: the student's code runs in its own process
        step.break_function("passwords", "hash_password", SECRET_DETAIL)
        # A module that did `from .passwords import hash_password` holds a name of its own: break it too.
        for path in sorted(step.folder.glob("*.py")):
            if path.stem not in ("passwords", "__init__"):
                try:
                    step.break_function(path.stem, "hash_password", SECRET_DETAIL)
                except Exception:  # that module has no such name (or is not imported): nothing to break
                    pass
        yield
        step.restore_functions()
        return

    def explode(*args, **kwargs):
        raise RuntimeError(SECRET_DETAIL)

    # Wherever the step's code holds the function — `passwords.hash_password`, or a name of its own
    # after `from .passwords import hash_password` — it gets the broken one.
    original = step.module.passwords.hash_password
    package = step.module.__name__
    for name, module in list(sys.modules.items()):
        if module is not None and (name == package or name.startswith(package + ".")):
            for attr, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attr, explode)
    yield


@pytest.mark.exercise("last-resort")
@pytest.mark.exercise("problem-details", when_named=True)
@pytest.mark.parametrize("testing", [True, False], ids=["testing", "production"])
def test_a_bug_gets_a_generic_500_with_a_request_id(make_app, broken, testing, caplog):
    """An unexpected exception answers a generic 500 problem with a request id — in testing mode and in production."""
    caplog.set_level(logging.INFO)
    client = make_app(TESTING=testing).test_client()
    try:
        r = client.post("/register", json={"username": "alice", "password": PASSWORD})
    except RuntimeError:
        pytest.fail("the exception escaped the app (in testing mode): register errorhandler(Exception)")
    why = is_problem(r, 500)
    status_fault = status_is_problems_fault(r, 500, client) if why else ""
    check(not why, "problem-details" if status_fault or shape_is_the_fault(r, 500) else "last-resort",
          f"a bug: {status_fault}" if status_fault else f"a bug {why}")
    text = r.get_data(as_text=True)
    for leak in ("RuntimeError", "sqlite3", "/srv/app", "SELECT", "Traceback", ".py"):
        assert leak not in text, f"the 500 leaks {leak!r} to the client: {text[:300]}"


@pytest.mark.exercise("last-resort")
def test_the_traceback_is_logged_under_the_request_id(make_app, broken, caplog):
    """The server's log holds the traceback, under the request id the client was given."""
    caplog.set_level(logging.INFO)
    r = make_app().test_client().post("/register", json={"username": "alice", "password": PASSWORD})
    request_id = (r.get_json(silent=True) or {}).get("request_id")
    assert request_id, "the 500 should carry a request_id"
    records = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert any(rec.exc_info for rec in records), (
        f"no log record with the traceback mentions request_id {request_id}: the support desk cannot find it"
    )


# --------------------------------------------------------------------------------------------
# Logging, headers, debug
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("jwt-loaders")
def test_security_events_are_logged_without_secrets(app, caplog):
    """Logins (good and bad), refused tokens and limits are logged with the request id; no password, token or hash."""
    caplog.set_level(logging.INFO)
    client = app.test_client()
    token = token_for(client)
    client.post("/login", json={"username": "alice", "password": "wrong password here!"})
    client.get("/protected", headers={"Authorization": "Bearer " + token + "x"})
    text = caplog.text
    for event in ("login.success", "login.failure", "token.rejected"):
        assert event in text, f"the security log has no {event} event"
    assert "request_id=" in text, "security events should carry the request id"
    for secret in (PASSWORD, "wrong password here!", token, "$argon2"):
        assert secret not in text, "a password, token or hash reached the log"


@pytest.mark.exercise("last-resort")
def test_input_cannot_forge_log_lines(app, caplog):
    """A username with CR/LF is logged escaped, on one line (CWE-117)."""
    caplog.set_level(logging.INFO)
    forged = "mallory\r\n2026-01-01 INFO api.security login.success user_id=1"
    app.test_client().post("/login", json={"username": forged, "password": "whatever it is"})
    lines = [rec.getMessage() for rec in caplog.records if "login.failure" in rec.getMessage()]
    assert lines, "the failed login was not logged"
    assert all("\n" not in line and "\r" not in line for line in lines), "a username broke a log line in two"


@pytest.mark.exercise("last-resort")
def test_request_ids_are_ours_unless_the_client_sends_a_clean_one(client):
    """X-Request-ID comes back on every response; a clean one from the client is kept, a hostile one replaced."""
    r = client.get("/health")
    assert len(r.headers.get("X-Request-ID", "")) >= 8, "responses should carry X-Request-ID"
    assert client.get("/health", headers={"X-Request-ID": "trace-12345678"}).headers["X-Request-ID"] == "trace-12345678"
    hostile = client.get("/health", headers={"X-Request-ID": "x\" onmouseover=alert(1) " + "A" * 100})
    assert "alert" not in hostile.headers["X-Request-ID"], "a hostile X-Request-ID was echoed"
    for sent in ("trace-12345678 INFO api.security login.success user_id=1", "trace-12345678\"><script>x</script>"):
        kept = client.get("/health", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
        assert kept != sent, (
            f"the X-Request-ID {sent!r} was kept: it only starts like a clean id. The whole value must be plain "
            "(re.fullmatch, or a pattern anchored at both ends), or it forges log text and header content"
        )


@pytest.mark.exercise("problem-details")
@pytest.mark.parametrize("path, method", [("/health", "GET"), ("/login", "POST"), ("/nothing", "GET")])
def test_nosniff_and_no_store_everywhere(client, path, method):
    """Every response says X-Content-Type-Options: nosniff and Cache-Control: no-store."""
    r = client.open(path, method=method, json={"username": "alice", "password": PASSWORD})
    assert r.headers.get("X-Content-Type-Options") == "nosniff", f"{method} {path} lacks nosniff"
    assert "no-store" in r.headers.get("Cache-Control", ""), f"{method} {path} may be cached"


@pytest.mark.exercise("last-resort")
def test_the_app_refuses_debug_mode(make_app):
    """With DEBUG on, the app refuses to start: the debugger is a remote Python console."""
    with pytest.raises(Exception, match="[Dd]ebug"):
        make_app(DEBUG=True)


# --------------------------------------------------------------------------------------------
# Fuzzing: random requests, no 5xx
# --------------------------------------------------------------------------------------------

FUZZ = property_settings(max_examples=120)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@pytest.mark.exercise("problem-details")
@pytest.mark.exercise("last-resort", when_named=True)
@pytest.mark.exercise("jwt-loaders", when_named=True)
@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.sampled_from(["/health", "/register", "/login", "/protected", "/", "/login/", "/%00", "/..%2f"]),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                  "application/problem+json", "multipart/form-data; boundary=x", ""]),
    authorization=st.one_of(st.none(), header_text, header_text.map(lambda t: "Bearer " + t)),
    request_id=st.one_of(st.none(), header_text),
)
def test_fuzzing_every_endpoint_gives_no_5xx(client, method, path, body, content_type, authorization, request_id):
    """Random methods, paths, bodies and headers: never a 5xx, always problem+json for errors."""
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    r = client.open(path, method=method, data=body, headers=headers)
    if r.status_code == 500:
        check(not http_errors_become_500s(r, 400, client), "last-resort",
              SWALLOWED.format(kind=f"{method} {path}", status="a 4xx"))
    assert r.status_code < 500, f"{method} {path} with {headers} and {body[:80]!r} answered {r.status_code}"
    if r.status_code >= 400 and method != "HEAD":
        check(not the_library_answered(r), "jwt-loaders",
              f"{method} {path} with {headers}: Flask-JWT-Extended answered the {r.status_code} itself "
              f"({r.get_json(silent=True)}, {r.mimetype}, no challenge): register the loader for this token failure")
        assert r.mimetype == PROBLEM, f"{method} {path} answered a {r.status_code} as {r.mimetype}"
