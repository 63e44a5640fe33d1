"""Notebook 02 (Authentication with JWT): its pictures, its timing loops, small readers of the store."""

from __future__ import annotations

import base64
import json
import sqlite3
import statistics
import textwrap
import time
import warnings
from contextlib import closing

from .common import blank_figure, new_figure, picture

COLOURS = {"header": "#fb015b", "payload": "#d63aff", "signature": "#00b9f1"}  # as on jwt.io


def classic(app, method, path, body=None, token=None):
    """Send one request to the classic app; return (status, JSON body). PyJWT's warning about the
    tutorial's 19-byte key is silenced: notebook 01 showed it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InsecureKeyLengthWarning, on every encode and decode
        response = app.test_client().open(path, method=method, json=body, headers=headers)
    return response.status_code, response.get_json()


def masked(payload: dict) -> dict:
    """The payload with its time and random values replaced by placeholders (they change on every run)."""
    return {claim: "<time>" if claim in ("iat", "nbf", "exp") else
                   "<random>" if claim in ("jti", "csrf") else value
            for claim, value in payload.items()}


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_picture(token: str):
    """A token to scale (three coloured parts) and, below, what each part says once decoded."""
    from matplotlib.patches import ConnectionPatch, FancyBboxPatch, Rectangle

    parts = token.split(".")
    header, payload = (json.loads(_b64url_decode(p)) for p in parts[:2])
    signature_text = textwrap.dedent("""\
        HMAC-SHA256(
          server's key,
          header part + "." +
          payload part
        )

        {} bytes, {} characters
        only the key holder can
        compute it""").format(len(_b64url_decode(parts[2])), len(parts[2]))
    boxes = [
        ("header", "HEADER: how it is signed", json.dumps(header, indent=2)),
        ("payload", "PAYLOAD: the claims", json.dumps(masked(payload), indent=2)),
        ("signature", "SIGNATURE: integrity", signature_text),
    ]
    fig, ax = blank_figure(11, 5.0, (0, 11), (0, 5.0))
    x, strip_y, scale = 0.4, 4.15, 10.2 / len(token)
    strip_centres = []
    for (name, _, _), part in zip(boxes, parts):
        width = len(part) * scale
        ax.add_patch(Rectangle((x, strip_y), width, 0.42, facecolor=COLOURS[name], edgecolor="none"))
        ax.text(x + width / 2, strip_y + 0.21, f"{name}  ({len(part)})", ha="center", va="center",
                fontsize=8.5, color="white", fontweight="bold")
        strip_centres.append(x + width / 2)
        x += width + scale  # the "." between parts
    ax.text(0.4, 4.8, f"alice's token: {len(token)} characters, three base64url parts joined by dots",
            fontsize=11, color="#222222", va="center")
    for i, ((name, title, text), centre) in enumerate(zip(boxes, strip_centres)):
        left = 0.4 + i * 3.55
        ax.add_patch(FancyBboxPatch((left, 0.55), 3.3, 2.8, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor="white", edgecolor=COLOURS[name], linewidth=2))
        ax.text(left + 0.15, 3.1, title, fontsize=10.5, fontweight="bold", color=COLOURS[name], va="center")
        ax.text(left + 0.15, 2.85, text, fontsize=8.6, family="monospace", va="top", color="#222222")
        ax.add_artist(ConnectionPatch((centre, strip_y), (left + 1.65, 3.4), "data", "data",
                                      arrowstyle="-|>", color=COLOURS[name], linewidth=1.3))
    ax.text(0.4, 0.25, "header and payload: base64url-encoded JSON, readable by anyone.   "
            "signature: needs the key; any change to the first two parts invalidates it.",
            fontsize=9.5, color="#444444", va="center")
    claims = ", ".join(f"{k} {v}" for k, v in masked(payload).items())
    alt = (f"alice's token as a strip of {len(token)} characters in three coloured parts: header "
           f"({len(parts[0])}), payload ({len(parts[1])}), signature ({len(parts[2])}). Decoded below: "
           f"the header {json.dumps(header)}; the payload's claims: {claims}; the signature, an "
           f"HMAC-SHA256 of header and payload with the server's key, {len(_b64url_decode(parts[2]))} "
           "bytes that only the key holder can compute.")
    return picture(fig, alt)


def login_time(client, username: str, password: str) -> float:
    start = time.perf_counter()
    response = client.post("/login", json={"username": username, "password": password})
    elapsed = time.perf_counter() - start
    assert response.status_code == 401, response.get_data(as_text=True)
    return elapsed


def median_login_times(client, known_user: str, rounds: int = 5) -> dict[str, float]:
    """Median time of a failed login for an unknown user and for a wrong password, interleaved so
    that a slow moment of the machine hits both."""
    login_time(client, "mallory", "warm-up")  # the first request of a series pays for warming caches
    times = {"unknown user": [], "wrong password": []}
    for _ in range(rounds):
        times["unknown user"].append(login_time(client, "mallory", "a guess"))
        times["wrong password"].append(login_time(client, known_user, "a guess"))
    return {case: statistics.median(values) for case, values in times.items()}


def timing_chart(timings: dict[str, dict[str, float]]):
    """Grouped bars: per variant, the median failed-login time of both cases."""
    fig, ax = new_figure(9, 3.8, axes=(0.09, 0.14, 0.88, 0.72))
    bar_colours = {"unknown user": "#c0392b", "wrong password": "#34506b"}
    for group, (variant, medians) in enumerate(timings.items()):
        for offset, (case, seconds) in zip((-0.2, 0.2), medians.items()):
            ax.bar(group + offset, seconds * 1000, width=0.38, color=bar_colours[case],
                   label=case if group == 0 else None)
            ax.text(group + offset, seconds * 1000, f"{seconds * 1000:.1f} ms", ha="center", va="bottom",
                    fontsize=9)
    ax.set_xticks(range(len(timings)), list(timings))
    ax.set_ylabel("median time of a failed login (ms)")
    ax.set_title("Can a stopwatch tell an unknown user from a wrong password?", fontsize=11)
    ax.legend(loc="upper left", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    groups = []
    for variant, medians in timings.items():
        ratio = medians["wrong password"] / medians["unknown user"]
        groups.append(f"{variant}: a wrong password takes {ratio:.0f} times as long as an unknown user"
                      if ratio >= 3 else f"{variant}: both bars about level (ratio {ratio:.1f})")
    return picture(fig, "Bar chart of the median time of a failed login, an unknown user (red) beside a "
                        "wrong password (blue), for each variant. " + "; ".join(groups) + ".")


def cpu_time_per_hash(hashes) -> dict[str, float]:
    """{label: CPU seconds for one hash} for (label, one_hash, how_many_to_time) rows."""
    cpu_seconds = {}
    for label, one_hash, count in hashes:
        start = time.process_time()
        for _ in range(count):
            one_hash()
        cpu_seconds[label] = (time.process_time() - start) / count
    return cpu_seconds


def is_strong_enough(label: str) -> bool:
    """The argon2id settings at or above OWASP's minimum (m=19 MiB t=2, or an equal trade-off)."""
    return any(setting in label for setting in ("m=19 MiB", "m=46 MiB", "m=64 MiB"))


