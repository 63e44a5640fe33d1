"""Build notebooks/02_authentication.ipynb (step 02 — Authentication with JWT) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 2
    python -m pytest notebooks/02_authentication.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: no raw tokens, no iat/exp/jti values, no password-hash
salts, no paths. Timings vary from run to run: they appear only in figures (nbval compares a
figure's text form, not its pixels) and in cells marked `# NBVAL_IGNORE_OUTPUT`.
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

builder.intro(2, r'''
from lab import authentication as lab  # notebooks/lab/authentication.py: pictures, timing loops; not the lesson
from lab.common import guess
''')

# ------------------------------------------------------------------------------------------------
# 2. The attack, on the classic app
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: what the classic app gives away

Step 01 fixed the classic tutorial's key. Its user handling is still the tutorial's: a Python
dictionary `users` that maps each username to the password *as typed*, a `/login` that compares
with `users.get(username) != password`, and a `/register` that says "User already exists".

You will attack it three ways: read its passwords, log in as a user who does not exist, and find
out who has an account. `classic(...)` sends one request to the classic app, in this process, and
returns the status and the JSON body (it silences PyJWT's warning about the tutorial's 19-byte key:
notebook 01 showed it).
''')

code("classic-setup", r'''
import json

import classic_app  # notebooks/classic_app.py: the tutorial's app, as it is usually taught


def classic(method, path, body=None, token=None):
    return lab.classic(classic_app.app, method, path, body, token)  # (status, JSON body)


classic_app.users.clear()  # start from an empty store, so that re-running gives the same answers
for user, password in [("alice", "violet kettle under a quiet moon"), ("bob", "hunter2")]:
    status, body = classic("POST", "/register", {"username": user, "password": password})
    print(f"register {user:6} -> {status} {json.dumps(body)}")
''')

md("leak-intro", r'''
### 1. Read the passwords out of the store

The classic app keeps its users in `classic_app.users`. In a real app that would be a database
table, and tables leak: a SQL injection, a backup left in a bucket, a stolen laptop, a curious
administrator. Here is what whoever gets a copy reads:
''')

code("leak", r'''
for user, password in classic_app.users.items():
    print(f"{user:6} {password!r}")
''')

md("leak-lesson", r'''
Every password, as typed. The attacker can now log in as anyone, and, because people reuse
passwords, try the same pairs on e-mail providers, banks and shops (credential stuffing). A
password store must be useless to whoever reads it: store a slow, salted hash instead (OWASP ASVS
5.0 **V11.4.2**; the OWASP Password Storage Cheat Sheet).
''')

md("ghost-intro", r'''
### 2. Log in as a user who does not exist

Look at the classic login's test: `if users.get(username) != password`. For a username that is not
in the dictionary, `users.get` returns `None`. And a JSON body without a `"password"` key makes
`request.json.get("password")` return `None` too. `None != None` is `False`: no error, a token.
''')

code("ghost", r'''
status, body = classic("POST", "/login", {"username": "ghost"})  # no password at all
print("POST /login {\"username\": \"ghost\"} ->", status, "with a token:", "access_token" in body)

status, body = classic("GET", "/protected", token=body["access_token"])
print("GET /protected with that token    ->", status, json.dumps(body))
print("is 'ghost' a registered user?", "ghost" in classic_app.users)
''')

md("ghost-lesson", r'''
A valid token for `ghost`, an account nobody ever created. The same request works for any name
that is *not* registered: on a fresh deployment, `{"username": "admin"}` gets a token for `admin`,
and any code that trusts the token's identity obeys it. The bug is not exotic: it is a comparison
of a value that may be missing with another value that may be missing. A login must refuse a
request that does not carry both a username and a password, before it looks anything up.
''')

md("enum-intro", r'''
### 3. Tell existing users from absent ones

The classic `/login` answers "Bad username or password" whether the user exists or not: good. But
the door next to it, `/register`, answers **"User already exists"** for a taken name. So you try a
list of likely usernames and read the answers:
''')

code("enum", r'''
candidates = ["admin", "alice", "bob", "carol", "root"]

for name in candidates:
    status, body = classic("POST", "/register", {"username": name, "password": "attacker's password"})
    verdict = "EXISTS" if body["msg"] == "User already exists" else "absent (now registered by you)"
    print(f"{name:6} -> {status} {body['msg']:29} {verdict}")

classic_app.users.clear()  # leave the classic app empty, for the next run
''')

md("enum-lesson", r'''
Two of five names exist, and the probe cost nothing. A list of valid usernames is the first half of
every password-guessing attack: the attacker now spends guesses only on real accounts, and knows
whom to phish. The OWASP Authentication Cheat Sheet ("Authentication and Error Messages") asks
that authentication answer the same way whether or not the user exists, and ASVS 5.0 **V6.3.8**
(a level 3 requirement, all of it) says that valid users must not be deducible "by basing on error
messages, HTTP response codes, or different response times", registration included. This course
applies it to the login from step 02, as a choice: the login is where it costs nothing.
''')

# ------------------------------------------------------------------------------------------------
# 3. A JWT taken apart
# ------------------------------------------------------------------------------------------------

md("step02-intro", r'''
## Our step 02 app

Step 02's `create_app` adds three modules to step 01's factory: `db.py` (users in SQLite),
`passwords.py` (argon2id hashes) and `auth.py` (`/register`, `/login`, `/protected`). Each run of
this notebook uses a fresh SQLite file in a temporary folder, a fresh random key, and the
production cost for password hashes (64 MiB, 3 passes, 4 lanes: about a tenth of a second per hash).
''')

code("step02-app", r'''
import secrets, tempfile

from solutions.step02_authentication import create_app, passwords

workdir = pathlib.Path(tempfile.mkdtemp())  # deleted at the end of the notebook
app = create_app({"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(workdir / "app.sqlite"),
                  "TESTING": True})
client = app.test_client()

PASSWORDS = {"alice": "violet kettle under a quiet moon", "bob": "correct horse battery staple",
             "carol": "correct horse battery staple"}  # bob and carol chose the same password
for user, password in PASSWORDS.items():
    response = client.post("/register", json={"username": user, "password": password})
    print(f"register {user:6} -> {response.status_code} {json.dumps(response.get_json())}")

response = client.post("/login", json={"username": "alice", "password": PASSWORDS["alice"]})
token = response.get_json()["access_token"]
print("log in as alice ->", response.status_code, "| body keys:", list(response.get_json()))
print("  Cache-Control:", response.headers["Cache-Control"], "| Pragma:", response.headers["Pragma"])
''')

md("no-store", r'''
The login answer carries `Cache-Control: no-store` and `Pragma: no-cache`: a token is a
credential. RFC 6749 §5.1 requires exactly these headers on an OAuth 2.0 *token endpoint*'s
answers; `/login` is not an OAuth endpoint, but it hands out a bearer token the same way, so the
course applies the rule by analogy (browsers and proxies must not keep a copy).
''')

md("jwt-tools-intro", r'''
## A JWT taken apart

A JWT (RFC 7519) is three parts joined by dots: `base64url(header).base64url(payload).signature`.
Base64url (RFC 7515 §2) is an *encoding*, not encryption: anyone can reverse it. These few lines
are the whole toolkit an attacker needs to read any token, and to make new ones:
''')

code("jwt-tools", r'''
import base64, hashlib, hmac


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")  # JWTs drop the "=" padding


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read(token):
    """(header, payload) of any token, checking nothing: what every client can see."""
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def forge(header, payload, key=None):
    """A token with this header and payload, signed with `key` (HS256 or HS512), or unsigned."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    if header["alg"] == "none":
        return signing_input + "."  # "none": no signature at all
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[header["alg"]]
    return signing_input + "." + b64url(hmac.new(key.encode(), signing_input.encode(), digest).digest())


