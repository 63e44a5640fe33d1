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

builder.intro(4, r'''
from lab import rate_limits as lab  # notebooks/lab/rate_limits.py: fresh apps, a clock, gunicorn, pictures
from lab.common import guess
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
here a stand-in: 200 passphrases, generated, with alice's at position 187. `new_app(...)` builds a
fresh app with a fresh SQLite file and registers alice and bob, each from their home address;
`login(client, username, password, address)` sends one login from an address you choose
(`REMOTE_ADDR` is the TCP peer's address, what the app sees as "the client"). The addresses come
from the ranges reserved for documentation (RFC 5737).
''')

code("step03-app", r'''
import collections, json, tempfile

from solutions.step03_input_validation import create_app as create_step03

workdir = pathlib.Path(tempfile.mkdtemp())  # the SQLite files; deleted at the end of the notebook
ALICE, BOB, HOME, ATTACKER = lab.ALICE, lab.BOB, lab.HOME, lab.ATTACKER  # HOME: alice's and bob's addresses
login, wordlist = lab.login, lab.WORDLIST  # 200 passphrases, "<colour> <thing> under a quiet moon"


def new_app(create_app, name, setup=None, **config):
    return lab.new_app(workdir, create_app, name, setup, **config)  # (app, client), alice and bob registered


step03, client03 = new_app(create_step03, "step03")
print("wordlist:", len(wordlist), "candidates; alice's passphrase is number",
      wordlist.index(ALICE["password"]) + 1)
''')

code("step03-attack", r'''
answers = collections.Counter()
for attempt, candidate in enumerate(wordlist, start=1):
    response = login(client03, "alice", candidate, ATTACKER)
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

Step 04 adds `limits.py`: one module-level limiter, keyed on the client's address, initialised by
`create_app`, with two limits on `/login`, one per client address and one per account. Writing the
limiter and the login limits is your exercise (4.1 and 4.2), so their code is not shown here; the
reference is at the end of this notebook, for after your check passes.

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
time with `time.time()`. `lab.simulated_clock()` replaces that function with a clock that only moves
when you move it (`clock.set(seconds)`, `clock.advance(seconds)`): every request in a
`with simulated_clock()` block happens at the instant you set, and the numbers printed below are
the same on every run. It is also how you would test your own limits: `mock.patch("time.time",
clock)` is all it takes.
''')

