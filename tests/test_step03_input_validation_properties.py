"""Step 03 — input validation, property-based: hypothesis throws generated bodies at the app.

Whatever the body, the types in its fields or the Unicode in its names, the answer is never a
5xx, and a name that registers is stored in a canonical form. Runs on step 3 and every later
step, in the full `check 3` and the suite (hypothesis costs a quarter of a second to import, so
it stays out of `check 3 --quick`).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.harness import property_settings
from tests.test_step03_input_validation import register, whoami
from tests.verdict import check

PROPERTY = property_settings(max_examples=75)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.exercise("read-json")
@PROPERTY
@given(body=json_values)
def test_no_json_value_causes_a_5xx(client, body):
    """Any JSON value sent to /register or /login gets an answer below 500."""
    for path in ("/register", "/login"):
        r = client.post(path, data=json.dumps(body), content_type="application/json")
        assert r.status_code < 500, f"POST {path} with {json.dumps(body)[:200]} answered {r.status_code}"


@pytest.mark.exercise("register-schema")
@pytest.mark.exercise("login-schema")
@PROPERTY
@given(username=json_values, password=json_values, extra=st.dictionaries(st.text(max_size=8), json_values, max_size=2))
def test_no_field_types_cause_a_5xx(client, username, password, extra):
    """Any types in the username and password fields (and extra fields) get an answer below 500."""
    body = {**extra, "username": username, "password": password}
    for path in ("/register", "/login"):
        r = client.post(path, data=json.dumps(body), content_type="application/json")
        check(r.status_code < 500, "register-schema" if path == "/register" else "login-schema",
              f"POST {path} with {json.dumps(body)[:200]} answered {r.status_code}")


@pytest.mark.exercise("register-schema")
@PROPERTY
@given(username=st.text(max_size=40), password=st.text(max_size=140))
def test_no_unicode_causes_a_5xx_and_names_stay_canonical(client, username, password):
    """Any Unicode username and password get an answer below 500; a name that registers is stored in a
    canonical form that registering again cannot duplicate."""
    r = client.post("/register", data=json.dumps({"username": username, "password": password}),
                    content_type="application/json")
    assert r.status_code < 500, f"registering {username!r} / {password!r} answered {r.status_code}"
    if r.status_code == 201:
        stored = whoami(client, username, password)
        again = register(client, stored, password + " plus more words")
        assert again.status_code == 409, (
            f"{username!r} was stored as {stored!r}, and {stored!r} registered again ({again.status_code}): "
            "the canonical form is not stable"
        )