masked = lab.masked  # the payload with its times and random ids as placeholders (they change every run)

header, payload = read(token)
parts = token.split(".")
print("the token:", len(token), "characters =", " + 1 + ".join(str(len(part)) for part in parts),
      "(header . payload . signature)")
print("the header part, the same in every token this app makes:", parts[0])
''')

md("jwt-picture-intro", r'''
Here is alice's token, part by part: the coloured strip is the token itself, to scale; below it,
what each part says once decoded. Values that change on every login are shown as placeholders.
''')

code("jwt-picture", r'''
lab.token_picture(token)  # the drawing code is in notebooks/lab/authentication.py
''')

md("jwt-signature", r'''
### What the signature protects, and what it does not

- **Integrity: yes.** The signature is an HMAC over the first two parts, with a key only the
  server holds. Change one character of the header or the payload and the signature no longer
  matches; without the key you cannot compute the one that would.
- **Confidentiality: no.** The header and the payload are only encoded: whoever sees the token (the
  browser, a proxy, a log file) reads every claim. RFC 7519 §12 says so: a JWT may carry
  privacy-sensitive information, and then it must be protected, for instance by encryption. The
  simple rule: never put a secret or personal data in a signed token.

Here is what alice's token tells anyone who reads it:
''')

code("jwt-claims", r'''
print("header: ", json.dumps(header))
print("payload:", json.dumps(masked(payload)))
print()
print("sub (subject):", repr(payload["sub"]), "- alice's user id, as a string")
print("exp - iat:    ", payload["exp"] - payload["iat"], "seconds =",
      (payload["exp"] - payload["iat"]) // 60, "minutes, from JWT_ACCESS_TOKEN_EXPIRES")
print("alg:          ", header["alg"], "- the only algorithm the app accepts:",
      app.config["JWT_DECODE_ALGORITHMS"])
''')

md("jwt-claims-lesson", r'''
- **`sub`** is alice's row id, not her name. RFC 7519 §4.1.2 makes `sub` a string, and the installed
  PyJWT rejects a token whose `sub` is not one ("Subject must be a string"): hence `str(user["id"])`.
  An id outlives a name: the table's `AUTOINCREMENT` means SQLite never reuses an id, so a token
  can never point at an account created after its own was deleted.
- **`exp`** is `iat` + 15 minutes. There is no way to revoke a token in this step, so its lifetime
  is how long a stolen one stays useful: keep it short.
- **`iat`** and **`nbf`** (issued at, not before) are times, and **`jti`** is a random id for each
  token: with `exp`, registered claims of RFC 7519 (§4.1.4–4.1.7). `type` and `fresh` are Flask-JWT-Extended's own claims, and so is
  `csrf`, which it uses only for tokens sent in cookies; this app reads tokens from the
  `Authorization` header only.
- **`iss`** (issuer) and **`aud`** (audience) name the API that made the token and the API it is
  for: this app, `step02_authentication` (the folder's name, `config.API_NAME`). The app refuses a
  token that names another: see the last forgery below.
''')

# ------------------------------------------------------------------------------------------------
# 4. Forged tokens against our solution
# ------------------------------------------------------------------------------------------------

md("forge-intro", r'''
## Forged tokens against our app

Now you are the attacker again. You hold alice's token, you know bob's id is `"2"` (ids count
from 1), and you have the toolkit above. You try every trick on `GET /protected`:

1. **`"alg": "none"`**: an unsigned token. RFC 7518 §3.6 defines it; a library that lets the
   token's header choose the algorithm accepts it without any key.
2. **Edit the payload** of alice's token to `"sub": "2"` and keep her signature.
3. **Sign with another key**, one you made yourself.
4. **HS512 with the server's real key** (as if the key had leaked): the signature is valid, but
   not made with the algorithm the server chose.

Then, for comparison: no token at all, an expired token, and the genuine one.
''')

code("forge", r'''
bob = {**payload, "sub": "2"}
now = payload["iat"]
expired = {**payload, "iat": now - 3600, "nbf": now - 3600, "exp": now - 2700}  # 45 minutes ago
server_key = app.config["JWT_SECRET_KEY"]  # only for attempt 4 and the expired token

attempts = [
    ("1. alg none, sub = bob", forge({"alg": "none", "typ": "JWT"}, bob)),
    ("2. payload edited, alice's signature", ".".join([parts[0], b64url(json.dumps(bob).encode()), parts[2]])),
    ("3. signed with another key", forge(header, bob, secrets.token_hex(32))),
    ("4. HS512 with the server's key", forge({"alg": "HS512", "typ": "JWT"}, bob, server_key)),
    ("no token", None),
    ("alice's token, expired", forge(header, expired, server_key)),
    ("alice's genuine token", token),
]
for label, attempt in attempts:
    headers = {"Authorization": f"Bearer {attempt}"} if attempt else {}
    response = client.get("/protected", headers=headers)
    print(f"{label:38} -> {response.status_code} {json.dumps(response.get_json())}")
''')

builder.your_turn("longer-life", r'''
alice's token dies in 15 minutes. Make it live until 2100: change its `exp` to 4102444800 and keep
everything else, her signature included. **Predict** the status first, then build the token from
the toolkit above (`parts`, `payload`, `b64url`) and run the cell.
''', r'''
prediction = ...  # the status code
immortal = ...    # ".".join([parts[0], <the edited payload, encoded>, parts[2]])

if immortal is ...:
    print("Replace the ... of immortal with your token, then run this cell again.")
else:
    response = client.get("/protected", headers={"Authorization": f"Bearer {immortal}"})
    print("you predicted:", guess(prediction), "| the answer:", response.status_code, json.dumps(response.get_json()))
''', r'''
edited = b64url(json.dumps({**payload, "exp": 4102444800}).encode())
immortal = ".".join([parts[0], edited, parts[2]])
response = client.get("/protected", headers={"Authorization": f"Bearer {immortal}"})
print(response.status_code, json.dumps(response.get_json()))
''', r'''
**422, "Signature verification failed".** The signature covers the payload's exact bytes, `exp`
included: change one claim and the old signature no longer matches. To make a matching one you need
the key. (422 and not 401 is Flask-JWT-Extended's default; step 05 makes it a 401.)
''')

md("forge-lesson", r'''
Every forgery fails, and nothing about bob leaks:

- **Attempts 1 and 4**: "The specified alg value is not allowed". The app pins the algorithm
  (`JWT_DECODE_ALGORITHMS = ["HS256"]`), and PyJWT checks the header's `alg` against that list
  before it verifies anything. The server decides how a token is verified, never the token:
  OWASP ASVS 5.0 **V9.1.2** (an algorithm allowlist that "must not include the 'None' algorithm")
  and RFC 8725 §3.1. Pinning also stops algorithm confusion, where a token's header makes a
  server use a public RSA key as an HMAC secret.
- **Attempts 2 and 3**: "Signature verification failed". The signature is checked before any claim
  is read (ASVS **V9.1.1**): an edited payload or a foreign key is caught.
- **Expired**: rejected even with a perfect signature: `exp` is checked (ASVS **V9.2.1**).

Note the statuses: Flask-JWT-Extended answers **422** for a token it cannot accept (bad
algorithm, bad signature), but **401** for a missing or expired one. Step 05 gives every error one
envelope and turns every token failure into a 401.

### One key, two APIs

One more attack needs no forgery at all. Two APIs share a signing key: two services of one
company, or two steps of this course under `python -m workbook run` (which once gave every step
the same development key). mallory registers at the *other* API, where she is user `"1"`, and
sends its genuine token here, where user `"1"` is alice. The signature is valid: the same key made
it. Only the token's `iss` and `aud` say it was not made for this API (RFC 8725 §3.9: "use and
validate audience"). Below, the other API is step 03's app; and, for comparison, our app with
that check switched off (`JWT_DECODE_ISSUER` and `JWT_DECODE_AUDIENCE` set to `None`).
''')

code("cross-app", r'''
from solutions import step03_input_validation

shared = {"JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"], "TESTING": True}  # the same key
other_api = step03_input_validation.create_app({**shared, "DATABASE": str(workdir / "other.sqlite")})
other = other_api.test_client()
other.post("/register", json={"username": "mallory", "password": "a quiet evening of lockpicking"})
theirs = other.post("/login", json={"username": "mallory", "password": "a quiet evening of lockpicking"}).get_json()["access_token"]
print("the other API's token:", {claim: read(theirs)[1][claim] for claim in ("sub", "iss", "aud")})

unchecked = create_app({**shared, "DATABASE": app.config["DATABASE"], "JWT_DECODE_ISSUER": None, "JWT_DECODE_AUDIENCE": None})
response = unchecked.test_client().get("/protected", headers={"Authorization": f"Bearer {theirs}"})
print("here, without the iss/aud check ->", response.status_code, json.dumps(response.get_json()))
response = client.get("/protected", headers={"Authorization": f"Bearer {theirs}"})
print("here, step 02 as it is          ->", response.status_code, json.dumps(response.get_json()))
''')

md("cross-app-lesson", r'''
Without the check, mallory's token from the other API is alice's here: `sub` alone does not say
*whose* user 1. With it, the token is refused ("Invalid issuer"; 422 here, 401 from step 05 on).
Each step of this course names itself as issuer and audience, and `python -m workbook run` now
derives a key of its own for every step as well: two defences, each enough on its own.
''')

# ------------------------------------------------------------------------------------------------
# 5. Our fix for the classic attacks
# ------------------------------------------------------------------------------------------------

md("fix-intro", r'''
## The classic attacks, on our app

Back to the three attacks of the beginning, now against step 02.

### 1. Read the store

The attacker copies the SQLite file and runs the obvious query. Below, each stored value shows its
parameters, and the salt and the hash are replaced by their lengths (they are random).
''')

code("fix-store", r'''
from lab.authentication import masked_hash, stored_hashes  # SELECT username, password_hash FROM user

leaked = stored_hashes(app.config["DATABASE"])
for user, stored in leaked.items():
    print(f"{user:6} {masked_hash(stored)}")
print()
print("bob and carol chose the same password; same stored value?", leaked["bob"] == leaked["carol"])
print("any password in the file?", any(p in stored for p in PASSWORDS.values() for stored in leaked.values()))
''')

md("fix-store-lesson", r'''
No password, only argon2id hashes in the PHC string format: the algorithm, its version (19 =
0x13), the cost (`m` KiB of memory, `t` passes, `p` lanes), a 16-byte random **salt** and the
32-byte hash, both in base64 without padding (22 and 43 characters).

The salt is why bob's and carol's values differ although their passwords are the same: nobody can
spot shared passwords or use a precomputed table. Whoever holds the file can still guess, one
password and one account at a time, and each guess costs a full argon2id computation. How much
that is, you will measure below.
''')

md("fix-ghost-intro", r'''
### 2. Log in as nobody

`read_credentials()` in `auth.py` refuses any body that is not a JSON object with a non-empty
string username *and* password, before the database is touched.
''')

code("fix-ghost", r'''
response = client.post("/login", json={"username": "ghost"})
print("{\"username\": \"ghost\"} ->", response.status_code, json.dumps(response.get_json()))
print("a token in the answer?", "access_token" in response.get_json())
''')

md("fix-enum-intro", r'''
### 3. Tell users apart at the login

An unknown user and a wrong password for a real user take two different paths through `login()`,
and end in the same answer: the same status, the same body, byte for byte.
''')

code("fix-enum", r'''
unknown = client.post("/login", json={"username": "mallory", "password": "a guess"})
wrong = client.post("/login", json={"username": "alice", "password": "a guess"})
print("unknown user:  ", unknown.status_code, unknown.get_data(as_text=True).strip())
print("wrong password:", wrong.status_code, wrong.get_data(as_text=True).strip())
print("identical answers:", (unknown.status_code, unknown.get_data()) == (wrong.status_code, wrong.get_data()))
''')

builder.your_turn("probe-login", r'''
Try to tell users apart anyway: send the login a body **without a password**, once for `alice`
(she exists) and once for `mallory` (she does not). **Predict**: do the two answers differ? Write
the two requests (`client.post("/login", json=...)`), then run the cell.
''', r'''
prediction = ...  # "same" or "different"
for_alice = ...   # client.post("/login", json={...})
for_mallory = ...

if for_alice is ... or for_mallory is ...:
    print("Replace the two ... with your requests, then run this cell again.")
else:
    same = (for_alice.status_code, for_alice.get_data()) == (for_mallory.status_code, for_mallory.get_data())
    print("you predicted:", guess(prediction), "| the answers are", "the same" if same else "different")
''', r'''
for_alice = client.post("/login", json={"username": "alice"})
for_mallory = client.post("/login", json={"username": "mallory"})
print("alice:  ", for_alice.status_code, for_alice.get_data(as_text=True).strip())
print("mallory:", for_mallory.status_code, for_mallory.get_data(as_text=True).strip())
''', r'''
**The same.** `read_credentials()` refuses an incomplete body before it looks anything up: the
database is never asked, so nothing in the answer (status, body or time) can depend on who exists.
Checking the shape of the input first is also what step 03 does for every field.
''')

md("fix-register-intro", r'''
### 3, continued: registration

Registration is where honesty is needed. It must refuse a name that is taken, and the refusal
itself tells the attacker the name exists:
''')

code("fix-register", r'''
response = client.post("/register", json={"username": "alice", "password": "anything at all"})
print("register alice again ->", response.status_code, json.dumps(response.get_json()))
''')

md("fix-register-lesson", r'''
**409 Conflict** (RFC 9110 §15.5.10) with a neutral message, but it still tells that `alice` is
taken. ASVS 5.0 **V6.3.8** asks, at level 3, that registration not reveal this either. That needs a
different flow: the user registers with an e-mail address, the answer is always "check your
inbox", and only the mailbox learns whether the account already existed. This workbook has no
e-mail, so it accepts the leak at the door where it cannot be avoided, closes it at the login,
and in step 04 rate-limits registration, so that harvesting names is slow.
''')

# ------------------------------------------------------------------------------------------------
# 6. Timing
# ------------------------------------------------------------------------------------------------

md("timing-intro", r'''
## Same answer, same time: the dummy hash

Identical bodies are not enough: a stopwatch is also an answer. Checking a real user's password
costs one argon2id computation (about a tenth of a second at this cost), while finding that a user
does not exist costs one SQLite lookup. So for an unknown user, `login()` calls
`passwords.verify_dummy(password)`: it checks the password against a dummy hash made at start-up
with the same parameters, then answers 401 anyway.

What does that buy? Time both failures with the dummy check, then again with `verify_dummy`
replaced by a function that does nothing (the exercise's starter code has no dummy check either).
Five logins per case; the median is kept.
''')

code("timing-measure", r'''
from unittest import mock

# lab.median_login_times: 5 failed logins per case, the two cases interleaved, the median kept
with mock.patch.object(passwords, "verify_dummy", lambda password: False):
    timings = {"without the dummy hash": lab.median_login_times(client, "alice")}
timings["with verify_dummy (step 02)"] = lab.median_login_times(client, "alice")
print("measured:", ", ".join(timings), "| 5 logins per case, median kept")
''')

code("timing-plot", r'''
# NBVAL_IGNORE_OUTPUT
# (measured times: they differ on every machine)
lab.timing_chart(timings)
''')

md("timing-numbers-intro", r'''
The numbers behind the chart (they depend on your machine, so nbval does not compare them):
''')

code("timing-numbers", r'''
# NBVAL_IGNORE_OUTPUT
for variant, medians in timings.items():
    ratio = medians["wrong password"] / medians["unknown user"]
    print(f"{variant:28} unknown user {medians['unknown user'] * 1000:7.2f} ms   "
          f"wrong password {medians['wrong password'] * 1000:7.2f} ms   ratio {ratio:6.1f}")
''')

md("timing-lesson", r'''
Without the dummy hash, an unknown user is answered about a hundred times faster than a wrong
password. The gap, one argon2id computation, is far above the jitter of a network: an attacker
who times a few requests per name reads the user list off a stopwatch. ASVS 5.0 **V6.3.8** (level 3) names
this: "different response times". With `verify_dummy` both failures cost one argon2id
computation, and the two bars are level. (Compare the bars within a group: the two groups ran one
after the other, and a machine's speed drifts.)
''')

# ------------------------------------------------------------------------------------------------
# 7. Why slow hashes
# ------------------------------------------------------------------------------------------------

md("slow-intro", r'''
## Why a slow hash

Back to the attacker with a copy of the user table. Nothing stops them now, no rate limit, no
lockout, no log: they guess offline, on their own hardware. The only thing you control is the
**cost of one guess**, that is, of one hash.

Measure it. Below: SHA-256 (a fast, general-purpose hash, which some apps still store), and
argon2id at four settings. The time is **CPU time** (`time.process_time()`): with `p=4` one
hash runs on several threads, and an attacker who runs guesses side by side on all cores pays
the CPU time, not the wall time.
''')

code("slow-measure", r'''
from argon2 import PasswordHasher

GUESS = "violet kettle under a quiet moon"


def argon2id(memory_kib, passes, lanes):
    return PasswordHasher(time_cost=passes, memory_cost=memory_kib, parallelism=lanes).hash


HASHES = [  # (label, one hash of GUESS, how many to time)
    ("SHA-256 (one pass, no salt)", lambda: hashlib.sha256(GUESS.encode()).digest(), 100_000),
    ("argon2id m=8 KiB t=1 p=1 (this workbook's tests)", lambda h=argon2id(8, 1, 1): h(GUESS), 200),
    ("argon2id m=19 MiB t=2 p=1 (OWASP minimum)", lambda h=argon2id(19456, 2, 1): h(GUESS), 1),
    ("argon2id m=46 MiB t=1 p=1 (OWASP, equal)", lambda h=argon2id(47104, 1, 1): h(GUESS), 1),
    ("argon2id m=64 MiB t=3 p=4 (RFC 9106; step 02)", lambda h=argon2id(65536, 3, 4): h(GUESS), 1),
]

cpu_seconds = lab.cpu_time_per_hash(HASHES)  # time.process_time() around `count` hashes, divided

print("timed:", len(cpu_seconds), "hash settings")
''')

code("slow-plot", r'''
# NBVAL_IGNORE_OUTPUT
# (measured times)
lab.hash_chart(cpu_seconds)
''')

md("slow-numbers-intro", r'''
The numbers on your machine (not compared by nbval):
''')

code("slow-numbers", r'''
# NBVAL_IGNORE_OUTPUT
print(f"{'hash':50}{'CPU time per hash':>19}{'guesses/s per core':>21}")
for label, seconds in cpu_seconds.items():
    shown = f"{seconds * 1e6:.2f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.1f} ms"
    print(f"{label:50}{shown:>19}{1 / seconds:>21,.0f}")
''')

md("slow-lesson", r'''
Read the chart by orders of magnitude:

- **SHA-256**: millions of guesses per second per core, even from Python; native code on a GPU is
  far faster still. Trying a list of a million common passwords against one account takes less
  than a second. A salt does not change that speed.
- **argon2id at OWASP's settings and above**: a few to a few dozen guesses per second per core,
  roughly a hundred thousand times fewer. The same million-password list now costs hours to days
  of CPU *per account*, and the salt forbids doing the work once for all accounts.
- **Memory-hardness** is what keeps GPUs from buying that back: each guess needs its own
  19 to 64 MiB of memory, so how many guesses run at once is bounded by the attacker's memory, not
  by their thousands of cores. That is what RFC 9106 means by a "memory-hard function".
- **m=8 KiB** is what this workbook's tests use, to run in seconds. Never in production.

The references: the OWASP Password Storage Cheat Sheet asks for argon2id with at least **m=19 MiB,
t=2, p=1**, or an equal trade-off such as **m=46 MiB, t=1, p=1**. RFC 9106 §4 recommends
**m=64 MiB, t=3, p=4** where memory is limited (its "second recommended option"); it is
argon2-cffi's default profile and step 02's `config.DEFAULTS`. ASVS 5.0 **V11.4.2** asks for
such a function "with parameter settings configured based on current guidance".

The cost is paid by your server too, on every login. That is a reason to rate-limit `/login` and
`/register` (step 04), not a reason to lower the cost below the minimum.
''')

md("busy-intro", r'''
### The server pays too: a bound on the hashing done at once

Each login makes the server pay what an attacker pays per guess: 64 MiB and a few hundred
milliseconds of CPU. A pentest of this course's API sent 60 simultaneous logins from 3 addresses,
each inside every rate limit of step 04: one `flask run` process grew to 1.3–1.7 GB and answered in
8–28 s. Memory that anyone can make the server allocate is OWASP API4:2023 (Unrestricted Resource
Consumption). So `passwords.py` bounds it per process:

- at most `PASSWORD_HASH_SLOTS` hashes or checks run at once (one per CPU by default: more would
  only make each slower, each holding its 64 MiB the whole time);
- a request waits at most `PASSWORD_HASH_WAIT` (1 s) for a slot, then it gets **503 Service
  Unavailable with `Retry-After`** (RFC 9110 §15.6.4, §10.2.3): never a 500, never a queue
  without end;
- so hashing holds at most slots × 64 MiB. Measured over real HTTP with 40 simultaneous logins at
  64 MiB (`tests/test_step02_authentication_load_live.py`): +1,750 to 2,030 MiB of peak memory
  before, +109 to 133 MiB with 2 slots.

Below, an app with one slot and a 0.2 s wait. The cell takes the slot itself, as another
request's hash would, and alice logs in meanwhile; then it gives the slot back.
''')

code("busy-run", r'''
busy_app = create_app({"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(workdir / "busy.sqlite"),
                       "TESTING": True, "PASSWORD_HASH_SLOTS": 1, "PASSWORD_HASH_WAIT": 0.2})
busy = busy_app.test_client()
alice = {"username": "alice", "password": PASSWORDS["alice"]}
print("register alice          ->", busy.post("/register", json=alice).status_code)

slots = busy_app.extensions["password_hasher"].slots
slots.acquire()  # another request's hash holds the only slot
try:
    response = busy.post("/login", json=alice)
    print("log in, slot taken      ->", response.status_code, "Retry-After:", response.headers.get("Retry-After"),
          json.dumps(response.get_json()))
finally:
    slots.release()
print("log in, slot free again ->", busy.post("/login", json=alice).status_code)
''')

md("rehash-intro", r'''
### Raising the cost later: rehash on login

Guidance rises with hardware. Each stored hash carries its own parameters, so you can raise the
cost in the configuration at any time: old hashes still verify. And at the one moment you hold a
user's password, a successful login, `login()` asks `passwords.needs_rehash()` (argon2-cffi's
`check_needs_rehash`) whether the stored hash was made with other parameters than today's, and if
so stores a new one.

To see it: an app with `ARGON2_TIME_COST=1` (1 pass, cheaper than the default) registers dana;
then an app with the default cost, on the same database file, logs her in.
''')

code("rehash", r'''
rehash_db = str(workdir / "rehash.sqlite")
dana = {"username": "dana", "password": "tulips in the server room"}

old_app = create_app({"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": rehash_db, "TESTING": True,
                      "ARGON2_TIME_COST": 1})  # last year's cost, on purpose
print("old app: register dana ->", old_app.test_client().post("/register", json=dana).status_code)
print("  stored:", masked_hash(stored_hashes(rehash_db)["dana"]))

new_app = create_app({"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": rehash_db, "TESTING": True})
print("new app: log dana in   ->", new_app.test_client().post("/login", json=dana).status_code)
print("  stored:", masked_hash(stored_hashes(rehash_db)["dana"]))
''')

md("rehash-lesson", r'''
The same password, now stored at `t=3`, and dana noticed nothing. Users who never log in keep
their old hashes: that is the limit of the method, since the server cannot rehash without the
password.
''')

# ------------------------------------------------------------------------------------------------
# 8. Closing
# ------------------------------------------------------------------------------------------------

md("wrap-up", r'''
## What you saw

- The classic app hands out every password to whoever reads its store, a token to `ghost`, and its
  user list to anyone who tries to register.
- A JWT is signed, not encrypted: its payload is public, but forged tokens (`alg: none`, an edited
  payload, another key, another algorithm) are all rejected by an app that pins its algorithm.
- Step 02 stores argon2id hashes, refuses incomplete credentials, and answers every failed login
  with the same status, body and time. Registration still reveals a taken name: step 04 slows it
  down.
- One argon2id guess costs an attacker roughly a hundred thousand times more CPU than one SHA-256
  guess, and memory on top: raise the cost when guidance rises, and old hashes upgrade at login.

Now build it yourself.
''')

code("cleanup", r'''
import shutil

shutil.rmtree(workdir, ignore_errors=True)  # the notebook's SQLite files
''')

builder.outro(2)


build = builder.build

if __name__ == "__main__":
    builder.main()
