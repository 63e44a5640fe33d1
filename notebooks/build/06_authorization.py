"""Build notebooks/06_authorization.ipynb (step 06 — Authorization) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 6
    python -m pytest notebooks/06_authorization.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: no tokens, no request ids (masked as `<request id>`), no
note timestamps (masked as `<time>`), no password hashes beyond their fixed `$argon2id$v=19$`
prefix, no paths. The apps' "api" logger is captured in a list (it would log security events
to stderr), and the cells print the lines they need, with request ids masked. nbval compares a
figure's text form, not its pixels: the status codes behind each figure are printed as text too.
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

builder.intro(6, r'''
from lab import authorization as lab  # notebooks/lab/authorization.py: apps, the security log, pictures
from lab.common import guess
''')

# ------------------------------------------------------------------------------------------------
# 2. The attack, on step 05 extended naively
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: step 05, with notes added the quick way

Step 05 is the classic tutorial's API done right: `/register`, `/login`, `/protected`, argon2id,
validation, rate limits, one error envelope. Now the product wants **notes**: each user writes
private notes. And the operators want an **admin page** that lists the accounts.

Below, a developer adds both the quick way, as a Blueprint on a step 05 app. Every route
requires a valid token, so every route "is protected". Read it before you attack it:

- `POST /notes` fills in defaults (the owner is the caller) and lets the body override them:
  `{**defaults, **request.json}`;
- `GET /notes` lists the caller's notes (`WHERE owner_id = ?`: this one is right);
- `GET /notes/<id>` loads the note by its id, `SELECT * FROM note WHERE id = ?`;
- `GET /admin/users` returns every row of the user table; only the admin page links to it.

The helpers are in `notebooks/lab/authorization.py`: a fresh SQLite file per app, cheap password
hashing and no rate limits (only to keep this notebook fast), `call(app, method, path, token,
body)` for one request, `show(response)` for its answer in one line, and the apps' security log
kept in a list instead of printed on stderr.
''')

code("setup", r'''
import json, re, sqlite3, tempfile
from contextlib import closing

workdir = pathlib.Path(tempfile.mkdtemp())  # the SQLite files; deleted at the end of the notebook
call, show, masked, PASSWORDS = lab.call, lab.show, lab.masked, lab.PASSWORDS
security_log = lab.keep_security_log()  # the "api" logger's lines, in this list


def settings(name, **overrides):
    return lab.settings(workdir, name, **overrides)


def log_since(mark):
    return lab.log_since(security_log, mark)  # the lines written since len(security_log) was mark


def login(app, user):
    return lab.login(app, user, PASSWORDS)  # alice's, bob's, mallory's access token
''')

md("naive-app-intro", r'''
Now the quick version, on a fresh step 05 app: the notes table next to step 05's user table, and
the Blueprint registered before the app's first request, as Flask requires. Then alice, bob and
mallory register, and alice and bob write notes.
''')

code("naive-app", r'''
from flask import Blueprint, abort, request
from flask_jwt_extended import get_jwt_identity, jwt_required

from solutions.step05_error_handling import create_app as create_step05, db as db05

# !!! INSECURE: notes and an admin page added the quick way. DO NOT COPY. !!!
naive = Blueprint("naive_notes", __name__)


@naive.post("/notes")
@jwt_required()
def naive_create():
    defaults = {"owner_id": int(get_jwt_identity()), "body": ""}
    note = {**defaults, **request.json}  # the client's fields win: owner_id included
    cursor = db05.get_db().execute(
        "INSERT INTO note (owner_id, title, body) VALUES (:owner_id, :title, :body)", note)
    db05.get_db().commit()
    return {"id": cursor.lastrowid, **note}, 201


@naive.get("/notes")
@jwt_required()
def naive_list():  # right: only the caller's notes
    rows = db05.get_db().execute("SELECT * FROM note WHERE owner_id = ?", (int(get_jwt_identity()),))
    return {"items": [dict(row) for row in rows]}


@naive.get("/notes/<int:note_id>")
@jwt_required()
def naive_read(note_id):
    row = db05.get_db().execute("SELECT * FROM note WHERE id = ?", (note_id,)).fetchone()  # whose?
    if row is None:
        abort(404)
    return dict(row)


@naive.get("/admin/users")
@jwt_required()  # "only the admin page links here"
def naive_admin_users():
    return {"items": [dict(row) for row in db05.get_db().execute("SELECT * FROM user")]}


naive_app = create_step05(settings("naive"))
with naive_app.app_context():  # the notes table, next to step 05's user table
    db05.get_db().execute("CREATE TABLE note (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                          "owner_id INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL)")
    db05.get_db().commit()
naive_app.register_blueprint(naive)  # before the app's first request, as Flask requires

for user, password in PASSWORDS.items():
    response = call(naive_app, "POST", "/register", body={"username": user, "password": password})
    print(f"register {user:8} -> {response.status_code}")
naive_tokens = {user: login(naive_app, user) for user in PASSWORDS}

NOTES = [("alice", "diary", "Dear diary, I think bob suspects nothing."),
         ("alice", "door code", "front door: 4921#"),
         ("bob", "salary", "ask for 62k in May")]
for owner, title, body in NOTES:
    response = call(naive_app, "POST", "/notes", naive_tokens[owner], {"title": title, "body": body})
    print(f"{owner:5} writes {title!r:12} -> {response.status_code}, note id {response.get_json()['id']}")
''')

md("bola-intro", r'''
### (a) Walk the ids: everyone's notes

You are **mallory**, a registered user with a valid token and no notes of your own. Note ids are
small integers that count up, so you ask for 1, 2, 3… and read what comes back.
''')

code("bola", r'''
print("mallory's own list:", call(naive_app, "GET", "/notes", naive_tokens["mallory"]).get_json())
print()
print(f"{'id':>3}  {'status':6}  {'owner_id':8}  {'title':12}  body")
stolen = {}  # note id -> owner id
for note_id in range(1, 6):
    response = call(naive_app, "GET", f"/notes/{note_id}", naive_tokens["mallory"])
    note = response.get_json()
    if response.status_code == 200:
        stolen[note_id] = note["owner_id"]
        print(f"{note_id:>3}  {response.status_code:<6}  {note['owner_id']:<8}  {note['title']:12}  {note['body']}")
    else:
        print(f"{note_id:>3}  {response.status_code:<6}  (no note with this id)")
''')

md("bola-lesson", r'''
Every note in the database, and the 404s even tell mallory where the table ends. Her token was
valid, so every request was *authenticated*; none was *authorized*: the route checks that someone
is logged in, never that this note is theirs. That is **Broken Object Level Authorization**, the
first risk of the OWASP API Security Top 10 2023 (**API1:2023**). The list route was right; the
route that takes an id from the client was not, and it is the one that matters.
''')

md("bfla-intro", r'''
### (b) Call the admin function as a plain user

Nothing on mallory's screen links to `/admin/users`. But API paths are easy to guess (`/admin`,
`/users`, `/api/v1/...`), and this one only asks for a valid token.
''')

code("bfla", r'''
response = call(naive_app, "GET", "/admin/users", naive_tokens["mallory"])
users = response.get_json()["items"]
print("GET /admin/users as mallory ->", response.status_code)
print("columns:", list(users[0]))
for row in users:
    stored = row["password_hash"]
    print(f"  id {row['id']}  {row['username']:8} password_hash {stored[:15]}... ({len(stored)} characters)")

names = {row["id"]: row["username"] for row in users}
print("\nthe notes read in (a), with their owners' names:", {note_id: names[owner] for note_id, owner in stolen.items()})
''')

md("bfla-lesson", r'''
Two flaws in one answer:

- A plain user called an administrative function: **Broken Function Level Authorization**
  (**API5:2023**). Being logged in is not being an admin; the route never asked for a role.
- The answer is the database row, every column: each user's argon2id hash (shown here only up to
  its `$argon2id$v=19$` prefix). Notebook 02 showed what a stolen hash is worth: offline guessing,
  as fast as the attacker's hardware allows. Returning properties the caller must not see is the
  read half of **API3:2023, Broken Object Property Level Authorization** (it was "Excessive Data
  Exposure" in the 2019 edition).
''')

md("mass-intro", r'''
### (c) Set a field you do not own: `owner_id`

`POST /notes` merges the body over its defaults. So mallory adds one field, `owner_id`, with
alice's id (the admin listing just told her it is 1), and writes a note *into alice's account*.
''')

code("mass", r'''
alice_id = next(row["id"] for row in users if row["username"] == "alice")
planted = {"title": "IT support", "body": "Your account expires today: confirm your password at "
           "it-help.example", "owner_id": alice_id}
response = call(naive_app, "POST", "/notes", naive_tokens["mallory"], planted)
print("mallory: POST /notes with owner_id", alice_id, "->", response.status_code, json.dumps(response.get_json()))

print("\nwhat alice sees in her own list:")
for note in call(naive_app, "GET", "/notes", naive_tokens["alice"]).get_json()["items"]:
    print(f"  note {note['id']}  {note['title']!r}")
''')

md("mass-lesson", r'''
A phishing note in alice's own list, which she has every reason to trust. The client set a
property it must not own: that is **mass assignment**, the write half of **API3:2023** (it was
"Mass Assignment", API6, in 2019). Notebook 03 saw the same pattern with `"role": "admin"` at
registration; here it moves data between accounts.
''')

# ------------------------------------------------------------------------------------------------
# 3. Concepts
# ------------------------------------------------------------------------------------------------

md("authn-authz", r'''
## Authentication is not authorization

- **Authentication** answers *who are you?* Step 02's token says it, and the server checks the
  signature. Failing it is a **401 Unauthorized**: the request "lacks valid authentication
  credentials" (RFC 9110 §15.5.2), with `WWW-Authenticate: Bearer` (RFC 6750 §3).
- **Authorization** answers *may you do this, to this object, with these fields?* Only the server
  can decide, on every request. Failing it is a **403 Forbidden**: the server understood the
  request and refuses it (RFC 9110 §15.5.4). Or a **404**: the same section lets a server that
  wants to hide that a forbidden resource exists answer 404 (Not Found) instead.

Every attack above came with a valid token. The OWASP API Security Top 10 2023 names three
authorization risks, one per level:

| Risk | The caller may… | …but not | Above |
|---|---|---|---|
| **API1:2023** Broken Object Level Authorization | call the endpoint | touch *this object* (someone else's) | (a) |
| **API3:2023** Broken Object Property Level Authorization | touch the object | read or write *this property* | (b) hashes, (c) `owner_id` |
| **API5:2023** Broken Function Level Authorization | use the API | call *this function* (an admin one) | (b) |

Random ids instead of 1, 2, 3 would have slowed the walk in (a), not stopped it: ids leak (in
URLs, logs, shared links). API1:2023 lists unpredictable ids among its preventions, next to an
authorization check in every function that uses an id from the client; the Authorization Cheat
Sheet says that masking or randomizing ids "is generally not sufficient by itself". Step 06
keeps sequential ids on purpose: the check protects the note, not the id.
''')

md("where-checks", r'''
## Where the checks belong: in one place each

An `if note["owner_id"] != me` in each view works until the one view that forgets it. The OWASP
Authorization Cheat Sheet asks you to **deny by default** and to **validate the permissions on
every request**, with checks configured once, application-wide, "rather than needing to be applied
individually to every method or class"; API5:2023 asks for "a consistent and easy-to-analyze
authorization module". Step 06 puts each level in one place:

- **Object level, in `db.py`.** Every function that reads or writes a note takes `owner_id` and
  puts it in the `WHERE` clause. There is no function that loads a note by its id alone, so no
  view can forget the owner. Someone else's note is not loaded at all: the view answers 404, as for
  a note that does not exist.
- **Function level, in `authz.py`.** One decorator, `@admin_required`, on every admin route: 401
  without a valid token, 403 for anyone whose role is not `admin`, and an `access.denied` line in
  the security log.
- **Property level, in `schemas.py`.** Input schemas list what a client may *set* (a note's `title`
  and `body`); marshmallow refuses unknown fields by default (`unknown = RAISE`), so `owner_id`
  is a 400. Output schemas list what a client may *see*: a schema dumps only the fields it
  declares, so a password hash is never in an answer.

One honest limit: Flask has no application-wide switch for this. The logic lives once, but
`@jwt_required()` and `@admin_required` must still be put on each route; the next section checks
that none was forgotten.

Writing `get_note`, `delete_note`, `admin_required`, `NoteIn` and `UserOut` is your exercise (6.1 to
6.3), so their code is not shown here: the reference is at the end of this notebook, for after
your check passes. What they must do, you can read off the attacks below.
''')

code("where-checks-imports", r'''
from solutions.step06_authorization import db as db06  # for the query plan in the section on roles
''')

# ------------------------------------------------------------------------------------------------
# 4. Who may do what: step 06, measured
# ------------------------------------------------------------------------------------------------

md("step06-intro", r'''
## Step 06: who may do what

Step 06 adds `notes.py`, `admin.py`, `authz.py` and `commands.py` to step 05, and a `role` and a
`disabled` column to the user table. There is no default account: the first admin, `root`, is
made with the real command, `flask create-admin root`, which asks for the password twice. The
test CLI runner below invokes that same command, with the password as typed input.

Then the same users and notes as above.
''')

code("step06-app", r'''
from solutions.step06_authorization import create_app as create_step06

app = create_step06(settings("step06"))
PASSWORDS["root"] = "a long admin passphrase, typed twice"
result = app.test_cli_runner().invoke(args=["create-admin", "root"],
                                      input=f"{PASSWORDS['root']}\n{PASSWORDS['root']}\n")
print("$ flask create-admin root\n" + result.output)

for user in ("alice", "bob", "mallory"):
    response = call(app, "POST", "/register", body={"username": user, "password": PASSWORDS[user]})
    print(f"register {user:8} -> {response.status_code}")
tokens = {user: login(app, user) for user in ("root", "alice", "bob", "mallory")}
ids = {user: int(call(app, "GET", "/protected", tokens[user]).get_json()["user_id"]) for user in tokens}
print("user ids:", ids)

note_ids = {}
for owner, title, body in NOTES:
    response = call(app, "POST", "/notes", tokens[owner], {"title": title, "body": body})
    note_ids[title] = response.get_json()["id"]
    print(f"{owner:5} writes {title!r:12} -> {response.status_code}, note id {note_ids[title]}")
''')

md("audit-intro", r'''
### Deny by default: which routes answer without a token?

Flask itself denies nothing: a route without a decorator is public. So check it rather than
assume it: send every route of the app one request without a token. A protected route answers
401 before it looks at anything else; any other answer means the route is public.
''')

code("audit", r'''
from flask import url_for


def pattern(rule):
    return re.sub(r"<(?:[^>]*:)?(\w+)>", r"<\1>", rule.rule)  # <int(max=...):note_id> -> <note_id>


public = []
print(f"{'method':7} {'route':22} without a token")
for rule in sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, sorted(rule.methods))):
    with app.test_request_context():
        path = url_for(rule.endpoint, **{name: 1 for name in rule.arguments})
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        status = call(app, method, path).status_code
        verdict = "needs a token" if status == 401 else "PUBLIC"
        if status != 401:
            public.append(f"{method} {pattern(rule)}")
        print(f"{method:7} {pattern(rule):22} {status}  {verdict}")
print("\npublic:", ", ".join(public))
''')

md("audit-lesson", r'''
Four public routes: three on purpose (the health check, registration, login), and Flask's own
`/static/<filename>`, which Flask adds by default and which serves nothing here (step 06 has no
static folder). A test that asserts this exact list turns "deny by default" from a hope into a
check: a new route that forgets its decorator makes the list longer, and the test fails.
''')

md("inventory-intro", r'''
### Know your API: the inventory (OWASP API9:2023)

The audit above found the routes by asking Flask. Since step 03 every app can also say what it
serves in a standard form: an **OpenAPI 3.1 document** (`openapi.py`), made from the same
marshmallow schemas that validate the bodies, and Swagger UI at `/docs` to try it in a browser
(`python -m workbook run 6` turns both on and prints the address). A test compares the document
with `app.url_map`: a route nobody documented fails it, and so does a documented route that is gone.

Both are **off by default** (`API_DOCS = False`), as they should be in production: the document
is a map for whoever attacks the API, every route and every field. API9 is about knowing and
controlling what you expose, not about publishing it.
''')

code("inventory", r'''
docs_app = create_step06(settings("step06-docs", API_DOCS=True))
document = call(docs_app, "GET", "/openapi.json").get_json()
print("OpenAPI", document["openapi"], "-", len(document["paths"]), "paths:")
for path, operations in document["paths"].items():
    for method, operation in operations.items():
        token = "token" if operation.get("security") else "     "
        print(f"  {method.upper():6} {path:22} {token}  answers {', '.join(operation['responses'])}")
print("\nwith the default configuration:", call(app, "GET", "/openapi.json").status_code)
''')

md("fuzz-intro", r'''
The document also lets a tool attack the API systematically. `tests/test_openapi.py` hands it to
**schemathesis**, which generates requests from it, valid and invalid, and checks every answer:
no 5xx, and a documented status, content type and shape. On its first run it found what the
hand-written tests had missed. The routes used `<int(max=9223372036854775807):note_id>`
(SQLite's largest integer), and a test checked that `GET /notes/99999999999999999999` is a plain
404. Schemathesis sent a `DELETE` with such an id, and got **405 Method Not Allowed**, a status
the document did not list. Werkzeug's router does this: when a route's converter refuses a value,
it looks at the other rules for that path and reports the wrong method. Here it is, in a
ten-line app:
''')

code("fuzz-finding", r'''
from flask import Flask

demo = Flask("demo")
HUGE = "/items/99999999999999999999"


@demo.get("/items/<int(max=9223372036854775807):item_id>")
def read_item(item_id):
    return {"id": item_id}


@demo.delete("/items/<int(max=9223372036854775807):item_id>")
def delete_item(item_id):
    return "", 204


for method in ("GET", "DELETE"):
    print(f"{method:6} {HUGE} -> {demo.test_client().open(HUGE, method=method).status_code}")
print()
for method in ("GET", "PATCH", "DELETE"):
    status = call(app, method, "/notes/99999999999999999999", tokens["alice"], {"title": "x"}).status_code
    print(f"step 06: {method:6} /notes/99999999999999999999 -> {status}")
''')

md("fuzz-lesson", r'''
Step 06 now takes any number in the URL (a `rowid` converter in `notes.py`) and turns one too
large to exist into an id that matches nothing, so every method answers 404, as for any missing
note. The finding stays as a regression test in the lesson (`test_huge_ids_are_just_missing`,
every method). Hand-written tests check what their author thought of; a generator driven by the
document checks what the document promises.
''')

md("matrix-intro", r'''
### The matrix, from live calls

Now each actor tries each action against step 06: nobody (no token), alice, bob, and the admin
`root`. "alice's note" is note 1. "Sign up as admin" is a registration that adds `"role": "admin"`
to the body. Each cell is the status code the app really answered.
''')

code("matrix-calls", r'''
ACTORS = ["anonymous", "alice", "bob", "root"]
alice_note = note_ids["diary"]


def newcomer(actor, **extra):
    return {"username": f"new-{actor}", "password": "plum jam on a rainy tuesday", **extra}


ACTIONS = [  # (label, method, path, body for this actor)
    ("list own notes", "GET", "/notes", lambda actor: None),
    ("read alice's note", "GET", f"/notes/{alice_note}", lambda actor: None),
    ("edit alice's note", "PATCH", f"/notes/{alice_note}", lambda actor: {"title": "diary"}),
    ("list users", "GET", "/admin/users", lambda actor: None),
    ("change a role", "PATCH", f"/admin/users/{ids['bob']}", lambda actor: {"role": "user"}),
    ("register", "POST", "/register", lambda actor: newcomer(actor)),
    ("sign up as admin", "POST", "/register", lambda actor: newcomer(f"{actor}-boss", role="admin")),
]

matrix = {}
for label, method, path, body in ACTIONS:
    for actor in ACTORS:
        token = tokens.get(actor)  # anonymous: no token
        matrix[label, actor] = call(app, method, path, token, body(actor)).status_code

print(f"{'':20}" + "".join(f"{actor:>11}" for actor in ACTORS))
for label, *_ in ACTIONS:
    print(f"{label:20}" + "".join(f"{matrix[label, actor]:>11}" for actor in ACTORS))
''')

code("matrix-picture", r'''
lab.matrix_picture([label for label, *_ in ACTIONS], ACTORS, matrix)  # drawing code: notebooks/lab/authorization.py
''')

md("matrix-lesson", r'''
Read it by rows:

- **Notes** are their owner's alone. bob and root get **404** for alice's note, reads and writes
  alike: the same answer as for a note that does not exist, so the status says nothing about
  which ids are taken. The admin role manages accounts; it does not open notes (least privilege).
- **Admin functions** answer **403** to anyone logged in without the role, and **401** to a request
  without a token: the client learns whether to log in (401) or to stop trying (403).
- **Registration** is open to all, and no one, not even root, becomes an admin through it: the
  unknown field `role` is a **400**. The only way to the admin role is `PATCH /admin/users/<id>`,
  which only an admin may call, or the server-side command.
''')

# ------------------------------------------------------------------------------------------------
# 5. The fix: the same attacks against step 06
# ------------------------------------------------------------------------------------------------

md("fix-bola-intro", r'''
## The same attacks, against step 06

### (a) The walk

mallory walks the ids again. Then she compares two answers: alice's note 1, which exists, and note
999, which does not.
''')

code("fix-bola", r'''
mark = len(security_log)
for note_id in range(1, 6):
    response = call(app, "GET", f"/notes/{note_id}", tokens["mallory"])
    print(f"GET /notes/{note_id} as mallory -> {response.status_code} {response.get_json()['detail']}")


def what_a_client_sees(response):
    """Status, headers and body bytes, with this response's request id taken out."""
    request_id = response.headers["X-Request-ID"]
    headers = sorted((name, value) for name, value in response.headers if name != "X-Request-ID")
    return response.status_code, headers, response.get_data(as_text=True).replace(request_id, "")


