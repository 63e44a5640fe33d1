"""Build notebooks/04_rate_limiting.ipynb (step 04 — Rate limiting) from the cells below.

Edit the cells here, not in the .ipynb, then rebuild and re-execute from the repository root:

    python -m workbook dev notebooks 4
    python -m pytest notebooks/04_rate_limiting.ipynb        # nbval: the stored outputs must reproduce

The notebook is stored with its outputs (it renders on GitHub) and nbval compares every one of
them, so each output is deterministic: no raw keys or tokens, no paths, no ports. Rate limits
depend on the time: every in-process demonstration runs on a simulated clock (time.time is
patched; the limits library and Flask-Limiter read nothing else), so its Retry-After and reset
values are the same on every run. The one demonstration with real processes (gunicorn workers,
redis-server) is marked `# NBVAL_IGNORE_OUTPUT`: its numbers vary, and it explains itself instead of
failing where gunicorn or redis-server is missing. Flask-Limiter's log goes to a list, not stderr.
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

code("intro", r'''
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))  # the repository root, so `solutions` and `workbook` import

from workbook.notebook import intro, outro

intro(4)
''')

# ------------------------------------------------------------------------------------------------
# 2. The attack, on step 03's solution
# ------------------------------------------------------------------------------------------------

md("attack-intro", r'''
## The attack: guess alice's password, as often as you like

Step 03's app stores argon2id hashes, answers every failed login the same way and validates every
body. But it answers **every** request. Nothing counts how many passwords one client, or one
account, has been tried with.

You are the attacker. You know that `alice` has an account (notebook 02 showed how registration
tells you), and you have a wordlist. Real ones are leaked password lists with millions of entries;
here a stand-in: 200 passphrases, generated, with alice's at position 187. The helpers below build
a fresh app with a fresh SQLite file, register alice from her home address, and send one login
from an address you choose (`REMOTE_ADDR` is the TCP peer's address, what the app sees as "the
client"). The addresses come from the ranges reserved for documentation (RFC 5737).
''')

code("step03-app", r'''
import collections, json, secrets, tempfile

from solutions.step03_input_validation import create_app as create_step03

workdir = pathlib.Path(tempfile.mkdtemp())  # the SQLite files; deleted at the end of the notebook


def settings(name, **overrides):
    """A fresh configuration: a random key and a new SQLite file in workdir."""
    return {"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(workdir / f"{name}.sqlite"),
            "TESTING": True,
            # Cheap hashing only keeps this notebook fast. A real server keeps the defaults
            # (argon2id with 64 MiB, 3 passes, 4 lanes: see notebook 02).
            "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1,
            **overrides}


ALICE = {"username": "alice", "password": "violet kettle under a quiet moon"}
BOB = {"username": "bob", "password": "seven owls guard the lighthouse"}
HOME = {"alice": "192.0.2.10", "bob": "192.0.2.20"}  # where each user logs in from
ATTACKER = "203.0.113.7"  # your machine


def new_app(create_app, name, setup=None, **config):
    """A fresh app with alice and bob registered, each from their own address; and its test client.

    setup(app), if given, runs first: Flask accepts new routes only before the first request.
    """
    app = create_app(settings(name, **config))
    if setup:
        setup(app)
    client = app.test_client()
    for user in (ALICE, BOB):
        response = client.post("/register", json=user, environ_base={"REMOTE_ADDR": HOME[user["username"]]})
        assert response.status_code == 201, response.get_json()
    return app, client


def login(client, username, password, address):
    """One login attempt, sent from `address`."""
    return client.post("/login", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


COLOURS = ["amber", "azure", "coral", "crimson", "golden", "indigo", "ivory", "olive", "silver", "violet"]
THINGS = ["anchor", "basket", "candle", "compass", "feather", "garden", "kettle", "lantern", "mirror",
          "orchard", "pebble", "ribbon", "saddle", "teapot", "thimble", "trumpet", "violin", "wagon",
          "whistle", "window"]
wordlist = [f"{colour} {thing} under a quiet moon" for colour in COLOURS for thing in THINGS]

step03, client03 = new_app(create_step03, "step03")
print("wordlist:", len(wordlist), "candidates; alice's passphrase is number",
      wordlist.index(ALICE["password"]) + 1)
''')

code("step03-attack", r'''
answers = collections.Counter()
for attempt, guess in enumerate(wordlist, start=1):
    response = login(client03, "alice", guess, ATTACKER)
    answers[response.status_code] += 1
    if response.status_code == 200:
        break

print("attempts, all from one address, one after the other:", attempt)
print("answers by status:", dict(answers))
print("you now hold a token for alice:", "access_token" in response.get_json())
''')

md("attack-lesson", r'''
186 wrong guesses, each answered with a polite 401, then a token. In this process that took a
fraction of a second; over a network, a few seconds. With a real list the only bound is how fast
the server hashes, and each guess costs the server one argon2id computation: guessing is also a
way to exhaust its CPU (OWASP API Security Top 10 2023, **API4: Unrestricted Resource
Consumption**).

Slow hashes protect a *stolen* table (notebook 02). Against guesses sent to the live login, only
the server can help: by counting attempts and refusing the excess. OWASP ASVS 5.0 **V6.3.1** asks
for controls against credential stuffing and password brute force.
''')

md("classic-limiter-intro", r'''
### The tutorial's limiter, on today's Flask-Limiter

The classic tutorial adds Flask-Limiter in one line, the way its 2.x quick start did: the app
first, the key function as a keyword.
''')

code("classic-limiter", r'''
from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

tutorial_app = Flask("tutorial")

try:
    limiter = Limiter(tutorial_app, key_func=lambda: request.remote_addr)  # the tutorial's line
except TypeError as exc:
    print("TypeError:", exc)

limiter = Limiter(get_remote_address, app=tutorial_app, storage_uri="memory://")  # today's signature
print("Limiter(get_remote_address, app=...) attaches to the app:", limiter in tutorial_app.extensions["limiter"])
''')

md("classic-limiter-lesson", r'''
Since Flask-Limiter 3.0 (December 2022) the constructor takes exactly one positional argument, the
**key function**, and everything else by keyword. Python binds the app to `key_func`, then finds
`key_func=` a second time. The fix is `Limiter(key_func, app=app)`, or, with an application
factory, a module-level `Limiter(key_func, ...)` and `limiter.init_app(app)` inside `create_app`,
which is what step 04 does.

A limiter that starts is not yet a defence, though. What does it count, per what key, and where
does it keep the counts? The rest of this notebook is about those three questions.
''')

# ------------------------------------------------------------------------------------------------
# 3. The fix, in-process
# ------------------------------------------------------------------------------------------------

md("fix-intro", r'''
## The fix: step 04's limits

Step 04 adds `limits.py`, one module-level limiter, initialised by `create_app`:

```python
limiter = Limiter(
    get_remote_address,  # the key of per-address limits: the TCP peer, which the client cannot choose
    default_limits=[lambda: current_app.config["RATELIMIT_DEFAULT"]],
    strategy="moving-window",
    headers_enabled=True,             # Retry-After and X-RateLimit-* headers
    in_memory_fallback_enabled=True,  # storage down: per-process limits, never none, never a 500
    ...
)
```

and puts two limits on `/login` in `auth.py`, one per client address and one per account:

```python
@bp.post("/login")
@limits.limiter.limit(limits.login_per_address)
@limits.limiter.limit(limits.login_per_account, key_func=limits.account_key)
def login(): ...
```

`account_key()` reads the username from the JSON body, puts it in its canonical form (step 03:
`ALICE` and `ａｌｉｃｅ` are `alice`) and hashes it, so every spelling of one account shares one
counter. The values come from `config.DEFAULTS`, so an operator can change them with `FLASK_*`
variables:

| route | counted per | default limit |
|---|---|---|
| `POST /login` | client address | 20 per minute; 200 per day |
| `POST /login` | account (canonical username) | 5 per minute; 100 per day |
| `POST /register` | client address | 10 per hour |
| every other route | client address | 120 per minute (`/health` is exempt) |
''')

md("clock-intro", r'''
### A clock you control

Rate limits are about time, and a notebook should not wait a minute, or a day, to show what
happens next. The `limits` library (which Flask-Limiter uses to count) and Flask-Limiter read the
time with `time.time()`. The helper below replaces that function with a clock that only moves when
you move it: every request in a `with simulated_clock()` block happens at the instant you set, and
the numbers printed below are the same on every run. It is also how you would test your own limits.
''')

code("clock", r'''
from contextlib import contextmanager
from unittest import mock

from solutions.step04_rate_limiting import create_app as create_step04


class SimulatedClock:
    """A clock that moves only when told to. Called like time.time()."""

    START = 1_767_225_600  # 2026-01-01 00:00:00 UTC: a whole number of minutes since 1970

    def __init__(self):
        self.now = float(self.START)

    def __call__(self):
        return self.now

    def set(self, seconds):
        """Move to `seconds` after the start."""
        self.now = self.START + seconds

    def advance(self, seconds):
        self.now += seconds


@contextmanager
def simulated_clock():
    """Inside the block, time.time() reads a SimulatedClock (it starts at 0 seconds)."""
    clock = SimulatedClock()
    with mock.patch("time.time", clock):
        yield clock
''')

md("fix-attack-intro", r'''
### The same attack, on step 04

The same 200 candidates, from the same address, against step 04 with its default limits. All 200
guesses are sent in the same second.
''')

code("fix-attack", r'''
with simulated_clock() as clock:
    step04, client04 = new_app(create_step04, "step04")
    answers, first_refusal = collections.Counter(), None
    for attempt, guess in enumerate(wordlist, start=1):
        response = login(client04, "alice", guess, ATTACKER)
        answers[response.status_code] += 1
        if response.status_code == 429 and first_refusal is None:
            first_refusal, refused_at = response, attempt

print("attempts:", attempt, "| answers by status:", dict(answers))
print("you hold a token for alice:", answers[200] > 0)
print()
print(f"attempt {refused_at}: {first_refusal.status_code} {first_refusal.content_type}")
print("  body:", json.dumps(first_refusal.get_json()))
headers = first_refusal.headers
for name in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"):
    print(f"  {name}: {headers[name]}")
print("  X-RateLimit-Reset: the clock +", int(headers["X-RateLimit-Reset"]) - int(clock()), "seconds")
''')

md("fix-attack-lesson", r'''
Five guesses answered, then **429 Too Many Requests** (RFC 6585 §4) for the other 195: the right
passphrase, number 187, was never even checked. The answer is JSON like every other answer of
this API (`too_many_requests()` in `limits.py`), and its headers tell a client what to do:

- `Retry-After` (RFC 9110 §10.2.3): how many seconds to wait. 61, not 60: Flask-Limiter reports
  the reset time as `int(reset + 1)`, one second after the window frees a slot.
- `X-RateLimit-Limit`, `-Remaining`, `-Reset` (the reset as seconds since 1970): widely used,
  but not a standard. They describe the limit that decided this answer.

Every attempt counts, the successful ones too. Counting only failures (Flask-Limiter's
`deduct_when`) sounds kinder to users, but Flask-Limiter *tests* such a limit before the view runs
and *counts* after the response: guesses sent at the same moment all pass the test before the first
one is counted.
''')

md("botnet-intro", r'''
### A botnet: many addresses, one account

A limit per address alone would not have stopped you for long: rent a botnet and each guess comes
from another address. Here 50 machines send one guess each at alice, spelling her name four
ways. Meanwhile bob, from his own address, logs into his own account.
''')

code("botnet", r'''
BOTNET = [f"198.51.100.{n}" for n in range(1, 51)]
SPELLINGS = ["alice", "Alice", "ALICE", "ａｌｉｃｅ"]  # the last one in fullwidth letters

with simulated_clock():
    botnet_app, botnet_client = new_app(create_step04, "botnet")
    answers = collections.Counter()
    for n, (address, guess) in enumerate(zip(BOTNET, wordlist)):
        answers[login(botnet_client, SPELLINGS[n % 4], guess, address).status_code] += 1
    bob = login(botnet_client, "bob", BOB["password"], HOME["bob"])

print("50 addresses, one guess each, at alice in 4 spellings:", dict(answers))
print("bob, from his own address, with his password:", bob.status_code, "with a token:", "access_token" in bob.get_json())
''')

md("stuffing-intro", r'''
### Credential stuffing: one address, many accounts

The other way round: you hold a list of username and password pairs leaked from another site, and
try each pair once, from your one machine. No account sees more than one attempt, so the per-account
limit never fires; the per-address limit does.
''')

code("stuffing", r'''
leaked = [(f"user{n:02d}", f"leaked password number {n:02d}") for n in range(50)]

with simulated_clock():
    stuffing_app, stuffing_client = new_app(create_step04, "stuffing")
    answers = collections.Counter()
    for username, password in leaked:
        response = login(stuffing_client, username, password, ATTACKER)
        answers[response.status_code] += 1
    alice = login(stuffing_client, "alice", ALICE["password"], HOME["alice"])

print("one address, 50 accounts, one pair each:", dict(answers))
print("  the refusal:", response.get_json()["msg"])
print("alice, from her own address, with her password:", alice.status_code)
''')

md("two-limits-lesson", r'''
Two limits, because the attack comes in two shapes (OWASP Credential Stuffing Prevention and
Authentication Cheat Sheets):

- **per account** stops many addresses against one account: the botnet got 5 guesses, whatever
  its size and however it spelled the name. The Authentication Cheat Sheet asks for exactly this:
  count failed logins per account, not only per address, so that many addresses cannot share out
  the guesses;
- **per address** stops one address against many accounts: 20 pairs a minute, 200 a day.

Innocent clients are not touched: bob and alice, each at their own address and with their own
account, logged in while the attacks were refused. What neither limit stops is a botnet that
spreads a stuffing list over thousands of addresses, one attempt each. Rate limits raise the cost
of an attack; multi-factor authentication is what makes a leaked password useless.
''')

# ------------------------------------------------------------------------------------------------
# 4. Plots: the attack over time, and the three strategies
# ------------------------------------------------------------------------------------------------

md("timeline-intro", r'''
## Half an hour of guessing, on the clock

A more patient botnet: one guess at alice every 3 seconds, each from the next of 250 addresses, for
30 simulated minutes: 600 wrong guesses, against step 03 and against step 04.
''')

code("timeline-run", r'''
def guessing_stream(create_app, name, minutes=30, every=3):
    """One wrong guess at alice every `every` seconds; returns [(second, status), ...]."""
    stream = []
    with simulated_clock() as clock:
        app, client = new_app(create_app, name)
        for n in range(minutes * 60 // every):
            clock.set(n * every)
            response = login(client, "alice", f"wrong guess {n:04d}", f"198.51.100.{n % 250 + 1}")
            stream.append((n * every, response.status_code))
    return stream


streams = {"step 03": guessing_stream(create_step03, "stream03"),
           "step 04": guessing_stream(create_step04, "stream04")}

for label, stream in streams.items():
    answered = [second for second, status in stream if status == 401]
    print(f"{label}: {len(answered)} of {len(stream)} guesses answered, "
          f"the last one at minute {answered[-1] / 60:.1f}")
''')

code("timeline-plot", r'''
# The picture of the two streams. The drawing code is not the lesson: skip it.
import io, logging

logging.getLogger("matplotlib").setLevel(logging.ERROR)  # a first run may log that it builds a font cache
from matplotlib.figure import Figure
from IPython.display import Image

ANSWERED, REFUSED = "#1f6f43", "#c0392b"

fig = Figure(figsize=(10.5, 6.2), dpi=110)
top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 2.2], "hspace": 0.55})

# Top: step 04, the first 5 minutes, one mark per guess.
first = [(second, status) for second, status in streams["step 04"] if second < 300]
for status, y, colour, marker, label in ((401, 1, ANSWERED, "o", "answered (401)"),
                                         (429, 0, REFUSED, "x", "refused (429)")):
    xs = [second / 60 for second, s in first if s == status]
    top.scatter(xs, [y] * len(xs), color=colour, marker=marker, s=22, label=label)
top.set_yticks([0, 1], ["429", "401"])
top.set_ylim(-0.7, 1.7)
top.set_xlim(-0.1, 5.1)
top.set_xlabel("minutes")
top.set_title("Step 04, the first 5 minutes: 5 guesses answered in any 60 seconds", fontsize=11)
top.legend(loc="upper right", ncol=2, frameon=False, fontsize=9)
top.spines[["top", "right"]].set_visible(False)

# Bottom: cumulative guesses answered, both apps, 30 minutes.
for label, colour in (("step 03", REFUSED), ("step 04", ANSWERED)):
    xs, ys, count = [], [], 0
    for second, status in streams[label]:
        count += status == 401
        xs.append(second / 60)
        ys.append(count)
    bottom.step(xs, ys, where="post", color=colour, linewidth=2,
                label=f"{label}: {count} answered")
bottom.axhline(100, color="#7f8c8d", linestyle="--", linewidth=1)
bottom.text(30, 112, "100 per day per account: nothing more until the day has passed",
            ha="right", fontsize=9, color="#555555")
bottom.set_xlim(0, 30)
bottom.set_ylim(0, 640)
bottom.set_xlabel("minutes")
bottom.set_ylabel("wrong guesses answered (401)")
bottom.set_title("One guess every 3 seconds from 250 addresses: how many get an answer?", fontsize=11)
bottom.legend(loc="upper left", frameon=False)
bottom.spines[["top", "right"]].set_visible(False)

buffer = io.BytesIO()
fig.savefig(buffer, format="png", bbox_inches="tight")
Image(data=buffer.getvalue())
''', hidden=True)

md("timeline-lesson", r'''
Step 03 answers every guess: 20 a minute, 600 in half an hour, and the attacker only has to be
patient. Step 04 answers 5 in any minute, until the account's 100 guesses for the day are spent
(after about 20 minutes); after that, nothing until a day has passed since those guesses. At that
pace a list of 10,000 common passwords takes 100 days per account, and step 03's password rules
already keep the most common ones out.
''')

md("strategies-intro", r'''
## Three ways to count "5 per minute"

Flask-Limiter offers three strategies, all from the `limits` library: `fixed-window` (its
default), `moving-window` (step 04's choice) and `sliding-window-counter`. They differ at the edges
of a minute. Drive the library directly, with the simulated clock and a small scenario: one request
at 0 s, then five at 59 s, five at 61 s and five at 90 s. The code is exactly what Flask-Limiter
calls for each limit: `hit()` returns whether the request is allowed (and counts it if so).
''')

code("strategies-run", r'''
import limits
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

FIVE_PER_MINUTE = limits.parse("5/minute")
REQUESTS = [0] + [59] * 5 + [61] * 5 + [90] * 5  # the second of each request
STRATEGIES = {"fixed window": FixedWindowRateLimiter, "moving window": MovingWindowRateLimiter,
              "sliding window counter": SlidingWindowCounterRateLimiter}

allowed = {}
with simulated_clock() as clock:
    for name, strategy in STRATEGIES.items():
        counter = strategy(MemoryStorage())
        allowed[name] = []
        for second in REQUESTS:
            clock.set(second)
            allowed[name].append(counter.hit(FIVE_PER_MINUTE, "alice"))


def most_in_a_minute(seconds):
    """The most allowed requests in any 60-second span [t, t + 60)."""
    return max(sum(t <= s < t + 60 for s in seconds) for t in seconds)


print(f"{'requests at second':24}", " ".join(f"{s:>2}" for s in REQUESTS))
for name, results in allowed.items():
    print(f"{name:24}", " ".join(" +" if ok else " -" for ok in results))
print()
for name, results in allowed.items():
    seconds = [s for s, ok in zip(REQUESTS, results) if ok]
    print(f"{name:24} allowed {len(seconds):2} of {len(REQUESTS)}; "
          f"from 59 to 61 s: {sum(59 <= s <= 61 for s in seconds)}; "
          f"most in any 60 s: {most_in_a_minute(seconds)}")
''')

code("strategies-plot", r'''
# The picture of the three strategies. The drawing code is not the lesson: skip it.
from matplotlib.patches import Rectangle

fig = Figure(figsize=(12, 7.2), dpi=110)
axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"hspace": 0.55})

WINDOWS = {  # (start, end, label) of the windows each strategy counts in, for the background
    "fixed window": [(0, 60, "window opened by the request at 0 s"), (61, 121, "window opened at 61 s")],
    "moving window": [(1, 61, "at 61 s it counts (1, 61]: the 4 at 59 s")],
    "sliding window counter": [(0, 60, "minute 0 (on the clock)"), (60, 120, "minute 1")],
}
NOTES = {
    "fixed window": "a new window starts with the first request after the old one ends",
    "moving window": "it counts the requests of the last 60 seconds, one timestamp each",
    "sliding window counter": "at 90 s it estimates 5 x 30/60 + 1 = 3.5 (minute 0 weighted, plus minute 1),\n"
                              "rounded down to 3: 2 more allowed, though 5 came in the last 60 s",
}
for ax, (name, results) in zip(axes, allowed.items()):
    for i, (start, end, label) in enumerate(WINDOWS[name]):
        ax.add_patch(Rectangle((start, 0.3), end - start, 5.4, facecolor=("#eaf2f8", "#fdf2e9")[i % 2],
                               edgecolor="#aab7b8", linewidth=0.8, zorder=0))
        ax.text(start + 0.8, 5.25, label, fontsize=8, color="#555555", va="center")
    stack = collections.Counter()
    for second, ok in zip(REQUESTS, results):
        stack[second] += 1
        ax.scatter(second, stack[second], marker="o" if ok else "x", s=40,
                   color=ANSWERED if ok else REFUSED, zorder=3)
    count = sum(results)
    burst = sum(ok for s, ok in zip(REQUESTS, results) if 59 <= s <= 61)
    ax.set_title(f"{name}: {count} of {len(REQUESTS)} allowed, {burst} of them between 59 and 61 s",
                 fontsize=10.5, loc="left")
    ax.text(4, 3, NOTES[name], fontsize=8.5, color="#34495e", ha="left", va="center")
    ax.set_ylim(0, 6)
    ax.set_yticks([])
    ax.spines[["top", "right", "left"]].set_visible(False)
axes[-1].set_xlim(-3, 101)
axes[-1].set_xticks([0, 59, 61, 90])
for label, align in zip(axes[-1].get_xticklabels(), ("center", "right", "left", "center")):
    label.set_horizontalalignment(align)
axes[-1].set_xlabel("seconds (o allowed, x refused; requests at the same second are stacked)")

buffer = io.BytesIO()
fig.savefig(buffer, format="png", bbox_inches="tight")
Image(data=buffer.getvalue())
''', hidden=True)

md("strategies-lesson", r'''
What each strategy really does, as the run shows:

- **Fixed window.** One counter per window. In `limits`, the window is not the clock's minute: it
  opens with the first request (here at 0 s) and lasts 60 seconds; the first request after it ends
  opens the next. So the four requests at 59 s and the five at 61 s sit in two different windows:
  **9 requests in 2 seconds** under a limit of "5 per minute". (The worst case is twice the limit
  minus one, since the request that opens a window counts in it.)
- **Moving window.** It keeps one timestamp per allowed request and allows a new one only if fewer
  than 5 fall in the last 60 seconds. Never more than 5 in any 60 seconds. The cost: up to
  *limit* timestamps per key in the storage.
- **Sliding window counter.** Two counters per key, for clock-aligned minutes, and an estimate: the
  current minute's count plus the previous minute's, weighted by the share of the previous minute
  still inside the last 60 seconds (as if its requests had been spread evenly). At 61 s:
  5 × 59/60 = 4.92, rounded down to 4, so one more. At 90 s: 5 × 30/60 + 1 = 3.5, so two more,
  although 5 requests really were made in the last 60 seconds: it let **7** through in one minute.
  Cheaper than the moving window, but an approximation.

For logins, the exact count is worth its storage: step 04 uses `moving-window`.
''')

# ------------------------------------------------------------------------------------------------
# 5. The per-process trap
# ------------------------------------------------------------------------------------------------

md("workers-intro", r'''
## The per-process trap: `memory://` and several workers

`RATELIMIT_STORAGE_URI` says where the counters live. The default, `memory://`, is a dictionary in
the Python process. In production you do not run one process: `gunicorn -w 3` starts three
workers, each its own Python process with its own app, and each new connection goes to whichever
worker accepts it first. With `memory://` each worker counts alone.

The next cell runs it for real (Linux and macOS only: gunicorn does not run on Windows): step 04
under `gunicorn --workers 3`, a limit of 5 per minute per account, and 30 wrong guesses at alice
sent at the same moment; first with `memory://`, then with a real `redis-server` the three workers
share. Passwords are hashed at OWASP's minimum cost here (about 20 ms a guess), so the guesses
overlap across the workers as they would on a real server. The numbers vary from run to run, so
nbval does not compare this cell's output.
''')

code("workers-demo", r'''
# NBVAL_IGNORE_OUTPUT
import http.client, importlib.util, os, shutil, socket, subprocess, time
from concurrent.futures import ThreadPoolExecutor

WORKERS, LIMIT, GUESSES = 3, 5, 30
REPOSITORY = pathlib.Path.cwd().parent

# A gunicorn hook: each worker leaves a file once it has loaded the app, so we wait for all of
# them (otherwise the first requests all land on the worker that booted first).
READY_HOOK = """
import pathlib
def post_worker_init(worker):
    (pathlib.Path({folder!r}) / f"ready-{{worker.pid}}").touch()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port, process, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} seconds")


