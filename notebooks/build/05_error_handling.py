"""Build notebooks/05_error_handling.ipynb (step 05 — Error handling) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 5
    python -m pytest notebooks/05_error_handling.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: no keys, tokens, paths or timings. notebooks/sanitize.cfg
does not know request ids (32 hex digits) or log timestamps, so the notebook masks them itself
(`masked()`, as "<request-id>" and "<time>"). Nothing reaches stderr: Flask's own log
(app.logger) and step 05's "api" log are captured in lists and printed, masked, where they matter.
The "bug" is a monkeypatched `passwords.hash_password` that raises; it is always put back.
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

builder.intro(5, r'''
from lab import errors as lab  # notebooks/lab/errors.py: apps, log capture, masking, a bug on demand
from lab.common import guess
''')

# ------------------------------------------------------------------------------------------------
# 2. The attack, on step 04's solution
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: make step 04 fail, and read what it says

Step 04's API authenticates, validates and rate-limits. Now look at it from the other side: what
does it answer when something goes wrong? A client has to parse every error it can receive, and an
attacker provokes errors on purpose, because error messages describe the inside of a system.

The helpers (in `notebooks/lab/errors.py`) build apps in this process, mask what changes from run
to run (request ids and log times: `masked(text)`), capture what the server logs instead of letting
it reach the terminal, and plant a bug on demand (`a_bug_in(passwords)`: `hash_password` raises,
as a bug deep in the code would).
''')

code("setup", r'''
import json, logging, secrets, tempfile, time

import jwt as pyjwt  # PyJWT, the library under Flask-JWT-Extended

from solutions.step04_rate_limiting import create_app as create_step04, passwords as passwords04
from solutions.step05_error_handling import create_app as create_step05, passwords as passwords05

workdir = pathlib.Path(tempfile.mkdtemp())  # the SQLite files; deleted at the end of the notebook
masked, a_bug_in = lab.masked, lab.a_bug_in


def settings(name, **overrides):
    return lab.settings(workdir, name, **overrides)  # a key, a SQLite file; login limit 2 per minute per account


flask_log = lab.Capture()  # the step 04 and classic apps' own log (app.logger), kept here, not on stderr
api_log = lab.capture_api_log()  # step 05's log (the logger "api")


def quiet(app):
    return lab.quiet(app, flask_log)


GOOD = "violet kettle under a quiet moon"  # a valid password
now = int(time.time())
FORGED = pyjwt.encode(  # a well-formed access token for user 1, signed with a key the server does not have
    {"sub": "1", "type": "access", "fresh": False, "jti": "x", "iat": now, "nbf": now, "exp": now + 900},
    secrets.token_hex(32), algorithm="HS256")
''')

md("table-intro", r'''
### Nine ways to get an error

The same nine requests go to step 04 now, to step 05 later. The step 04 app runs like a server
(`TESTING` off), so that a bug gives the answer a real client gets. Two helpers: `send()` sends one
of the nine (the 429 takes three logins for one account, the bug is switched on only for its
request), `shape()` names the envelope of an answer.
''')

code("requests", r'''
REQUESTS = [  # (what, method, path, keyword arguments for the test client)
    ("unknown path", "GET", "/nothing-here", {}),
    ("wrong method", "GET", "/login", {}),
    ("body over 16 KiB", "POST", "/register", {"data": "x" * 20_000, "content_type": "application/json"}),
    ("form body, not JSON", "POST", "/register",
     {"data": "username=alice", "content_type": "application/x-www-form-urlencoded"}),
    ("a JSON list", "POST", "/register", {"json": ["alice", GOOD]}),
    ("forged token", "GET", "/protected", {"headers": {"Authorization": f"Bearer {FORGED}"}}),
    ("no token", "GET", "/protected", {}),
    ("3rd login in a minute", "POST", "/login", {"json": {"username": "bob", "password": "wrong guess"}}),
    ("a bug", "POST", "/register", {"json": {"username": "alice", "password": GOOD}}),
]


def send(app, what, passwords_module=None):
    return lab.send(app, REQUESTS, what, passwords_module)  # the 429 takes 3 logins; the bug is switched on


shape, start = lab.shape, lab.start  # "HTML page" or "JSON {members}"; the body's first 80 characters
''')

code("step04-table", r'''
step04 = quiet(create_step04(settings("step04", TESTING=False)))

answers04 = {what: send(step04, what, passwords04) for what, *_ in REQUESTS}
for what, response in answers04.items():
    print(f"{what:22} {response.status_code}  {response.content_type}")
    print(f"{'':22} {start(response)}")

shapes = sorted({shape(response) for response in answers04.values()})
print(f"\n{len(answers04)} errors, {len(shapes)} shapes: {' | '.join(shapes)}")
''')

md("step04-table-lesson", r'''
Read it as a client would:

- **Three envelopes.** Werkzeug's HTML pages (404, 405, 413, 500), `{"msg"}` (415, the token
  errors, the 429), `{"msg", "errors"}` (400). A client must look at the Content-Type, then guess
  which keys to read. A JSON client that parses the 404 as JSON fails on `<!doctype html>`.
- **422 where a client expects 401.** A forged token gets `422` (Unprocessable Content, RFC 9110
  §15.5.21) with
  `"Signature verification failed"`: that is Flask-JWT-Extended's default for a token it cannot
  accept. Only a missing or expired token gets 401. A client written to log in again on 401 does
  not do it on 422, and 422 means that the server "was unable to process the contained
  instructions" (RFC 9110 §15.5.21), not "who are you?". No answer carries `WWW-Authenticate`,
  which RFC 6750 §3 requires when a request has no valid access token.
- **The bug** is Flask's HTML 500 page. Its text is generic, which is good. But what did the server
  write down?
''')

builder.your_turn("scheme", r'''
One more error for the table: alice's client sends her token with the wrong scheme,
`Authorization: Token <the token>` instead of `Bearer`. **Predict** step 04's status (401 or 422?)
and whether the answer carries a `WWW-Authenticate` header. Write the request, then run the cell.
''', r'''
prediction = ...  # e.g. (401, False): the status, and whether WWW-Authenticate is there
response = ...    # step04.test_client().get("/protected", headers={"Authorization": ...})

if response is ...:
    print("Replace the ... of response with your request, then run this cell again.")
else:
    print("you predicted:", guess(prediction), "| the answer:", response.status_code, response.get_json(),
          "| WWW-Authenticate:", response.headers.get("WWW-Authenticate", "(none)"))
''', r'''
response = step04.test_client().get("/protected", headers={"Authorization": f"Token {FORGED}"})
print(response.status_code, response.get_json(), "| WWW-Authenticate:", response.headers.get("WWW-Authenticate", "(none)"))
''', r'''
**401, without `WWW-Authenticate`.** Flask-JWT-Extended treats a header without the `Bearer` scheme
as no token at all (401, "Missing 'Bearer' type"), while a bad token under the right scheme is a
422: two statuses for one problem, and neither says how to authenticate, which RFC 6750 §3 asks of
every 401 from a protected resource. Step 05 makes both a 401 with `WWW-Authenticate: Bearer`.
''')

code("step04-log", r'''
first, *_, last = flask_log.lines[-1].splitlines()
print("Flask's log entry for the bug:")
print("   ", masked(first))
print("    ... the traceback ...")
print("   ", last)
''')

md("step04-log-lesson", r'''
The traceback is there, with the SQL and the file path, which is where it belongs. But nothing
ties it to the user's request: no id in the answer, none in the log. When a user reports "it
failed at 14:02", you search the log by time and by guesswork, among the errors of every other
request of that minute.

And in the tests? With `TESTING = True` (what `create_app(test_config)` gets in the workbook's
tests), Flask does not answer 500 at all: it re-raises the exception into the test client.
''')

code("step04-testing", r'''
step04_testing = create_step04(settings("step04-testing"))
try:
    send(step04_testing, "a bug", passwords04)
except RuntimeError as error:
    print(f"the test client raised {type(error).__name__}: {error}")
''')

md("step04-testing-lesson", r'''
A test that sends this request gets an exception instead of an answer, so it cannot check what a
client would receive. Step 05 handles the bug in the app itself, the same way in tests as in
production.
''')

# ------------------------------------------------------------------------------------------------
# 2b. The classic tutorial's handlers
# ------------------------------------------------------------------------------------------------

md("classic-intro", r'''
### The classic tutorial's error handlers

The classic Flask + JWT tutorial's error-handling step adds three handlers, with a comment that
they are there "to avoid exposing sensitive information". Below they are on a throwaway copy of the
tutorial's app (`notebooks/classic_app.py`), with a 16 KiB body cap and a login limit added so that
a 413 and a 429 can happen. **The insecure original: do not copy.**
''')

code("classic-app", r'''
# ================================================================================================
#  THE INSECURE ORIGINAL — DO NOT COPY. The classic tutorial's app and its step-5 error handlers.
# ================================================================================================
from flask import Flask, jsonify, request
from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

classic = quiet(Flask("classic"))
classic.config["JWT_SECRET_KEY"] = secrets.token_hex(32)  # the tutorial publishes its key (notebook 01)
classic.config["MAX_CONTENT_LENGTH"] = 16 * 1024           # added: step 03's body cap
JWTManager(classic)
limiter = Limiter(get_remote_address, app=classic, storage_uri="memory://")  # added: step 04's idea
users = {}


@classic.route("/register", methods=["POST"])
def register():
    username = request.json.get("username")
    password = request.json.get("password")
    if username in users:
        return jsonify({"msg": "User already exists"}), 400
    users[username] = password
    return jsonify({"msg": "User registered successfully"}), 201


@classic.route("/login", methods=["POST"])
@limiter.limit("2 per minute")
def login():
    username = request.json.get("username")
    password = request.json.get("password")
    if users.get(username) != password:
        return jsonify({"msg": "Bad username or password"}), 401
    return jsonify(access_token=create_access_token(identity=username)), 200


@classic.route("/protected", methods=["GET"])
@jwt_required()
def protected():
    return jsonify(logged_in_as=get_jwt_identity()), 200


# Error handlers, "to avoid exposing sensitive information" (the tutorial's words)
@classic.errorhandler(400)
def bad_request(error):
    return jsonify({"msg": "Bad request", "error": str(error)}), 400


@classic.errorhandler(401)
def unauthorized(error):
    return jsonify({"msg": "Unauthorized", "error": str(error)}), 401


@classic.errorhandler(404)
def not_found(error):
    return jsonify({"msg": "Not found", "error": str(error)}), 404
''')

code("classic-table", r'''
answers_classic = {what: send(classic, what) for what, *_ in REQUESTS if what not in ("a JSON list", "a bug")}
# The classic app's own bug, no monkeypatch needed: a JSON list has no .get()
answers_classic["a bug (a JSON list)"] = classic.test_client().post("/register", json=["alice", GOOD])
answers_classic["malformed JSON"] = classic.test_client().post(
    "/register", data='{"username": ', content_type="application/json")

for what, response in answers_classic.items():
    body = response.get_json(silent=True) if response.is_json else None
    handled = isinstance(body, dict) and "error" in body
    print(f"{what:22} {response.status_code}  {shape(response):22} {'<- a tutorial handler' if handled else ''}")

print("\nstr(error), as the 404 handler sends it:")
print("   ", answers_classic["unknown path"].get_json()["error"])
print("and the 400 handler:")
print("   ", answers_classic["malformed JSON"].get_json()["error"])
print("\nthe bug, in Flask's log:", flask_log.lines[-1].splitlines()[-1])
''')

md("classic-lesson", r'''
Three handlers, and three problems:

- **Most errors never reach them.** 405, 413, 415, 429 and 500 are still HTML pages: a handler
  for a status code catches that code only. Two of them handle something here, the 404 and the 400
  of a malformed body.
- **The 401 handler never runs for a token.** "No token" answers 401 with Flask-JWT-Extended's
  `{"msg": "Missing Authorization Header"}`, not `{"msg": "Unauthorized", "error": ...}`; the
  forged token answers 422. Flask-JWT-Extended does not raise an HTTP 401: it raises its own
  exceptions (`NoAuthorizationError`, PyJWT's `InvalidSignatureError`, ...), which are not
  `HTTPException`s and have no status code, and `JWTManager(app)` registers a handler for each of
  those classes. A handler registered for 401 can never match them.
- **`str(error)` is the exception's full text.** For Werkzeug's own errors that is its
  boilerplate, "404 Not Found: The requested URL was not found on the server...", which only
  repeats the status. But the pattern sends the client whatever text the exception carries. The
  next step on that road is the handler for "everything else":
''')

code("classic-leak", r'''
# THE SAME RECIPE, EXTENDED TO BUGS — DO NOT COPY
leaky = quiet(Flask("leaky"))


@leaky.errorhandler(Exception)
def internal_error(error):
    return jsonify({"msg": "Internal server error", "error": str(error)}), 500


@leaky.post("/register")
def leaky_register():
    raise RuntimeError("sqlite3 /srv/app/users.db: SELECT password_hash FROM user")  # a bug, deep down


response = leaky.test_client().post("/register", json={"username": "alice", "password": GOOD})
print(response.status_code, json.dumps(response.get_json()))
''')

md("classic-leak-lesson", r'''
The client now reads the database engine, a file path, a table and a column. OWASP ASVS 5.0
**V16.5.1**: "Verify that a generic message is returned to the consumer when an unexpected or
security-sensitive error occurs, ensuring no exposure of sensitive internal system data such as
stack traces, queries, secret keys, and tokens." What the client needs is a generic sentence and
something to quote; what *you* need is the traceback, in the log, findable.
''')

# ------------------------------------------------------------------------------------------------
# 3. RFC 9457
# ------------------------------------------------------------------------------------------------

md("rfc9457", r'''
## One envelope: RFC 9457 problem details

RFC 9457, *Problem Details for HTTP APIs* (2023, it obsoletes RFC 7807), defines one JSON object
for errors, with its own media type, **`application/problem+json`** (§3). Its members (§3.1), all
optional:

| member | what it is | step 05 |
|---|---|---|
| `type` (§3.1.1) | a URI that identifies the problem type; `"about:blank"` when absent | `"about:blank"` |
| `status` (§3.1.2) | the HTTP status code, as a number | the response's status |
| `title` (§3.1.3) | a short summary of the problem *type*, the same for every occurrence | the status phrase |
| `detail` (§3.1.4) | an explanation of *this* occurrence | what to fix, when it helps |
| `instance` (§3.1.5) | a URI reference for this occurrence | not used |

Four rules matter here:

- **`"about:blank"`** (§4.2.1) says that "the problem has no additional semantics beyond that of
  the HTTP status code", and then "the title SHOULD be the same as the recommended HTTP status
  phrase for that code (e.g., "Not Found" for 404, and so on)". Step 05 takes the phrase from
  Werkzeug's `HTTP_STATUS_CODES`, except for two entries of that table: Werkzeug 3.1 still has the
  phrases of RFC 7231 for **413** ("Request Entity Too Large") and **422** ("Unprocessable
  Entity"), which RFC 9110 (2022, §15.5.14 and §15.5.21) renamed **"Content Too Large"** and
  **"Unprocessable Content"**: `errors.phrase(status)` uses RFC 9110's. (The workbook's tests
  accept either, so a learner's code that uses the table as it is still passes.)
- **`status` must match.** "Generators MUST use the same status code in the actual HTTP response"
  (§3.1.2). The member is advisory: it helps when an intermediary changed the status, or when the
  body is kept without its response (a log); generic HTTP software (proxies, caches, client
  libraries) uses the real status.
- **`detail` helps the client, not the debugger.** It "ought to focus on helping the client
  correct the problem, rather than giving debugging information" (§3.1.4). §5 (Security
  Considerations) names the risk: "leaking information that can be exploited to compromise the
  system".
- **Extension members** (§3.2) carry the rest: step 05 adds `errors` (the messages per field, for a
  400) and `request_id`. "Clients consuming problem details MUST ignore any such extensions that
  they don't recognize", so adding one breaks nobody.

The function below checks a response against these rules. Step 04's nine answers:
''')

code("problem-check", r'''
problems_with = lab.problems_with  # type/status/title checks of RFC 9457 (title: RFC 9110's phrase or Werkzeug's)

for what, response in answers04.items():
    print(f"{what:22} {problems_with(response) or 'a valid problem'}")
''')

# ------------------------------------------------------------------------------------------------
# 4. How Flask picks a handler
# ------------------------------------------------------------------------------------------------

md("lookup-intro", r'''
## The path an error takes through Flask

Every error, whoever raises it, is an exception: `abort(415)` raises `UnsupportedMediaType`, a
route that does not exist makes Werkzeug raise `NotFound`, Flask-Limiter raises
`RateLimitExceeded`, Flask-JWT-Extended raises `NoAuthorizationError` or lets PyJWT's
`InvalidSignatureError` through, marshmallow raises `ValidationError`, a bug raises whatever it
raises. Flask then looks for **one** handler, in a fixed order (`Flask._find_error_handler`):

1. handlers registered for the **status code** (only an `HTTPException` has one), the request's
   blueprint first, then the app;
2. handlers registered for a **class**, in the request's blueprint, then in the app. In each, Flask
   walks the exception's class hierarchy (its MRO) from the most specific class up: the first class
   with a handler wins.

Step 05 registers a handler at every level:
''')

code("lookup-picture", r'''
lab.lookup_picture()  # the drawing code is in notebooks/lab/errors.py
''')

md("lookup-registry", r'''
That table is not a drawing of intentions: Flask keeps its handlers in `app.error_handler_spec`,
`{blueprint or None: {status code or None: {class: handler}}}`. A step 05 app's, and the walk for
five exceptions (in brackets: the first class of the MRO that has a handler in the app):
''')

code("lookup-live", r'''
from flask_jwt_extended.exceptions import NoAuthorizationError
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import NotFound

step05 = create_step05(settings("step05"))

for scope, by_code in step05.error_handler_spec.items():
    for status, by_class in by_code.items():
        ours = {cls.__name__: f"{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}"
                for cls, handler in by_class.items() if handler.__module__.startswith("solutions")}
        theirs = [cls.__name__ for cls, handler in by_class.items() if not handler.__module__.startswith("solutions")]
        print(f"blueprint {scope!s:5} code {status!s:5} {ours}")
        if theirs:
            print(f"{'':22} + Flask-JWT-Extended's, for {len(theirs)} classes: {', '.join(theirs[:4])}, ...")

print()
app_handlers = step05.error_handler_spec[None][None]  # stage 3: the app's handlers by class
for exception in (pyjwt.InvalidSignatureError, NoAuthorizationError, NotFound, RateLimitExceeded, RuntimeError):
    status = getattr(exception, "code", None)
    if status is not None and status in step05.error_handler_spec[None]:
        print(f"{exception.__name__}: stage 1 finds errorhandler({status}) before any class is looked at")
        continue
    mro = exception.__mro__[:-2]  # without BaseException and object
    winner = next(cls for cls in mro if cls in app_handlers)
    print(" > ".join(f"[{cls.__name__}]" if cls is winner else cls.__name__ for cls in mro))
''')

md("lookup-registry-lesson", r'''
A forged signature is a `DecodeError` before it is an `Exception`, so Flask-JWT-Extended's
handler answers it, not our last resort; a `NotFound` reaches `HTTPException` before `Exception`.
That is also why the classic 401 handler was never asked: `NoAuthorizationError` is not an
`HTTPException` and has no status code at all. The way into Flask-JWT-Extended's answers is its
**loaders** (`@jwt.unauthorized_loader`, `@jwt.invalid_token_loader`, ...): its handlers call them.

"Most specific wins", live, on a tiny app with three handlers (404, `HTTPException`, `Exception`):
''')

code("specific-demo", r'''
from werkzeug.exceptions import HTTPException

demo = Flask("demo")


@demo.errorhandler(404)
def demo_404(error):
    return {"handled by": "errorhandler(404)"}, 404


@demo.errorhandler(HTTPException)
def demo_http(error):
    return {"handled by": "errorhandler(HTTPException)"}, error.code


@demo.errorhandler(Exception)
def demo_any(error):
    return {"handled by": "errorhandler(Exception)"}, 500


@demo.get("/bug")
def demo_bug():
    raise RuntimeError("a bug")


client = demo.test_client()
for label, response in (("GET /nowhere (404)", client.get("/nowhere")),
                        ("POST /bug (405)", client.post("/bug")),
                        ("GET /bug (RuntimeError)", client.get("/bug"))):
    print(f"{label:24} -> {response.status_code} {response.get_json()}")
''')

md("exception-only-intro", r'''
Now the trap. Take away the first two handlers and keep only the catch-all, as many apps do:
''')

code("exception-only", r'''
catch_all = Flask("catch_all")


@catch_all.errorhandler(Exception)
def catch_all_handler(error):
    return {"handled by": "errorhandler(Exception)", "exception": type(error).__name__}, 500


response = catch_all.test_client().get("/nowhere")
print(f"GET /nowhere -> {response.status_code} {response.get_json()}")
''')

md("exception-only-lesson", r'''
A 404 answered as a **500**: `NotFound` *is* an `Exception`, and with no more specific handler the
catch-all gets it. Flask's documentation (*Handling Application Errors*) warns that a handler for
`Exception` "will capture all otherwise unhandled errors, including all HTTP status codes". Every
typo in a URL becomes a "server error" in your monitoring, and a 405 loses its `Allow` header.
Hence step 05's pair: `errorhandler(HTTPException)` for HTTP errors, `errorhandler(Exception)` only
for what is left, the bugs.
''')

# ------------------------------------------------------------------------------------------------
# 5. The fix
# ------------------------------------------------------------------------------------------------

md("fix-intro", r'''
## The fix: step 05

Step 05 keeps step 04's routes and limits and changes how everything fails:

- `errors.py`: `problem(status, detail, **extensions)` builds every error response;
  `http_error` answers every `HTTPException` (copying its headers, such as 405's `Allow`);
  `unexpected_error` answers everything else with a generic 500 and logs the traceback;
- `auth.py`: the validation handler returns a problem with `errors`; Flask-JWT-Extended's loaders
  all call `token_refused()`: 401, `WWW-Authenticate: Bearer`, a problem body;
- `limits.py`: the 429 is a problem; `logs.py`: a request id per request, a security log;
- `config.py` and `__init__.py`: debug mode refused, `nosniff` and `no-store` on every response.

The same nine requests, against a step 05 app in testing mode (`TESTING = True`):
''')

code("fix-table", r'''
answers05 = {what: send(step05, what, passwords05) for what, *_ in REQUESTS}
for what, response in answers05.items():
    body = response.get_json()
    extras = sorted(set(body) - {"type", "title", "status", "detail"})
    headers = "  ".join(f"{name}: {response.headers[name]}" for name in ("WWW-Authenticate",)
                        if name in response.headers)
    if "Allow" in response.headers:  # Werkzeug builds it from a set: its order changes from run to run
        headers = "Allow: " + ", ".join(sorted(response.headers["Allow"].split(", ")))
    if response.status_code == 429:  # Flask-Limiter adds its headers after our handler
        retry_after = "<seconds>" if "Retry-After" in response.headers else "(none)"
        headers = f"Retry-After: {retry_after}  X-RateLimit-Limit: {response.headers['X-RateLimit-Limit']}"
    print(f"{what:22} {response.status_code}  {response.content_type}  "
          f"status={body['status']} title={body['title']!r}  + {', '.join(extras)}")
    if headers:
        print(f"{'':22} {headers}")

valid = sum(not problems_with(response) for response in answers05.values())
print(f"\nvalid RFC 9457 problems: step 04 {sum(not problems_with(r) for r in answers04.values())} "
      f"of {len(answers04)}, step 05 {valid} of {len(answers05)}")
''')

md("fix-table-lesson", r'''
One envelope for all nine, with the status in the body equal to the status of the response. The
headers that carry meaning survive: 405 keeps `Allow` (`http_error` copies `error.get_headers()`),
and the 429 keeps `Retry-After`. (Flask-Limiter adds its `X-RateLimit-*` and `Retry-After` headers
to *every* response of a rate-limited route, not only to 429s; only the ones that matter are
printed here.)

The forged token is now a **401** with `WWW-Authenticate: Bearer error="invalid_token"`, and the
missing token a 401 with a plain `WWW-Authenticate: Bearer`. That is RFC 6750 §3: a protected
resource answers a request without valid credentials with this header; `invalid_token` (§3.1) means
"expired, revoked, malformed, or invalid for other reasons" and goes with 401; and when the request
carries no authentication at all, the server "SHOULD NOT include an error code". A client now
has one rule: 401 means "get a new token".

A validation error in full:
''')

code("fix-body", r'''
print(answers05["a JSON list"].content_type)
print(masked(json.dumps(answers05["a JSON list"].get_json(), indent=2)))
''')

md("fix-bug-intro", r'''
And the bug, in both modes: the testing mode of the workbook's tests, and a production-mode app:
''')

code("fix-bug", r'''
step05_production = create_step05(settings("step05-production", TESTING=False))

for mode, app in (("testing", step05), ("production", step05_production)):
    response = send(app, "a bug", passwords05)
    body = response.get_json()
    print(f"{mode:10} -> {response.status_code} {response.content_type}")
    print(f"{'':10}    {masked(json.dumps(body))}")
    print(f"{'':10}    X-Request-ID: {masked(response.headers['X-Request-ID'])}, "
          f"the same as in the body: {response.headers['X-Request-ID'] == body['request_id']}")
    text = response.get_data(as_text=True)
    print(f"{'':10}    mentions sqlite, /srv or RuntimeError: {any(s in text for s in ('sqlite', '/srv', 'RuntimeError'))}")
''')

md("fix-bug-lesson", r'''
A generic sentence and a request id, the same in both modes (ASVS 5.0 V16.5.1), and no exception
escapes into the test client any more: `errorhandler(Exception)` is the "last resort" error handler
of ASVS **V16.5.4**, "which will catch all unhandled exceptions. This is both to avoid losing error
details that must go to log files and to ensure that an error does not take down the entire
application process". Where did the details go?
''')

# ------------------------------------------------------------------------------------------------
# 6. The log
# ------------------------------------------------------------------------------------------------

md("log-intro", r'''
## Reading the server log by request id

Step 05 gives every request an id (`uuid4().hex`, or the client's own `X-Request-ID` when it is 8
to 64 plain characters), echoes it in the `X-Request-ID` response header, and writes two kinds of
log lines: security events on the logger `api.security` (`logs.event()`), and unexpected errors
with their traceback on `api.errors`. OWASP ASVS 5.0 V16.3 lists what a security log must record:
authentication attempts, successful and failed (16.3.1), attempts to bypass security controls such
as anti-automation (16.3.3), unexpected errors (16.3.4).

A short session against a fresh app: a failed login, a successful one, a forged token, a stranger's
guess over the account's limit (alice's own client, which has her device cookie since step 04, would
still get in), the bug. The lines below are what the server writes (times and ids masked):
''')

code("log-session", r'''
logged = create_step05(settings("logged"))
client = logged.test_client()
api_log.lines.clear()

client.post("/register", json={"username": "alice", "password": GOOD})
client.post("/login", json={"username": "alice", "password": "not her password"})
token = client.post("/login", json={"username": "alice", "password": GOOD}).get_json()["access_token"]
client.get("/protected", headers={"Authorization": f"Bearer {FORGED}"})
logged.test_client().post("/login", json={"username": "alice", "password": "a guess"})  # a stranger, 3rd in a minute: 429
with a_bug_in(passwords05):
    bug = client.post("/register", json={"username": "bob", "password": GOOD})

for entry in api_log.lines:
    first, *traceback_lines = entry.splitlines()
    print(masked(first))
    if traceback_lines:
        print("    Traceback (most recent call last): ... (the whole traceback follows in the log)")
''')

md("log-find-intro", r'''
Each line says what happened, to whom, from where and under which request id, the "when, where,
who and what" of the OWASP Logging Cheat Sheet. Now the user who got the 500 writes to support
and quotes the id from the answer. You search the log for it:
''')

code("log-find", r'''
quoted = bug.get_json()["request_id"]  # what the user reads in the answer (and in X-Request-ID)
found = [entry for entry in api_log.lines if quoted in entry]
print(f"entries with that id: {len(found)}")
print("the exception:", found[0].splitlines()[-1])

everything = "\n".join(api_log.lines)
print("\nthe password in the log:", GOOD in everything)
print("a token in the log:", token in everything or FORGED in everything)
''')

md("log-find-lesson", r'''
One entry, the bug's, with everything you need to fix it, and nothing in the log that would let
its reader log in. A client may also send its own id (a gateway or a mobile app often does, to
follow a request across services); step 05 keeps it only if it matches `^[A-Za-z0-9._-]{8,64}$`,
so that an id cannot smuggle markup or separators into your log and your headers:
''')

code("log-client-id", r'''
for sent in ("checkout-7f3a9c21", "<script>alert(1)</script>"):
    echoed = client.get("/health", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    print(f"sent {sent!r:30} -> X-Request-ID: {masked(echoed)}")
''')

md("never-log", r'''
### What must never be in the log

A log is read by more people than the database (operators, support, a log service, whoever gets a
backup), and it is kept for a long time. The OWASP Logging Cheat Sheet ("Data to exclude") lists
what "should not usually be recorded directly in the logs, but instead should be removed, masked,
sanitized, hashed or encrypted", among them: **session identification values**, **access tokens**, **authentication passwords**,
database connection strings, encryption keys and other master secrets, **bank account or payment
card holder data**, and sensitive personal data. ASVS 5.0 **V16.2.5** asks you to enforce this by
the data's protection level; its examples: credentials and payment details may not be logged,
session tokens only hashed or masked. Step 05 also never logs a password *hash*: a leaked log must
not become a list of hashes to crack offline.

So step 05 logs the username of a failed login (you need it to see an attack on one account), the
user's id after a successful one, the reason a token was refused, never the token or the password.

### Log forging (CWE-117)

What is logged can still be dangerous when the client wrote it. A log is text, one event per line,
and a username is whatever the client sends. Here is a failed login with a username that contains
CR LF and a fake line, logged the naive way, with `%s`:
''')

code("log-forge-naive", r'''
forged_name = ("eve\r\n2025-06-01 09:00:00,000 INFO api.security login.success "
               "request_id=0123456789abcdef0123456789abcdef ip=127.0.0.1 user_id='1'")

naive = logging.Logger("api.security")  # a stand-alone logger with step 05's name, for the demonstration
naive.addHandler(naive_log := lab.Capture())
naive.info("login.failure ip=%s username=%s", "203.0.113.7", forged_name)  # DO NOT COPY: client text, unescaped

print("the log file, line by line:")
for line in naive_log.lines[0].splitlines():
    print("   ", masked(line))
''')

md("log-forge-fixed-intro", r'''
Two lines, and the second one says alice (user 1) logged in: an investigator reading this log sees
a success that never happened. That is CWE-117, *Improper Output Neutralization for Logs*, and
ASVS 5.0 **V16.4.1** asks that "all logging components appropriately encode data to prevent log
injection". Step 05's `logs.clean()` escapes every non-printable character (CR becomes the two
characters `\r`) and caps the value at 64 characters; `logs.event()` then writes each value with
`repr()`, in quotes. The same username, sent to step 05's login:
''')

code("log-forge-fixed", r'''
api_log.lines.clear()
response = logged.test_client().post("/login", json={"username": forged_name, "password": "x"})
print(response.status_code, response.get_json()["detail"])
print(f"\nlog lines written: {len(api_log.lines)}")
print(masked(api_log.lines[0]))
''')

md("log-forge-lesson", r'''
One line, one event: a failed login whose username visibly contains CR LF (shown as `\\r\\n`:
`repr()` doubled the backslashes that `clean()` wrote) and some text, cut at 64 characters. The
quotes show where the client's text ends. (The schema folded its case, too: login usernames are
canonicalized, step 03.)
''')

builder.your_turn("u2028", r'''
Forge a log line again, on step 05, with a line break that is not CR or LF: U+2028, LINE SEPARATOR
(`"\u2028"`), which many log viewers and Python's own `str.splitlines()` treat as a line break.
**Predict**: how many lines does step 05 write for one failed login whose username carries it?
Write the username, then run the cell.
''', r'''
prediction = ...  # 1 or 2?
sneaky = ...      # a username with "\u2028" and a fake "login.success ... user_id='1'" after it

if sneaky is ...:
    print("Replace the ... of sneaky with your username, then run this cell again.")
else:
    api_log.lines.clear()
    step05.test_client().post("/login", json={"username": sneaky, "password": "x"})
    print("you predicted:", guess(prediction), "| lines written:", len("\n".join(api_log.lines).splitlines()))
''', r'''
sneaky = "eve\u2028<time> INFO api.security login.success ip=127.0.0.1 user_id='1'"
api_log.lines.clear()
step05.test_client().post("/login", json={"username": sneaky, "password": "x"})
print("lines written:", len("\n".join(api_log.lines).splitlines()))
print(masked(api_log.lines[0]))
''', r'''
**One.** `logs.clean()` escapes every character that `str.isprintable()` rejects, and U+2028 is one
of them (Unicode category Zl), so it is written as the six characters `\u2028`. An escaping rule
that names the dangerous characters (CR, LF) would have missed it: escape everything that is not
printable, the allowlist idea of step 03 again.
''')

# ------------------------------------------------------------------------------------------------
# 7. Debug mode and security headers
# ------------------------------------------------------------------------------------------------

md("debug-intro", r'''
## Debug mode refused, and two headers on every response

Notebook 01 showed what debug mode serves: the Werkzeug debugger, a Python console for anyone who
can trigger an error and get past its PIN. Step 05's `create_app` refuses to build an app with
`DEBUG` on, whether it comes from the test configuration, `FLASK_DEBUG` or `flask run --debug`
(ASVS 5.0 **V13.4.2**). The refusal is a click exception, so `flask run` prints just the message:
''')

code("debug", r'''
from solutions.step05_error_handling.config import InsecureConfigError

try:
    create_step05(settings("debug", DEBUG=True))
except InsecureConfigError as error:
    print("refused:", error.format_message())
''')

md("headers-intro", r'''
And two headers go on every response, success or error (`security_headers` in `__init__.py`),
both from the OWASP REST Security Cheat Sheet's list of security headers:

- `X-Content-Type-Options: nosniff`: browsers must not guess the type of a response from its
  content. An error body that echoes client input must never be rendered as HTML;
- `Cache-Control: no-store`: no browser or proxy keeps a copy of what the API says, tokens and user
  data included (RFC 6749 §5.1 requires it of an OAuth token endpoint; step 02's login follows it by
  analogy).
''')

code("headers", r'''
client = step05.test_client()
for label, response in (("GET /health", client.get("/health")), ("GET /nothing-here", client.get("/nothing-here"))):
    print(f"{label} -> {response.status_code}")
    for name in ("Content-Type", "X-Content-Type-Options", "Cache-Control", "X-Request-ID"):
        print(f"    {name}: {masked(response.headers.get(name, '(none)'))}")
''')

# ------------------------------------------------------------------------------------------------
# 8. Closing
# ------------------------------------------------------------------------------------------------

md("wrap-up", r'''
## What you saw

- Step 04 answered errors in three shapes (HTML, `{"msg"}`, `{"msg", "errors"}`), a forged token
  with 422, and a bug with an HTML page and a log entry nobody could match to a request.
- The classic tutorial's handlers cover three status codes, never see a token error, and send
  `str(error)`, which is a leak as soon as the recipe reaches bugs.
- Flask picks one handler: by status code first, then by class along the MRO. `HTTPException`
  and `Exception` together cover everything; `Exception` alone turns 404s into 500s.
- Step 05 answers every error as an RFC 9457 problem, every token failure as a 401 with
  `WWW-Authenticate`, every bug as a generic 500 with a request id, and logs the traceback under
  that id, the security events without secrets, and client text escaped.

Now build it yourself.
''')

code("cleanup", r'''
import shutil

logging.getLogger("api").removeHandler(api_log)
shutil.rmtree(workdir, ignore_errors=True)  # the notebook's SQLite files
''')

builder.outro(5)


build = builder.build

if __name__ == "__main__":
    builder.main()
