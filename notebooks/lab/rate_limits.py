"""Notebook 04 (Rate limiting): fresh apps, a clock you control, the gunicorn run, and the pictures."""

from __future__ import annotations

import collections
import http.client
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from .common import ROOT, blank_figure, new_figure, picture

ALICE = {"username": "alice", "password": "violet kettle under a quiet moon"}
BOB = {"username": "bob", "password": "seven owls guard the lighthouse"}
HOME = {"alice": "192.0.2.10", "bob": "192.0.2.20"}  # where each user logs in from (RFC 5737 addresses)
ATTACKER = "203.0.113.7"  # the attacker's machine

COLOURS = ["amber", "azure", "coral", "crimson", "golden", "indigo", "ivory", "olive", "silver", "violet"]
THINGS = ["anchor", "basket", "candle", "compass", "feather", "garden", "kettle", "lantern", "mirror",
          "orchard", "pebble", "ribbon", "saddle", "teapot", "thimble", "trumpet", "violin", "wagon",
          "whistle", "window"]
WORDLIST = [f"{colour} {thing} under a quiet moon" for colour in COLOURS for thing in THINGS]

ANSWERED, REFUSED = "#1f6f43", "#c0392b"  # in every picture of this notebook: green answered, red refused


def settings(workdir: Path, name: str, **overrides) -> dict:
    """A fresh configuration: a random key, a new SQLite file in workdir, cheap hashing (a real server
    keeps the defaults: argon2id with 64 MiB, 3 passes, 4 lanes)."""
    return {"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(Path(workdir) / f"{name}.sqlite"),
            "TESTING": True, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1,
            **overrides}


def new_app(workdir: Path, create_app, name: str, setup=None, **config):
    """A fresh app with alice and bob registered, each from their own address; and its test client.
    setup(app), if given, runs first: Flask accepts new routes only before the first request."""
    app = create_app(settings(workdir, name, **config))
    if setup:
        setup(app)
    # No cookie jar: each request is a client of its own, as the different machines of these demos
    # are. A device cookie (step 04's known devices) is sent by hand where a demo needs one.
    client = app.test_client(use_cookies=False)
    for user in (ALICE, BOB):
        response = client.post("/register", json=user, environ_base={"REMOTE_ADDR": HOME[user["username"]]})
        assert response.status_code == 201, response.get_json()
    return app, client


def login(client, username: str, password: str, address: str, headers=None):
    """One login attempt, sent from `address` (the TCP peer the app sees)."""
    return client.post("/login", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers or {})


class SimulatedClock:
    """A clock that moves only when told to. Called like time.time()."""

    START = 1_767_225_600  # 2026-01-01 00:00:00 UTC: a whole number of minutes since 1970

    def __init__(self):
        self.now = float(self.START)

    def __call__(self) -> float:
        return self.now

    def set(self, seconds: float) -> None:
        """Move to `seconds` after the start."""
        self.now = self.START + seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def at(self) -> str:
        """The simulated time as minutes:seconds since the start."""
        minutes, seconds = divmod(int(self.now - self.START), 60)
        return f"{minutes:2d}:{seconds:02d}"


@contextmanager
def simulated_clock():
    """Inside the block, time.time() (what `limits` and Flask-Limiter read) is a SimulatedClock at 0 s."""
    clock = SimulatedClock()
    with mock.patch("time.time", clock):
        yield clock


class KeepMessages(logging.Handler):
    """A log handler that keeps the messages in a list."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


def keep_limiter_log() -> KeepMessages:
    """Flask-Limiter's log (the `flask-limiter` logger) to a list, not to stderr, from now on."""
    handler = KeepMessages()
    logger = logging.getLogger("flask-limiter")
    logger.addHandler(handler)
    logger.propagate = False
    return handler


def most_in_a_minute(seconds) -> int:
    """The most requests in any 60-second span [t, t + 60)."""
    return max((sum(t <= s < t + 60 for s in seconds) for t in seconds), default=0)


# ------------------------------------------------------------------------------------------------
# Pictures
# ------------------------------------------------------------------------------------------------

