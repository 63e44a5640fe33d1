"""Step 03 — input validation, attacked in-process: hostile bodies, look-alike names, weak passwords.

Runs on step 3 and every later step. The property-based tests (hypothesis: generated bodies, never
a 5xx) are in test_step03_input_validation_properties.py, out of `check 3 --quick`'s fast path.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import error_message, without_request_id
from tests.verdict import check

PASSWORD = "violet kettle under a quiet moon"
PASSWORD_MAX = 128  # NIST SP 800-63B-4 (at least 64), as the course sets it


def register(client, username="alice", password=PASSWORD, **extra):
    return client.post("/register", json={"username": username, "password": password, **extra})


def login(client, username="alice", password=PASSWORD):
    return client.post("/login", json={"username": username, "password": password})


def errors_of(r):
    body = r.get_json(silent=True) or {}
    return body.get("errors") or {}


def messages(r, field):
    return " ".join(errors_of(r).get(field, []))


def refused(r, exercise, accepted, field=None, reason=None):
    """The body was refused with 400 (and, given ``field``, a message for it). A failure is reported
    where its fix belongs: a ValidationError answered with another status or without the messages
    per field is the error handler's (3.3); a body that was let through is ``exercise``'s."""
    body = r.get_json(silent=True)
    per_field = isinstance(body, dict) and isinstance(body.get("errors"), dict)
    if r.status_code != 400:
        # Messages per field under another status: the schema refused it, the handler chose the status.
        check(not per_field, "validation-errors",
              f"{accepted.split(' was accepted')[0]} answered {r.status_code} with its messages per field: "
              "a body that fails its schema is a 400 Bad Request")
        check(False, exercise, accepted.replace("{status}", str(r.status_code)))
    if field is not None:
        check(per_field, "validation-errors",
              f"the 400 carries no messages per field under 'errors' ({body}): the client cannot tell what to fix")
        check(bool(messages(r, field)), exercise, reason or f"the 400 should say what is wrong with the {field}")


def whoami(client, username, password=PASSWORD):
    r = login(client, username, password)
    assert r.status_code == 200, f"{username!r} registered but could not log in with the same name ({r.status_code})"
    token = r.get_json()["access_token"]
    return client.get("/protected", headers={"Authorization": f"Bearer {token}"}).get_json()["logged_in_as"]


# --------------------------------------------------------------------------------------------
# exercise 3.1 register-schema: usernames
# --------------------------------------------------------------------------------------------

LOOK_ALIKES = {
    "capitals": "ALICE",
    "mixed case": "Alice",
    "fullwidth letters": "ａｌｉｃｅ",
    "modifier letters (the Spotify trick)": "ᴬᴸᴵᶜᴱ",
    "fullwidth capitals": "ＡＬＩＣＥ",
}


@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("twin", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_names_are_the_same_account(client, twin):
    """A name that looks like "alice" (case, fullwidth, compatibility letters) cannot become a second account."""
    assert register(client, "alice").status_code == 201
    r = register(client, twin, "another long enough passphrase")
    assert r.status_code == 409, (
        f"{twin!r} registered next to 'alice' ({r.status_code}): two accounts that look the same "
        "let one impersonate the other (canonicalize: NFKC + casefold)"
    )


@pytest.mark.exercise("register-schema")
def test_a_name_registers_in_its_canonical_form(client):
    """"ＡＬＩＣＥ" is stored as "alice", and its owner logs in with any of its forms."""
    assert register(client, "ＡＬＩＣＥ").status_code == 201, "a fullwidth name should register, canonicalized"
    assert whoami(client, "alice") == "alice", "the account should be stored under the canonical name 'alice'"


BAD_NAMES = {
    "too short": "ab",
    "too long": "a" * 33,
    "a space": "alice smith",
    "a quote": "alice'",
    "markup": "<script>",
    "a slash": "../alice",
    "a leading dot": ".alice",
    "a trailing dash": "alice-",
    "a control character": "alice\x00",
    "a zero-width space": "al\u200bice",
    "Cyrillic a (homoglyph)": "\u0430lice",
    "an emoji": "alice🙂",
}


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_usernames_outside_the_allowlist_are_refused(client, name):
    """Usernames are 3–32 letters, digits, '.', '_' or '-' after normalizing; anything else gets 400."""
    r = register(client, name)
    refused(r, "register-schema", f"the username {name!r} was accepted ({{status}}): usernames need an allowlist",
            "username", f"the 400 for {name!r} should say what is wrong with the username")


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
def test_a_final_newline_is_no_second_account(client):
    """"alice\n" is refused, or is alice (409): never a second account that prints like alice."""
    assert register(client, "alice").status_code == 201
    r = register(client, "alice\n", "another long enough passphrase")
    if r.status_code != 409:  # 409: the name was taken to be alice's, which is no second account either
        refused(r, "register-schema",
                "the username 'alice\\n' was accepted ({status}) next to 'alice': a name with a final newline "
                "prints like alice. Refuse it with the allowlist; note that in Python a pattern ending in $ "
                "also matches just before a final newline: end it with \\Z (or use re.fullmatch)")


# --------------------------------------------------------------------------------------------
# exercise 3.1 register-schema: passwords (NIST SP 800-63B-4)
# --------------------------------------------------------------------------------------------

WEAK_PASSWORDS = {
    "empty": "",
    "the classic tutorial's minimum (6)": "abcdef",
    "14 characters": "fourteen chars",
    "common, 15 characters": "123456789qwerty",
    "common, 20 characters": "1q2w3e4r5t6y7u8i9o0p",
    "common, in capitals": "1Q2W3E4R5T6Y7U8I9O0P",
    "129 characters": "x" * 120 + "abcdefghi",
}


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("password", WEAK_PASSWORDS.values(), ids=WEAK_PASSWORDS.keys())
def test_weak_passwords_are_refused_with_a_reason(client, password):
    """Passwords shorter than 15, longer than 128, or on the common list get 400 with the reason."""
    r = register(client, "alice", password)
    refused(r, "register-schema", f"the password {password[:30]!r} was accepted ({{status}})",
            "password", "the 400 should explain what is wrong with the password")
    assert login(client, "alice", password).status_code != 200, "the refused registration created an account"


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
def test_a_common_password_is_refused_for_being_common(client):
    """The reason names the real problem: the password is common (not "too short")."""
    r = register(client, "alice", "1q2w3e4r5t6y7u8i9o0p")
    refused(r, "register-schema", "the common password '1q2w3e4r5t6y7u8i9o0p' was accepted ({status})", "password")
    assert "common" in messages(r, "password").lower(), (
        f"'1q2w3e4r5t6y7u8i9o0p' is 20 characters but on the list of common passwords; the reason given "
        f"was {messages(r, 'password')!r}"
    )


# Leaked passwords of 15 characters or more (each refused only by the list), with their rank among
# those that long in the leaked lists: ASVS 5.0 V6.2.4 asks for at least the top 3,000 that meet the
# policy. A list of short passwords (Django's has 48 entries of 15 or more) refuses none of them.
LONG_AND_LEAKED = {
    "perasperaadastra (51st)": "perasperaadastra",
    "manchesterunited (64th)": "manchesterunited",
    "worldofwarcraft (77th)": "worldofwarcraft",
    "thisismypassword (265th)": "thisismypassword",
    "youarethekingnoob (501st)": "youarethekingnoob",
    "iloveyouforever (1,142nd)": "iloveyouforever",
    "ziianjazzballet (2,504th)": "ziianjazzballet",
    "zenhearfreetraffic (2,904th)": "zenhearfreetraffic",
    "in capitals": "ManchesterUnited",
}


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("password", LONG_AND_LEAKED.values(), ids=LONG_AND_LEAKED.keys())
def test_leaked_passwords_of_15_characters_or_more_are_refused(client, password):
    """The common list holds the leaked passwords that meet the policy: 15 characters or more (ASVS V6.2.4)."""
    r = register(client, "alice", password)
    refused(r, "register-schema",
            f"the leaked password {password!r} ({len(password)} characters) was accepted ({{status}}): with a "
            "15-character minimum, a list of short passwords refuses nothing the length rule does not; check "
            "at least the top 3,000 leaked passwords that are 15 characters or longer (ASVS 5.0 V6.2.4)", "password")
    check("common" in messages(r, "password").lower(), "register-schema",
          f"{password!r} is on the leaked lists, but the reason given was {messages(r, 'password')!r}")


# One character or a short part repeated, and runs along the alphabet, the digits or a keyboard:
# whatever their length, among the first guesses (NIST SP 800-63B rev. 3 §5.1.1.2: "repetitive or
# sequential characters"). The issue's three first: they registered before.
PREDICTABLE = {
    "one character, 15 times": "aaaaaaaaaaaaaaa",
    "a word twice": "passwordpassword",
    "digits counting on": "123456789012345",
    "a short part repeated": "abcabcabcabcabc",
    "a word three times": "kettlekettlekettle",
    "words repeated with spaces": "Hello Hello Hello Hello",
    "the alphabet": "abcdefghijklmno",
    "the alphabet backwards, in capitals": "ZYXWVUTSRQPONMLK",
    "counting down": "98765432109876543",
    "digits with dashes": "1-2-3-4-5-6-7-8-9-0",
    "a QWERTY walk": "qwertyuiopasdfghjk",
    "a QWERTY walk backwards": "poiuytrewqlkjhgfdsa",
    "an AZERTY walk": "azertyuiopqsdfghj",
    "the shifted digit row": "!@#$%^&*()!@#$%^",
}
REPEATED = ["abcabcabcabcabc", "kettlekettlekettle", "Hello Hello Hello Hello", "zzzzzzzzzzzzzzzzzz"]
SEQUENTIAL = ["abcdefghijklmno", "ZYXWVUTSRQPONMLK", "98765432109876543", "1-2-3-4-5-6-7-8-9-0",
              "qwertyuiopasdfghjk", "poiuytrewqlkjhgfdsa", "azertyuiopqsdfghj", "QWERTYUIOPASDFGHJK"]


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("password", PREDICTABLE.values(), ids=PREDICTABLE.keys())
def test_repeated_and_sequential_passwords_are_refused(client, password):
    """A password that is one character or a short part repeated, or a run along the alphabet, the digits or
    a keyboard row, is refused whatever its length."""
    r = register(client, "alice", password)
    refused(r, "register-schema",
            f"the password {password!r} was accepted ({{status}}): {len(password)} characters, but an attacker "
            "guesses repetitions and sequences early. Refuse the whole password being one (not_predictable)",
            "password")
    assert login(client, "alice", password).status_code != 200, "the refused registration created an account"


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("rule, password", [("repeat", p) for p in REPEATED] + [("sequence", p) for p in SEQUENTIAL])
def test_the_refusal_names_the_rule_and_what_to_do(client, rule, password):
    """The reason says which rule the password breaks (a repetition, a sequence) and what to do instead."""
    r = register(client, "alice", password)
    refused(r, "register-schema", f"the password {password!r} was accepted ({{status}})", "password")
    said = messages(r, "password").lower()
    check(rule in said, "register-schema",
          f"{password!r} is a {'repetition' if rule == 'repeat' else 'sequence'}, but the reason given was "
          f"{messages(r, 'password')!r}: say which rule it breaks")
    check("words" in said, "register-schema",
          f"the reason for {password!r} ({messages(r, 'password')!r}) does not say what to do: suggest a few "
          "unrelated words")


CONTAINING_THE_NAME = {
    "as typed": "marguerite-is-my-password",
    "capitalized": "Marguerite2026 is my password",
    "in capitals": "my password is MARGUERITE, really",
    "fullwidth": "ｍａｒｇｕｅｒｉｔｅ on a quiet evening",
}


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("password", CONTAINING_THE_NAME.values(), ids=CONTAINING_THE_NAME.keys())
def test_a_password_containing_the_username_is_refused(client, password):
    """NIST: context-specific words such as the username are refused, in whatever case or form they are typed."""
    r = register(client, "marguerite", password)
    refused(r, "register-schema",
            f"the password {password!r} contains the username 'marguerite' and was accepted ({{status}}): "
            "compare the canonical forms (case-folded), as the username itself is",
            "password", f"the 400 for {password!r} should say the password contains the username")


GOOD_PASSWORDS = {
    "15 characters exactly": "tangerine piano",
    "128 characters": ("the violet kettle sings under a quiet moon while seven orange foxes dance past the old "
                       "lighthouse and the tide rolls slowly over warm pebbles")[:128],
    "German with umlauts": "Zwölf Boxkämpfer jagen Viktor quer über den Sylter Deich",
    "Japanese": "ながいパスワードはあんぜんですよね、たぶん",
    "emoji and spaces": "🔑 my kettle sings at dawn 🌅",
    "only spaces between words": "a cup of tea at five",
    "no digits, no symbols, no capitals": "lowercase words are fine here",
    # Diceware-like phrases, some with a run or a repetition INSIDE: only a whole password that is one
    # is refused (NIST rules out composition rules such as "no repeated characters").
    "four random words": "cactus gravy ninja pebble",
    "the xkcd phrase": "correct horse battery staple",
    "words with dashes and digits": "opal-tundra-wicker-58-mango",
    "words run together": "correcthorsebatterystaple",
    "a run inside": "my 123 best abc days",
    "the alphabet's end inside": "stuvwxyz and then some words",
    "a doubled letter inside": "bookkeeper committee balloon",
}


@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("password", GOOD_PASSWORDS.values(), ids=GOOD_PASSWORDS.keys())
def test_good_passphrases_are_accepted_whatever_the_script(client, password):
    """Any Unicode, spaces, no composition rules: a long passphrase in any language is accepted."""
    r = register(client, "alice", password)
    assert r.status_code == 201, f"the passphrase {password!r} was refused: {errors_of(r)}"
    assert login(client, "alice", password).status_code == 200, "the accepted passphrase does not log in"


@pytest.mark.exercise("register-schema")
@pytest.mark.exercise("login-schema")
def test_passwords_are_neither_truncated_nor_case_folded(client):
    """The whole password counts, case included: a prefix or a case change does not log in."""
    password = "The Quick Brown Fox Jumps Over The Lazy Dog Again And Again 1234567890"
    assert register(client, "alice", password).status_code == 201
    assert login(client, "alice", password[:-1]).status_code == 401, "a truncated password logged in"
    assert login(client, "alice", password.lower()).status_code == 401, "a lower-cased password logged in"


@pytest.mark.exercise("register-schema")
@pytest.mark.exercise("login-schema")
def test_a_password_typed_two_ways_is_the_same(client):
    """"é" typed as one character or as e + a combining accent is the same password (NFKC, NIST)."""
    composed, decomposed = "caf\u00e9 au lait, s'il vous pla\u00eet", "cafe\u0301 au lait, s'il vous plai\u0302t"
    # Registered composed, typed decomposed at login: only the login's normalization (3.2) can make them meet.
    check(register(client, "alice", composed).status_code == 201, "register-schema", "registering alice failed")
    check(login(client, "alice", decomposed).status_code == 200, "login-schema",
          "the same password typed another way was refused at login: normalize it there too (Password, NFKC)")
    # Registered decomposed, typed composed: only the registration's normalization (3.1) can.
    check(register(client, "bob", decomposed).status_code == 201, "register-schema", "registering bob failed")
    check(login(client, "bob", composed).status_code == 200, "register-schema",
          "a password registered as e + a combining accent does not log in typed as 'é': normalize it when "
          "registering (Password, NFKC), so that what is hashed is one canonical form")


# --------------------------------------------------------------------------------------------
# exercise 3.1 / 3.2: mass assignment, types
# --------------------------------------------------------------------------------------------


UNOWNED_FIELDS = [{"role": "admin"}, {"is_admin": True}, {"id": 1}, {"password_hash": "x"}]


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("extra", UNOWNED_FIELDS, ids=lambda extra: next(iter(extra)))
def test_unknown_fields_are_refused(client, extra):
    """A field the client does not own (role, is_admin, id...) is refused, not ignored (mass assignment, API3)."""
    r = register(client, "alice", PASSWORD, **extra)
    refused(r, "register-schema", f"registering with {extra} was accepted ({{status}}): unknown fields must be refused")
    assert r.status_code == 400, (
        f"registering with {extra} answered {r.status_code}: the registration schema must refuse unknown fields "
        "(marshmallow's default, unknown = RAISE), not drop or keep them"
    )


def login_refused(r, body):
    """A login body its schema must refuse got 400. If not, the fix is the login schema's (3.2) when no
    ValidationError was answered at all, else the error handler's (3.3)."""
    answer = r.get_json(silent=True)
    if r.status_code != 400:
        check(isinstance(answer, dict) and isinstance(answer.get("errors"), dict), "login-schema",
              f"a login with {body} answered {r.status_code} {answer}: the login schema let it through. It must "
              "refuse what it does not know, as every schema does (marshmallow's default, unknown = RAISE)")
        check(False, "validation-errors",
              f"a login with {body} answered {r.status_code} with its messages per field: a body that fails its "
              "schema is a 400 Bad Request")