code("clock", r'''
from solutions.step04_rate_limiting import create_app as create_step04
from solutions.step04_rate_limiting import limits as limits04

simulated_clock = lab.simulated_clock  # with simulated_clock() as clock: ... time.time() is clock()
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
    for attempt, candidate in enumerate(wordlist, start=1):
        response = login(client04, "alice", candidate, ATTACKER)
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

builder.your_turn("second-machine", r'''
You have a second machine, `198.51.100.77`, that has sent nothing yet. The cell replays the start
of the attack above on a fresh step 04 app: your first machine sends 5 guesses at alice. Then, in
the same simulated second, send 10 more from the second machine (the `login(...)` helper, the
candidates `wordlist[5:15]`). **Predict** how many get an answer (401) rather than a 429, then
write the loop and run the cell.
''', r'''
prediction = ...  # how many of the 10 are answered (401)?

with simulated_clock():
    second_app, second_client = new_app(create_step04, "second-machine")
    for candidate in wordlist[:5]:
        login(second_client, "alice", candidate, ATTACKER)  # the first machine, as above
    statuses = ...  # [login(second_client, "alice", candidate, "198.51.100.77").status_code for ...]

if statuses is ...:
    print("Replace the ... of statuses with your loop, then run this cell again.")
else:
    print("you predicted:", guess(prediction), "| answered:", statuses.count(401), "| refused:", statuses.count(429))
''', r'''
with simulated_clock():
    second_app, second_client = new_app(create_step04, "second-machine-answer")
    for candidate in wordlist[:5]:
        login(second_client, "alice", candidate, ATTACKER)
    statuses = [login(second_client, "alice", candidate, "198.51.100.77").status_code for candidate in wordlist[5:15]]
print("answered:", statuses.count(401), "| refused:", statuses.count(429))
''', r'''
**None.** The new address has its own per-address budget (20 a minute), but the per-account limit
counts attempts on alice's account from everywhere, and the first machine spent its 5 for this
minute. A new address buys a new per-address bucket, never a new per-account one: that is what
the second limit is for (next: a whole botnet).
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
    for n, (address, candidate) in enumerate(zip(BOTNET, wordlist)):
        answers[login(botnet_client, SPELLINGS[n % 4], candidate, address).status_code] += 1
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
  its size and however it spelled the name. The Authentication Cheat Sheet's advice goes the same
  way: count failed logins against the account, not only per address, so that many addresses
  cannot share out the guesses (it speaks of failed attempts and lockouts; step 04 counts every
  attempt, for the reason given above);
- **per address** stops one address against many accounts: 20 pairs a minute, 200 a day.

Innocent clients are not touched: bob and alice, each at their own address and with their own
account, logged in while the attacks were refused. What neither limit stops is a botnet that
spreads a stuffing list over thousands of addresses, one attempt each. Rate limits raise the cost
of an attack; multi-factor authentication is what makes a leaked password useless.
''')

# ------------------------------------------------------------------------------------------------
# 4. Plots: the attack over time, and the three strategies
# ------------------------------------------------------------------------------------------------

md("ceiling-intro", r'''
### One ceiling for all strangers, and IPv6 hosts counted whole

Two more holes, both found by a pentest of this course's API:

- Every login costs a 64 MiB argon2 hash (step 02). A botnet that spreads over many accounts *and*
  many addresses stays inside both limits and still makes the server hash without end: 60
  simultaneous logins from 3 addresses pushed it to 1.3–1.7 GB and 8–28 s per request. So all
  logins of unknown clients share one more limit, `RATELIMIT_LOGIN_EVERYONE` (300 a minute), keyed
  on one name for everyone (`limits.everyone`). (Step 02 also bounds the hashes running at once.)
- An IPv6 host usually owns a whole /64 (RFC 4291 §2.5.1): 2^64 addresses it can use at will.
  Counted per address, it never meets a limit; `limits.client_address()` counts it by its /64.

Below, with the ceiling lowered to 6 a minute: 8 stranger logins, each for another account from
another address; then 4 guesses from 4 addresses of one IPv6 /64, against the per-address limit
lowered to 3.
''')

code("ceiling-run", r'''
with simulated_clock() as clock:
    _, ceiling_client = new_app(create_step04, "ceiling", RATELIMIT_LOGIN_EVERYONE="6 per minute")
    spread = [login(ceiling_client, f"user{n}", "a guess", f"203.0.113.{n}").status_code for n in range(1, 9)]
    print("8 accounts from 8 addresses, ceiling 6 a minute:", spread)

    ipv6_app, ipv6_client = new_app(create_step04, "ipv6", RATELIMIT_LOGIN_PER_ADDRESS="3 per minute")
    one_host = ["2001:db8:1:2::1", "2001:db8:1:2::beef", "2001:db8:1:2:aaaa::7", "2001:db8:1:2:ffff::1"]
    answers = [login(ipv6_client, f"victim{n}", "a guess", address).status_code for n, address in enumerate(one_host)]
    print("4 addresses of one IPv6 /64, limit 3 per address:", answers)
    with ipv6_app.test_request_context(environ_base={"REMOTE_ADDR": one_host[0]}):
        print("the limiter's key for all four:", limits04.client_address())
''')

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
lab.timeline_picture(streams)  # the drawing code is in notebooks/lab/rate_limits.py
''')

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


most_in_a_minute = lab.most_in_a_minute  # the most requests in any 60-second span [t, t + 60)

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
lab.strategies_picture(REQUESTS, allowed)  # the drawing code is in notebooks/lab/rate_limits.py
''')

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
worker accepts it first. With `memory://` each worker counts alone:
''')

code("workers-picture", r'''
lab.workers_picture()  # the drawing code is in notebooks/lab/rate_limits.py
''')

md("workers-run-intro", r'''
The next cell runs it for real (Linux and macOS only: gunicorn does not run on Windows): step 04
under `gunicorn --workers 3`, a limit of 5 per minute per account, and 30 wrong guesses at alice
sent at the same moment; first with `memory://`, then with a real `redis-server` the three workers
share. Passwords are hashed at OWASP's minimum cost here (about 20 ms a guess), so the guesses
overlap across the workers as they would on a real server. The numbers vary from run to run, so
nbval does not compare this cell's output.
''')