def hash_chart(cpu_seconds: dict[str, float]):
    """Horizontal bars, log scale: the CPU time of one hash, green at or above OWASP's minimum."""
    from matplotlib.patches import Patch

    fig, ax = new_figure(10, 4.3, axes=(0.36, 0.25, 0.52, 0.66))
    labels = list(cpu_seconds)[::-1]  # the most expensive on top
    values = [cpu_seconds[label] for label in labels]
    colours = ["#1f6f43" if is_strong_enough(label) else "#b03a2e" for label in labels]
    ax.barh(range(len(labels)), values, color=colours)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    for row, seconds in enumerate(values):
        ax.text(seconds * 1.3, row, f"{1 / seconds:,.0f} guesses/s per core", va="center", fontsize=9)
    ax.set_xlim(min(values) / 3, max(values) * 15)
    ax.set_xlabel("CPU time for one hash, seconds (log scale)")
    ax.set_title("What one guess costs an attacker, per core", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(handles=[Patch(color="#1f6f43", label="at or above OWASP's minimum for passwords"),
                        Patch(color="#b03a2e", label="too cheap for stored passwords")],
               loc="lower center", bbox_to_anchor=(0.62, 0.0), ncol=2, fontsize=8.5, frameon=False)  # below the axis, clear of the bars
    fast, slow = min(values), max(values)
    alt = ("Horizontal bar chart on a logarithmic scale of the CPU time of one hash, with guesses per "
           "second per core beside each bar: " + "; ".join(
               f"{label}: {1 / cpu_seconds[label]:,.0f} guesses/s ({'green' if is_strong_enough(label) else 'red'})"
               for label in cpu_seconds)
           + f". The costliest setting is about {slow / fast:,.0f} times the cheapest. Legend: green, at or "
             "above OWASP's minimum; red, too cheap for stored passwords.")
    return picture(fig, alt)


def masked_hash(stored: str) -> str:
    """'$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>' with the salt and hash replaced by their lengths."""
    parameters, salt, digest = stored.rsplit("$", 2)
    return f"{parameters}$<salt: {len(salt)} chars>$<hash: {len(digest)} chars>"


def stored_hashes(database: str) -> dict[str, str]:
    """What whoever copies the SQLite file reads: username → stored password hash."""
    with closing(sqlite3.connect(database)) as connection:
        return dict(connection.execute("SELECT username, password_hash FROM user ORDER BY id"))