@pytest.mark.exercise("login-schema", when_named=True)
@pytest.mark.exercise("validation-errors")
@pytest.mark.parametrize("extra", UNOWNED_FIELDS, ids=lambda extra: next(iter(extra)))
def test_the_400_names_the_unknown_field(client, extra):
    """The 400 for an unknown field names that field, so the client knows what to drop."""
    # At login, whose schema refuses unknown fields too: this checks the answer, not the registration schema.
    body = {"username": "alice", "password": PASSWORD, **extra}
    r = client.post("/login", json=body)
    field = next(iter(extra))
    login_refused(r, body)
    assert messages(r, field), f"the 400 should name the unknown field {field!r} under 'errors': {r.get_json()}"


@pytest.mark.exercise("login-schema", when_named=True)
@pytest.mark.exercise("validation-errors")
def test_a_400_never_echoes_the_password(client):
    """An error answer says what is wrong, never what was sent: the password does not come back."""
    secret = "a passphrase nobody may see again 7f3a"
    # At login: its schema (exercise 3.2) refuses both bodies whatever the registration schema does.
    for body in ({"username": "", "password": secret}, {"username": "alice", "password": secret, "role": "admin"}):
        r = client.post("/login", json=body)
        login_refused(r, body)
        assert secret not in r.get_data(as_text=True), (
            "the 400 echoes the submitted password back: error answers end up in logs, proxies and browser "
            "histories. Say what is wrong (error.messages), never what was sent"
        )


