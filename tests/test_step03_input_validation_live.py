"""Step 03 — an outsider throws hostile input at the API over real HTTP.

Malformed and hostile bodies, look-alike names, weak and huge passwords, injection strings:
no 5xx, no second account, nothing weak accepted, a good Unicode passphrase accepted.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import TEST_DEFAULTS, env_for
from tests.harness import LearnerCodeError, LiveServer, Response, free_port, strong_key, student_limits, without_request_id

PASSWORD = "violet kettle under a quiet moon"


def name(prefix="u"):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def post(server, path, body):
    return server.post(path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


@pytest.mark.exercise("register-schema")
def test_look_alikes_over_http_make_no_second_account(live_server):
    """Over HTTP, "NAME", fullwidth "ＮＡＭＥ" and "Name" all collide with "name"."""
    base = name("ab")
    assert post(live_server, "/register", {"username": base, "password": PASSWORD}).status == 201
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in base.upper())
    for twin in (base.upper(), fullwidth, base.capitalize()):
        r = post(live_server, "/register", {"username": twin, "password": PASSWORD + " again"})
        assert r.status == 409, f"{twin!r} became a second account next to {base!r} ({r.status})"


@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("password", ["abcdef", "123456789qwerty", "x" * 129], ids=["6 chars", "common", "129 chars"])
def test_weak_passwords_over_http(live_server, password):
    """Weak passwords are refused over HTTP, with a reason."""
    r = post(live_server, "/register", {"username": name(), "password": password})
    assert r.status == 400, f"the password {password[:20]!r} was accepted over HTTP ({r.status})"
    assert r.json().get("errors", {}).get("password"), "the 400 should say what is wrong with the password"


@pytest.mark.exercise("register-schema")
def test_a_unicode_passphrase_over_http(live_server):
    """A long passphrase with accents, CJK and emoji registers and logs in over HTTP."""
    username, passphrase = name(), "Zwölf Boxkämpfer 🥊 jagen Viktor — 東京から"
    assert post(live_server, "/register", {"username": username, "password": passphrase}).status == 201, (
        "a good Unicode passphrase was refused over HTTP"
    )
    assert post(live_server, "/login", {"username": username, "password": passphrase}).status == 200


@pytest.mark.exercise("read-json")
def test_huge_and_deep_bodies_over_http(live_server):
    """A 1 MB body gets 413 and JSON nested 5,000 deep gets 400, over HTTP."""
    r = live_server.post("/register", body=b'{"username": "' + b"a" * 1_000_000 + b'"}',
                         headers={"Content-Type": "application/json"})
    assert r.status == 413, f"a 1 MB body answered {r.status}"
    r = live_server.post("/register", body=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"})
    assert r.status == 400, f"JSON nested 5,000 deep answered {r.status}"


class Gunicorn(LiveServer):
    """The step's app under gunicorn (one worker): it frames a chunked body itself, unlike `flask run`."""

    def launch(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update(self.extra_env, FLASK_DATABASE=str(self.workdir / "gunicorn.sqlite"), PYTHONDONTWRITEBYTECODE="1")
        self.jwt_key = env["FLASK_JWT_SECRET_KEY"]
        self.port = free_port()
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "--no-control-socket", f"{self.target.step.slug}:create_app()"],
            cwd=self.target.root, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=student_limits(),
        )
        return self


@pytest.fixture(scope="module")
def gunicorn_server(step, tmp_path_factory):
    if os.name == "nt" or importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn runs on POSIX only (and must be installed): `flask run` is checked on its own")
    server = Gunicorn(step, tmp_path_factory.mktemp(f"gunicorn-{step.step.slug}"),
                      env={**env_for(TEST_DEFAULTS), "FLASK_JWT_SECRET_KEY": strong_key()})
    try:
        server.start()
    except LearnerCodeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