def timeline_picture(streams: dict[str, list[tuple[int, int]]]):
    """Top: step 04's first 5 minutes, one mark per guess (green answered, red refused).
    Bottom: wrong guesses answered over 30 minutes, one line per app."""
    fig, _ = new_figure(10.5, 6.2)
    fig.clear()
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 2.2], "hspace": 0.55})
    first = [(second, status) for second, status in streams["step 04"] if second < 300]
    for status, y, colour, marker, label in ((401, 1, ANSWERED, "o", "answered (401)"),
                                             (429, 0, REFUSED, "x", "refused (429)")):
        xs = [second / 60 for second, s in first if s == status]
        top.scatter(xs, [y] * len(xs), color=colour, marker=marker, s=22, label=label)
    top.set_yticks([0, 1], ["429", "401"])
    top.set_ylim(-0.7, 2.2)  # room for the legend above the marks
    top.set_xlim(-0.1, 5.1)
    top.set_xlabel("minutes")
    top.set_title("Step 04, the first 5 minutes: 5 guesses answered in any 60 seconds", fontsize=11)
    top.legend(loc="upper right", ncol=2, frameon=False, fontsize=9)
    top.spines[["top", "right"]].set_visible(False)
    # The lines are apps, not answers: neutral colours, so that green and red keep one meaning.
    totals = {}
    for label, colour, style in (("step 03", "#34506b", "-"), ("step 04", "#b9770e", "-")):
        xs, ys, count = [], [], 0
        for second, status in streams[label]:
            count += status == 401
            xs.append(second / 60)
            ys.append(count)
        totals[label] = count
        bottom.step(xs, ys, where="post", color=colour, linestyle=style, linewidth=2,
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
    answered_first = sum(1 for _, s in first if s == 401)
    alt = (f"Two panels. Top: step 04's first 5 minutes, one mark per guess: {answered_first} green circles "
           f"(answered, 401), about 5 per minute, and {len(first) - answered_first} red crosses (refused, 429). "
           f"Bottom: wrong guesses answered over 30 minutes: step 03's line (blue) climbs steadily to "
           f"{totals['step 03']}; step 04's line (amber) climbs slowly and stops at {totals['step 04']}, "
           "at the dashed line of 100 per day per account.")
    return picture(fig, alt)


STRATEGY_WINDOWS = {  # (start, end, label) of the windows each strategy counts in, for the background
    "fixed window": [(0, 60, "window opened by the request at 0 s"), (61, 121, "window opened at 61 s")],
    "moving window": [(1, 61, "at 61 s it counts (1, 61]: the 4 at 59 s")],
    "sliding window counter": [(0, 60, "minute 0 (on the clock)"), (60, 120, "minute 1")],
}
STRATEGY_NOTES = {
    "fixed window": "a new window starts with the first request after the old one ends",
    "moving window": "it counts the requests of the last 60 seconds, one timestamp each",
    "sliding window counter": "at 90 s it estimates 5 x 30/60 + 1 = 3.5 (minute 0 weighted, plus minute 1),\n"
                              "rounded down to 3: 2 more allowed, though 5 came in the last 60 s",
}


def strategies_picture(requests: list[int], allowed: dict[str, list[bool]]):
    """One row per strategy: each request at its second, o allowed, x refused, stacked per second."""
    from matplotlib.patches import Rectangle

    fig, _ = new_figure(12, 7.2)
    fig.clear()
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"hspace": 0.55})
    summary = []
    for ax, (name, results) in zip(axes, allowed.items()):
        for i, (start, end, label) in enumerate(STRATEGY_WINDOWS[name]):
            ax.add_patch(Rectangle((start, 0.3), end - start, 5.4, facecolor=("#eaf2f8", "#fdf2e9")[i % 2],
                                   edgecolor="#aab7b8", linewidth=0.8, zorder=0))
            ax.text(start + 0.8, 5.25, label, fontsize=8, color="#555555", va="center")
        stack = collections.Counter()
        for second, ok in zip(requests, results):
            stack[second] += 1
            ax.scatter(second, stack[second], marker="o" if ok else "x", s=40,
                       color=ANSWERED if ok else REFUSED, zorder=3)
        count = sum(results)
        burst = sum(ok for s, ok in zip(requests, results) if 59 <= s <= 61)
        summary.append(f"{name}: {count} of {len(requests)} allowed, {burst} of them between 59 and 61 s")
        ax.set_title(summary[-1], fontsize=10.5, loc="left")
        ax.text(4, 3, STRATEGY_NOTES[name], fontsize=8.5, color="#34495e", ha="left", va="center")
        ax.set_ylim(0, 6)
        ax.set_yticks([])
        ax.spines[["top", "right", "left"]].set_visible(False)
    axes[-1].set_xlim(-3, 101)
    axes[-1].set_xticks([0, 59, 61, 90])
    for label, align in zip(axes[-1].get_xticklabels(), ("center", "right", "left", "center")):
        label.set_horizontalalignment(align)
    axes[-1].set_xlabel("seconds (o allowed, x refused; requests at the same second are stacked)")
    return picture(fig, "Three rows, one per strategy, of requests at 0, 59, 61 and 90 seconds under "
                        "'5 per minute', green circles allowed and red crosses refused: " + "; ".join(summary)
                   + ". Shaded bands show the windows each strategy counts in.")