exists = call(app, "GET", f"/notes/{alice_note}", tokens["mallory"])
missing = call(app, "GET", "/notes/999", tokens["mallory"])
print("\nalice's note 1 and the missing note 999, identical but for the request id:",
      what_a_client_sees(exists) == what_a_client_sees(missing))
print(show(exists))

for method, body in (("PATCH", {"title": "pwned"}), ("DELETE", None)):
    print(f"{method} /notes/{alice_note} as mallory ->", call(app, method, f"/notes/{alice_note}",
                                                          tokens["mallory"], body).status_code)
print("alice's note, as alice:", show(call(app, "GET", f"/notes/{alice_note}", tokens["alice"])))

lines = log_since(mark)
print(f"\nthe security log, {len(lines)} new lines:", *lines[:3], "...", sep="\n")
''')

md("fix-bola-lesson", r'''
Nothing to read, nothing to learn: alice's existing note and a note that never existed get the
same status, the same headers and the same body, byte for byte except the request id. Writes fail
the same way, and alice's note is untouched. The walk is not silent either: every miss is logged
with who asked and which id, so a monitor can flag one user who misses many ids in a row.
''')

builder.your_turn("query-owner", r'''
mallory tries the list route instead: `GET /notes?owner_id=1`, hoping the route filters by the
parameter she sends rather than by her token. **Predict** what she gets: alice's notes, her own
empty list, or an error? Write the request, then run the cell.
''', r'''
prediction = ...  # "alice's notes", "her own (empty) list" or "an error"
response = ...    # call(app, "GET", "/notes?owner_id=1", tokens["mallory"])

