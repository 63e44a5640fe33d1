"""Notebook 03 (Input validation): apps configured like a server, raw POSTs, one-line answers, pictures."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path

from .common import blank_figure, new_figure, picture


def settings(workdir: Path, name: str, **overrides) -> dict:
    """A fresh configuration: a random key and a new SQLite file in workdir. Cheap hashing only
    keeps the notebook fast; a real server keeps the defaults (argon2id 64 MiB, 3 passes, 4 lanes)."""
    return {"JWT_SECRET_KEY": secrets.token_hex(32), "DATABASE": str(Path(workdir) / f"{name}.sqlite"),
            "TESTING": True, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8, "ARGON2_PARALLELISM": 1,
            **overrides}


def like_a_server(app):
    """Answer an unhandled exception with 500, as a server does (the app must be built with TESTING
    and PROPAGATE_EXCEPTIONS off), and keep a one-line summary of each exception for the notebook."""
    from flask import got_request_exception

    app.logger.disabled = True  # no traceback on stderr: the notebook prints the summary
    app.extensions["server_log"] = []
    got_request_exception.connect(
        lambda sender, exception, **extra: sender.extensions["server_log"].append(
            f"{type(exception).__name__}: {exception}"),
        app, weak=False)
    return app


def post(app, body, path="/register", content_type="application/json"):
    """POST `body` (the raw text or bytes) to the app in this process; return the response, with
    `.logged`: what the server logged while handling it."""
    log = app.extensions.setdefault("server_log", [])
    seen = len(log)
    response = app.test_client().post(path, data=body, content_type=content_type)
    response.logged = log[seen:]
    return response


def show(response) -> str:
    """One line: the status, the JSON answer (or its media type), and the server log if any."""
    answer = (json.dumps(response.get_json(), ensure_ascii=False) if response.is_json
              else f"({response.mimetype})")
    line = f"{response.status_code} {answer}"
    for entry in response.logged:
        line += f"\n    server log: {entry}"
    return line


def brief(response, status_only: bool = False) -> str:
    """The status, and why: the fields a 400 names, or the exception behind a 500."""
    if response.logged:
        return f"**{response.status_code}** {response.logged[-1].split(':')[0]}"
    body = response.get_json(silent=True) or {}
    if "errors" in body and not status_only:
        return f"{response.status_code} ({', '.join(sorted(body['errors']))})"
    return str(response.status_code)


STAGES = [  # (the check, how step 03 does it, the answer when it fails)
    ("raw request: headers and bytes", "", ""),
    ("Content-Type: application/json?", "request.is_json", "415 Unsupported Media Type"),
    ("size within the cap?", "MAX_CONTENT_LENGTH = 16 KiB, from Content-Length",
     "413, before the body is read"),
    ("parse the JSON", "request.get_json()",
     "400 malformed or not UTF-8\n400 nested too deeply (RecursionError)"),
    ("a JSON object?", "schema.load(...)", '400 errors._schema:\n"Invalid input type."'),
    ("the schema's fields", "types, unknown fields, canonical form,\nallowlist, length, common list",
     "400 errors.<field>: [messages]"),
    ("the view", "only the validated, canonical data", ""),
]


def pipeline_picture(stages=STAGES):
    """Step 03's validation pipeline: each stage, and the refusal when it fails."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = blank_figure(11, 7.2, (0, 11), (0, 7.2))
    step = 1.0
    for i, (title, how, refusal) in enumerate(stages):
        y = 6.3 - i * step
        last = i == len(stages) - 1
        colour = "#d5ecd4" if last else ("#eef3f8" if i == 0 else "#d6e6f5")
        ax.add_patch(FancyBboxPatch((0.4, y), 6.0, 0.68, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=colour, edgecolor="#34506b", linewidth=1.2))
        ax.text(0.6, y + (0.47 if how else 0.34), title, fontsize=11.5, fontweight="bold",
                va="center", color="#1d2f40")
        if how:
            ax.text(0.6, y + 0.2, how.replace("\n", " "), fontsize=8.6, family="monospace",
                    va="center", color="#34506b")
        if not last:
            ax.add_patch(FancyArrowPatch((3.4, y - 0.01), (3.4, y - step + 0.69), arrowstyle="-|>",
                                         mutation_scale=14, linewidth=1.3, color="#34506b"))
        if refusal:
            ax.add_patch(FancyArrowPatch((6.45, y + 0.34), (7.15, y + 0.34), arrowstyle="-|>",
                                         mutation_scale=14, linewidth=1.4, color="#c0392b"))
            ax.text(7.25, y + 0.34, refusal, fontsize=9.5, va="center", color="#7b241c", linespacing=1.3)
    ax.text(7.25, 6.64, "refused with", fontsize=10.5, fontweight="bold", va="center", color="#7b241c")
    ax.text(7.25, 0.64, "answers 201 created\nor 409 name taken", fontsize=9.5, va="center", color="#1e5a1d",
            linespacing=1.3)
    steps = "; ".join(f"{title} ({how.replace(chr(10), ' ')})" + (f", else {refusal.replace(':' + chr(10), ': ').replace(chr(10), ' or ')}"
                                                                    if refusal else "")
                      if how else title for title, how, refusal in stages)
    return picture(fig, "A top-to-bottom pipeline of checks for POST /register, each refusing with its "
                        f"own answer: {steps}. The view answers 201 created or 409 name taken.")