def forwarded_for_picture():
    """The X-Forwarded-For chain: what each hop writes, and which entry ProxyFix(x_for=1) trusts."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = blank_figure(11.5, 4.6, (0, 11.5), (0, 4.6))
    hops = [  # (x, title, the TCP peer it connects from, colour)
        (0.3, "client (the attacker)", "connects from 203.0.113.7", "#f9e0dc"),
        (4.1, "your proxy", "connects from 10.0.0.2", "#d6e6f5"),
        (7.9, "your app (ProxyFix x_for=1)", "REMOTE_ADDR = 10.0.0.2", "#d5ecd4"),
    ]
    for x, title, peer, colour in hops:
        ax.add_patch(FancyBboxPatch((x, 2.6), 3.3, 1.3, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor=colour, edgecolor="#34506b", linewidth=1.2))
        ax.text(x + 0.15, 3.6, title, fontsize=11, fontweight="bold", va="center", color="#1d2f40")
        ax.text(x + 0.15, 3.0, peer, fontsize=9, family="monospace", va="center", color="#34506b")
    for x in (3.65, 7.45):
        ax.add_patch(FancyArrowPatch((x, 3.25), (x + 0.4, 3.25), arrowstyle="-|>", mutation_scale=18,
                                     linewidth=1.6, color="#34506b"))
    ax.text(0.3, 2.15, "X-Forwarded-For: 192.0.2.99", fontsize=9.5, family="monospace", color="#7b241c")
    ax.text(0.3, 1.8, "(made up: any value it likes)", fontsize=9, color="#7b241c")
    ax.text(4.1, 2.15, "X-Forwarded-For: 192.0.2.99, 203.0.113.7", fontsize=9.5, family="monospace",
            color="#1d2f40")
    ax.text(4.1, 1.8, "(appends the peer it saw)", fontsize=9, color="#1d2f40")
    ax.text(7.9, 2.15, "keys on 203.0.113.7", fontsize=9.5, family="monospace", color="#1e5a1d",
            fontweight="bold")
    ax.text(7.9, 1.8, "(the last entry: your proxy wrote it)", fontsize=9, color="#1e5a1d")
    ax.add_patch(FancyBboxPatch((0.3, 0.25), 10.9, 1.1, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor="#fbfbfb", edgecolor="#aab7b8", linewidth=0.8))
    ax.text(0.5, 1.0, "X-Forwarded-For, read from the right:", fontsize=9.5, color="#1d2f40")
    ax.text(0.5, 0.55, "192.0.2.99", fontsize=10, family="monospace", color="#7b241c")
    ax.text(2.1, 0.55, "written by the client: never trusted", fontsize=9, color="#7b241c")
    ax.text(5.6, 0.55, ",  203.0.113.7", fontsize=10, family="monospace", color="#1e5a1d")
    ax.text(7.75, 0.55, "written by your proxy: trusted (x_for=1)", fontsize=9, color="#1e5a1d")
    return picture(fig, "Three boxes left to right: the client (the attacker) connects from 203.0.113.7 and "
                        "sends X-Forwarded-For: 192.0.2.99, a made-up value; your proxy appends the peer it "
                        "saw and sends X-Forwarded-For: 192.0.2.99, 203.0.113.7 from its own address "
                        "10.0.0.2; your app, with ProxyFix x_for=1, sees REMOTE_ADDR 10.0.0.2 and keys on "
                        "203.0.113.7, the last entry, which your proxy wrote. Below: read from the right, "
                        "192.0.2.99 was written by the client and is never trusted; 203.0.113.7 was written "
                        "by your proxy and is trusted.")


def workers_picture():
    """memory:// (a counter per worker) against Redis (one counter all workers share)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = blank_figure(11.5, 4.8, (0, 11.5), (0, 4.8))
    for left, title, shared in ((0.2, "memory://  (each worker counts alone)", False),
                                (6.0, "redis://  (one counter, shared)", True)):
        ax.text(left, 4.5, title, fontsize=11.5, fontweight="bold", color="#1d2f40", va="center")
        ax.add_patch(FancyBboxPatch((left + 1.6, 3.55), 2.0, 0.55, boxstyle="round,pad=0.02",
                                    facecolor="#eef3f8", edgecolor="#34506b"))
        ax.text(left + 2.6, 3.82, "gunicorn", fontsize=9.5, ha="center", va="center", family="monospace")
        for i in range(3):
            x = left + 0.1 + i * 1.8
            ax.add_patch(FancyBboxPatch((x, 2.2), 1.5, 0.75, boxstyle="round,pad=0.02",
                                        facecolor="#d6e6f5", edgecolor="#34506b"))
            ax.text(x + 0.75, 2.57, f"worker {i + 1}", fontsize=9.5, ha="center", va="center")
            ax.add_patch(FancyArrowPatch((left + 2.6, 3.5), (x + 0.75, 3.0), arrowstyle="-|>",
                                         mutation_scale=12, color="#34506b"))
            if not shared:
                ax.add_patch(FancyBboxPatch((x + 0.1, 0.9), 1.3, 0.85, boxstyle="round,pad=0.02",
                                            facecolor="#f9e0dc", edgecolor=REFUSED))
                ax.text(x + 0.75, 1.32, "alice: 5/5\nits own", fontsize=8.5, ha="center", va="center",
                        color="#7b241c")
                ax.add_patch(FancyArrowPatch((x + 0.75, 2.15), (x + 0.75, 1.8), arrowstyle="-|>",
                                             mutation_scale=10, color=REFUSED))
            else:
                ax.add_patch(FancyArrowPatch((x + 0.75, 2.15), (left + 2.6, 1.5), arrowstyle="-|>",
                                             mutation_scale=10, color=ANSWERED))
        if shared:
            ax.add_patch(FancyBboxPatch((left + 1.35, 0.75), 2.5, 0.75, boxstyle="round,pad=0.02",
                                        facecolor="#d5ecd4", edgecolor=ANSWERED))
            ax.text(left + 2.6, 1.12, "Redis: alice 5/5", fontsize=9.5, ha="center", va="center",
                    color="#1e5a1d")
        ax.text(left, 0.3, "up to 3 x 5 = 15 guesses a minute" if not shared else
                "exactly 5 guesses a minute, whichever worker answers",
                fontsize=9.5, color="#7b241c" if not shared else "#1e5a1d")
    return picture(fig, "Two diagrams side by side. Left, memory://: gunicorn hands requests to three "
                        "workers, and each worker keeps its own counter for alice, 5 of 5: up to 3 x 5 = 15 "
                        "guesses a minute get through. Right, redis://: the same three workers all count in "
                        "one Redis counter for alice, 5 of 5: exactly 5 guesses a minute, whichever worker "
                        "answers.")