@pytest.mark.exercise("login-schema")
def test_a_canonical_twin_logs_in_to_the_same_account(client):
    """Logging in as "ALICE" or "ａｌｉｃｅ" is logging in as alice (one canonical form everywhere)."""
    assert register(client, "alice").status_code == 201
    for twin in ("ALICE", "ａｌｉｃｅ"):
        r = login(client, twin)
        assert r.status_code == 200, f"{twin!r} could not log in as alice: login must canonicalize too"


@pytest.mark.exercise("login-schema")
def test_login_does_not_reveal_the_password_policy(client):
    """A short password at login gets the generic 401, not "use at least 15 characters"."""
    register(client)
    r = login(client, "alice", "short")
    assert r.status_code == 401, (
        f"a short password at login answered {r.status_code} {r.get_json()}: login must check shape and size "
        "only, or it tells attackers which passwords cannot exist"
    )
    r = login(client, "alice", "a long passphrase, longer than registration allows " * 4)
    assert r.status_code == 401, (
        f"a 200-character password at login answered {r.status_code} {r.get_json()}: only the login's own cap "
        f"(far above registration's {PASSWORD_MAX}) may refuse it, or the login tells the registration policy"
    )
    for name in ("ab", "alice smith", "-alice-"):
        r = login(client, name, PASSWORD)
        assert r.status_code == 401, (
            f"a login as {name!r}, a name that could never register, answered {r.status_code} {r.get_json()}: "
            "answer it as any unknown user (401). Login checks shape and size only: the username rules would "
            "tell the policy, and lock out accounts made before them"
        )


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("login-schema")
def test_login_caps_the_size_of_what_it_hashes(client):
    """A 5,000-character password at login is refused before any hashing (400)."""
    r = login(client, "alice", "x" * 5000)
    refused(r, "login-schema", "a 5,000-character password at login was accepted ({status}): cap the size")
    assert r.status_code == 400, f"a 5,000-character password at login answered {r.status_code}: cap the size"


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("login-schema")
@pytest.mark.parametrize("field", ["username", "password"])
def test_login_refuses_invalid_unicode(client, field):
    """A lone surrogate ("\\ud800", valid JSON but not valid Unicode) at login gets a 400, not a crash."""
    body = {"username": "alice", "password": PASSWORD, field: "\ud800 surrogate \udfff"}
    r = client.post("/login", data=json.dumps(body), content_type="application/json")
    refused(r, "login-schema", f"a lone surrogate in the {field} at login was accepted ({{status}})")
    assert r.status_code == 400, f"a lone surrogate in the {field} at login answered {r.status_code}"