def common_lengths_chart(common, minimum: int):
    """Bars, log scale: how many passwords of the common list have each length; the minimum marked."""
    lengths = Counter(len(p) for p in common)
    long_enough = sum(1 for p in common if len(p) >= minimum)
    xs = list(range(min(min(lengths), minimum), max(lengths) + 1))
    fig, ax = new_figure(10.5, 4.2, axes=(0.08, 0.15, 0.9, 0.75))
    ax.bar(xs, [lengths.get(x, 0) for x in xs], color=["#9fb7cc" if x < minimum else "#c0392b" for x in xs])
    ax.set_yscale("log")
    ax.axvline(minimum - 0.5, color="#1d2f40", linestyle="--", linewidth=1.4)
    everything = long_enough == len(common)
    note = (f"all {len(common):,} are {minimum} characters or longer:\nwhat the length rule lets through" if everything
            else f"{long_enough} of {len(common):,} passwords are this long or longer")
    if everything:  # the text at the right, above the short tail
        ax.text(xs[-1], max(lengths.values()) * 0.9, f"{minimum} characters: NIST's minimum (dashed)\n{note}",
                fontsize=10, va="top", ha="right", color="#1d2f40")
    else:
        ax.text(minimum - 0.3, 2500, f"{minimum} characters: NIST's minimum\n{note}", fontsize=10, va="top",
                color="#1d2f40")
    ax.set_xlabel("password length (characters)")
    ax.set_ylabel("passwords on the list (log scale)")
    ax.set_title("The common-password list, by length", fontsize=12)
    ax.set_xticks(xs[::2])
    peak = max(lengths, key=lengths.get)
    if everything:
        return picture(fig, f"Bar chart, log scale, of the {len(common):,} passwords on the common list by length, "
                            f"{min(lengths)} to {max(lengths)} characters; most are {peak} characters long, just at "
                            f"NIST's minimum of {minimum} (dashed line). Every bar is at or past the line: the list "
                            f"holds only passwords the length rule lets through.")
    return picture(fig, f"Bar chart, log scale, of the {len(common):,} passwords on the common list by "
                        f"length, 1 to {max(lengths)} characters; most are {peak} characters long. A dashed "
                        f"line at {minimum} characters, NIST's minimum: only {long_enough} passwords (red "
                        f"bars) are that long or longer, the length rule refuses the rest (blue bars).")