# ------------------------------------------------------------------------------------------------
# The run with gunicorn workers (Linux and macOS)
# ------------------------------------------------------------------------------------------------

READY_HOOK = """
import pathlib
def post_worker_init(worker):
    (pathlib.Path({folder!r}) / f"ready-{{worker.pid}}").touch()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, process, what: str, timeout: float = 20.0) -> None:
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


def http_post(port: int, path: str, body) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def guesses_let_through(workdir: Path, storage_uri: str, workers: int = 3, limit: int = 5,
                        guesses: int = 30) -> int:
    """Step 04 under gunicorn with `workers` workers and `limit` logins per minute per account;
    `guesses` simultaneous wrong guesses at alice. Returns how many were answered (401)."""
    folder = Path(tempfile.mkdtemp(dir=workdir))
    (folder / "ready").mkdir()
    # Each worker leaves a file once it has loaded the app, so the guesses start when all are up.
    (folder / "hook.py").write_text(READY_HOOK.format(folder=str(folder / "ready")), encoding="utf-8")
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLASK_")}
    env.update(FLASK_JWT_SECRET_KEY=secrets.token_hex(32), FLASK_DATABASE=str(folder / "workers.sqlite"),
               FLASK_RATELIMIT_STORAGE_URI=storage_uri,
               FLASK_RATELIMIT_LOGIN_PER_ACCOUNT=f"{limit} per minute",
               FLASK_RATELIMIT_LOGIN_PER_ADDRESS="1000 per minute",  # all guesses come from 127.0.0.1
               FLASK_ARGON2_TIME_COST="2", FLASK_ARGON2_MEMORY_COST="19456", FLASK_ARGON2_PARALLELISM="1")
    with open(folder / "gunicorn.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
             "--config", str(folder / "hook.py"), "--no-control-socket", "--log-level", "warning",
             "solutions.step04_rate_limiting:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, server, "gunicorn")
        deadline = time.monotonic() + 30
        while len(list((folder / "ready").iterdir())) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("not all gunicorn workers started")
            time.sleep(0.05)
        assert http_post(port, "/register", ALICE) == 201
        with ThreadPoolExecutor(max_workers=guesses) as pool:
            statuses = list(pool.map(
                lambda n: http_post(port, "/login", {"username": "alice", "password": f"wrong guess {n:04d}"}),
                range(guesses)))
    finally:
        stop(server)
    return statuses.count(401)


def workers_demo(workdir: Path, workers: int = 3, limit: int = 5, guesses: int = 30) -> None:
    """Print how many of `guesses` simultaneous guesses get through, with memory:// and with Redis;
    say why a half is skipped where gunicorn or redis-server is missing."""
    import importlib.util
    import shutil

    def report(storage, through):
        print(f"{storage:10} {workers} workers, limit {limit}: {through:2} of {guesses} simultaneous guesses "
              f"answered | more than {limit}: {through > limit} | exactly {limit}: {through == limit}")

    try:
        if os.name == "nt":
            print("gunicorn does not run on Windows, so this demonstration is skipped here (WSL can run it).\n"
                  "The numbers of a run on Linux are below.")
            return
        if importlib.util.find_spec("gunicorn") is None:
            print("gunicorn is not installed (pip install -r requirements.txt), so this demonstration is skipped.")
            return
        report("memory://", guesses_let_through(workdir, "memory://", workers, limit, guesses))
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            print("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; macOS:\n"
                  "brew install redis), so the shared-counter half is skipped. Its result is below.")
            return
        redis_port = free_port()
        redis = subprocess.Popen(
            [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_listening(redis_port, redis, "redis-server")
            report("redis://", guesses_let_through(workdir, f"redis://127.0.0.1:{redis_port}", workers, limit,
                                                   guesses))
        finally:
            stop(redis)
    except (OSError, RuntimeError, AssertionError) as exc:
        print("The demonstration could not run on this machine:", exc or type(exc).__name__)