if response is ...:
    print("Replace the ... of response with your request, then run this cell again.")
else:
    print("you predicted:", guess(prediction), "| the answer:", show(response))
''', r'''
print(show(call(app, "GET", f"/notes?owner_id={ids['alice']}", tokens["mallory"])))
''', r'''
**An error: 400, `owner_id` is an unknown field.** The query string is read by a schema that lists
what a client may send (`PageArgs`: `page` and `per_page`) and refuses the rest, like a body. And
even a parameter it let through could not change whose notes are listed: the owner comes from the
token (`get_jwt_identity()`), never from the request. The allowlist again, for query strings.
''')

md("fix-bfla-intro", r'''
### (b) The admin function, and the hashes

mallory calls the user listing again, then tries to make herself admin through the admin route.
''')

code("fix-bfla", r'''
mark = len(security_log)
response = call(app, "GET", "/admin/users", tokens["mallory"])
print("GET /admin/users as mallory ->", response.status_code, response.mimetype)
print(json.dumps(masked(response.get_json()), indent=2))
response = call(app, "PATCH", f"/admin/users/{ids['mallory']}", tokens["mallory"], {"role": "admin"})
print(f"PATCH /admin/users/{ids['mallory']} {{\"role\": \"admin\"}} as mallory ->", response.status_code)
print("without any token ->", call(app, "GET", "/admin/users").status_code)
print("\nthe security log:", *log_since(mark), sep="\n")
''')

md("fix-admin-list-intro", r'''
And what does the admin see? Only what `UserOut` declares, a page at a time (`PageArgs` caps
`per_page` at 100, so nobody downloads the table in one request):
''')

code("fix-admin-list", r'''
response = call(app, "GET", "/admin/users", tokens["root"])
listing = response.get_json()
print("GET /admin/users as root ->", response.status_code,
      f"| page {listing['page']}, per_page {listing['per_page']}, total {listing['total']}")