def post(port, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def guesses_let_through(storage_uri):
    """Step 04 under gunicorn with WORKERS workers; GUESSES simultaneous wrong guesses at alice."""
    folder = pathlib.Path(tempfile.mkdtemp(dir=workdir))
    (folder / "ready").mkdir()
    (folder / "hook.py").write_text(READY_HOOK.format(folder=str(folder / "ready")), encoding="utf-8")
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLASK_")}
    env.update(FLASK_JWT_SECRET_KEY=secrets.token_hex(32), FLASK_DATABASE=str(folder / "workers.sqlite"),
               FLASK_RATELIMIT_STORAGE_URI=storage_uri,
               FLASK_RATELIMIT_LOGIN_PER_ACCOUNT=f"{LIMIT} per minute",
               FLASK_RATELIMIT_LOGIN_PER_ADDRESS="1000 per minute",  # all guesses come from 127.0.0.1
               FLASK_ARGON2_TIME_COST="2", FLASK_ARGON2_MEMORY_COST="19456", FLASK_ARGON2_PARALLELISM="1")
    with open(folder / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
             "--config", str(folder / "hook.py"), "--no-control-socket", "--log-level", "warning",
             "solutions.step04_rate_limiting:create_app()"],
            cwd=REPOSITORY, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, server, "gunicorn")
        deadline = time.monotonic() + 30
        while len(list((folder / "ready").iterdir())) < WORKERS:
            if time.monotonic() > deadline:
                raise RuntimeError("not all gunicorn workers started")
            time.sleep(0.05)
        assert post(port, "/register", ALICE) == 201
        with ThreadPoolExecutor(max_workers=GUESSES) as pool:
            statuses = list(pool.map(
                lambda n: post(port, "/login", {"username": "alice", "password": f"wrong guess {n:04d}"}),
                range(GUESSES)))
    finally:
        stop(server)
    return statuses.count(401)


