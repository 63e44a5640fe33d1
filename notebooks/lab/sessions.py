"""Notebook 07 (Sessions): helpers: apps in this process, masked answers, the security log kept
in a list, and the session timeline picture. Not the lesson: the notebook's cells are.

Every value that changes from run to run (tokens, request ids, token ids, times) is masked, so
that the notebook's stored outputs reproduce (nbval compares them).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from .common import call, masked_with, picture, shown_with

WORKDIR = Path(tempfile.mkdtemp(prefix="workbook-nb07-"))  # the SQLite files; removed by cleanup()

PASSWORDS = {
    "alice": "violet kettle under a quiet moon",
    "root": "correct horse battery staple, twice",
    "mallory": "a quiet evening of lockpicking",
}
NEW_PASSWORD = "a brand new passphrase after the scare"

security_log: list[str] = []


class _KeepLines(logging.Handler):
    def emit(self, record):
        security_log.append(record.getMessage())


def keep_the_security_log() -> None:
    """The apps log security events to the "api" logger (stderr by default): keep them in a list."""
    api_log = logging.getLogger("api")
    api_log.handlers[:] = [_KeepLines()]
    api_log.setLevel(logging.INFO)
    api_log.propagate = False


def log_since(mark: int, event: str | None = None) -> list[str]:
    """The security log lines since len(security_log) was `mark`, ids masked; only `event` if given."""
    lines = [re.sub(r"request_id=\w+", "request_id=<id>", line) for line in security_log[mark:]]
    lines = [re.sub(r"family='\w+'", "family='<session id>'", line) for line in lines]
    return [line for line in lines if event is None or line.startswith(event + " ")]


def settings(name: str, key: str | None = None, **overrides) -> dict:
    """A fresh configuration: a random key (unless given) and a new SQLite file in WORKDIR."""
    return {"JWT_SECRET_KEY": key or secrets.token_hex(32), "DATABASE": str(WORKDIR / f"{name}.sqlite"),
            "TESTING": True,
            # Cheap hashing and no rate limits only keep this notebook fast; a server keeps the defaults.
            "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1,
            "RATELIMIT_ENABLED": False, **overrides}


# The values that change on every run, and what they are shown as.
PLACEHOLDERS = {"request_id": "<request id>", "access_token": "<token>", "refresh_token": "<token>"}


def masked(value):
    """A JSON answer with the values that change on every run replaced by placeholders."""
    return masked_with(PLACEHOLDERS, value)


def show(response) -> str:
    """The status and the JSON answer, masked ("" for an empty body)."""
    return shown_with(PLACEHOLDERS, response)


def register(app, user):
    response = call(app, "POST", "/register", body={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 201, show(response)


def login(app, user, password=None):
    """The login's JSON answer: access_token (and, from step 07, refresh_token)."""
    response = call(app, "POST", "/login", body={"username": user, "password": password or PASSWORDS[user]})
    assert response.status_code == 200, show(response)
    return response.get_json()


def make_admin(app, user):
    result = app.test_cli_runner().invoke(args=["create-admin", user],
                                          input=f"{PASSWORDS[user]}\n{PASSWORDS[user]}\n")
    assert result.exit_code == 0, result.output


def race(app, path, token, n=8) -> list:
    """``n`` POSTs to ``path`` with one bearer token, released at the same moment (a barrier): their answers."""
    gate, answers = threading.Barrier(n), []

    def send():
        gate.wait()
        answers.append(call(app, "POST", path, token))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def claims(token) -> dict:
    """What anyone can read in a token (no key needed), with the values of this run masked."""
    import base64

    payload = token.split(".")[1]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    hidden = {"iat", "nbf", "exp", "jti", "csrf", "fam"}
    return {k: (f"<{k}>" if k in hidden else v) for k, v in data.items()}


def cleanup() -> None:
    shutil.rmtree(WORKDIR, ignore_errors=True)


# --- the picture ------------------------------------------------------------------------------

COLOURS = {"ok": "#bfe3c6", "refused": "#f2b8b2", "ended": "#dde3ea"}


def timeline(rows, title):
    """A session timeline: one lane per party, one box per request, in order, coloured by status.

    rows: [(lane, label, status)], in the order the requests were sent."""
    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # a first run may log a font cache build
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, Patch

    lanes = list(dict.fromkeys(lane for lane, _, _ in rows))
    fig = Figure(figsize=(11, 1.2 + 1.05 * len(lanes)), dpi=100)
    ax = fig.add_axes([0.13, 0.2, 0.85, 0.62])
    for i, (lane, label, status) in enumerate(rows):
        y = lanes.index(lane)
        kind = "ok" if status < 300 else "refused"
        ax.add_patch(FancyBboxPatch((i + 0.06, y - 0.33), 0.88, 0.66, boxstyle="round,pad=0.02",
                                    facecolor=COLOURS[kind], edgecolor="#34506b", linewidth=0.8))
        ax.text(i + 0.5, y - 0.08, label, ha="center", va="center", fontsize=8, color="#1d2f40")
        ax.text(i + 0.5, y + 0.2, str(status), ha="center", va="center", fontsize=10, fontweight="bold",
                color="#7b241c" if kind == "refused" else "#1d2f40")
    ax.set_xlim(0, len(rows))
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_yticks(range(len(lanes)), lanes, fontsize=10)
    ax.set_xticks([])
    ax.set_xlabel("time: one request after the other", fontsize=9)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.legend(handles=[Patch(facecolor=COLOURS["ok"], label="accepted (2xx)"),
                        Patch(facecolor=COLOURS["refused"], label="refused (4xx)")],
               loc="lower right", ncol=2, frameon=False, fontsize=9)
    fig.suptitle(title, x=0.13, ha="left", fontsize=11.5)
    steps = "; ".join(f"{lane}: {label}, {status} ({'accepted' if status < 300 else 'refused'})"
                      for lane, label, status in rows)
    return picture(fig, f"{title}. A timeline with one lane per party ({', '.join(lanes)}) and one box per "
                        f"request, in order, green when accepted and red when refused: {steps}.")
