"""Build notebooks/07_sessions.ipynb (step 07 — Sessions) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 7
    python -m pytest notebooks/07_sessions.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: tokens, token ids, session ids, request ids and times
are masked (notebooks/lab/sessions.py), and a figure's status codes are printed as text too.
The helpers and the drawing code live in notebooks/lab/sessions.py: they are not the lesson.
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

builder.intro(7)

# ------------------------------------------------------------------------------------------------
# 2. The attack on step 06
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: step 06 cannot end a session

Step 06 checks who you are on every request, and what you may do. But once it has signed a token,
that token is good until its `exp`, 15 minutes later, whatever happens in between: a signature
cannot be taken back. Ask the question users ask most about Flask-JWT-Extended: *how do I log out?*

The helpers (fresh SQLite files, cheap hashing, the security log kept in a list, masked answers)
are in `notebooks/lab/sessions.py`; they are not the lesson.
''')

code("setup", r'''
from lab import sessions as lab
from lab.common import guess
from lab.sessions import call, login, show

from solutions import step06_authorization as step06

lab.keep_the_security_log()
app06 = step06.create_app(lab.settings("step06"))
lab.register(app06, "alice")                 # user 1
lab.make_admin(app06, "root")                # user 2, made on the server: `flask create-admin root`

alice = login(app06, "alice")["access_token"]
stolen = alice  # mallory copied it: a shared computer, a log line, a browser extension, a proxy
print("alice's token, as anyone can read it:", lab.claims(alice))
''')

md("attack-logout-intro", r'''
### (a) "Log out"

alice is done and presses *log out*. Step 06 has no such route: all a client can do is forget its
token. mallory's copy is not forgotten.
''')

code("attack-logout", r'''
print("POST /logout              ", show(call(app06, "POST", "/logout", alice)))
print("mallory's copy, afterwards", show(call(app06, "GET", "/protected", stolen)))
''')

md("attack-disable-intro", r'''
### (b) The admin locks the account, then unlocks it

alice reports the theft. The admin disables her account: step 06 re-reads the user on every request,
so the stolen token is refused at once. Then alice is enabled again, to carry on working…
''')

code("attack-disable", r'''
root = login(app06, "root")["access_token"]
print("disable alice              ", show(call(app06, "PATCH", "/admin/users/1", root, {"disabled": True})))
print("mallory's copy             ", show(call(app06, "GET", "/protected", stolen)))
print("enable alice again         ", show(call(app06, "PATCH", "/admin/users/1", root, {"disabled": False})))
print("mallory's copy, once more  ", show(call(app06, "GET", "/protected", stolen)))
''')

md("attack-disable-lesson", r'''
The old token came back to life: disabling an account did not end its sessions, it only paused them.
OWASP ASVS 5.0 V7.4.2 asks that disabling an account terminates its active sessions.

### (c) Refresh tokens the quick way

Short access tokens mean logging in every 15 minutes, so the usual next step is a refresh token:
Flask-JWT-Extended's documentation shows a `/refresh` route that takes a refresh token (30 days by
default) and answers a new access token. Here it is, added to a step 06 app the quick way, with a
login that hands out both tokens. Read it before you attack it.
''')

code("quick-refresh", r'''
from flask import Blueprint
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token, get_jwt_identity, jwt_required

quick = Blueprint("quick_refresh", __name__)


@quick.post("/login/with-refresh")
def login_with_refresh():
    """Step 06's own login (argon2id, validation, limits), plus a refresh token."""
    body, status, headers = step06.auth.login()
    body["refresh_token"] = create_refresh_token(identity=decode_token(body["access_token"])["sub"])
    return body, status, headers


@quick.post("/refresh")
@jwt_required(refresh=True)
def refresh():
    """As in the documentation: a refresh token in, a new access token out."""
    return {"access_token": create_access_token(identity=get_jwt_identity())}


quick_app = step06.create_app(lab.settings("quick"))
quick_app.register_blueprint(quick)
lab.register(quick_app, "alice")
lab.make_admin(quick_app, "root")

answer = call(quick_app, "POST", "/login/with-refresh", body={"username": "root", "password": lab.PASSWORDS["root"]})
root_refresh = answer.get_json()["refresh_token"]
with quick_app.app_context():
    refresh_claims = decode_token(root_refresh)
