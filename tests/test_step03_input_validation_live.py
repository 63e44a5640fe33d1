"""Step 03 — an outsider throws hostile input at the API over real HTTP.

Malformed and hostile bodies, look-alike names, weak and huge passwords, injection strings:
no 5xx, no second account, nothing weak accepted, a good Unicode passphrase accepted.
"""

from __future__ import annotations

import json
import uuid

import pytest

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
