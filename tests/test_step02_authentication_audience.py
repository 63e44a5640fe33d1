"""Step 02 on — tokens belong to one API: a token of another app that shares the key is refused.

With one key for several apps (all the steps under `python -m workbook run` once did so), a token
that says only `sub: "1"` is user 1 at every one of them. Each app names itself in `iss` and `aud`
and refuses the rest (RFC 8725 §3.9, §3.11). Runs on step 2 and every later step.
"""

from __future__ import annotations

import pytest

from tests import jwt_tools
from tests.test_step02_authentication import token_for

PASSWORD = "violet kettle under a quiet moon"


def token_of(app):
    """alice's token: a failure to get one is 2.1's or 2.2's (see token_for), never the route's."""
    return token_for(app.test_client())


@pytest.mark.exercise("protect-route")
@pytest.mark.exercise("hash-password", when_named=True)
@pytest.mark.exercise("verify-password", when_named=True)
def test_tokens_name_their_issuer_and_audience(app):
    """The app's tokens carry `iss` and `aud`: the API that issued them, the API they are for."""
    _, payload = jwt_tools.read(token_of(app))
    assert payload.get("iss") and payload.get("aud"), (
        f"the token names no issuer or audience ({sorted(payload)}): any app with the same key accepts it")


@pytest.mark.exercise("protect-route")
@pytest.mark.exercise("hash-password", when_named=True)
@pytest.mark.exercise("verify-password", when_named=True)
@pytest.mark.parametrize("change", ["another app's iss and aud", "no aud", "no iss", "another aud"])
def test_a_token_of_another_app_with_the_same_key_is_refused(app, step, change):
    """A token signed with this app's key but issued by, or for, another API is refused (401, 422 before step 05)."""
    token = token_of(app)
    header, payload = jwt_tools.read(token)
    payload = {"another app's iss and aud": {**payload, "iss": "another_api", "aud": "another_api"},
               "no aud": {k: v for k, v in payload.items() if k != "aud"},
               "no iss": {k: v for k, v in payload.items() if k != "iss"},
               "another aud": {**payload, "aud": "another_api"}}[change]
    forged = jwt_tools.forge(header, payload, app.config["JWT_SECRET_KEY"])
    r = app.test_client().get("/protected", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code != 200, (
        f"a token with {change}, signed with the shared key, was accepted: a token minted by another app "
        "(another step, a sibling service) works here (RFC 8725 §3.9)")
    expected = (401,) if step.number >= 5 else (401, 422)
    assert r.status_code in expected, f"a token with {change} answered {r.status_code}, expected {expected}"
