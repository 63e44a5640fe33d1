"""Notebook 05 (Error handling): apps, log capture, masking, a bug on demand, the handler-lookup picture."""

from __future__ import annotations

import logging
import re
import secrets
from contextlib import contextmanager
from pathlib import Path

from .common import blank_figure, picture

# RFC 9110 (2022) renamed two status phrases that Werkzeug's HTTP_STATUS_CODES still has in their
# RFC 7231 form: 413 "Request Entity Too Large" and 422 "Unprocessable Entity".
RFC_9110_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def settings(workdir: Path, name: str, **overrides) -> dict:
    """A fresh configuration: a random key, a new SQLite file, cheap hashing, limits on with a small
    per-account login limit (so that a 429 takes 3 requests)."""
    return {"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(Path(workdir) / f"{name}.sqlite"),
            "TESTING": True, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1,
            "RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN_PER_ACCOUNT": "2 per minute",
            **overrides}


class Capture(logging.Handler):
    """Keeps each log record as a server would write it (with its traceback) in a list."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))


def quiet(app, capture: Capture):
    """The app's own log (app.logger) to `capture`, not to stderr."""
    app.logger.handlers[:] = [capture]
    app.logger.propagate = False
    return app


def capture_api_log() -> Capture:
    """Step 05 logs to the logger "api". A handler there before the first step 05 app is made also
    stops step 05 from adding its own (stderr) handler: see logs.init_app."""
    capture = Capture()
    logger = logging.getLogger("api")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return capture


REQUEST_ID = re.compile(r"\b[0-9a-f]{32}\b")  # uuid4().hex
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", re.MULTILINE)  # at the start of a log line
WAIT = re.compile(r"in \d+ seconds")  # a 429's "Try again in 59 seconds" depends on the clock


def masked(text: str) -> str:
    """Replace what changes on every run: request ids, log times, the seconds until a limit resets."""
    return WAIT.sub("in <n> seconds", LOG_TIME.sub("<time>", REQUEST_ID.sub("<request-id>", text)))


@contextmanager
def a_bug_in(passwords_module):
    """Make hash_password fail the way a bug deep in the code would; put it back afterwards."""
    original = passwords_module.hash_password

    def broken(password):
        raise RuntimeError("sqlite3 /srv/app/users.db: SELECT password_hash FROM user")

    passwords_module.hash_password = broken
    try:
        yield
    finally:
        passwords_module.hash_password = original


def send(app, requests, what: str, passwords_module=None):
    """Send the request called `what` (from `requests`: (what, method, path, client kwargs)) to `app`.
    "3rd login in a minute" sends two logins first; "a bug" switches the bug on for its request only."""
    _, method, path, kwargs = next(r for r in requests if r[0] == what)
    client = app.test_client()
    if what == "3rd login in a minute":
        for _ in range(2):
            client.open(path, method=method, **kwargs)
    if what == "a bug":
        with a_bug_in(passwords_module):
            return client.open(path, method=method, **kwargs)
    return client.open(path, method=method, **kwargs)


def shape(response) -> str:
    """The envelope: an HTML page, or a JSON object named by its members."""
    if response.mimetype == "text/html":
        return "HTML page"
    return "JSON {" + ", ".join(sorted(response.get_json())) + "}"


def start(response, width: int = 80) -> str:
    """The first characters of the body, on one line (⏎ marks a line break), ids masked."""
    return masked(response.get_data(as_text=True)).replace("\n", "⏎")[:width]


def status_phrases(status: int) -> set[str]:
    """The phrases a problem's title may carry for this status: RFC 9110's, and Werkzeug's table's."""
    from werkzeug.http import HTTP_STATUS_CODES

    return {phrase for phrase in (HTTP_STATUS_CODES.get(status), RFC_9110_PHRASES.get(status)) if phrase}


def problems_with(response) -> list[str]:
    """What a client expecting RFC 9457 would object to in this error response ([] = nothing)."""
    if response.mimetype != "application/problem+json":
        return [f"media type {response.mimetype}"]
    body = response.get_json()
    objections = []
    if body.get("status") != response.status_code:
        objections.append(f"status member {body.get('status')} != {response.status_code}")
    if body.get("type", "about:blank") == "about:blank" and body.get("title") not in status_phrases(response.status_code):
        objections.append("title is not the status phrase")
    return objections