def report(storage, through):
    print(f"{storage:10} {WORKERS} workers, limit {LIMIT}: {through:2} of {GUESSES} simultaneous guesses answered"
          f" | more than {LIMIT}: {through > LIMIT} | exactly {LIMIT}: {through == LIMIT}")


try:
    if os.name == "nt":
        print("gunicorn does not run on Windows, so this demonstration is skipped here (WSL can run it).\n"
              "The numbers of a run on Linux are in the next cell.")
    elif importlib.util.find_spec("gunicorn") is None:
        print("gunicorn is not installed (pip install -r requirements.txt), so this demonstration is skipped.")
    else:
        report("memory://", guesses_let_through("memory://"))
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            print("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; macOS:\n"
                  "brew install redis), so the shared-counter half is skipped. Its result is in the next cell.")
        else:
            redis_port = free_port()
            redis = subprocess.Popen(
                [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until_listening(redis_port, redis, "redis-server")
                report("redis://", guesses_let_through(f"redis://127.0.0.1:{redis_port}"))
            finally:
                stop(redis)
except (OSError, RuntimeError, AssertionError) as exc:
    print("The demonstration could not run on this machine:", exc or type(exc).__name__)
''')

md("workers-lesson", r'''
On the Linux machine that built this notebook, over ten runs: with `memory://`, **8 to 15 of the
30** simultaneous guesses were answered (usually 12 to 15), never 5. Each worker allowed its own 5,
and the ceiling is workers × limit (15 here; 20 with `-w 4`). With Redis, **exactly 5**, every
time: the three workers share one set of counters, and `limits` checks and records each attempt in
one Lua script, which Redis runs atomically, so no two workers can both take the fifth slot. That
is why `memory://` is for one process (`flask run`, tests) and step 04 reads
`RATELIMIT_STORAGE_URI` from the configuration.

To try it yourself (Linux or macOS, with `redis-server` running on its default port), from the
repository root:

```
export FLASK_JWT_SECRET_KEY=$(python -c "import secrets; print(secrets.token_hex(32))")
FLASK_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379 \
    gunicorn -w 4 -b 127.0.0.1:8000 "solutions.step04_rate_limiting:create_app()"
```

Then send more than 5 wrong logins for one account and watch the 429s start at the sixth, whichever
worker answers. A Redis that holds your counters deserves the care of a database: not reachable
from the internet, and protected by a password.
''')

# ------------------------------------------------------------------------------------------------
# 6. Behind a proxy
# ------------------------------------------------------------------------------------------------

md("proxy-intro", r'''
## Behind a proxy: whose address is it?

In production your app usually sits behind a reverse proxy or a load balancer (nginx, a cloud
load balancer). Then the TCP peer the app sees is the proxy, for every client. To pass on the
client's address, each proxy **appends** the address it received the connection from to the
`X-Forwarded-For` header; the header may already hold entries, and the leftmost ones were written
by **the client**, who can write anything there.

```
client 203.0.113.7  ──▶  your proxy 10.0.0.2  ──▶  your app
```

| hop | what it writes in `X-Forwarded-For` | the TCP peer the next hop sees |
|---|---|---|
| the client (the attacker) | `192.0.2.99` (made up; any value it likes) | 203.0.113.7 |
| your proxy | appends the peer it saw: `192.0.2.99, 203.0.113.7` | 10.0.0.2 |
| your app | reads the header | `REMOTE_ADDR` = 10.0.0.2 |

`X-Forwarded-For` was never standardised; RFC 7239 defines its standard counterpart, `Forwarded:
for=...` (§4, §5.2), and warns in §8.1 that the field cannot be relied upon, since any node on the
way, the client included, can modify it. Only the entries appended by proxies **you** run are
facts.

Step 04's starter code (in the exercise) keys its limits the way many tutorials do:
`request.headers.get("X-Forwarded-For") or request.remote_addr`. Here is that key on a throwaway
app with "5 per minute", and you sending 30 guesses, each with a new made-up header:
''')

code("naive-key", r'''
naive = Flask("naive")
Limiter(lambda: request.headers.get("X-Forwarded-For") or request.remote_addr,  # the starter's key
        app=naive, default_limits=["5 per minute"], storage_uri="memory://")


@naive.post("/login")
def naive_login():
    return {"msg": "Bad username or password"}, 401


def thirty_guesses(client, forwarded_for):
    """30 logins from ATTACKER's machine, with the X-Forwarded-For header forwarded_for(n)."""
    answers = collections.Counter()
    for n in range(30):
        headers = {"X-Forwarded-For": forwarded_for(n)} if forwarded_for else {}
        response = client.post("/login", json={"username": f"user{n:02d}", "password": "a leaked password"},
                               headers=headers, environ_base={"REMOTE_ADDR": ATTACKER})
        answers[response.status_code] += 1
    return dict(answers)


with simulated_clock():
    print("without the header:                 ", thirty_guesses(naive.test_client(), None))
    print("a new X-Forwarded-For every request:", thirty_guesses(naive.test_client(), lambda n: f"192.0.2.{n + 1}"))
''')

md("naive-lesson", r'''
Without the header, the limit holds. With it, every request has a new key, so a fresh bucket: the
limit is gone, and the attacker did not even need a botnet. Anything the client writes is an input,
not an identity.

Step 04 keys on `get_remote_address`, that is `request.remote_addr`, the TCP peer. When the operator
says the app is behind proxies (`TRUSTED_PROXY_COUNT`, 0 by default), `create_app` wraps the app in
Werkzeug's `ProxyFix(app.wsgi_app, x_for=N)`, which replaces `REMOTE_ADDR` with the N-th entry of
`X-Forwarded-For` **from the right**: the one your outermost proxy appended. To see which address
the app keys on, each app below gets a throwaway `/whoami` route that returns `request.remote_addr`.
Four set-ups, the same 30 guesses, and alice logging in afterwards through the same path.
''')

code("step04-proxy", r'''
def proxy_scenario(name, trusted_proxies, behind_proxy):
    """Step 04 with TRUSTED_PROXY_COUNT=trusted_proxies, reached directly or through one proxy."""
    def add_whoami(app):  # a throwaway route: which address does the app key on?
        app.add_url_rule("/whoami", "whoami", lambda: {"remote_addr": request.remote_addr})

    app, client = new_app(create_step04, name, setup=add_whoami, TRUSTED_PROXY_COUNT=trusted_proxies)

    def through(peer, client_header):
        """The peer and X-Forwarded-For the app receives when this client sends client_header."""
        if behind_proxy:  # the proxy appends the address it received from, and connects itself
            return "10.0.0.2", ", ".join(filter(None, [client_header, peer]))
        return peer, client_header

    peer, header = through(ATTACKER, "192.0.2.99")
    seen = client.get("/whoami", headers={"X-Forwarded-For": header}, environ_base={"REMOTE_ADDR": peer})
    answers = collections.Counter()
    for n in range(30):
        peer, header = through(ATTACKER, f"192.0.2.{n + 1}")
        response = client.post("/login", json={"username": f"user{n:02d}", "password": "a leaked password"},
                               headers={"X-Forwarded-For": header}, environ_base={"REMOTE_ADDR": peer})
        answers[response.status_code] += 1
    peer, header = through(HOME["alice"], None)
    alice = client.post("/login", json=ALICE, environ_base={"REMOTE_ADDR": peer},
                        headers={"X-Forwarded-For": header} if header else {})
    print(f"{name:41} keyed on {seen.get_json()['remote_addr']:12}  30 guesses: {dict(answers)}"
          f"   alice: {alice.status_code}")


with simulated_clock():
    proxy_scenario("no proxy, TRUSTED_PROXY_COUNT=0", 0, behind_proxy=False)
    proxy_scenario("one proxy, TRUSTED_PROXY_COUNT=1", 1, behind_proxy=True)
    proxy_scenario("one proxy, TRUSTED_PROXY_COUNT=0", 0, behind_proxy=True)
    proxy_scenario("one proxy, TRUSTED_PROXY_COUNT=2 (wrong)", 2, behind_proxy=True)
''')

md("proxy-lesson", r'''
Line by line:

1. **No proxy, count 0** (the default): the header is ignored; the app keys on your real address, and
   the per-address limit holds (20 answered, 10 refused).
2. **One proxy, count 1**: the header reads `192.0.2.n, 203.0.113.7`; ProxyFix trusts only the last
   entry, the one your proxy wrote, so the key is your real address, whatever you put in front of it.
   alice, through the same proxy, has her own key and logs in.
3. **One proxy, count 0**: every client is `10.0.0.2`, one bucket for everybody. Your 20 guesses
   used it up, and **alice is refused**: a rate limit that locks out all your users at once.
4. **One proxy, count 2**: ProxyFix trusts one entry too many, the one you wrote. A new made-up
   value per request, a fresh bucket per request: the limit is gone again.

So set `TRUSTED_PROXY_COUNT` to exactly the number of proxies that append to `X-Forwarded-For` in
front of your app, and make sure the app can only be reached through them (otherwise a client who
connects directly writes the "last" entry). The Werkzeug ProxyFix documentation says it the same way:
use the middleware only behind a proxy, with the number of values to trust, because "it is a
security issue to trust values that came from the client rather than a proxy".
''')

# ------------------------------------------------------------------------------------------------
# 7. When the counter storage is down
# ------------------------------------------------------------------------------------------------

md("storage-intro", r'''
## When the counter storage is down

With Redis, the limits depend on one more server. What happens to the logins when it is
unreachable? Point step 04 at `redis://127.0.0.1:9`, where nothing listens, and guess 8 times.
Flask-Limiter reports the failure in its log, the `flask-limiter` logger; the cell keeps those
messages in a list and prints them, instead of letting them reach stderr.
''')

code("storage-down", r'''
import logging


class KeepMessages(logging.Handler):
    """A log handler that keeps the messages in a list."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


limiter_log = KeepMessages()
logging.getLogger("flask-limiter").addHandler(limiter_log)
logging.getLogger("flask-limiter").propagate = False  # to the list only, for the rest of the notebook

down_app, down_client = new_app(create_step04, "storage-down", RATELIMIT_STORAGE_URI="redis://127.0.0.1:9")
statuses = [login(down_client, "alice", guess, ATTACKER).status_code for guess in wordlist[:8]]
print("8 guesses at alice, the storage unreachable:", statuses)
print("Flask-Limiter logged:", *limiter_log.messages, sep="\n  ")
''')

md("storage-policies-intro", r'''
No 500 and no free-for-all: the same 5, then 429s. On the first failure, Flask-Limiter logged a
warning and switched to counters in the process's memory (`in_memory_fallback_enabled=True` in
`limits.py`); on later requests it checks the storage again, at growing intervals, and goes back to
it once it answers.

There are two other ways to fail. Three throwaway apps with "5 per minute" and the same
unreachable storage show all three:
''')

code("storage-policies", r'''
def app_with_dead_storage(**options):
    app = Flask("dead-storage")
    app.logger.disabled = True  # a 500's traceback would go to stderr; the status says enough
    Limiter(get_remote_address, app=app, storage_uri="redis://127.0.0.1:9", default_limits=["5 per minute"],
            **options)

    @app.post("/login")
    def dead_storage_login():
        return {"msg": "Bad username or password"}, 401

    return app.test_client()


POLICIES = {
    "fail closed (Flask-Limiter's default)": {},
    "fail open (swallow_errors=True)": {"swallow_errors": True},
    "fall back to memory (step 04)": {"in_memory_fallback_enabled": True},
}
for label, options in POLICIES.items():
    client = app_with_dead_storage(**options)
    statuses = [client.post("/login", json={}, environ_base={"REMOTE_ADDR": ATTACKER}).status_code for _ in range(8)]
    print(f"{label:40}", statuses)
''')

md("storage-lesson", r'''
- **Fail closed**: without a fallback the storage error escapes and every request gets a 500.
  Refusing everything (a 500 here, a 503 if you catch it yourself) is safe against guessing, but a
  Redis outage becomes an outage of your whole API, and an attacker who can overload Redis can take
  the API down.
- **Fail open**: `swallow_errors=True` logs the error and lets every request through, with no
  limit at all: the guessing window opens exactly when something is already wrong.
- **Fall back**: per-process counters in memory. Weaker than shared ones (the per-process trap
  above: up to workers × limit), but never zero, and the API stays up. The warning in the log is
  what tells you to fix Redis.

This course falls back: the limits degrade, they do not disappear, and users can still log in.
''')

# ------------------------------------------------------------------------------------------------
# 8. The trade-off
# ------------------------------------------------------------------------------------------------

md("tradeoff-intro", r'''
## The price: the owner shares the account's budget

The per-account limit counts attempts on alice's account, whoever makes them. So the attacker can
spend alice's budget, and alice pays. Follow one simulated timeline: the botnet sends 5 guesses at
0 s; alice logs in from home at 1 s, and again at 61 s; then the botnet goes on, one guess every 3
seconds until minute 22, and alice tries again at minute 25.
''')

code("tradeoff", r'''
bots = iter(f"198.51.100.{n % 250 + 1}" for n in range(10_000))
guesses = iter(f"wrong guess {n:04d}" for n in range(10_000))


def botnet_round(client):
    """5 wrong guesses at alice, each from the next address of the botnet."""
    return [login(client, "alice", next(guesses), next(bots)).status_code for _ in range(5)]


def at(clock):
    """The simulated time as minutes:seconds."""
    minutes, seconds = divmod(int(clock.now - clock.START), 60)
    return f"{minutes:2d}:{seconds:02d}"


def alice_logs_in(client, clock):
    response = login(client, "alice", ALICE["password"], HOME["alice"])
    line = f"{at(clock):14} alice, right password: {response.status_code}"
    if response.status_code == 429:
        line += f"  {response.get_json()['msg']}"
    print(line)
    return response


with simulated_clock() as clock:
    trade_app, trade_client = new_app(create_step04, "trade-off")
    print(f"{at(clock):14} the botnet, 5 guesses: {botnet_round(trade_client)}")
    clock.set(1)
    alice_logs_in(trade_client, clock)
    clock.set(61)
    alice_logs_in(trade_client, clock)

    answered = collections.Counter()
    for second in range(62, 22 * 60, 3):  # the botnet goes on: one guess every 3 seconds
        clock.set(second)
        answered[login(trade_client, "alice", next(guesses), next(bots)).status_code] += 1
    print(f"{' 1:02 to 21:59':14} the botnet, one guess every 3 s: {dict(answered)}")
    clock.set(25 * 60)
    refused = alice_logs_in(trade_client, clock)
    print(f"{'':14} Retry-After: {int(refused.headers['Retry-After']) / 3600:.1f} hours")
''')

md("tradeoff-lesson", r'''
At 0:01 alice, with the right password, is refused: the botnet spent the minute's 5 attempts. At
1:01 she is in: the window moved on, nobody had to unlock anything. Then the botnet spends the rest
of the day's 100 attempts (94 more: alice's login counted too), and at 25:00 alice is refused again,
this time for 23.6 hours, until the first guesses are a day old. An attacker who keeps guessing
keeps her out for as long as the attack lasts. That is the price of a per-account limit, and
`limits.py` pays it on purpose: without it, a botnet gets unlimited guesses at one account.

It is a **throttle, not a lockout**. A lockout disables the account after N failures until someone
unlocks it: with a small N, anyone who knows a username locks its owner out with N requests, and
keeps them out; the OWASP Authentication Cheat Sheet ("Account Lockout") warns that a lockout must
not become a way to deny service to other users. A throttle lifts by itself within a minute (a day
at most), and the attacker must keep paying to keep it closed.

Where do the numbers come from? NIST SP 800-63B-4 (§3.2.2, "Rate Limiting (Throttling)") sets the
upper bound: no more than **100 consecutive failed attempts** on one account; after that the
password is disabled until it is bound to the account again (a reset, for instance). Step 04 does
the throttling half: at most 100 attempts per account per day. A patient attacker still gets 100
more every day, 36,500 a year: far too few against step 03's passwords, but not NIST's bound. To
meet it you would also count consecutive failures per account (NIST suggests forgetting them after
a successful login) and require a reset at 100, which needs a recovery channel, such as e-mail,
that this workbook does not have. Real systems add what a rate limiter cannot do (OWASP Credential
Stuffing Prevention and Authentication Cheat Sheets):

- **multi-factor authentication**, the defence that makes a guessed or leaked password worthless;
- **tell the user**: an e-mail about failed attempts or a login from a new device, so alice learns
  why she was refused;
- **a challenge after failures**: a CAPTCHA or a proof-of-work puzzle for the requests that look
  automated, instead of a refusal for everyone;
- a different treatment for known devices and addresses, so the owner is not throttled with the
  attacker.
''')

# ------------------------------------------------------------------------------------------------
# 9. Closing
# ------------------------------------------------------------------------------------------------

md("wrap-up", r'''
## What you saw

- Step 03 answered 187 guesses in a row and handed over a token; the tutorial's one-line limiter
  does not even start on Flask-Limiter 3 and later.
- Step 04 limits login per address (20 per minute) and per account (5 per minute): one address got
  5 guesses at alice, a botnet of 50 got 5, a stuffing list got 20 pairs, and innocent users logged
  in. Refusals are JSON 429s with `Retry-After` and `X-RateLimit-*` headers.
- A fixed window lets almost twice the limit through at its edge (9 in 2 seconds for "5 per
  minute"); the moving window never lets more than the limit through in any minute; the sliding
  window counter is an approximation that can let a few more through.
- `memory://` counts per process: several workers need shared counters (Redis). Behind a proxy,
  trust exactly as many `X-Forwarded-For` entries as you have proxies. When the storage is down,
  step 04 falls back to per-process limits.
- A per-account limit also throttles the account's owner: a throttle, not a lockout, and a floor
  under MFA, not a replacement.

Now build it yourself.
''')

code("cleanup", r'''
import shutil

shutil.rmtree(workdir, ignore_errors=True)  # the notebook's SQLite files
''')

code("outro", r'''
outro(4)
''')


build = builder.build

if __name__ == "__main__":
    builder.main()