print("the fields of each user:", list(listing["items"][0]))
for user in listing["items"]:
    print("  ", json.dumps(user))
print("a password hash anywhere in the answer?", "argon2" in response.get_data(as_text=True))
response = call(app, "GET", "/admin/users?per_page=1000", tokens["root"])
print("per_page=1000 ->", response.status_code, json.dumps(response.get_json()["errors"]))
''')

md("fix-mass-intro", r'''
### (c) `owner_id` in the body

mallory sends the same planted note, then tries the other fields a note has but a client must
not set.
''')

code("fix-mass", r'''
response = call(app, "POST", "/notes", tokens["mallory"], {**planted, "owner_id": ids["alice"]})
print("POST /notes with owner_id ->", response.status_code)
print(json.dumps(masked(response.get_json()), indent=2))

extra = {"id": 1, "created_at": "2000-01-01", "role": "admin"}
response = call(app, "POST", "/notes", tokens["mallory"], {"title": "x", **extra})
print("\nwith id, created_at and role ->", response.status_code, json.dumps(response.get_json()["errors"]))

print("\nalice's own list:", [note["title"] for note in call(app, "GET", "/notes", tokens["alice"]).get_json()["items"]])
print("what a note shows its owner:", json.dumps(masked(call(app, "GET", f"/notes/{alice_note}", tokens["alice"]).get_json())))
''')

builder.your_turn("move-note", r'''
mallory writes a note of her own, then tries to *move* it into alice's account with
`PATCH /notes/<its id> {"owner_id": <alice's id>}`. **Predict** the status, and where the note is
afterwards. Write the PATCH, then run the cell.
''', r'''
prediction = ...  # the status, and whose note it is afterwards
mine = call(app, "POST", "/notes", tokens["mallory"], {"title": "mine", "body": "for now"}).get_json()["id"]
moved = ...       # call(app, "PATCH", f"/notes/{mine}", tokens["mallory"], {...})