days = (refresh_claims["exp"] - refresh_claims["iat"]) // 86400
print("root's refresh token lives", days, "days")
''')

code("attack-demoted", r'''
quick_app.test_cli_runner().invoke(args=["create-admin", "boss"], input="a second admin, for the demotion\n" * 2)
boss = login(quick_app, "boss", "a second admin, for the demotion")["access_token"]
print("boss demotes root (user 2)         ", show(call(quick_app, "PATCH", "/admin/users/2", boss, {"role": "user"})))
fresh = call(quick_app, "POST", "/refresh", root_refresh)
print("root, demoted, refreshes          ", show(fresh))
print("...and the new token still works  ", show(call(quick_app, "GET", "/protected", fresh.get_json()["access_token"])))
print("a copy of the refresh token, too  ", call(quick_app, "POST", "/refresh", root_refresh).status_code)
print("and again, and again              ", [call(quick_app, "POST", "/refresh", root_refresh).status_code for _ in range(3)])
''')

md("attack-demoted-lesson", r'''
root leaves the admin team, and another admin demotes the account. The demotion holds on the
admin routes (step 06 reads the role from the database), but the
*session* that began when root was an admin goes on for 30 days, and any copy of its refresh token
mints access tokens as often as it likes. Nobody can tell the owner's refreshes from a thief's, and
nothing can stop either.
''')

builder.your_turn("your-turn-1", r'''
alice logs in to the quick app and gets both tokens; mallory copies the refresh token. Then alice
presses *log out*: her client deletes both of its tokens. **Predict**: what does mallory's copy of
the refresh token get at `/refresh`, 200 or 401? Write your guess, then run the cell.
''', r'''
prediction = ...  # your guess: 200 or 401

if prediction is ...:
    print("Write your prediction on the first line (replace the ...), then run this cell again.")
else:
    tokens = call(quick_app, "POST", "/login/with-refresh", body={"username": "alice", "password": lab.PASSWORDS["alice"]}).get_json()
    mallorys_copy = tokens["refresh_token"]
    del tokens  # alice "logs out": her client forgets everything
    print("you predicted:", guess(prediction), "| the answer:", call(quick_app, "POST", "/refresh", mallorys_copy).status_code)
''', r'''
tokens = call(quick_app, "POST", "/login/with-refresh", body={"username": "alice", "password": lab.PASSWORDS["alice"]}).get_json()
mallorys_copy = tokens["refresh_token"]
del tokens  # alice "logs out": her client forgets everything
print("mallory's copy, after alice's logout:", call(quick_app, "POST", "/refresh", mallorys_copy).status_code)
''', r'''
**200**, for 30 days. Forgetting a token on the client ends nothing on the server: the server
never knew the client had it, and keeps no record of what it signed. To end a session early the
server must remember what it ended, and check every token against that memory. That is the
revocation store of step 07.
''')

# ------------------------------------------------------------------------------------------------
# 3. The concept
# ------------------------------------------------------------------------------------------------

md("concept", r'''
## The concept: sessions, rotation, reuse detection, a revocation store

A **session** starts at a login and ends at a logout, a password change, an admin's decision, or
at the latest after its maximum lifetime. Step 07 gives it two tokens and a memory:

- an **access token**, short-lived (15 minutes), accepted by every route but one;
- a **refresh token**, longer-lived (12 hours here), accepted by `POST /refresh` only: the `type`
  claim keeps each token where it belongs (RFC 8725 §3.11, RFC 6749 §1.5);
- both carry the session's id, the claim `fam` (a *family* of tokens);
- a **revocation store** that Flask-JWT-Extended consults for every token
  (`token_in_blocklist_loader`): `jti:<id>` ends one token, `family:<id>` a whole session.

**Rotation** (RFC 9700 §4.14.2): every refresh answers a new refresh token and retires the one
presented. A retired refresh token that comes back means two parties hold it, the user and a
thief, and the server cannot tell which is which: it ends the whole family. Both must log in
again, and only one of them knows the password. Retiring is one atomic write (a PRIMARY KEY
insert in SQLite, `SET NX` in Redis), so of two simultaneous refreshes exactly one wins.

Each entry **expires with the token it revokes**: after its `exp` the token is refused anyway, so
the store holds only what can still matter. And if the store cannot be reached, no token can be
checked, so none is accepted (**fail closed**: 503 with Retry-After, not 401: the token may be
fine, and the client should retry, not send its user to a login that cannot work either).

Here is a session on step 07, from live calls. mallory has a copy of alice's refresh token and
refreshes *first*, so she holds the newest tokens. Then alice's phone refreshes with the same one:
''')

code("timeline", r'''
from solutions import step07_sessions as step07

app07 = step07.create_app(lab.settings("step07"))
lab.register(app07, "alice")
first = login(app07, "alice")
copy = first["refresh_token"]  # mallory's copy

rows = [("alice (phone)", "login", 200),
        ("alice (phone)", "GET /protected", call(app07, "GET", "/protected", first["access_token"]).status_code)]
