"""Intake: what instructors hand the grader, turned into one plain copy of each student's steps.

An entry of the submissions folder is one student:
- a clone of the repository (its ``steps/`` is graded, never its ``solutions/``) or a copy of
  ``steps/`` (the step folders themselves);
- a ``.zip`` of either, as an LMS exports it, from any OS (Windows zips use backslashes and hold
  directory entries); a zip holding one top folder (``repo-main/``) is read from that folder;
- an LMS export's folder per student holding the uploaded zip (at most one level down).

Every student gets an id that is unique and ASCII (``zoe-1a2b3c``: the name without accents, and
a hash of the entry's full name), so Zoë and Zoé, or ``sam/`` beside ``sam.zip``, never collide;
the gradebook keeps the real name too.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

REFUSED_NAMES = {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "sitecustomize.py", "usercustomize.py"}
MAX_FILE_BYTES = 2 * 1024**2
MAX_ZIP_BYTES = 200 * 1024**2
MAX_ZIP_FILES = 20_000
MAX_STEP_FILES = 2_000


@dataclass(frozen=True)
class Entry:
    path: Path  # the folder or zip to read
    name: str  # the student's name as the instructor gave it (the entry's name, Unicode kept)
    id: str  # unique, ASCII, stable: used for file names and caches


def student_id(entry_name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", entry_name).encode("ascii", "ignore").decode("ascii")
    stem = ascii_name[:-4] if ascii_name.lower().endswith(".zip") else ascii_name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:40] or "student"
    digest = hashlib.sha256(unicodedata.normalize("NFC", entry_name).encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"


def display_name(entry_name: str) -> str:
    return entry_name[:-4] if entry_name.lower().endswith(".zip") else entry_name


def _lms_zip(folder: Path) -> Path | None:
    """The one zip an LMS export's per-student folder holds (at most one level down), if that is all it is."""
    try:
        return _find_lms_zip(folder)
    except OSError:  # an unreadable folder: graded (as nothing) like any other, never fatal
        return None


def _find_lms_zip(folder: Path) -> Path | None:
    if (folder / "steps").is_dir() or any(p.is_dir() and p.name.startswith("step") for p in folder.iterdir()):
        return None
    zips = [p for p in folder.glob("*.zip") if p.is_file() and not p.is_symlink()]
    zips += [p for d in folder.iterdir() if d.is_dir() and not d.is_symlink()
             for p in d.glob("*.zip") if p.is_file() and not p.is_symlink()]
    return zips[0] if len(zips) == 1 else None


def discover(submissions: Path) -> list[Entry]:
    """One entry per student, each with an id no other entry has (a suffix settles the rare tie)."""
    entries: list[Entry] = []
    taken: set[str] = set()
    for p in sorted(submissions.iterdir()):
        if p.name.startswith(".") or p.is_symlink():
            continue
        if not (p.is_dir() or (p.is_file() and p.name.lower().endswith(".zip"))):
            continue
        sid, n = student_id(p.name), 1
        while sid in taken:  # e.g. the same name spelt in NFC and in NFD
            n += 1
            sid = f"{student_id(p.name)}-{n}"
        taken.add(sid)
        entries.append(Entry((_lms_zip(p) or p) if p.is_dir() else p, display_name(p.name), sid))
    return entries


def unzip_safely(archive: Path, into: Path, notes: list[str]) -> None:
    """Extract regular files only: no path leaving `into` (zip slip), no links, no oversized archive.
    Backslashes are separators (Windows), directory entries are skipped, a bad entry costs only itself."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_FILES:
            notes.append(f"the zip holds {len(infos)} entries; only the first {MAX_ZIP_FILES} were read")
            infos = infos[:MAX_ZIP_FILES]
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            mode = info.external_attr >> 16
            if name.endswith("/") or info.is_dir() or info.external_attr & 0x10 or stat.S_ISDIR(mode):
                continue
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]) or stat.S_ISLNK(mode):
                notes.append(f"refused a zip entry that points outside the submission: {name!r}")
                continue
            if not parts:
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES or info.file_size > MAX_FILE_BYTES:
                notes.append(f"skipped {name!r}: the zip is too large")
                continue
            target = into.joinpath(*parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
                notes.append(f"could not extract {name!r} ({type(exc).__name__})")


def _holds_steps(folder: Path, slugs: set[str]) -> bool:
    return folder.is_dir() and not folder.is_symlink() and any(
        (folder / s).is_dir() and not (folder / s).is_symlink() for s in slugs)


def find_steps_root(base: Path, slugs: set[str], from_zip: bool = False) -> Path | None:
    """Where this submission keeps its steps: ``base/steps`` (a clone) or ``base`` (a copy of steps/).
    A zip may wrap either in one top folder. Nothing else: never ``solutions/``, never a sibling."""
    candidates = [base / "steps", base]
    if from_zip:
        tops = [d for d in base.iterdir() if not d.name.startswith(("__MACOSX", "."))] if base.is_dir() else []
        if len(tops) == 1 and tops[0].is_dir() and not tops[0].is_symlink():
            candidates += [tops[0] / "steps", tops[0]]
    for candidate in candidates:
        if _holds_steps(candidate, slugs):
            return candidate
    return None


def copy_steps(root: Path, dest: Path, steps, notes: list[str]) -> None:
    """Copy the step folders' plain files; leave out anything that could reach the grader's pytest."""
    for step in steps:
        src = root / step.slug
        if not src.is_dir() or src.is_symlink():
            notes.append(f"{step.slug} is missing: 0 points for step {step.number}")
            continue
        copied = 0
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if path.is_symlink() or not path.is_file() or "__pycache__" in rel.parts:
                continue
            if any(part.startswith(".") for part in rel.parts):
                continue
            if path.name in REFUSED_NAMES or path.suffix == ".pth":
                notes.append(f"left out {step.slug}/{rel.as_posix()} (not part of an exercise)")
                continue
            if path.stat().st_size > MAX_FILE_BYTES:
                notes.append(f"left out {step.slug}/{rel.as_posix()}: larger than 2 MB")
                continue
            copied += 1
            if copied > MAX_STEP_FILES:
                notes.append(f"{step.slug}: more than {MAX_STEP_FILES} files; the rest were left out")
                break
            target = dest / step.slug / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def content_hash(folder: Path) -> str:
    """The hash of a folder's files (relative names and bytes): what identical submissions share."""
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def step_hashes(root: Path, steps) -> dict[str, str]:
    """slug -> content hash, for the step folders present under root."""
    return {s.slug: content_hash(root / s.slug) for s in steps if (root / s.slug).is_dir()}