if moved is ...:
    print("Replace the ... of moved with your request, then run this cell again.")
else:
    print("you predicted:", guess(prediction), "| the answer:", show(moved))
    print("mallory still has it:", call(app, "GET", f"/notes/{mine}", tokens["mallory"]).status_code == 200)
''', r'''
moved = call(app, "PATCH", f"/notes/{mine}", tokens["mallory"], {"owner_id": ids["alice"]})
print(show(moved))
print("mallory still has it:", call(app, "GET", f"/notes/{mine}", tokens["mallory"]).status_code == 200)
print("alice's titles:", [note["title"] for note in call(app, "GET", "/notes", tokens["alice"]).get_json()["items"]])
''', r'''
**400, and the note stays mallory's.** The PATCH body goes through the same input schema as a new
note: it lists `title` and `body`, and refuses every other field with a message (`unknown =
RAISE`). `owner_id` is a property no client may write, by creation or by update (API3:2023).
''')

md("fix-lesson", r'''
Every attack of the beginning now fails, each at its own level:

| Attack | Step 05 + quick notes | Step 06 | Where the check lives |
|---|---|---|---|
| (a) walk the ids | 200, everyone's notes | 404, like a missing note | `db.py`: `WHERE id = ? AND owner_id = ?` |
| (b) admin function as a user | 200 | 403, logged `access.denied` | `authz.py`: `@admin_required` |
| (b) password hashes in the answer | every one | none, for anyone | `schemas.py`: `UserOut` |
| (c) `owner_id` in the body | 201, note planted | 400, `errors.owner_id` | `schemas.py`: `NoteIn` |