def post_chunked(server, path, raw):
    """POST ``raw`` with Transfer-Encoding: chunked (http.client chunks an iterable body): no Content-Length."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", path, body=iter([raw[i:i + 4096] for i in range(0, len(raw), 4096)]),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def comparable(r):
    """An answer's body without its per-request id (step 05 on), as bytes or parsed JSON."""
    try:
        return without_request_id(r.json())
    except ValueError:
        return r.body


@pytest.mark.exercise("read-json")
@pytest.mark.parametrize("served_by", ["flask run", "gunicorn"])
def test_a_chunked_body_over_the_cap_gets_413_over_http(request, step, served_by):
    """Over real HTTP, under `flask run` and gunicorn, a body over the 16 KiB cap gets the same 413 chunked
    as with a Content-Length, even when its first 16 KiB are a valid registration."""
    server = request.getfixturevalue("live_server" if served_by == "flask run" else "gunicorn_server")
    username = name()
    head = json.dumps({"username": username, "password": PASSWORD}).encode()
    raw = head + b" " * (16 * 1024 - len(head)) + b"x" * 4000
    with_length = server.post("/register", body=raw, headers={"Content-Type": "application/json"})
    assert with_length.status == 413, f"a {len(raw):,}-byte body with Content-Length answered {with_length.status}"
    chunked = post_chunked(server, "/register", raw)
    assert chunked.status == 413, (
        f"under {served_by}, the same {len(raw):,}-byte body sent chunked answered {chunked.status}: its first "
        "16 KiB were read and registered, the rest ignored. Refuse a body without a length that fills the cap"
    )
    assert comparable(chunked) == comparable(with_length), (
        f"under {served_by}, the chunked 413 says {chunked.body[:200]!r}, the one with a length "
        f"{with_length.body[:200]!r}: one refusal, one answer"
    )
    login = server.post("/login", json_body={"username": username, "password": PASSWORD})
    assert login.status == 401, f"under {served_by}, the refused chunked registration created an account"


@pytest.mark.exercise("read-json")
@pytest.mark.parametrize("served_by", ["flask run", "gunicorn"])
def test_a_chunked_registration_under_the_cap_works_over_http(request, step, served_by):
    """A chunked body under the cap is read whole and registers, under both servers."""
    server = request.getfixturevalue("live_server" if served_by == "flask run" else "gunicorn_server")
    username = name()
    raw = json.dumps({"username": username, "password": PASSWORD}).encode() + b" " * 9000
    r = post_chunked(server, "/register", raw)
    assert r.status == 201, f"under {served_by}, a chunked registration of {len(raw):,} bytes answered {r.status}"
    assert server.post("/login", json_body={"username": username, "password": PASSWORD}).status == 200


INJECTIONS = ["' OR '1'='1' --", "admin'--", "\"; DROP TABLE user; --", "${jndi:ldap://127.0.0.1/x}",
              "<script>alert(1)</script>", "{{7*7}}", "../../etc/passwd", "\x00", "%00", "\u202eevil"]


@pytest.mark.exercise("register-schema")
@pytest.mark.exercise("login-schema")
@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_over_http(live_server, payload):
    """Injection strings in any field are refused or treated as data: no 5xx, no token."""
    for path in ("/register", "/login"):
        for body in ({"username": payload, "password": PASSWORD}, {"username": name(), "password": payload}):
            r = post(live_server, path, body)
            assert r.status < 500, f"POST {path} with {payload!r} answered {r.status}"
            assert b"access_token" not in r.body, f"POST {path} with {payload!r} handed out a token"


@pytest.mark.exercise("register-schema")
def test_mass_assignment_over_http(live_server):
    """Registering with "role": "admin" is refused over HTTP, and no account is made."""
    username = name()
    r = post(live_server, "/register", {"username": username, "password": PASSWORD, "role": "admin"})
    assert r.status == 400, f"an extra 'role' field answered {r.status}"
    assert post(live_server, "/login", {"username": username, "password": PASSWORD}).status == 401, (
        "the refused registration still created an account"
    )
