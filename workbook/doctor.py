"""``python -m workbook doctor``: is this machine ready for the course? Each problem comes with
its fix. Trainers send it to learners a week before a workshop."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from . import state, ui
from .course import REPO, SOLUTIONS, STEPS, load

SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))
REQUIREMENTS = REPO / "requirements.txt"
INSTALL = "python -m pip install -r requirements.txt"


def pinned_requirements(path: Path = REQUIREMENTS) -> list[tuple[str, str, str]]:
    """(name, version, marker) for every ``name==version`` line of requirements.txt."""
    pins = []
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^;\s]+)\s*(?:;\s*(.*))?$", line)
        if match:
            pins.append((match.group(1), match.group(3), (match.group(4) or "").strip()))
    return pins


def _marker_applies(marker: str) -> bool:
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # packaging comes with pytest; without it, assume the pin applies
        return True
    return Marker(marker).evaluate()


def run_checks() -> int:
    """Print one line per check; return the number of problems (warnings do not count)."""
    problems = 0

    def bad(text: str, fix: str) -> None:
        nonlocal problems
        problems += 1
        ui.fail(text)
        ui.note(f"Fix: {fix}", indent=6)

    def warn(text: str, fix: str = "") -> None:
        ui.echo(f"  ! {text}", fg="yellow")
        if fix:
            ui.note(fix, indent=6)

    ui.echo("Python", bold=True)
    version = sys.version_info[:2]
    shown = ".".join(map(str, sys.version_info[:3]))
    if version in SUPPORTED_PYTHONS:
        ui.ok(f"Python {shown} ({sys.executable})")
    else:
        bad(f"Python {shown}: the course supports 3.11, 3.12 and 3.13",
            "install Python 3.12 or 3.13 from python.org (or your package manager), then make a new "
            "virtual environment with it and install the requirements there.")
    if sys.prefix == sys.base_prefix:
        warn("not in a virtual environment", "Recommended: python -m venv .venv, activate it, then " + INSTALL)
    else:
        ui.ok(f"virtual environment: {sys.prefix}")

    ui.echo("Packages (requirements.txt)", bold=True)
    wrong = []
    for name, wanted, marker in pinned_requirements():
        if not _marker_applies(marker):
            continue
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name} is not installed (want {wanted})")
            continue
        if have != wanted:
            wrong.append(f"{name} {have} is installed, the course is written for {wanted}")
    if wrong:
        for line in wrong:
            ui.fail(line)
        problems += 1
        ui.note(f"Fix: {INSTALL}", indent=6)
    else:
        ui.ok("every pinned package is installed at its pinned version")

    ui.echo("Jupyter", bold=True)
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
        if "python3" in specs:
            ui.ok(f"Python kernel for the notebooks: {specs['python3']}")
        else:
            bad("no python3 Jupyter kernel", "python -m ipykernel install --user")
    except Exception as exc:  # noqa: BLE001 - any failure here means "no kernel"
        bad(f"Jupyter is not usable ({type(exc).__name__})", INSTALL)

    ui.echo("The course", bold=True)
    course = load()
    missing = [s.slug for s in course.steps if not (STEPS / s.slug).is_dir()]
    if missing:
        bad(f"missing exercise folders: {', '.join(missing)}", "python -m workbook reset N (for each missing step)")
    else:
        ui.ok(f"{len(course.steps)} steps, exercise folders present")
    try:
        from .loader import StepTarget

        with tempfile.TemporaryDirectory() as scratch:
            app = StepTarget(course.steps[-1], SOLUTIONS).create_app(
                {"JWT_SECRET_KEY": os.urandom(32).hex(), "DATABASE": str(Path(scratch) / "d.sqlite"),
                 "TESTING": True}
            )
            status = app.test_client().get("/health").status_code
        if status == 200:
            ui.ok(f"the reference app of step {course.steps[-1].label} starts and answers")
        else:
            bad(f"the reference app answered {status} on /health", INSTALL)
    except Exception as exc:  # noqa: BLE001
        bad(f"the reference app does not start: {type(exc).__name__}: {exc}", INSTALL)
    try:
        probe = state.state_dir()
        probe.mkdir(parents=True, exist_ok=True)
        (probe / ".write-test").write_text("ok")
        (probe / ".write-test").unlink()
        ui.ok("can save progress in .workbook/")
    except OSError as exc:
        bad(f"cannot write .workbook/ ({exc})", "clone the repository into a folder you own")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 5000))
            ui.ok("port 5000 is free for `python -m workbook run`")
        except OSError:
            warn("port 5000 is in use (macOS: the AirPlay Receiver)",
                 "use `python -m workbook run N --port 5001`")

    ui.echo("Optional: several processes (step 04; Linux and macOS)", bold=True)
    if os.name == "nt":
        warn("gunicorn and redis-server do not run on Windows: the multi-process part of step 04 "
             "is shown in its notebook; use WSL to run it yourself")
    else:
        if shutil.which("redis-server"):
            ui.ok(f"redis-server: {shutil.which('redis-server')}")
        else:
            warn("redis-server not found (only for step 04's shared rate-limit counters)",
                 "Debian/Ubuntu: sudo apt-get install redis-server · macOS: brew install redis")
        if shutil.which("gunicorn") or importlib.util.find_spec("gunicorn"):
            ui.ok("gunicorn is installed")
        else:
            warn("gunicorn not installed", INSTALL)
    return problems