Notice what the fix did *not* need: no `if` in any view. The rejection is a property of the
query, the decorator and the schema, so a new view inherits it by using them.
''')

# ------------------------------------------------------------------------------------------------
# 6. Where the role lives
# ------------------------------------------------------------------------------------------------

md("role-intro", r'''
## Where the role lives: in the token, or in the database?

`@admin_required` reads `current_user["role"]`. Where does that come from? Two designs:

- **In the token.** At login, copy the role into the token (`additional_claims={"role": ...}`) and
  check the claim. No query: the signature already vouches for it. But a token cannot be taken
  back: a demoted admin keeps the role until the token expires, 15 minutes here.
- **From the database.** The token carries only the user id (`sub`). Flask-JWT-Extended calls a
  `@jwt.user_lookup_loader` on every request that requires a token; step 06's `auth.load_user`
  re-reads the user's row there, and returns `None` for a disabled account, which makes the
  request a 401. The price: one query per request. The gain: a change counts from the next request.

To see both at once, the app below (a fresh step 06) gets one extra route that uses the
token-claim design, `GET /token-design/admin-check`. root logs in normally (the database design),
and also gets a second token with `"role": "admin"` written in it, as a login of the other design
would hand out.
''')

code("role-setup", r'''
from functools import wraps

from flask_jwt_extended import create_access_token, decode_token, get_jwt