thief = call(app07, "POST", "/refresh", copy)
rows.append(("mallory", "refresh (copy)", thief.status_code))
rows.append(("mallory", "GET /protected", call(app07, "GET", "/protected", thief.get_json()["access_token"]).status_code))
rows.append(("alice (phone)", "refresh (same)", call(app07, "POST", "/refresh", first["refresh_token"]).status_code))
rows.append(("mallory", "GET /protected", call(app07, "GET", "/protected", thief.get_json()["access_token"]).status_code))
rows.append(("mallory", "refresh (new)", call(app07, "POST", "/refresh", thief.get_json()["refresh_token"]).status_code))
again = login(app07, "alice")
rows.append(("alice (phone)", "login again", 200))
rows.append(("alice (phone)", "GET /protected", call(app07, "GET", "/protected", again["access_token"]).status_code))
for lane, label, status in rows:
    print(f"{lane:14} {label:16} {status}")
print()
print("\n".join(lab.log_since(0, "refresh.reuse_detected")))
''')

code("timeline-picture", r'''
lab.timeline(rows, "A refresh token used twice ends its session: the thief's newer tokens with it")  # notebooks/lab/sessions.py
''')

md("timeline-lesson", r'''
mallory won the race and still lost: the moment the retired token came back, the whole family
ended, her newer tokens with it. alice logs in again; mallory cannot. Rotation does not stop the
theft, it **detects** it, and bounds it to the time until the owner's next refresh.

## The fix, in step 07

The same attacks, against step 07's solution. First (a): logout.
''')

# ------------------------------------------------------------------------------------------------
# 4. The fix
# ------------------------------------------------------------------------------------------------

code("fix-logout", r'''
lab.register(app07, "mallory")
tokens = login(app07, "alice")
copy = dict(tokens)  # mallory's copies of both
print("POST /logout                 ", show(call(app07, "POST", "/logout", tokens["access_token"])))
print("the copied access token      ", show(call(app07, "GET", "/protected", copy["access_token"])))
print("the copied refresh token     ", call(app07, "POST", "/refresh", copy["refresh_token"]).status_code)
''')

md("fix-disable-intro", r'''
(b) and (c): the admin disables alice and enables her again; root, an admin, is demoted by another
admin. `PATCH /admin/users/<id>` now ends the account's sessions whenever it disables, enables or
demotes it.
''')

code("fix-disable", r'''
lab.make_admin(app07, "root")
admin = login(app07, "root")
old = login(app07, "alice")
call(app07, "PATCH", "/admin/users/1", admin["access_token"], {"disabled": True})
call(app07, "PATCH", "/admin/users/1", admin["access_token"], {"disabled": False})
print("alice's old token after disable + enable ", call(app07, "GET", "/protected", old["access_token"]).status_code)
print("alice logs in again                      ", call(app07, "GET", "/protected", login(app07, "alice")["access_token"]).status_code)

app07.test_cli_runner().invoke(args=["create-admin", "boss"], input="a second admin, for the demotion\n" * 2)
boss = login(app07, "boss", "a second admin, for the demotion")
call(app07, "PATCH", "/admin/users/3", boss["access_token"], {"role": "user"})  # root (user 3) is demoted
print("root's refresh token after the demotion  ", call(app07, "POST", "/refresh", admin["refresh_token"]).status_code)
''')

md("fix-password-intro", r'''
(d) alice suspects a thief and changes her password. `POST /password` asks for the current
password and a *fresh* access token (one from a login, not from a refresh: `jwt_required(fresh=True)`),
then ends every session of the account, the thief's included, and hands this client a new one.
''')

code("fix-password", r'''
phone, thief = login(app07, "alice"), login(app07, "alice")
r = call(app07, "POST", "/password", phone["access_token"],
         {"current_password": lab.PASSWORDS["alice"], "new_password": lab.NEW_PASSWORD})
print("POST /password              ", show(r))
print("the thief's session          ", call(app07, "GET", "/protected", thief["access_token"]).status_code,
      call(app07, "POST", "/refresh", thief["refresh_token"]).status_code)
print("the new session of this phone", call(app07, "GET", "/protected", r.get_json()["access_token"]).status_code)
refreshed = call(app07, "POST", "/refresh", r.get_json()["refresh_token"]).get_json()
print("a refreshed (not fresh) token cannot change it:",
      call(app07, "POST", "/password", refreshed["access_token"],
           {"current_password": lab.NEW_PASSWORD, "new_password": "yet another passphrase, longer"}).status_code)
''')

md("fix-store-intro", r'''
### The store, and what it does when it is down

The store keeps each entry until the token it revokes would have expired, in the app's SQLite
database by default. Retiring a refresh token is one `INSERT`: the database, not a
check-then-write in Python, decides who was first. This part of `revocation.py` is not an
exercise:
''')

code("fix-store-code", r'''
import inspect