code("workers-demo", r'''
# NBVAL_IGNORE_OUTPUT
# lab.workers_demo: gunicorn --workers 3 (its workers all started before the guesses), 30 simultaneous
# wrong guesses over real HTTP, with memory:// and then with a redis-server it starts on a free port
lab.workers_demo(workdir, workers=3, limit=5, guesses=30)
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

| hop | what it writes in `X-Forwarded-For` | the TCP peer the next hop sees |
|---|---|---|
| the client (the attacker) | `192.0.2.99` (made up; any value it likes) | 203.0.113.7 |
| your proxy | appends the peer it saw: `192.0.2.99, 203.0.113.7` | 10.0.0.2 |
| your app | reads the header | `REMOTE_ADDR` = 10.0.0.2 |

`X-Forwarded-For` was never standardised; RFC 7239 defines its standard counterpart, `Forwarded:
for=...` (§4, §5.2), and warns in §8.1 that the field cannot be relied upon, since any node on the
way, the client included, can modify it. Only the entries appended by proxies **you** run are
facts.
''')

code("proxy-picture", r'''
lab.forwarded_for_picture()  # the drawing code is in notebooks/lab/rate_limits.py
''')

md("proxy-naive-intro", r'''
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

builder.your_turn("two-entries", r'''
Behind one proxy with `TRUSTED_PROXY_COUNT=1`, you try to outsmart ProxyFix: you send **two**
made-up entries, `X-Forwarded-For: 192.0.2.1, 192.0.2.2`, hoping the app takes the last one you
wrote. Your proxy appends your real address, as proxies do. **Predict** which address the app keys
on; then build the header the app receives and run the cell.
''', r'''
prediction = ...  # "192.0.2.1", "192.0.2.2" or "203.0.113.7"?
received = ...    # the X-Forwarded-For the app receives: what you sent, then what your proxy appended


def add_whoami(app):
    app.add_url_rule("/whoami", "whoami", lambda: {"remote_addr": request.remote_addr})


proxied, proxied_client = new_app(create_step04, "two-entries", setup=add_whoami, TRUSTED_PROXY_COUNT=1)
if received is ...:
    print("Replace the ... of received with the header's value, then run this cell again.")
else:
    seen = proxied_client.get("/whoami", headers={"X-Forwarded-For": received}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    print("you predicted:", guess(prediction), "| the app keys on:", seen.get_json()["remote_addr"])
''', r'''
received = "192.0.2.1, 192.0.2.2, " + ATTACKER  # your two entries, then your proxy's
seen = proxied_client.get("/whoami", headers={"X-Forwarded-For": received}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
print("the app keys on:", seen.get_json()["remote_addr"])
''', r'''
**203.0.113.7, your real address.** Whatever you write comes *before* what your proxy appends, so
with `x_for=1` ProxyFix always takes the proxy's entry, however many you add. The count is what
makes it safe: with `x_for=2` it would take `192.0.2.2`, yours.
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
limiter_log = lab.keep_limiter_log()  # the `flask-limiter` logger's messages, to a list (not stderr)

down_app, down_client = new_app(create_step04, "storage-down", RATELIMIT_STORAGE_URI="redis://127.0.0.1:9")
statuses = [login(down_client, "alice", candidate, ATTACKER).status_code for candidate in wordlist[:8]]
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


def device_cookie_of(response):
    """The login_device cookie a successful login sets, as `name=value` for a Cookie header."""
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("login_device="))
    return header.split(";", 1)[0]


def botnet_round(client):
    """5 wrong guesses at alice, each from the next address of the botnet."""
    return [login(client, "alice", next(guesses), next(bots)).status_code for _ in range(5)]


def at(clock):
    return clock.at()  # the simulated time as minutes:seconds


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

It is a **throttle**, and it has a lockout's tail. Nobody disables the account and nothing needs
unlocking: the 5-per-minute limit lifts by itself within a minute. But the run above also shows
the day limit's price: once the attacker has spent the day's 100 attempts, alice is refused for
almost a day, and an attacker who keeps guessing keeps her out. That is the denial of service the
OWASP Authentication Cheat Sheet ("Account Lockout") warns about: a limit on the account must not
become a way to lock its owner out. Step 04 narrows it (the attacker must keep paying, and the
owner's other defences, below, still apply) but does not remove it.

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
  attacker: what step 04 does next.
''')

md("devices-intro", r'''
## The owner is not the attacker: known devices

The run above is a lockout in all but name, and OWASP's Authentication Cheat Sheet says what it
leads to: an attacker who can lock accounts can lock any account. Step 04 therefore counts the
account's budget for **unknown clients only**, following OWASP's "Slow Down Online Guessing Attacks
with Device Cookies":

- a successful login sets a **device cookie**, `login_device`: signed by the server (an HMAC under a
  key of its own, derived from the app's secret), bound to the account, with a random device id;
  `HttpOnly`, `Secure`, `SameSite=Strict`, sent to `/login` only;
- a login that brings a valid device cookie for its account is counted against **that device's own
  budget** (`RATELIMIT_LOGIN_PER_DEVICE`), not the account's, and not the ceiling for strangers;
- so an attack on alice's account stops new devices only; a stolen cookie buys one device's budget.

The same half hour as above, on the same step-04 app, except that alice logged in once from her
laptop the day before and her laptop kept the cookie:
''')

code("devices-run", r'''
with simulated_clock() as clock:
    device_app, device_client = new_app(create_step04, "devices")
    laptop = device_cookie_of(login(device_client, "alice", ALICE["password"], HOME["alice"]))
    clock.set(24 * 3600)  # the next day: her login of yesterday has left every window

    def alice_from_her_laptop():
        response = login(device_client, "alice", ALICE["password"], HOME["alice"], {"Cookie": laptop})
        print(f"{at(clock):14} alice, right password, her laptop: {response.status_code}")

    print(f"{at(clock):14} the botnet, 5 guesses: {botnet_round(device_client)}")
    clock.advance(1)
    alice_from_her_laptop()
    answered = collections.Counter()
    # One guess every 3.5 s for 20 minutes (3.5, not 3: no guess lands exactly on a window's edge,
    # where the result would depend on when the storage last cleaned up).
    for _ in range(343):
        clock.advance(3.5)
        answered[login(device_client, "alice", next(guesses), next(bots)).status_code] += 1
    while login(device_client, "alice", next(guesses), next(bots)).status_code != 429:
        clock.advance(3.5)  # go on until the account's budget is spent at this very second
    print(f"{'the next 20 min':14} the botnet, one guess every 3.5 s: {dict(answered)}, then a 429")
    alice_from_her_laptop()
    new_phone = login(device_client, "alice", ALICE["password"], "192.0.2.77")
    print(f"{at(clock):14} alice, right password, a new phone (no cookie): {new_phone.status_code}")
''')

md("devices-lesson", r'''
The botnet gets what it got before, 5 guesses a minute and 100 a day at most; alice gets in from
her laptop every time. Only a device that never logged in waits (her new phone). That is the
trade-off now: a stranger can delay alice's *first* login from a new device, not every login.

What this does not do: it is not MFA (a guessed password still logs in, and the guesser gets a
device cookie too, for that account only), and it does not meet NIST's 100-consecutive-failures
bound, discussed above.
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
- A per-account limit also throttles the account's owner, for up to a day once an attacker has
  spent the day's budget: a floor under MFA, not a replacement.

Now build it yourself.
''')

code("cleanup", r'''
import shutil

shutil.rmtree(workdir, ignore_errors=True)  # the notebook's SQLite files
''')

builder.outro(4)

md("reference-intro", r'''
## After your check passes: the reference limiter and login limits

**Spoiler**: this is the solution of exercises 4.1 and 4.2. Read it once `python -m workbook check 4`
passes; `python -m workbook diff 4` shows the whole lesson as a diff.
''')

code("reference", r'''
from IPython.display import display
from lab.common import solution_source

display(solution_source("step04_rate_limiting", "limits.py", "limiter", "account_key"))
display(solution_source("step04_rate_limiting", "auth.py", "login"))
''')


build = builder.build

if __name__ == "__main__":
    builder.main()
