"""The learner's local state, in the git-ignored ``.workbook/`` folder of the repository.

- ``state.json``: hints revealed per exercise, the last check's verdict per step folder;
- ``dev-secret-key``: the development JWT key `workbook run` makes on first use.

Everything here is a convenience: deleting the folder loses nothing but progress marks.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from .course import REPO, Step
from .exercises import starter_files, step_files



def state_dir() -> Path:
    """``.workbook/`` in the repository; WORKBOOK_STATE_DIR moves it (the CLI's tests do)."""
    return Path(os.environ.get("WORKBOOK_STATE_DIR") or REPO / ".workbook")


def dev_key_file() -> Path:
    return state_dir() / "dev-secret-key"


def _read() -> dict:
    try:
        data = json.loads((state_dir() / "state.json").read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(data: dict) -> None:
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, folder / "state.json")


def folder_hash(folder: Path) -> str:
    """A fingerprint of a step folder's files (names and contents)."""
    digest = hashlib.sha256()
    for rel in step_files(folder):
        digest.update(rel.as_posix().encode() + b"\0" + (folder / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def is_untouched_starter(step: Step, folder: Path) -> bool:
    """True when the learner's folder is exactly the generated starter."""
    expected = starter_files(step)
    actual = {rel.as_posix(): (folder / rel).read_bytes() for rel in step_files(folder)}
    return actual == expected


def _key(folder: Path) -> str:
    try:
        return folder.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return folder.resolve().as_posix()


def record_check(folder: Path, passed: bool, failing: list[str], unverified: list[str] | None = None) -> None:
    """Remember a verdict for the folder as it is now; ``unverified``: checks that could not run here.

    The fingerprint of the last version that passed is kept too, so that `status` can tell a step
    that was done and has changed since from one that never passed."""
    data = _read()
    checks = data.setdefault("checks", {})
    previous = checks.get(_key(folder)) or {}
    digest = folder_hash(folder)
    checks[_key(folder)] = {
        "hash": digest, "passed": passed, "failing": failing, "unverified": list(unverified or []),
        "passed_hash": digest if passed else previous.get("passed_hash"),
    }
    _write(data)


def last_check(folder: Path) -> dict | None:
    """The last recorded verdict for this folder, if its files have not changed since."""
    entry = _read().get("checks", {}).get(_key(folder))
    if entry and entry.get("hash") == folder_hash(folder):
        return entry
    return None


def changed_since_it_passed(folder: Path) -> bool:
    """True when a version of this folder passed its check and the files are different now."""
    entry = _read().get("checks", {}).get(_key(folder)) or {}
    passed = entry.get("passed_hash")
    return bool(passed) and passed != folder_hash(folder)


def hints_seen(exercise_id: str) -> int:
    return int(_read().get("hints", {}).get(exercise_id, 0))


def set_hints_seen(exercise_id: str, count: int) -> None:
    data = _read()
    data.setdefault("hints", {})[exercise_id] = count
    _write(data)


def dev_secret_key() -> tuple[str, bool]:
    """The development JWT key, made on first use: (key, made_now)."""
    try:
        key = dev_key_file().read_text("utf-8").strip()
        if len(key) >= 64:
            return key, False
    except OSError:
        pass
    state_dir().mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    dev_key_file().write_text(key + "\n", encoding="utf-8")
    try:
        os.chmod(dev_key_file(), 0o600)  # owner only (no effect on Windows)
    except OSError:
        pass
    return key, True