@pytest.mark.exercise("validation-errors", when_named=True)
@pytest.mark.exercise("register-schema")
@pytest.mark.parametrize("field", ["username", "password"])
def test_register_refuses_invalid_unicode(client, field):
    """A lone surrogate in a registration gets a 400, not a crash in hashing or in SQLite."""
    body = {"username": "alice", "password": PASSWORD, field: "\ud800 surrogate text here \udfff"}
    r = client.post("/register", data=json.dumps(body), content_type="application/json")
    refused(r, "register-schema", f"a lone surrogate in the {field} was accepted ({{status}})")
    assert r.status_code == 400, f"a lone surrogate in the {field} answered {r.status_code}"


# --------------------------------------------------------------------------------------------
# exercise 3.3 validation-errors
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("validation-errors")
def test_errors_are_listed_per_field(client):
    """A 400 lists what is wrong per field, so a client can fix its request."""
    # Wrong types: refused by any schema that declares the two fields, whatever its other rules.
    r = client.post("/register", json={"username": 12345, "password": ["not", "a", "string"]})
    assert r.status_code == 400, f"a number as username and a list as password answered {r.status_code}"
    errors = errors_of(r)
    assert set(errors) >= {"username", "password"}, (
        f"the 400 should list the problems per field under 'errors', it said {r.get_json()}"
    )
    assert all(isinstance(m, list) and m for m in errors.values()), "each field should have a list of messages"


