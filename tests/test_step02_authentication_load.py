"""Step 02 — login as an amplifier: the hashing work of one process is bounded.

Every login and every registration makes the server compute one argon2id hash (64 MiB of memory
by default), and anyone can send them: 60 simultaneous logins, within every rate limit, once made
one process hold 1.3-1.7 GB (OWASP API4:2023 Unrestricted Resource Consumption). So a process runs
at most PASSWORD_HASH_SLOTS hashes at once (passwords.py); a request that finds every slot taken
for PASSWORD_HASH_WAIT seconds is answered 503 Service Unavailable with Retry-After (RFC 9110
§15.6.4, §10.2.3): never a 500, never an endless wait.

Here the slots are filled deterministically: the test holds the app's own semaphore
(``app.extensions["password_hasher"].slots``, documented in passwords.py), as simultaneous
logins would. The memory it saves is measured over real HTTP in
test_step02_authentication_load_live.py, which also runs when grading (where the app lives in
another process and these tests cannot reach its semaphore).
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.harness import error_message, without_request_id
from tests.test_step02_authentication import fix_of_a_failed_login
from tests.verdict import check

PASSWORD = "violet kettle under a quiet moon"
ONE_SLOT = {"PASSWORD_HASH_SLOTS": 1, "PASSWORD_HASH_WAIT": 0.05}


def register(client, username="alice", password=PASSWORD):
    return client.post("/register", json={"username": username, "password": password})


def login(client, username="alice", password=PASSWORD):
    return client.post("/login", json={"username": username, "password": password})


def slots_of(step, app):
    """The app's hashing semaphore; skipped when grading (the app is in the sandbox's process)."""
    if hasattr(step, "break_function"):
        pytest.skip("the grading sandbox keeps the app in another process: "
                    "test_step02_authentication_load_live.py checks the same bound over HTTP")
    hasher = app.extensions.get("password_hasher")
    slots = getattr(hasher, "slots", None)
    assert slots is not None and hasattr(slots, "acquire"), (
        "the app's password hasher has no slots (passwords.BoundedHasher): nothing bounds how many argon2 "
        "hashes of 64 MiB run at once, so a burst of logins can take all the server's memory")
    return slots


@contextmanager
def every_slot_taken(slots):
    """Hold the app's only slot, as a login that is still hashing would."""
    assert slots.acquire(timeout=5), "the app's only hashing slot was not free before the test took it"
    try:
        yield
    finally:
        slots.release()


def busy_answer_problems(r, what):
    """Why ``r`` is not a proper "busy, try again" answer ("" when it is)."""
    if r.status_code != 503:
        return f"{what} while every hashing slot was taken answered {r.status_code}, not 503 Service Unavailable"
    retry_after = r.headers.get("Retry-After", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        return (f"the 503 says Retry-After {retry_after!r}: it must say in how many seconds to try again "
                "(RFC 9110 §10.2.3), or clients retry at once and keep the server busy")
    body = r.get_json(silent=True)
    if not error_message(body):
        return f"the 503 should say in words that the server is busy, like the API's other errors; it sent {body!r}"
    if isinstance(body, dict) and "access_token" in body:
        return "the 503 carries a token"
    return ""


@pytest.mark.exercise("hash-password", when_named=True)
@pytest.mark.exercise("verify-password")
def test_a_login_when_every_hashing_slot_is_taken_gets_503_and_retry_after(step, make_app):
    """A login that finds every hashing slot taken gets 503 + Retry-After; once a slot is free, it logs in."""
    app = make_app(**ONE_SLOT)
    client = app.test_client()
    assert register(client).status_code == 201, "registering alice failed"
    slots = slots_of(step, app)
    with every_slot_taken(slots):
        owner = login(client)
        problem = busy_answer_problems(owner, "alice's login")
        assert not problem, problem
        stranger = login(client, "nobody-like-this", "not the password at all")
        assert stranger.status_code == 503 and without_request_id(stranger.get_json(silent=True)) == \
            without_request_id(owner.get_json(silent=True)), (
            f"while the server is busy, an unknown user's login answered {stranger.status_code} "
            f"{stranger.get_json(silent=True)!r} and alice's 503 {owner.get_json(silent=True)!r}: "
            "the busy answer must not tell which usernames exist")
    after = login(client)
    if after.status_code != 200:  # not a slot kept: a right password that cannot log in at all (2.1 or 2.2)
        check(fix_of_a_failed_login(app, "alice", PASSWORD) == "verify-password", "hash-password",
              "what registration stored is not an argon2id hash of alice's password, so she can never log in")
    assert after.status_code == 200, (
        f"once the slot was free again, alice's login answered {after.status_code}: a slot must be given back")


@pytest.mark.exercise("hash-password")
def test_a_registration_when_every_hashing_slot_is_taken_gets_503_and_stores_nothing(step, make_app):
    """A registration that finds every hashing slot taken gets 503 + Retry-After, and creates no account."""
    app = make_app(**ONE_SLOT)
    client = app.test_client()
    slots = slots_of(step, app)
    with every_slot_taken(slots):
        r = register(client, "bob")
        problem = busy_answer_problems(r, "a registration")
        assert not problem, problem
    assert login(client, "bob").status_code == 401, "the registration answered 503, but the account was created"
    assert register(client, "bob").status_code == 201, (
        "once the slot was free again, registering bob failed: a slot must be given back")


@pytest.mark.exercise("hash-password", when_named=True)
@pytest.mark.exercise("verify-password")
def test_a_failed_check_gives_its_slot_back(step, make_app):
    """Wrong passwords and unknown users give their slot back: with one slot, the owner still logs in after them."""
    app = make_app(**ONE_SLOT)
    client = app.test_client()
    assert register(client).status_code == 201, "registering alice failed"
    slots = slots_of(step, app)
    answers = [login(client, "alice", f"wrong guess number {i}").status_code for i in range(3)]
    answers.append(login(client, "nobody-like-this", "not the password at all").status_code)
    assert answers == [401] * 4, (
        f"with one free hashing slot, 3 wrong passwords and an unknown user answered {answers}, not 401 each: "
        "a check that fails (argon2 raises VerifyMismatchError) must give its slot back, in a finally")
    if login(client).status_code != 200:
        check(fix_of_a_failed_login(app, "alice", PASSWORD) == "verify-password", "hash-password",
              "what registration stored is not an argon2id hash of alice's password, so she can never log in")
        check(False, "verify-password", "after failed logins, alice's right password no longer logs in")
    assert slots.acquire(timeout=0), "after every login had answered, the only hashing slot was still taken"
    slots.release()


@pytest.mark.exercise("hash-password")
@pytest.mark.parametrize("setting, value", [("PASSWORD_HASH_SLOTS", 0), ("PASSWORD_HASH_SLOTS", "many"),
                                            ("PASSWORD_HASH_WAIT", -1), ("PASSWORD_HASH_WAIT", "forever")])
def test_nonsense_hashing_slots_are_refused_at_start(make_app, setting, value):
    """PASSWORD_HASH_SLOTS below 1 or PASSWORD_HASH_WAIT below 0 (or not numbers) stop the app at start."""
    with pytest.raises(ValueError, match=setting):
        make_app(**{setting: value})
