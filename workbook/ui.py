"""Terminal output that reads well everywhere: colours only on a terminal (click strips them
otherwise), and plain ASCII symbols where the console cannot print Unicode (old Windows code
pages, redirected output)."""

from __future__ import annotations

import sys
import textwrap

import click


def _can_print(text: str) -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


UNICODE = _can_print("✓✗→█░—·")
OK = "✓" if UNICODE else "OK"
FAIL = "✗" if UNICODE else "X"
ARROW = "→" if UNICODE else "->"
DASH = "—" if UNICODE else "-"
DOT = "·" if UNICODE else "-"


def safe(text: str) -> str:
    """Text from the course (which may hold Unicode) made printable on this console."""
    if UNICODE or _can_print(text):
        return text
    return text.encode(getattr(sys.stdout, "encoding", None) or "ascii", "replace").decode(
        getattr(sys.stdout, "encoding", None) or "ascii"
    )


def echo(text: str = "", **style) -> None:
    click.secho(safe(text), **style)


def ok(text: str) -> None:
    echo(f"  {OK} {text}", fg="green")


def fail(text: str) -> None:
    echo(f"  {FAIL} {text}", fg="red")


def note(text: str, indent: int = 4) -> None:
    for line in textwrap.wrap(text, width=96 - indent) or [""]:
        echo(" " * indent + line)


def command(text: str) -> str:
    return click.style(text, bold=True)


def progress_bar(done: int, total: int, width: int = 24) -> str:
    filled = round(width * done / total) if total else 0
    if UNICODE:
        return "█" * filled + "░" * (width - filled)
    return "#" * filled + "." * (width - filled)