@pytest.mark.exercise("read-json", when_named=True)
@pytest.mark.exercise("validation-errors")
@pytest.mark.parametrize("body", [[1, 2], "alice", 42, None, True], ids=["list", "string", "number", "null", "true"])
def test_a_body_that_is_not_an_object_is_refused_with_a_message(client, body):
    """A JSON value that is not an object gets 400 with a message for the body as a whole."""
    r = client.post("/register", data=json.dumps(body), content_type="application/json")
    answer = r.get_json(silent=True)
    if r.status_code == 400 and isinstance(answer, dict) and "errors" not in answer and error_message(answer):
        # Refused as a whole while reading it (exercise 3.4), before any schema: a message for the body too,
        # if it is not the answer every schema failure gets (then it is the handler's, without its messages).
        schema_failure = client.post("/register", json={}).get_json(silent=True)
        if without_request_id(answer) != without_request_id(schema_failure):
            return
    errors = errors_of(r)
    check(errors.get("_schema") or not {"username", "password"} <= set(errors), "read-json",
          f"the JSON body {json.dumps(body)} was read as an empty object: the 400 says the fields are missing "
          f"({errors}) instead of that the body must be an object. Return what get_json() parsed, whatever it is "
          "(`get_json() or {}` turns null, [], 0, false and \"\" into {})")
    assert r.status_code == 400, f"the JSON body {body!r} answered {r.status_code}"
    assert errors.get("_schema"), f"the 400 for {body!r} should explain the body under errors._schema"