LOOKUP_ROWS = [  # (stage, how Flask looks, [(registered for, step 05's handler, answer colour)])
    ("1  by status code", "HTTPException only;\nblueprint, then app",
     [("429  (RateLimitExceeded)", "limits.too_many_requests", "ok"),
      ("503  (HashingBusy: no hashing slot)", "passwords.hashing_busy", "ok")]),
    ("2  by class, in the blueprint", "only for requests routed to\nthe blueprint; walk the MRO",
     [("ValidationError  (blueprint \"auth\")", "auth.invalid_body  (400 + errors)", "ok")]),
    ("3  by class, in the app", "walk the exception's MRO:\nthe first class with a\nhandler wins",
     [("DecodeError, ExpiredSignatureError,\nNoAuthorizationError, ...  (16 classes)",
       "Flask-JWT-Extended's handlers\n-> our loaders -> auth.token_refused", "ok"),
      ("HTTPException  (404, 405, 413, 415, 400...)", "errors.http_error", "ok"),
      ("Exception  (a bug)", "errors.unexpected_error\n(500 + request id, traceback logged)", "ok")]),
    ("4  no handler found", "where step 04's 404, 405,\n413 and bugs ended",
     [("an HTTPException", "Werkzeug's HTML page", "bad"),
      ("anything else", "TESTING: re-raised into the caller\notherwise: logged, HTML 500", "bad")]),
]


def lookup_picture(rows=LOOKUP_ROWS):
    """Flask's handler lookup, stage by stage, with step 05's handler at each."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = blank_figure(11.5, 7.4, (0, 11.5), (0, 7.4))
    ax.add_patch(FancyBboxPatch((0.3, 6.55), 10.9, 0.6, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor="#eef3f8", edgecolor="#34506b", linewidth=1.2))
    ax.text(0.5, 6.95, "an exception is raised while Flask handles a request", fontsize=12,
            fontweight="bold", va="center", color="#1d2f40")
    ax.text(0.5, 6.7, "abort(415) · no route (NotFound) · wrong method · RateLimitExceeded · "
            "NoAuthorizationError · InvalidSignatureError · ValidationError · a bug",
            fontsize=9, va="center", color="#34506b", family="monospace")
    for x, label in ((0.3, "Flask tries, in this order"), (4.25, "registered for"), (8.05, "step 05's handler")):
        ax.text(x, 6.25, label, fontsize=10.5, fontweight="bold", color="#1d2f40", va="center")
    y = 5.95
    for stage, how, entries in rows:
        height = max(0.62 * len(entries), 0.95)
        entry_height = height / len(entries)
        bad = entries[0][2] == "bad"
        ax.add_patch(FancyBboxPatch((0.3, y - height + 0.06), 3.6, height - 0.12,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor="#f6dcd8" if bad else "#d6e6f5", edgecolor="#34506b", linewidth=1.1))
        ax.text(0.45, y - 0.22, stage, fontsize=11, fontweight="bold", va="center", color="#1d2f40")
        ax.text(0.45, y - 0.42, how, fontsize=8.6, va="top", color="#34506b", linespacing=1.25)
        for i, (registered, handler, colour) in enumerate(entries):
            cy = y - entry_height * i - entry_height / 2
            ax.text(4.25, cy, registered, fontsize=8.8, va="center", family="monospace", color="#1d2f40",
                    linespacing=1.2)
            ax.add_patch(FancyArrowPatch((7.45, cy), (7.95, cy), arrowstyle="-|>", mutation_scale=13,
                                         linewidth=1.3, color="#c0392b" if colour == "bad" else "#1e5a1d"))
            ax.text(8.05, cy, handler, fontsize=8.8, va="center", family="monospace", linespacing=1.2,
                    color="#7b241c" if colour == "bad" else "#1e5a1d")
        y -= height + 0.1
    ax.text(0.3, 0.3, "Every green answer is application/problem+json. The first stage that finds a "
            "handler answers; the others are never asked.", fontsize=10, color="#1d2f40", va="center")
    stages = "; ".join(
        f"{stage.split('  ', 1)[1]}: " + ", ".join(f"{r.replace(chr(10), ' ')} goes to {h.replace(chr(10), ' ')}"
                                                   for r, h, _ in entries)
        for stage, _, entries in rows)
    return picture(fig, "A table of the order in which Flask looks for an error handler, with step 05's "
                        f"handler at each stage. {stages}. The first three stages answer with "
                        "application/problem+json (green); the fourth, no handler found, is where step 04's "
                        "errors ended (red).")
