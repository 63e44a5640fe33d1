"""Build notebooks/03_input_validation.ipynb (step 03 — Input validation) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 3
    python -m pytest notebooks/03_input_validation.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: no raw keys or tokens, no paths, no timings. The step 02
app that answers 500 has its logger silenced, so no traceback reaches stderr: the notebook prints
the exception's one-line summary instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _builder import Builder  # noqa: E402

builder = Builder(__file__)
md, code = builder.md, builder.code


# ------------------------------------------------------------------------------------------------
# 1. Opening
# ------------------------------------------------------------------------------------------------

builder.intro(3, r'''
from lab import validation as lab  # notebooks/lab/validation.py: apps configured like a server, pictures
from lab.common import guess
''')

# ------------------------------------------------------------------------------------------------
# 2. The attack, on step 02's solution
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: what step 02 lets in

Step 02's `/register` and `/login` read the body with `request.get_json(silent=True)` and check
one thing: that it is a JSON object with a non-empty string `username` and a non-empty string
`password`. Everything else about those strings (their size, their characters, what else the
object holds) is taken as it comes.

You will send it bodies that no honest client sends. `post(app, body)` posts raw text to an app in
this process, so you see exactly what goes over the wire, and `show(response)` prints the answer
in one line (both in `notebooks/lab/validation.py`).

One detail matters for the demonstration. With `TESTING = True`, Flask re-raises an unhandled
exception into the test client, which is handy in tests but is not what a server does. This app is
configured like a server instead (`TESTING` and `PROPAGATE_EXCEPTIONS` off): an unhandled exception
becomes a **500 Internal Server Error**, and the exception goes to the server's log. We silence
that log (its traceback would go to stderr) and print its one-line summary next to the answer.
''')

code("step02-app", r'''
import json, sqlite3, tempfile
from contextlib import closing

from solutions.step02_authentication import create_app as create_step02

workdir = pathlib.Path(tempfile.mkdtemp())  # the SQLite files; deleted at the end of the notebook


def settings(name, **overrides):
    return lab.settings(workdir, name, **overrides)  # a random key, a new SQLite file, cheap hashing


like_a_server, post, show = lab.like_a_server, lab.post, lab.show


step02 = like_a_server(create_step02(settings("step02", TESTING=False, PROPAGATE_EXCEPTIONS=False)))
print("step 02 is up; TESTING:", step02.testing)
''')

md("shapes-intro", r'''
### (a) JSON that is not an object

`request.json` is whatever the JSON text holds: an object, but just as well a list, a string, a
number or `null`. The classic tutorial calls `request.json.get(...)` and crashes on those. Step 02
checks the shape first:
''')

code("shapes", r'''
for body in ('["alice", "violet kettle under a quiet moon"]', '"alice"', 'null'):
    print(f"{body:47} -> {show(post(step02, body))}")
''')

md("shapes-lesson", r'''
Step 02 survives these. Every body from here on **is** a JSON object with two non-empty strings,
and each one still gets through.
''')

md("surrogate-intro", r'''
### (b) A string that is not text: a lone surrogate

JSON writes characters outside the Basic Multilingual Plane as two `\uXXXX` escapes, a UTF-16
*surrogate pair*. Nothing in the JSON grammar forces the pair to be complete: `"\ud800"` alone is
valid JSON, and RFC 8259 §8.2 warns that what software does with such strings is unpredictable.
Python's `json` decodes it into a `str` holding one lone surrogate, a code point that is not a
character and that UTF-8 cannot encode.
''')

code("surrogate", r'''
as_password = r'{"username": "eve", "password": "\ud800"}'
as_username = r'{"username": "\ud800", "password": "violet kettle under a quiet moon"}'

print("json.loads gives:", ascii(json.loads(as_password)["password"]))
for body in (as_password, as_username):
    print(f"\n{body}\n  -> {show(post(step02, body))}")
''')

md("surrogate-lesson", r'''
Two **500s**, from a few dozen bytes each. The password crashes in argon2-cffi, which encodes the password
to UTF-8 before hashing it; the username crashes one step later, in `sqlite3`, when it binds the
parameter. A 500 tells an honest client nothing it can fix, fills the error log with tracebacks,
and tells an attacker which input reached code that did not expect it. A 4xx that names the field
is the right answer.
''')

md("huge-intro", r'''
### (c) A body of any size

How long may a password be? Step 02 has no answer, and neither has Flask: `MAX_CONTENT_LENGTH`
is `None` by default. (Flask 3.1's `MAX_FORM_MEMORY_SIZE` limits form fields, not JSON.)
''')

code("huge", r'''
body = json.dumps({"username": "big", "password": "x" * 1_000_000})

print(f"a body of {len(body.encode()):,} bytes -> {show(post(step02, body))}")
print("step 02's MAX_CONTENT_LENGTH:", step02.config["MAX_CONTENT_LENGTH"])
''')

md("huge-lesson", r'''
Accepted: a one-megabyte password, read into memory, parsed, hashed and stored as an account.
A megabyte is not the limit; nothing is. Every request like it costs the server memory and CPU
that the client chooses (OWASP API4:2023, Unrestricted Resource Consumption).
''')

md("deep-intro", r'''
### (d) JSON nested a hundred thousand deep

Python's JSON parser calls itself once per `[` or `{`, and gives up with `RecursionError` past a
depth that depends on the Python version: 5,000 levels are too deep for 3.11 and 3.12, while 3.13
parses 8,000 and stops before 20,000. A hundred thousand `[` (100 KB: step 02 has no size cap) are
too deep for all of them. `get_json(silent=True)` only silences the `ValueError`s of malformed JSON:
''')

code("deep", r'''
print("RecursionError is a ValueError:", issubclass(RecursionError, ValueError))
print(f"'[' * 100_000 -> {show(post(step02, '[' * 100_000))}")
''')

md("deep-lesson", r'''
Another 500. The `silent=True` looked like it handled every bad body; it handles the ones its
authors thought of.
''')

builder.your_turn("duplicate-key", r'''
One JSON object, the same name twice: `{"username": "alice", "username": "admin", ...}`. RFC 8259
§4 says names *should* be unique, and that software then behaves unpredictably. **Predict**: which
name does step 02 register? Write the raw body (a Python string: `json.dumps` cannot make it), then
run the cell.
''', r'''
prediction = ...  # "alice", "admin", or a refusal
twice = ...       # '{"username": "...", "username": "...", "password": "..."}'

if twice is ...:
    print("Replace the ... of twice with your raw JSON text, then run this cell again.")
else:
    print("you predicted:", guess(prediction), "| the answer:", show(post(step02, twice)))
    with closing(sqlite3.connect(step02.config["DATABASE"])) as conn:
        print("the newest account:", conn.execute("SELECT username FROM user ORDER BY id DESC").fetchone())
''', r'''
twice = '{"username": "carol", "username": "admin", "password": "violet kettle under a quiet moon"}'
print(show(post(step02, twice)))
with closing(sqlite3.connect(step02.config["DATABASE"])) as conn:
    print("the newest account:", conn.execute("SELECT username FROM user ORDER BY id DESC").fetchone())
''', r'''
**`admin`: Python's `json` keeps the last value.** Other parsers keep the first, or refuse. A
proxy or a web application firewall that reads the first `username` and lets the request through
because `carol` looks harmless hands the app an `admin` it never checked: checks must run on the
exact values the app will use, parsed once, by the app. (Step 03's schema sees only the parsed
dictionary, so it cannot tell either; a strict parser can, with `object_pairs_hook`.)
''')

md("mass-intro", r'''
### (e) Fields the client does not own: mass assignment

What if the object carries more than two fields?
''')

code("mass", r'''
body = json.dumps({"username": "mallory", "password": "violet kettle under a quiet moon",
                   "role": "admin"})
print(f"{body}\n  -> {show(post(step02, body))}")

with closing(sqlite3.connect(step02.config["DATABASE"])) as conn:
    print("\nthe user table's columns:", [row[1] for row in conn.execute("PRAGMA table_info(user)")])
''')

md("mass-future", r'''
Step 02 ignores `role` today, only because nothing reads it. Now picture the code a few months
later: the user table has a `role` column, and someone writes the short version of registration,
`db.create_user(**data)` or `User(**request.json)`. Here is that future, in three lines:
''')

code("mass-future-demo", r'''
from dataclasses import dataclass


@dataclass
class User:  # the model, once accounts have roles
    username: str
    password: str
    role: str = "user"  # every new account is a plain user... unless the client says otherwise


print(User(**json.loads(body)))
''')

md("mass-lesson", r'''
A privilege escalation, from one extra JSON field. OWASP files it under **API3:2023 Broken Object
Property Level Authorization** ("mass assignment"): the client sets a property it must not own.
The defence is to refuse unknown fields, not to ignore them, and to copy only the fields you
declared into your model.
''')

md("lookalike-intro", r'''
### (f) One name, four accounts

Step 02 stores a username exactly as typed. Register `alice`, then `ALICE`, then `ａｌｉｃｅ`
(fullwidth letters, as East Asian input methods type them: U+FF41 and on), then `ᴬᴸᴵᶜᴱ`
(modifier letters, the small raised ones, such as U+1D2C `ᴬ`):
''')

code("lookalike", r'''
for name in ("alice", "ALICE", "ａｌｉｃｅ", "ᴬᴸᴵᶜᴱ"):
    body = json.dumps({"username": name, "password": "violet kettle under a quiet moon"})
    print(f"{name:8} -> {show(post(step02, body))}")

print("\nthe user table (ascii() shows which characters each name really holds):")
with closing(sqlite3.connect(step02.config["DATABASE"])) as conn:
    for user_id, username in conn.execute("SELECT id, username FROM user ORDER BY id"):
        shown = username if len(username) <= 20 else username[:17] + "..."
        print(f"  {user_id}  {ascii(shown)}")
''')

md("spotify", r'''
Four accounts that a person reads as one name: an impersonation kit (a support agent, or a user,
sees "alice"). Worse things happen when *part* of a system folds names together and another part
does not.

That is what happened to Spotify in 2013 ("Creative usernames and Spotify account hijacking",
Spotify Labs, June 2013). Spotify computed a canonical form of each username with a function,
`canonical_username`, built on Twisted's `nodeprep.prepare`, and relied on it being
*idempotent*: applying it twice gives the same result as applying it once. It was not.
`ᴮᴵᴳᴮᴵᴿᴰ` canonicalized to `BIGBIRD`, and `BIGBIRD` canonicalized to `bigbird`. An attacker
registered `ᴮᴵᴳᴮᴵᴿᴰ` (canonical `BIGBIRD`: no clash with the existing `bigbird`) and asked for a
password reset: the link went to the attacker's own e-mail, but when it was used the name was
canonicalized once more, to `bigbird`, and the new password was set on the victim's account.

The lesson: one canonical form, computed in one place, that does not change when applied again.
The section on canonicalization below builds one.
''')

md("trap-intro", r'''
### (g) The marshmallow 4 trap in the classic tutorial

The usual fix for all of this is a marshmallow schema, and the one the classic tutorials teach
looks like this: a password of at least 6 characters, checked by a lambda. On marshmallow 4
(installed here):
''')

code("trap", r'''
from importlib.metadata import version

from marshmallow import Schema, ValidationError, fields

print("marshmallow", version("marshmallow").split(".")[0] + ".x")


class UserSchema(Schema):  # as the classic tutorial writes it
    username = fields.Str(required=True)
    password = fields.Str(required=True, validate=lambda p: len(p) >= 6)


for password in ("", "abc"):
    print(f"password {password!r:6} -> loaded: {UserSchema().load({'username': 'alice', 'password': password})}")
''')

md("trap-lesson", r'''
Both accepted. The lambda returns `False` and marshmallow 4 **ignores the return value** of a
validator: since 4.0, a validator must *raise* `ValidationError` (marshmallow 4 changelog;
marshmallow 3 still treated `False` as a failure). The schema looks like validation and validates
nothing, and no error or warning tells you. A validator that raises:
''')

code("trap-fixed", r'''
def at_least_6(password):
    if len(password) < 6:
        raise ValidationError("Use at least 6 characters.")


class FixedUserSchema(Schema):
    username = fields.Str(required=True)
    password = fields.Str(required=True, validate=at_least_6)


for password in ("", "abc", "abcdefgh"):
    try:
        print(f"password {password!r:10} -> loaded: {FixedUserSchema().load({'username': 'alice', 'password': password})}")
    except ValidationError as error:
        print(f"password {password!r:10} -> refused: {error.messages}")
''')

md("trap-note", r'''
Six characters is still far too short (see the NIST rules below), but at least the rule now runs.
Whenever you write a validator, test that it *refuses* something.
''')

# ------------------------------------------------------------------------------------------------
# 3. Concepts
# ------------------------------------------------------------------------------------------------

md("allowlist-intro", r'''
## Allowlist, not blocklist

There are two ways to validate a field:

- a **blocklist** names what is forbidden ("no quotes, no `<`, no spaces") and lets everything
  else through;
- an **allowlist** names what is allowed ("3 to 32 of `a-z 0-9 . _ -`") and refuses everything
  else.

A blocklist fails open: it refuses only the attacks its author thought of. The OWASP Input
Validation Cheat Sheet recommends allowlists for that reason. Below, a typical "dangerous
characters" blocklist against step 03's username allowlist, which is applied to the canonical form
of the name (NFKC and case folding, explained in the next section):
''')

code("allowlist", r'''
from IPython.display import Markdown, display

from solutions.step03_input_validation.schemas import USERNAME_PATTERN, canonical_username

BLOCKED = set("'\"<>;=() ")  # a typical list of "dangerous characters"


def blocklist_accepts(name):
    return not any(character in BLOCKED for character in name)


def allowlist_accepts(name):
    return USERNAME_PATTERN.fullmatch(canonical_username(name)) is not None


CANDIDATES = [
    ("plain", "alice"),
    ("capitals", "ALICE"),
    ("fullwidth letters", "ａｌｉｃｅ"),
    ("Cyrillic а (U+0430), then 'lice'", "аlice"),
    ("a zero-width space at the end", "alice\u200b"),
    ("an SQL injection", "x' OR '1'='1"),
    ("the same in fullwidth: ＇ ＝ and U+3000 spaces", "x＇　OR　＇1＇＝＇1"),
    ("an HTML tag", "<script>"),
]

verdict = {True: "accepted", False: "**refused**"}
rows = ["| the name | as typed (`ascii()`) | blocklist | canonical form | allowlist |",
        "|---|---|---|---|---|"]
for label, name in CANDIDATES:
    rows.append(f"| {label} | `{ascii(name)}` | {verdict[blocklist_accepts(name)]} "
                f"| `{ascii(canonical_username(name))}` | {verdict[allowlist_accepts(name)]} |")
display(Markdown("\n".join(rows)))
''')

md("allowlist-lesson", r'''
The blocklist lets through the look-alikes and the invisible character. It lets through the
fullwidth injection too, which NFKC turns into the plain `x' OR '1'='1` *after* the blocklist has
looked. Two
rules follow: **normalize first, then validate** the normalized value (and use only that value
afterwards), and **allow what you expect** rather than forbid what you fear. `ALICE` and
`ａｌｉｃｅ` are accepted by the allowlist, as the *same* name `alice`: the database's
`UNIQUE(username)` then refuses the second account.
''')

md("pipeline-intro", r'''
## Where each check sits

Validation is a pipeline: each stage refuses what it can with its own 4xx, and the view runs only
on data that passed every stage. The cheap checks come first: the Content-Type and the size are
checked before a byte of JSON is parsed. This is step 03's pipeline for `/register`:
''')

code("pipeline-picture", r'''
lab.pipeline_picture()  # the drawing code is in notebooks/lab/validation.py
''')

md("pipeline-lesson", r'''
Every refusal is a 4xx with a JSON body that says what is wrong, and no input reaches the view
unchecked. The size cap is Flask's (`MAX_CONTENT_LENGTH`); the Content-Type, parsing and nesting
checks are step 03's `json_body()`; the shape and the fields are the marshmallow schema's, and its
`ValidationError` becomes the 400 in one error handler.
''')

md("canon-intro", r'''
## One name, one form: Unicode canonicalization

Unicode has many ways to write what a reader sees as the same name. Two standard operations
fold most of them together:

- **NFKC** (Unicode Standard Annex #15, normalization form KC) replaces *compatibility* characters
  by their plain equivalent: fullwidth `ａ` becomes `a`, the modifier letter `ᴬ` becomes `A`, the
  ligature `ﬁ` becomes `fi`. It also composes accents, so `é` typed as `e` + a combining accent
  becomes the single character `é`.
- **Case folding** (`str.casefold()`) is lower-casing made for comparisons: it also folds
  characters that have no simple lower case, so `ß` becomes `ss`.

Step 03's `canonical_username` applies NFKC, then case folding, then NFKC again, and repeats until
the name no longer changes. The allowlist then judges the result:
''')

code("canon-table", r'''
import unicodedata

EXAMPLES = [
    ("capitals", "ALICE"),
    ("fullwidth letters", "ａｌｉｃｅ"),
    ("modifier letters", "ᴬᴸᴵᶜᴱ"),
    ("the ligature ﬁ (U+FB01)", "ﬁnn"),
    ("German sharp s", "Straße"),
    ("Cyrillic а (U+0430)", "аlice"),
]

rows = ["| the name | input | NFKC | then casefold | final (`canonical_username`) | allowlist |",
        "|---|---|---|---|---|---|"]
for label, name in EXAMPLES:
    nfkc = unicodedata.normalize("NFKC", name)
    final = canonical_username(name)
    rows.append(f"| {label} | {name} | {nfkc} | {nfkc.casefold()} | **{final}** "
                f"| {verdict[allowlist_accepts(name)]} |")
display(Markdown("\n".join(rows)))
''')

md("canon-notes", r'''
Three things to see in the table:

- The modifier letters have no capital C, so `ᴬᴸᴵᶜᴱ` is written with a *small* modifier `ᶜ`: NFKC
  gives `ALIcE`, and case folding finishes the job.
- Case folding is more than `lower()`: `"Straße".lower()` is `straße`, but the case-folded
  `strasse` is what `STRASSE` and `strasse` fold to as well.
- NFKC does not fold *scripts*: Cyrillic `а` looks like Latin `a` but is another letter, and stays
  one. That is the allowlist's job: a name must be `a-z 0-9 . _ -` **after** canonicalization.
''')

md("idempotent-intro", r'''
### Idempotent, or Spotify again

Here is a canonical form with the order wrong: lower-case first, NFKC after. It reproduces the
symptom of the Spotify bug: applied once and twice, it gives two different names. Step 03's
function, applied twice, changes nothing the second time.
''')

code("idempotent", r'''
def lower_then_nfkc(name):  # the wrong order: NFKC can make capitals after lower() has run
    return unicodedata.normalize("NFKC", name.lower())


for function in (lower_then_nfkc, canonical_username):
    once = function("ᴮᴵᴳᴮᴵᴿᴰ")
    twice = function(once)
    print(f"{function.__name__:18}  once: {once:8}  twice: {twice:8}  idempotent: {once == twice}")
''')

md("idempotent-lesson", r'''
Canonicalize once, at the edge (the schema), store the canonical form, and use only that form
everywhere: registration, login, password reset, lookups. In step 03 the four spellings above are
one name, `alice`, stored once; its login schema canonicalizes the same way, so `ＡＬＩＣＥ` logs in
to alice's account instead of failing or finding another one.
''')

# ------------------------------------------------------------------------------------------------
# 4. Passwords per NIST SP 800-63B-4
# ------------------------------------------------------------------------------------------------

md("nist", r'''
## Passwords: what NIST SP 800-63B-4 asks (§3.1.1.2)

The password rules of NIST's *Digital Identity Guidelines* (SP 800-63B-4, §3.1.1.2), and what
step 03's `RegisterSchema` does with each:

- **Length.** A password used alone (single-factor) must be at least **15 characters**; verifiers
  should allow at least **64**. Step 03: 15 to 128. The cap is our choice: no one types more, and
  it bounds the work each request can ask for (reading, normalizing, hashing).
- **Any characters.** Accept all printing ASCII characters and the space, and Unicode; each code
  point counts as one character. Normalize Unicode (NFKC or NFKD) so that `é` typed two ways is
  one password. Step 03's `Password` field applies NFKC and refuses no character except lone
  surrogates, which are not characters at all.
- **No composition rules**: no "one capital, one digit, one symbol". NIST's appendix on password
  strength gives the reasons: people meet such rules in predictable ways (`password` becomes
  `Password1!`), so the rules add little strength; and passwords that are hard to remember get
  written down or stored unsafely.
- **A blocklist.** Compare a new password with a list of commonly used, expected or compromised
  passwords, and make the user choose another. Attackers try these first, online and offline; a
  slow hash does not help a password that is the tenth guess.
- **Never truncated**: the whole password is verified. NIST says nothing about letter case;
  this course's choice is to compare passwords exactly (not case-folded), and to compare a *new*
  password with the common list after case folding (below).

Which list? One of short passwords would refuse almost nothing here: Django's
`common-passwords.txt.gz`, the list this course shipped first, has 19,640 entries, and only 48 of
them are 15 characters or longer. OWASP ASVS 5.0 (V6.2.4) asks to check new passwords against at
least the top 3,000 that *meet the policy*. So step 03's list holds what the length rule lets
through: the leaked passwords of 15 to 128 characters among SecLists' million most frequent, plus
Django's long ones (`tools/build_common_passwords.py` builds it; sources and licences in
`THIRD_PARTY_NOTICES.md`).
''')

code("common-list", r'''
from collections import Counter

from solutions.step03_input_validation.schemas import PASSWORD_MIN, common_passwords

common = common_passwords()
long_enough = sorted((p for p in common if len(p) >= PASSWORD_MIN), key=lambda p: (len(p), p))

print(f"passwords on the list:  {len(common):,}")
print(f"{PASSWORD_MIN} characters or more: {len(long_enough):,}")
print("\nsome of them:")
for password in ("123456789qwerty", "qazwsxedcrfvtgb", "manchesterunited", "friend of emily",
                 "1234567890qwertyuiop", "1q2w3e4r5t6y7u8i9o0p"):
    assert password in long_enough
    print(f"  {password!r:24} {len(password)} characters")
''')

code("common-chart", r'''
lab.common_lengths_chart(common, PASSWORD_MIN)  # the drawing code is in notebooks/lab/validation.py
''')

md("common-lesson", r'''
Every entry is 15 characters or longer: the list refuses what the length rule cannot, keyboard
walks and counting written long, names with dates, phrases. And when the list refuses a password,
step 03 says why ("on a list of common passwords that attackers try first") and what to do ("use a
few unrelated words"), so the user can choose better instead of guessing at a hidden rule.

The list is compared after case folding, so `ManchesterUnited` is refused too: NIST asks for a
blocklist but says nothing about case, so this is the course's choice (a capital letter at the
start is the first change people make to a listed password). Login checks none
of these rules, only the shape and a size limit (1,024 characters): a login that answered "too
short" would teach an attacker the policy, and would lock out users whose password predates it.
''')

md("predictable", r'''
Some guesses need no list. One character or a short part repeated (`aaaaaaaaaaaaaaa`,
`passwordpassword`), or a run along the alphabet, the digits or a keyboard (`abcdefghijklmno`,
`123456789012345`, `qwertyuiopasdfg`): the previous revision of NIST's guidelines named them,
"repetitive or sequential characters", and an attacker tries them early at any length. Step 03's
`not_predictable` (given in `schemas.py`, not an exercise) refuses a password that *is* one, and
says which rule it breaks. A passphrase that merely *contains* `123` or `aa` is fine: refusing
those would be a composition rule.
''')

code("predictable-demo", r'''
from marshmallow import ValidationError

from solutions.step03_input_validation.schemas import not_predictable

for password in ("aaaaaaaaaaaaaaa", "abcabcabcabcabc", "ZYXWVUTSRQPONMLK", "qwertyuiopasdfghjk",
                 "1-2-3-4-5-6-7-8-9-0", "cactus gravy ninja pebble", "my 123 best abc days"):
    try:
        not_predictable(password)
        verdict = "accepted"
    except ValidationError as error:
        verdict = "refused: " + error.messages[0].split(" (like")[0].removeprefix("This password ")
    print(f"{password!r:30} {verdict}")
''')

# ------------------------------------------------------------------------------------------------
# 5. Injection: validation is not the defence
# ------------------------------------------------------------------------------------------------

md("injection-intro", r'''
## Injection: validation is not the defence

A scratch database in memory (not the app's), three users, and a lookup written the way it should
never be: the username pasted into the SQL text.
''')

code("injection", r'''
scratch = sqlite3.connect(":memory:")  # a throwaway database, only for this demonstration
scratch.execute("CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT UNIQUE, password_hash TEXT)")
scratch.executemany("INSERT INTO user (username, password_hash) VALUES (?, ?)",
                    [("alice", "$argon2id$..."), ("bob", "$argon2id$..."), ("carol", "$argon2id$...")])


def find_user_VULNERABLE(name):
    # !!! VULNERABLE: DO NOT COPY. The input becomes part of the SQL text. !!!
    query = f"SELECT id, username FROM user WHERE username = '{name}'"
    print("  the SQL that runs:", query)
    return scratch.execute(query).fetchall()


print("rows:", find_user_VULNERABLE("alice"))
print("rows:", find_user_VULNERABLE("x' OR '1'='1"))
''')

md("injection-param", r'''
The quote in the input closed the string literal, and `OR '1'='1'` made the condition true for
every row: the query that should find one user returned all of them. With a `?` placeholder the
input is sent to SQLite as a *value*, separately from the SQL text, and can never become SQL:
''')

code("injection-fixed", r'''
def find_user(name):
    return scratch.execute("SELECT id, username FROM user WHERE username = ?", (name,)).fetchall()


print("rows:", find_user("alice"))
print("rows:", find_user("x' OR '1'='1"))
''')

md("injection-validation", r'''
Step 03's username allowlist happens to refuse quotes, so *this* query would have been safe behind
it. But that is luck, not design: a password must accept any character (NIST), and so must a
display name, a comment, a search box. The registration schema accepts this password, quotes and
all:
''')

code("injection-password", r'''
from solutions.step03_input_validation.schemas import RegisterSchema

print("username x' OR '1'='1 passes the allowlist:", allowlist_accepts("x' OR '1'='1"))
print(RegisterSchema().load({"username": "dave", "password": "x' OR '1'='1' -- my long password"}))
''')

md("injection-lesson", r'''
Validation rejects what is not *expected*; it cannot reject what is expected and dangerous. Only
parameterized queries protect every query, whatever the data (OWASP SQL Injection Prevention
Cheat Sheet, defence option 1). OWASP ASVS 5.0 **V1.2.4**: "Verify that data selection or database
queries (e.g., SQL, HQL, NoSQL, Cypher) use parameterized queries, ORMs, entity frameworks, or are
otherwise protected from SQL Injection and other database injection attacks." Every query in the
workbook's `db.py` uses `?` placeholders, since step 02.

The two defences are layers: validation keeps the data clean and the answers clear;
parameterization keeps the data out of the SQL.
''')

# ------------------------------------------------------------------------------------------------
# 6. The fix
# ------------------------------------------------------------------------------------------------

md("fix-intro", r'''
## The fix: step 03

Step 03 keeps step 02's routes and responses and puts the pipeline in front of them:

- `config.py`: `MAX_CONTENT_LENGTH = 16 * 1024`, so Flask answers 413 for anything bigger;
- `auth.py`: `json_body()` answers 415 for a body that is not JSON, 400 for JSON that does not
  parse or is nested too deeply; one `@bp.errorhandler(ValidationError)` turns every schema failure
  into a 400 with the messages per field;
- `schemas.py`: `RegisterSchema` and `LoginSchema`, with the `Username` field (refuses lone
  surrogates, canonicalizes), the `Password` field (refuses lone surrogates, NFKC), the allowlist,
  the NIST rules and the common list. marshmallow refuses unknown fields by default
  (`unknown = RAISE`), which stops mass assignment.

Now every attack from above, sent to a fresh step 02 app and a fresh step 03 app, in order (alice
registers first in both). The step 03 app runs with `TESTING = True`: if any request raised an
unhandled exception, this cell would stop with it.
''')

code("fix-table", r'''
from solutions.step03_input_validation import create_app as create_step03


def as_json(**fields):
    return json.dumps(fields)  # non-ASCII characters are sent as \u escapes, as most clients do


GOOD = "violet kettle under a quiet moon"  # 32 characters, not on the list
JSON, TEXT = "application/json", "text/plain"

ATTACKS = [  # (the attack, path, body, Content-Type)
    ("alice registers", "/register", as_json(username="alice", password=GOOD), JSON),
    ("(a) a JSON list", "/register", f'["alice", "{GOOD}"]', JSON),
    ("(a) a JSON string", "/register", '"alice"', JSON),
    ("(a) `null`", "/register", "null", JSON),
    ("(b) a lone surrogate as the password", "/register", as_password, JSON),
    ("(b) a lone surrogate as the username", "/register", as_username, JSON),
    ("(c) a 1 MB password", "/register", as_json(username="big", password="x" * 1_000_000), JSON),
    ("(d) `[` nested 100,000 deep (100 KB: over the cap)", "/register", "[" * 100_000, JSON),
    ("(d) `[` nested 15,000 deep (15 KB: under the cap)", "/register", "[" * 15_000, JSON),
    ('(e) an extra field `"role": "admin"`', "/register",
     as_json(username="mallory", password=GOOD, role="admin"), JSON),
    ("(f) `ALICE`", "/register", as_json(username="ALICE", password=GOOD), JSON),
    ("(f) `ａｌｉｃｅ`", "/register", as_json(username="ａｌｉｃｅ", password=GOOD), JSON),
    ("(f) `ᴬᴸᴵᶜᴱ`", "/register", as_json(username="ᴬᴸᴵᶜᴱ", password=GOOD), JSON),
    ("(g) the password `abc`", "/register", as_json(username="bob", password="abc"), JSON),
    ("a common password, 15 characters", "/register",
     as_json(username="carol", password="123456789qwerty"), JSON),
    ("not JSON: a text/plain body", "/register", "username=alice", TEXT),
    ("malformed JSON", "/register", '{"username": ', JSON),
    ("bytes that are not UTF-8", "/register", b'{"username": "\xff"}', JSON),
    ("log in as `ＡＬＩＣＥ` (alice's password)", "/login", as_json(username="ＡＬＩＣＥ", password=GOOD), JSON),
    ("log in as alice, password `abc`", "/login", as_json(username="alice", password="abc"), JSON),
]




before = like_a_server(create_step02(settings("table02", TESTING=False, PROPAGATE_EXCEPTIONS=False)))
after = create_step03(settings("table03"))

rows = ["| attack | step 02 | step 03 |", "|---|---|---|"]
for label, path, body, content_type in ATTACKS:
    if "15,000 deep" in label:  # step 03 only; Python 3.13 parses deeper and refuses the list: 400 either way
        answers = ["(see the row above)", lab.brief(post(after, body, path, content_type), status_only=True)]
    else:
        answers = [lab.brief(post(app, body, path, content_type)) for app in (before, after)]
    rows.append(f"| {label} | {answers[0]} | {answers[1]} |")
display(Markdown("\n".join(rows)))
''')

md("fix-table-lesson", r'''
No 500s left, no megabyte passwords, no `role` slipping past, and one account per name: the three
look-alikes get 409, because they *are* alice. The 100,000-deep body never reaches the parser (413:
it is over the size cap); nested 15,000 deep, it fits under the cap and `json_body()` answers the
`RecursionError` with a 400. `ＡＬＩＣＥ` logs in as alice, and a login with a
short password gets the same 401 as any wrong password, not a lecture on the policy.

A refused registration says what to fix, field by field (the `errors` object that the
`validation-errors` exercise builds). One body with three problems:
''')

builder.your_turn("cyrillic", r'''
Attack step 03's canonical form: register `аlice`, whose first letter is the Cyrillic `а`
(U+0430, `"\u0430lice"`), with a good password. **Predict**: 201 (a new account that looks like
alice's), 409 (it is alice) or 400? Write the request with `post(after, as_json(...))`, then run.
''', r'''
prediction = ...  # 201, 409 or 400
answer = ...      # post(after, as_json(username=..., password=GOOD))

if answer is ...:
    print("Replace the ... of answer with your request, then run this cell again.")
else:
    print("you predicted:", guess(prediction), "| the answer:", show(answer))
''', r'''
print(show(post(after, as_json(username="\u0430lice", password=GOOD))))
''', r'''
**400**: NFKC does not turn Cyrillic into Latin (they are different letters, not compatibility
variants), so the canonical form is still `аlice`, and the allowlist (`a-z 0-9 . _ -`, applied
after canonicalization) refuses its first letter. Without the allowlist it would be a fourth
"alice". Look-alikes across scripts are what Unicode's confusables data (UTS #39) is for; the
allowlist is the simple, complete answer for a username.
''')

code("fix-errors", r'''
response = post(after, as_json(username="Alice!", password="password", role="admin"))
print(response.status_code)
print(json.dumps(response.get_json(), indent=2, ensure_ascii=False))
''')

md("fix-errors-lesson", r'''
All the problems at once, so a client fixes them in one round trip. The schema-level rule (a
password must not contain the username) runs only once the fields themselves are valid:
''')

code("fix-schema-rule", r'''
response = post(after, as_json(username="dave", password="dave is my name and my password"))
print(response.status_code, json.dumps(response.get_json(), ensure_ascii=False))
''')

md("fix-415-413-intro", r'''
And the two answers that come before any JSON is parsed: 415 for a body that is not JSON (a form,
here), and 413 for a body over 16 KiB.
''')

code("fix-415-413-demo", r'''
form = "username=alice&password=violet+kettle+under+a+quiet+moon"
print("a form body ->", show(post(after, form, content_type="application/x-www-form-urlencoded")))

big = as_json(username="big", password="x" * 20_000)
print(f"a {len(big):,}-byte JSON body ->", show(post(after, big)))
print("step 03's MAX_CONTENT_LENGTH:", after.config["MAX_CONTENT_LENGTH"], "bytes")
''')

md("fix-413-lesson", r'''
The 413 comes from Werkzeug, which compares the `Content-Length` header with the cap before it
reads the body; its answer is Flask's default HTML error page. (Step 05 gives every error, this
one included, the same JSON envelope.)
''')

md("chunked-intro", r'''
### The same body without a length

A client need not say how long its body is: with `Transfer-Encoding: chunked` (RFC 9112 §7.1)
there is no `Content-Length` to compare. Werkzeug then reads up to the cap and **stops, without
an error**, and what it read can be valid JSON on its own: a pentest of an earlier version of
step 03 sent a 20 KiB body whose first 16 KiB were a whole registration, and got 201, over
`flask run` and gunicorn alike. So `json_body()` treats a body without a length that fills the
cap as one over it, and answers the same 413. Below, the 20 KiB body again, chunked, as a server
hands it to the app (no `Content-Length`, and `wsgi.input_terminated`: the server's word that
it ends the stream), and then one that fits.
''')

code("chunked", r'''
def post_chunked(app, body):
    """POST `body` with Transfer-Encoding: chunked, as gunicorn or `flask run` pass it on."""
    return app.test_client().post("/register", data=body, content_type="application/json",
                                  headers={"Transfer-Encoding": "chunked"},
                                  environ_overrides={"wsgi.input_terminated": True})


whole = as_json(username="chunky", password=GOOD)
cut_here = whole + " " * (16 * 1024 - len(whole))  # a whole registration, padded to the cap...
over = cut_here + '{"and": "4 KiB more"}' * 180   # ...and more after it
print(f"{len(over):,} bytes, chunked ->", post_chunked(after, over).status_code)
print(f"{len(whole):,} bytes, chunked ->", post_chunked(after, whole).status_code)
''')

# ------------------------------------------------------------------------------------------------
# 7. Closing
# ------------------------------------------------------------------------------------------------

md("wrap-up", r'''
## What you saw

- Step 02 checked the shape of a body and nothing else: a lone surrogate and deep nesting made
  500s, a megabyte password was hashed, `role` was ignored only by luck, and one name became four
  accounts.
- marshmallow 4 ignores what a validator returns: the classic tutorial's lambda validates nothing.
- Allowlists after canonicalization (NFKC and case folding, idempotent) give one name one form;
  NIST's password rules are length, any characters, no composition rules and a common list.
- Validation is not the injection defence: parameterized queries are.

Now build it yourself.
''')

code("cleanup", r'''
import shutil

scratch.close()
shutil.rmtree(workdir, ignore_errors=True)  # the notebook's SQLite files
''')

builder.outro(3)


build = builder.build

if __name__ == "__main__":
    builder.main()
