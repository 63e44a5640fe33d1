"""Notebook 06 (Authorization): apps, the security log in a list, requests, and the two pictures."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

from .common import call, masked_with, new_figure, picture, shown_with

PASSWORDS = {"alice": "violet kettle under a quiet moon", "bob": "correct horse battery staple",
             "mallory": "a quiet evening of lockpicking"}


def settings(workdir: Path, name: str, **overrides) -> dict:
    """A fresh configuration: a random key and a new SQLite file. Cheap hashing and no rate limits
    only keep the notebook fast; a server keeps the defaults."""
    return {"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(Path(workdir) / f"{name}.sqlite"),
            "TESTING": True, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1,
            "RATELIMIT_ENABLED": False, **overrides}


class _KeepLines(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def emit(self, record):
        self.lines.append(record.getMessage())


def keep_security_log() -> list[str]:
    """The apps' security events (the "api" logger, on stderr if nobody configured logging) to a
    list, which is returned: the cells print the lines they need."""
    lines: list[str] = []
    logger = logging.getLogger("api")
    logger.handlers[:] = [_KeepLines(lines)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return lines


def log_since(security_log: list[str], mark: int) -> list[str]:
    """The security log lines written since len(security_log) was `mark`, request ids masked."""
    return [re.sub(r"request_id=\w+", "request_id=<id>", line) for line in security_log[mark:]]


# The values that change on every run, and what they are shown as.
PLACEHOLDERS = {"request_id": "<request id>", "created_at": "<time>", "updated_at": "<time>"}


def masked(value):
    """A JSON answer with the values that change on every run replaced by placeholders."""
    return masked_with(PLACEHOLDERS, value)


def show(response) -> str:
    """The status and the JSON answer, masked ("" for an empty body)."""
    return shown_with(PLACEHOLDERS, response)


def login(app, user: str, passwords=PASSWORDS) -> str:
    response = call(app, "POST", "/login", body={"username": user, "password": passwords[user]})
    assert response.status_code == 200, show(response)
    return response.get_json()["access_token"]


KINDS = {  # status: (what it means here, colour)
    200: ("allowed", "#bfe3c6"), 201: ("allowed", "#bfe3c6"),
    400: ("field refused", "#ddd0ee"), 401: ("who are you?", "#dde3ea"),
    403: ("forbidden", "#f2b8b2"), 404: ("as if absent", "#f9d9a6"),
}


def matrix_picture(actions: list[str], actors: list[str], matrix: dict):
    """A grid of status codes: one row per action, one column per actor, coloured by meaning."""
    from matplotlib.patches import Patch, Rectangle

    fig, ax = new_figure(10.5, 5.6, axes=(0.19, 0.12, 0.79, 0.7))
    for row, label in enumerate(actions):
        for col, actor in enumerate(actors):
            status = matrix[label, actor]
            meaning, colour = KINDS[status]
            ax.add_patch(Rectangle((col, row), 1, 1, facecolor=colour, edgecolor="white", linewidth=3))
            ax.text(col + 0.5, row + 0.42, str(status), ha="center", va="center", fontsize=13,
                    fontweight="bold", color="#1d2f40")
            ax.text(col + 0.5, row + 0.75, meaning, ha="center", va="center", fontsize=8.5, color="#34506b")
    ax.set_xlim(0, len(actors))
    ax.set_ylim(len(actions), 0)
    ax.xaxis.tick_top()
    ax.set_xticks([col + 0.5 for col in range(len(actors))],
                  [{"anonymous": "anonymous\n(no token)", "root": "root\n(admin)"}.get(a, a) for a in actors],
                  fontsize=10.5)
    ax.set_yticks([row + 0.5 for row in range(len(actions))], actions, fontsize=10.5)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    handles = [Patch(facecolor=colour, label=f"{meaning} ({', '.join(str(s) for s in KINDS if KINDS[s][0] == meaning)})")
               for meaning, colour in dict(KINDS.values()).items()]
    fig.legend(handles=handles, loc="lower center", ncol=5, frameon=False, fontsize=9)
    fig.suptitle("Step 06: who may do what (status codes from live calls)", x=0.19, y=0.97, ha="left", fontsize=12)
    rows = "; ".join(f"{label}: " + ", ".join(f"{actor} {matrix[label, actor]} ({KINDS[matrix[label, actor]][0]})"
                                              for actor in actors) for label in actions)
    return picture(fig, f"A grid of status codes from live calls, one row per action and one column per actor "
                        f"({', '.join(actors)}), each cell coloured by its meaning. {rows}.")


def demotion_picture(lifetime_minutes: float, after: dict[str, int], demoted_at: float = 4):
    """Two bars over a token's lifetime: the role read from the database, and the role in the token."""
    fig, ax = new_figure(10.5, 3.6, axes=(0.22, 0.2, 0.74, 0.62))
    rows = [("role from the database\n(step 06)", after["database"]), ("role in the token", after["token"])]
    texts = []
    for y, (label, status) in enumerate(rows):
        ax.barh(y, demoted_at, left=0, height=0.5, color="#bfe3c6", edgecolor="#1f6f43")
        ax.text(demoted_at / 2, y, "admin", ha="center", va="center", fontsize=10)
        still_admin = status < 400
        ax.barh(y, lifetime_minutes - demoted_at, left=demoted_at, height=0.5,
                color="#f2b8b2" if still_admin else "#dde3ea", edgecolor="#7b241c" if still_admin else "#5d6d7e")
        text = (f"still admin after the demotion: {status} on every admin call" if still_admin
                else f"demoted from the next request: {status}")
        texts.append(f"{label.splitlines()[0]}: {text}")
        ax.text((demoted_at + lifetime_minutes) / 2, y, text, ha="center", va="center", fontsize=10,
                color="#7b241c" if still_admin else "#1d2f40", fontweight="bold" if still_admin else None)
    ax.axvline(demoted_at, color="#b9770e", linestyle="--", linewidth=1.5)
    ax.text(demoted_at + 0.15, 1.45, "flask set-role root user", ha="left", fontsize=9.5, color="#b9770e")
    ax.axvline(lifetime_minutes, color="#1d2f40", linestyle=":", linewidth=1.5)
    ax.text(lifetime_minutes - 0.15, 1.45, "the token expires", ha="right", fontsize=9.5, color="#1d2f40")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=10)
    ax.set_ylim(-0.5, 1.7)
    ax.set_xlim(0, lifetime_minutes + 1)
    ax.set_xlabel("minutes after root logged in")
    ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("A demotion, seen by each design (status codes from the live calls above)",
                 x=0.22, ha="left", fontsize=11.5)
    return picture(fig, f"A timeline of root's {lifetime_minutes:.0f}-minute token, with two bars: admin until "
                        f"the demotion (flask set-role root user, at minute {demoted_at:g}), then "
                        + "; ".join(texts) + ". A dotted line marks the token's expiry.")