role_in_token = Blueprint("role_in_token", __name__)


def admin_claim_required(view):
    """The other design: trust the role that the token says, as it was at login."""
    @wraps(view)
    @jwt_required()
    def wrapper(*args, **kwargs):
        if get_jwt().get("role") != "admin":
            abort(403)
        return view(*args, **kwargs)
    return wrapper


@role_in_token.get("/token-design/admin-check")
@admin_claim_required
def admin_check():
    return {"msg": "welcome, admin"}


trade = create_step06(settings("tradeoff"))
trade.register_blueprint(role_in_token)
cli = trade.test_cli_runner()
assert cli.invoke(args=["create-admin", "root"], input=f"{PASSWORDS['root']}\n{PASSWORDS['root']}\n").exit_code == 0
assert call(trade, "POST", "/register", body={"username": "mallory", "password": PASSWORDS["mallory"]}).status_code == 201

root_token = login(trade, "root")  # the database design: the token holds the id
mallory_token = login(trade, "mallory")
trade_ids = {user: int(call(trade, "GET", "/protected", token).get_json()["user_id"])
             for user, token in (("root", root_token), ("mallory", mallory_token))}
with trade.app_context():
    root_claim_token = create_access_token(identity=str(trade_ids["root"]), additional_claims={"role": "admin"})
    for name, token in (("database design", root_token), ("token design", root_claim_token)):
        claims = decode_token(token)
        print(f"root's token, {name:15}: sub={claims['sub']!r}, role={claims.get('role')!r}")
    lifetime = trade.config["JWT_ACCESS_TOKEN_EXPIRES"]