@pytest.mark.exercise("register-schema", when_named=True)
@pytest.mark.exercise("validation-errors")
def test_missing_and_wrongly_typed_fields_are_named(client):
    """Missing fields and a number instead of a string are each named in the 400."""
    r = client.post("/register", json={"username": 12345})
    errors = errors_of(r)
    assert r.status_code == 400 and "username" in errors, (
        f"a number as username and no password should both be named, the answer was {r.get_json()}"
    )
    check("password" in errors, "register-schema",
          f"a registration without a password was not told that it is missing ({r.get_json()}): the password is "
          "required (required=True)")


# --------------------------------------------------------------------------------------------
# exercise 3.4 read-json
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("read-json")
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_unsupported(client, content_type):
    """A body sent as text or as a form gets 415 Unsupported Media Type, as JSON."""
    kwargs = {"data": '{"username": "alice", "password": "x"}'}
    if content_type:
        kwargs["content_type"] = content_type
    r = client.post("/register", **kwargs)
    assert r.status_code == 415, f"a {content_type or 'type-less'} body answered {r.status_code}, expected 415"
    assert r.is_json and error_message(r.get_json()), "the 415 should be JSON with a message"


@pytest.mark.exercise("read-json")
@pytest.mark.parametrize("raw", [b'{"username": ', b"{'username': 'alice'}", b"\xff\xfe{}", b""],
                         ids=["cut short", "single quotes", "invalid UTF-8", "empty"])
def test_malformed_json_is_a_clear_400(client, raw):
    """JSON that does not parse gets 400 with a JSON message, not an HTML page."""
    r = client.post("/login", data=raw, content_type="application/json")
    assert r.status_code == 400, f"the body {raw!r} answered {r.status_code}"
    assert r.is_json and error_message(r.get_json()), f"the 400 for {raw!r} should be JSON with a message"


