"""Step 05 — "busy, try again" is an error like the others: an RFC 9457 problem.

From step 02 on, a login or registration that finds every password-hashing slot taken is answered
503 with Retry-After (passwords.py; tests/test_step02_authentication_load.py). From step 05 on,
that answer has the API's one error shape too: `application/problem+json` with the request id
to quote, and the Retry-After header kept.
"""

from __future__ import annotations

import pytest

from tests.test_step02_authentication_load import ONE_SLOT, every_slot_taken, login, register, slots_of
from tests.test_step05_error_handling import is_problem


@pytest.mark.exercise("problem-details")
def test_the_busy_answer_is_a_problem_with_retry_after(step, make_app):
    """A login that finds every hashing slot taken gets a 503 problem (RFC 9457) with Retry-After and a request_id."""
    app = make_app(**ONE_SLOT)
    client = app.test_client()
    assert register(client).status_code == 201, "registering alice failed"
    with every_slot_taken(slots_of(step, app)):
        r = login(client)
    problem = is_problem(r, 503)
    assert not problem, f"the busy answer to a login is not a proper problem: {problem}"
    assert r.get_json()["title"] == "Service Unavailable", f"the 503's title is {r.get_json()['title']!r}"
    assert r.headers.get("Retry-After", "").isdigit(), (
        f"the 503 problem lost its Retry-After header ({r.headers.get('Retry-After')!r}): "
        "clients cannot know when to come back (RFC 9110 §10.2.3)")
    assert r.get_json()["request_id"] == r.headers.get("X-Request-ID"), (
        "the 503 problem's request_id is not the one in the X-Request-ID header")