print("token lifetime (JWT_ACCESS_TOKEN_EXPIRES):", int(lifetime.total_seconds() // 60), "minutes")
''')

md("disable-intro", r'''
### Disable an account: the next request is refused

root disables mallory's account with `PATCH /admin/users/<id> {"disabled": true}`. mallory still
holds a token that is valid for another quarter of an hour.
''')

code("disable", r'''
mark = len(security_log)
print("mallory's token, GET /notes         ->", call(trade, "GET", "/notes", mallory_token).status_code)
response = call(trade, "PATCH", f"/admin/users/{trade_ids['mallory']}", root_token, {"disabled": True})
print("root disables mallory              ->", show(response))
response = call(trade, "GET", "/notes", mallory_token)
print("the same token, the next request   ->", show(response))
print("                  WWW-Authenticate:", response.headers["WWW-Authenticate"])
response = call(trade, "POST", "/login", body={"username": "mallory", "password": PASSWORDS["mallory"]})
print("mallory logs in again, right password ->", show(response))
print("\nthe security log:", *log_since(mark), sep="\n")
''')

md("disable-lesson", r'''
Refused at once, with the generic "Token refused". And a new login gets the same answer as a
wrong password: `login()` checks `disabled` only after the password, so the answer tells a guesser
nothing about the account.
''')

md("demote-intro", r'''
### Demote an admin: the two designs disagree

Now the operator demotes root on the server, `flask set-role root user`, and root's two tokens try
the admin functions again.
''')

code("demote", r'''
import time


def admin_checks(moment):
    results = {"database": call(trade, "GET", "/admin/users", root_token).status_code,
               "token": call(trade, "GET", "/token-design/admin-check", root_claim_token).status_code}
    print(f"{moment:28} role from the database: {results['database']}   role in the token: {results['token']}")
    return results


before = admin_checks("root is admin:")
result = cli.invoke(args=["set-role", "root", "user"])
print("\n$ flask set-role root user\n" + result.output)
after = admin_checks("root demoted, next request:")

with trade.app_context():
    expires = decode_token(root_claim_token)["exp"]
print(f"\nthe token that says 'admin' stays valid for about {round((expires - time.time()) / 60)} more minutes")
''')

code("timeline-picture", r'''
lab.demotion_picture(lifetime.total_seconds() / 60, after)  # drawing code: notebooks/lab/authorization.py
''')

md("cost-intro", r'''
And the price of the database design, the query `load_user` runs on every request:
''')

code("cost", r'''
with trade.app_context():
    plan = db06.get_db().execute("EXPLAIN QUERY PLAN SELECT * FROM user WHERE id = ?", (1,)).fetchall()
print("load_user's query: SELECT * FROM user WHERE id = ?")
print("SQLite finds the row by its primary key:", any("USING INTEGER PRIMARY KEY" in row[-1] for row in plan))
''')

md("role-lesson", r'''
| | Role in the token | Role from the database (step 06) |
|---|---|---|
| Cost per request | none beyond checking the signature | one lookup by primary key |
| A demotion counts | when the token expires (up to 15 min here) | on the next request |
| A disabled account is refused | when the token expires, unless you add a revocation check | on the next request |
| The token reveals | the role, to anyone who holds it (notebook 02) | only the user id |

OWASP ASVS 5.0 **V8.3.2** (level 3) asks that changes to the values authorization decisions rest on
be "applied immediately". Its example of where they cannot be is data in self-contained tokens;
there it requires mitigating controls that alert when someone acts on an authorization they no
longer have, and revert the change. The Authorization Cheat Sheet names the
trade-off: sending only the user id and fetching the roles on the server "will increase the
latency of every request". A token design can narrow its window with short lifetimes, or check a
revocation list on each request (Flask-JWT-Extended's `token_in_blocklist_loader`), which is again
a lookup per request.

For one primary-key query in a local SQLite file, this workbook takes the immediate answer.
''')

# ------------------------------------------------------------------------------------------------
# 7. No default accounts
# ------------------------------------------------------------------------------------------------

md("default-intro", r'''
## No default accounts

How does the first admin come to exist? The easy answer is a default account, created with the
software, its password written in the manual or the source. Whatever is published with the
software is public, to attackers first. OWASP ASVS 5.0 **V6.3.2** (level 1) asks that default
accounts (its examples: "root", "admin", "sa") not be present, or be disabled.

Step 06 ships none. A fresh database:
''')

code("fresh", r'''
fresh = create_step06(settings("fresh"))
with closing(sqlite3.connect(fresh.config["DATABASE"])) as connection:
    print("users in a fresh database:", connection.execute("SELECT COUNT(*) FROM user").fetchone()[0])

for username, password in [("admin", "admin"), ("admin", "password"), ("root", "root")]:
    response = call(fresh, "POST", "/login", body={"username": username, "password": password})
    print(f"log in as {username}/{password:8} -> {response.status_code} {response.get_json()['detail']}")
''')

md("create-admin-intro", r'''
The first admin is made on the server, by someone who can already run commands there, with the
server's configuration (its `FLASK_JWT_SECRET_KEY` and its database):

```
flask --app solutions.step06_authorization create-admin dana
```

It asks for the password twice, without echoing it, and applies the same policy as `/register`
(notebook 03: at least 15 characters, not on the common-password list). The cells below invoke the
same command through Flask's test CLI runner, first with a weak password:
''')

code("create-admin-weak", r'''
cli = fresh.test_cli_runner()
weak = "password123"
result = cli.invoke(args=["create-admin", "dana"], input=f"{weak}\n{weak}\n")
print("$ flask --app solutions.step06_authorization create-admin dana\n" + result.output)
print("exit code:", result.exit_code)

response = call(fresh, "POST", "/register", body={"username": "dana", "password": weak})
print("\nPOST /register with the same password ->", response.status_code)
print(json.dumps(response.get_json()["errors"], indent=2))
''')

code("create-admin", r'''
strong = "tea at dawn beside the quiet server racks"
result = cli.invoke(args=["create-admin", "dana"], input=f"{strong}\n{strong}\n")
print("$ flask --app solutions.step06_authorization create-admin dana\n" + result.output)
print("exit code:", result.exit_code)

PASSWORDS["dana"] = strong
listing = call(fresh, "GET", "/admin/users", login(fresh, "dana")).get_json()
print("dana logs in and lists the users:", json.dumps(listing["items"]))

result = cli.invoke(args=["create-admin", "dana"], input=f"{strong}\n{strong}\n")
print("\nthe same command again ->", result.output.splitlines()[-1])
''')

md("default-lesson", r'''
The weak password is refused with the same messages as at registration: an admin account is the
last one that should get a weaker policy. Once made, the admin is a personal account with a
password nobody else has seen, and through the API only an admin can make another one.
(`root` above was just a name; what V6.3.2 forbids is an account that exists before anyone chose
its password.)
''')

# ------------------------------------------------------------------------------------------------
# 8. Closing
# ------------------------------------------------------------------------------------------------

md("wrap-up", r'''
## What you saw

- Requiring a token on every route protected nothing: step 05 extended the quick way let any user
  read every note (API1), call the admin listing and read every password hash (API5, API3), and
  plant a note in another account with `owner_id` (API3).
- Step 06 puts each check in one place: the owner in every note query (404 for the rest), one
  decorator for admin functions (403, logged), allowlists for the fields a client may set and see.
  A request without a token to every route shows which ones are public.
- The role is read from the database on every request: a demotion or a disabled account counts on
  the next request, for the price of one primary-key lookup. A role in the token lasts until the
  token expires.
- No account exists until an operator makes one on the server with `flask create-admin`.

Now build it yourself.
''')

code("cleanup", r'''
import shutil

shutil.rmtree(workdir, ignore_errors=True)  # the notebook's SQLite files
''')

builder.outro(6)

md("reference-intro", r'''
## After your check passes: the reference checks

**Spoiler**: this is the solution of exercises 6.1 to 6.3. Read it once `python -m workbook check 6`
passes; `python -m workbook diff 6` shows the whole lesson as a diff.
''')

code("reference", r'''
from IPython.display import display
from lab.common import solution_source

display(solution_source("step06_authorization", "db.py", "get_note", "delete_note"))
display(solution_source("step06_authorization", "authz.py", "admin_required"))
display(solution_source("step06_authorization", "schemas.py", "NoteIn", "UserOut"))
''')


build = builder.build

if __name__ == "__main__":
    builder.main()