@pytest.mark.exercise("read-json")
@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"a":', "}")], ids=["lists", "objects"])
def test_deeply_nested_json_is_refused_not_a_crash(client, opener, closer):
    """JSON nested thousands deep (under the size cap) gets 400, whether or not this Python's parser
    hits its recursion limit at that depth (3.11 and 3.12 do at 5,000 levels; 3.13 goes deeper)."""
    depth = 5000 if opener == "[" else 2500
    raw = opener * depth + "1" + closer * depth
    assert len(raw) < 16 * 1024
    try:
        r = client.post("/register", data=raw, content_type="application/json")
    except RecursionError:  # testing mode: an exception in the view reaches the test
        pytest.fail(f"JSON nested {depth} deep crashed the app (RecursionError, a 500 in production): "
                    "Python's json parser recurses once per level; catch RecursionError and answer 400",
                    pytrace=False)
    assert r.status_code == 400, f"JSON nested {depth} deep answered {r.status_code}: catch RecursionError"


# --------------------------------------------------------------------------------------------
# No body, however strange, causes a 5xx
# --------------------------------------------------------------------------------------------


@pytest.mark.exercise("read-json")
def test_an_oversized_body_is_refused(client):
    """A body over the size cap (MAX_CONTENT_LENGTH) gets 413 before anything parses it."""
    r = register(client, "alice", "y" * 20_000)
    assert r.status_code == 413, f"a 20 KB body answered {r.status_code}, expected 413"


CAP = 16 * 1024  # MAX_CONTENT_LENGTH of every step


def cut_to_fit(username="alice", size=CAP + 4000):
    """A body of ``size`` bytes whose first 16 KiB are a whole JSON object (then spaces, then junk):
    a server that reads only up to the cap sees a valid registration."""
    head = json.dumps({"username": username, "password": PASSWORD}).encode()
    return head + b" " * (CAP - len(head)) + b"x" * (size - CAP)


def post_streamed(client, path, raw):
    """POST ``raw`` chunked, as gunicorn or `flask run` hand a chunked body to the app: no
    Content-Length, and the server's word that it ends the stream (wsgi.input_terminated)."""
    return client.post(path, data=raw, content_type="application/json", headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def answer(r):
    """What must be the same in two answers: the body, without its per-request id (step 05 on)."""
    body = r.get_json(silent=True)
    return without_request_id(body) if body is not None else r.get_data()


@pytest.mark.exercise("read-json")
@pytest.mark.parametrize("path", ["/register", "/login"])
def test_a_chunked_body_over_the_cap_is_refused_like_one_with_a_length(client, path):
    """A body over the cap gets the same 413 whether it says its length or comes chunked: never cut
    at the cap and accepted (OWASP API4:2023, unrestricted resource consumption)."""
    if path == "/login":
        assert register(client, "alice").status_code == 201
    raw = cut_to_fit()
    with_length = client.post(path, data=raw, content_type="application/json")
    assert with_length.status_code == 413, f"a {len(raw):,}-byte body with Content-Length answered {with_length.status_code}"
    streamed = post_streamed(client, path, raw)
    assert streamed.status_code == 413, (
        f"the same {len(raw):,}-byte body sent chunked (no Content-Length) answered {streamed.status_code}: the app "
        f"read its first {CAP:,} bytes, a valid JSON object, and never looked at the rest. Without a length, "
        "Werkzeug stops reading at MAX_CONTENT_LENGTH without an error: a body that fills the cap is too large (413)"
    )
    assert answer(streamed) == answer(with_length), (
        f"the chunked body's 413 says {answer(streamed)!r}, the one with a length {answer(with_length)!r}: "
        "one refusal, one answer (abort(413), as Werkzeug does for a Content-Length over the cap)"
    )
    if path == "/register":
        assert login(client).status_code == 401, "the refused chunked registration created an account"


@pytest.mark.exercise("read-json")
def test_a_chunked_body_under_the_cap_is_read_whole(client):
    """A chunked body under the cap is read to its end and accepted: streaming as such is not refused."""
    head = json.dumps({"username": "alice", "password": PASSWORD}).encode()
    raw = head + b" " * (CAP - 1 - len(head))
    r = post_streamed(client, "/register", raw)
    assert r.status_code == 201, (
        f"a chunked registration of {len(raw):,} bytes, under the {CAP:,}-byte cap, answered {r.status_code}: "
        "refuse what is over the cap, not every body without a Content-Length"
    )