print(inspect.getsource(step07.revocation.SqliteStore.add))
''')

code("fix-store-down", r'''
# The same database and key, but a revocation store nobody answers at (a Redis that is down):
down = step07.create_app({**lab.settings("step07", key=app07.config["JWT_SECRET_KEY"]),
                          "REVOCATION_STORAGE_URI": "redis://127.0.0.1:1/0"})
r = call(down, "GET", "/protected", login(app07, "mallory")["access_token"])
print(show(r))
print("Retry-After:", r.headers["Retry-After"])
''')

md("fix-many-processes", r'''
SQLite serves one machine. When several processes on several machines serve the API, they must
share one store: `FLASK_REVOCATION_STORAGE_URI=redis://host:6379/0`. Then a logout answered by one
gunicorn worker is refused by every other, entries expire by themselves (`SET ... EX`), and
retiring a refresh token is `SET NX`, atomic across all of them. The test
`tests/test_step07_sessions_workers.py` starts a real Redis and `gunicorn -w 2` to check both.

### Tokens that belong to one API

One more hole, found while building this step: with one key shared by several apps (the workbook
once served every step with the same development key), a token that says only `sub: "2"` is user 2
everywhere. From step 02 on, every app names itself in `iss` and `aud` and refuses the rest
(RFC 8725 §3.9). A step 06 token, signed with step 07's key:
''')

code("fix-audience", r'''
shared = app07.config["JWT_SECRET_KEY"]
sibling = step06.create_app(lab.settings("sibling", key=shared))
lab.register(sibling, "alice")
theirs = login(sibling, "alice")["access_token"]
print("claims:", {k: v for k, v in lab.claims(theirs).items() if k in ("iss", "aud", "sub")})
print("at step 07:", show(call(app07, "GET", "/protected", theirs)))
''')

builder.your_turn("your-turn-2", r'''
Eight requests arrive at the same moment, each with the same refresh token (a thief racing the
owner, or a buggy client retrying). **Predict**: how many of them get new tokens? And does the
winner's new refresh token work afterwards? Write your guess, then run the cell.
''', r'''
from collections import Counter

prediction = ...  # how many 200s out of 8? and the winner's refresh token afterwards: 200 or 401?

if prediction is ...:
    print("Write your prediction on the first line (replace the ...), then run this cell again.")
else:
    answers = lab.race(app07, "/refresh", login(app07, "mallory")["refresh_token"])  # 8 at once
    winner = next(r for r in answers if r.status_code == 200).get_json()
    print("you predicted:", guess(prediction), "| answers:", dict(sorted(Counter(r.status_code for r in answers).items())),
          "| the winner's new refresh token:", call(app07, "POST", "/refresh", winner["refresh_token"]).status_code)
''', r'''
answers = lab.race(app07, "/refresh", login(app07, "mallory")["refresh_token"])  # 8 at once
print("answers:", dict(sorted(Counter(r.status_code for r in answers).items())))
winner = next(r for r in answers if r.status_code == 200).get_json()
print("the winner's new refresh token:", call(app07, "POST", "/refresh", winner["refresh_token"]).status_code)
''', r'''
**One 200 and seven 401s; then 401 for the winner too.** Each request tries to record
`used:<jti>` with one `INSERT` (a PRIMARY KEY); the database accepts the first and refuses the
rest, so exactly one wins. Each loser is a reuse of a retired token, and ends the session: the
winner's new tokens belong to it, so they are refused from then on. Had the code asked "was it
used?" and then written "used" in a second step, several requests could pass the question before
any wrote the answer, and all would win (a time-of-check to time-of-use race, CWE-367); the
exercise's tests catch that with a store slowed to network speed.
''')

md("wrap-up", r'''
## What you saw

- A signed token cannot be taken back: in step 06 a copied token outlived a "logout", and a
  disabled account's token came back when the account was enabled again. A quick refresh route
  made it 30 days, for any copy.
- Step 07 keeps a revocation store that every request consults. Logout ends the session (access
  and refresh token), `/logout/all` every session, a new password and an admin's disable, enable
  or demotion too.
- Refresh tokens rotate; a retired one presented again ends its session, a thief's newer tokens
  with it; one atomic write decides the winner of simultaneous refreshes.
- Entries expire with their tokens; Redis shares them between processes; a store that is down
  means 503, never "not revoked".
- Tokens name their API (`iss`, `aud`): a sibling app's token with the same key is refused.

Now build it yourself.
''')

code("cleanup", r'''
lab.cleanup()  # the notebook's SQLite files
''')

builder.outro(7)


build = builder.build

if __name__ == "__main__":
    builder.main()
