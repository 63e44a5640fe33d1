"""The OS sandbox every process that runs a student's code runs in (Linux, bubblewrap).

One *sandbox spec* per student (a small JSON file in the grader's own temporary folder, named by
``WORKBOOK_SANDBOX_SPEC`` in the grading pytest process) says what that student's sandboxes see.
``wrap(argv, spec)`` turns a command into ``bwrap ... -- argv``; ``preexec(spec)`` applies the
limits in the child before it becomes bwrap. What a sandbox gets:

- its own user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``): its processes
  die with it (``--die-with-parent``, PID namespace), it sees no other process, its network is a
  loopback of its own; no capabilities (``--cap-drop ALL``), no nested user namespaces;
- read-only: /usr (and /bin, /lib… as links), the few /etc files Python needs, the interpreter
  (``sys.base_prefix``) and the venv (``sys.prefix``), and the app host's own few files (a copy
  made for the run, see ``stage_host``) — never the grader's repository, ``solutions/``,
  ``tests/``, the output folder, the hidden tests or another student;
- the student's copy of their steps, read-only, at the same path as outside;
- writable: a private tmpfs /tmp of ``TMP_BYTES``, and the grading run's pytest temporary folder
  for this student (the tests hand its paths to the app: SQLite files, server logs);
- a scrubbed environment (``--clearenv``, then PATH, HOME, LANG and the command's FLASK_* only);
- limits that hold as root too: address space, CPU seconds, file size, open files (rlimits,
  inherited by every process of the sandbox), and a process count: a cgroup ``pids.max`` shared
  by all of that student's sandboxes when the grader can make cgroups (root), RLIMIT_NPROC when
  it runs as a normal user (there the kernel enforces it; for root it does not).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

MEMORY_BYTES = 1024**3  # address space of each process of a sandbox
MEMORY_TOTAL = 2 * 1024**3  # all the processes of one student (cgroup memory, where there is one)
CPU_SECONDS = 120  # CPU time of each process
FILE_BYTES = 32 * 1024**2  # the largest file a sandbox may write
OPEN_FILES = 256
PROCESSES = 128  # processes and threads of one student, all sandboxes together
TMP_BYTES = 64 * 1024**2  # the private /tmp
WRITTEN_BYTES = 128 * 1024**2  # what a student's run may leave in its writable folder

ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "hosts", "nsswitch.conf",
             "passwd", "group", "mime.types", "alternatives")

HELP = ("Grading runs every student's code in a bubblewrap sandbox (Linux): "
        "`sudo apt-get install bubblewrap` (Debian/Ubuntu) or `sudo dnf install bubblewrap`. "
        "On macOS or Windows, grade in a Linux VM or container that allows user namespaces "
        "(e.g. `docker run --privileged`), or in GitHub Actions (.github/workflows/grade-class.yml). "
        "To grade code you trust without isolation (your own, the course's solutions), pass --trusted.")


class IsolationUnavailable(RuntimeError):
    """bubblewrap cannot run here: the message says why and how to get isolation."""


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@functools.cache
def probe() -> str:
    """"" when a sandbox can start here; otherwise why not, and what to do (cached)."""
    if not sys.platform.startswith("linux"):
        return f"there is no bubblewrap on {sys.platform}. {HELP}"
    if os.environ.get("WORKBOOK_NO_BWRAP") == "1":  # tests simulate a machine without it
        return f"bubblewrap is switched off (WORKBOOK_NO_BWRAP=1). {HELP}"
    exe = shutil.which("bwrap")
    if not exe:
        return f"bwrap was not found on PATH. {HELP}"
    argv = [exe, *base_args(), "--", sys.executable, "-c", "pass"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not start ({exc}). {HELP}"
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        hint = ""
        if "uid map" in err or "Permission denied" in err or "Operation not permitted" in err:
            hint = (" Unprivileged user namespaces are restricted here. On Ubuntu 23.10+ (GitHub's "
                    "ubuntu-24.04 runners) AppArmor blocks them: run the grader as root (`sudo -E`), or "
                    "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or give bwrap an "
                    "AppArmor profile; in a container, allow user namespaces (`--privileged` or a seccomp "
                    "profile that permits clone(CLONE_NEWUSER)).")
        return f"bwrap cannot create a sandbox here: {err}.{hint} {HELP}"
    if is_root() and cgroup_root() is None:
        return ("the grader runs as root but cannot create a cgroup (no writable pids controller under "
                "/sys/fs/cgroup), and RLIMIT_NPROC does not bind root: a fork bomb could not be stopped. "
                "Run the grader as a normal user, or where root can create cgroups. " + HELP)
    return ""


def require() -> None:
    problem = probe()
    if problem:
        raise IsolationUnavailable(f"Refusing to grade untrusted code without isolation: {problem}")


def interpreter_paths() -> list[str]:
    """What the sandbox's Python needs to see: the venv and the interpreter it was made from."""
    paths = []
    for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))):
        real = os.path.realpath(p)
        for q in (p, real):
            if q and q not in paths and not q.startswith("/usr/") and q != "/usr":
                paths.append(q)
    return paths


@functools.cache
def _supports(option: str) -> bool:
    """Whether this bwrap knows an option (--disable-userns and tmpfs --size came with 0.8.0)."""
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        return option in subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def base_args() -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr"]
    if _supports("--disable-userns"):  # no user namespace inside the sandbox (bwrap >= 0.8)
        args.insert(2, "--disable-userns")
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # A size-capped /tmp where bwrap can (>= 0.8); older ones: RLIMIT_FSIZE per file and the cgroup's memory.
    args += [*(["--size", str(TMP_BYTES)] if _supports("--size") else []), "--tmpfs", "/tmp"]
    # After /tmp: a venv made under /tmp (as CI's `mktemp -d` does) is mounted over the empty tmpfs,
    # not hidden by it (bwrap applies its mounts in order).
    for path in interpreter_paths():
        args += ["--ro-bind", path, path]
    return args


SAFE_ENV = ("PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONIOENCODING")


def _within(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def wrap(argv: list[str], spec: dict, env: dict[str, str] | None = None, cwd: str | None = None) -> list[str]:
    """``bwrap <the student's sandbox> -- argv``: argv runs with only the spec's folders in view."""
    args = [shutil.which("bwrap") or "bwrap", *base_args()]
    # A venv made inside the course's repository (or beside the submissions) would bring them into
    # view with it: an empty tmpfs goes over each of those folders.
    for hidden in spec.get("hide", []):
        if any(_within(hidden, bound) for bound in [*interpreter_paths(), "/usr"]):
            args += ["--tmpfs", hidden]
    args += ["--ro-bind", spec["host_dir"], spec["host_dir"]]
    args += ["--ro-bind", spec["root"], spec["root"]]
    for path in spec.get("writable", []):
        args += ["--bind", path, path]
    args += ["--chdir", cwd or spec["root"], "--clearenv"]
    clean = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
             "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "TMPDIR": "/tmp"}
    for key, value in (env or {}).items():
        if key.startswith("FLASK_") or key in SAFE_ENV:
            clean[key] = value
    for key, value in clean.items():
        args += ["--setenv", key, value]
    return [*args, "--", *argv]


def preexec(spec: dict):
    """The function that runs in the child before exec: rlimits, and the student's cgroup."""
    cgroup = spec.get("cgroup")
    # A normal user: RLIMIT_NPROC counts all of the user's processes (user namespaces included), so
    # the cap is what runs now plus a margin, counted here, before the fork.
    nproc = None if is_root() else _user_processes() + 4 * PROCESSES

    def limit() -> None:
        import resource

        if cgroup:
            for path in cgroup:
                with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                    fh.write(str(os.getpid()))
        for kind, value in ((resource.RLIMIT_AS, MEMORY_BYTES), (resource.RLIMIT_CPU, CPU_SECONDS),
                            (resource.RLIMIT_FSIZE, FILE_BYTES), (resource.RLIMIT_NOFILE, OPEN_FILES),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(kind, (value, value))
        if nproc is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            cap = nproc if hard == resource.RLIM_INFINITY else min(nproc, hard)
            resource.setrlimit(resource.RLIMIT_NPROC, (cap, hard))

    return limit


# Memory-backed, where there is one: a test's app creates its SQLite schema and commits on each
# write, and on a disk each commit waits for it (16 ms a commit on this machine's /tmp, 0.02 ms on
# /dev/shm: a perfect student's run made ~1,000 of them).
MEMORY_DISK = Path("/dev/shm")
MEMORY_DISK_FREE = 1024**3  # used only with this much free: room for many runs at the WRITTEN_BYTES cap


def writable_folder(cgroup: Cgroup | None) -> Path | None:
    """A fresh memory-backed folder for a run's writable files (SQLite files, server logs), or None
    (then a folder on disk). Only under a memory limit: files on a tmpfs are memory, charged to the
    cgroup of the process that writes them, so the student's memory limit bounds them too; without
    one they could fill the machine's memory (the disk's limits and the after-run size check are
    what holds there)."""
    if cgroup is None or not cgroup.bounds_memory or not os.access(MEMORY_DISK, os.W_OK):
        return None
    try:  # a container's /dev/shm may be 64 MiB: a full one would fail honest runs (a run writes ~6 MiB)
        stat = os.statvfs(MEMORY_DISK)
        if stat.f_bavail * stat.f_frsize < MEMORY_DISK_FREE:
            return None
    except OSError:
        return None
    import tempfile

    return Path(tempfile.mkdtemp(prefix="workbook-run-", dir=MEMORY_DISK))


def _user_processes() -> int:
    """Processes and threads of this user now (/proc), what RLIMIT_NPROC counts."""
    uid, count = os.getuid(), 0
    try:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry.name}/task"))
                except OSError:
                    continue
    except OSError:
        return 0
    return count


# --------------------------------------------------------------------------------------------
# cgroups: an exact process count (and memory) per student, as root
# --------------------------------------------------------------------------------------------

CGROUP_BASE = Path("/sys/fs/cgroup")


@functools.cache
def cgroup_root() -> tuple[str, str | None] | None:
    """("v2", dir) or ("v1", pids dir [, memory dir]) where we may make per-student cgroups; else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        if (CGROUP_BASE / "cgroup.controllers").is_file():  # unified hierarchy (cgroup v2)
            base = CGROUP_BASE / "workbook-grade"
            base.mkdir(exist_ok=True)
            for parent in (CGROUP_BASE, base):
                for controllers in ("+pids +memory", "+pids"):  # memory is a bonus, pids a must
                    try:
                        (parent / "cgroup.subtree_control").write_text(controllers)
                        break
                    except OSError:
                        continue
            if "pids" not in (base / "cgroup.subtree_control").read_text():
                return None
            return ("v2", str(base))
        pids = CGROUP_BASE / "pids"
        if (pids / "cgroup.procs").is_file():
            base = pids / "workbook-grade"
            base.mkdir(exist_ok=True)
            memory = CGROUP_BASE / "memory" / "workbook-grade"
            try:
                memory.mkdir(exist_ok=True)
                mem = str(memory)
            except OSError:
                mem = None
            return ("v1", str(base), mem)
    except OSError:
        return None
    return None


class Cgroup:
    """One student's cgroup(s): every sandbox of that student joins them; removed at the end."""

    def __init__(self):
        root = cgroup_root()
        self.dirs: list[Path] = []
        self.kind = root[0] if root else None
        self.bounds_memory = False  # a memory limit holds all of the student's processes (and their tmpfs files)
        if not root:
            return
        # The grader's PID in the name: sweep() (of this grader or of another one running beside it,
        # e.g. a second shard) leaves alone the cgroups of a grader that is still running.
        name = f"s-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            if root[0] == "v2":
                d = Path(root[1]) / name
                d.mkdir()
                (d / "pids.max").write_text(str(PROCESSES))
                try:
                    (d / "memory.max").write_text(str(MEMORY_TOTAL))
                    self.bounds_memory = True
                except OSError:
                    pass
                self.dirs = [d]
            else:
                d = Path(root[1]) / name
                d.mkdir()
                (d / "pids.max").write_text(str(PROCESSES))
                self.dirs = [d]
                if root[2]:
                    m = Path(root[2]) / name
                    try:
                        m.mkdir()
                        (m / "memory.limit_in_bytes").write_text(str(MEMORY_TOTAL))
                        self.dirs.append(m)
                        self.bounds_memory = True
                    except OSError:
                        pass
        except OSError:
            self.close()
            self.dirs = []
            self.bounds_memory = False

    @property
    def paths(self) -> list[str] | None:
        return [str(d) for d in self.dirs] or None

    def tripped(self) -> list[str]:
        """The limits the student's processes ran into."""
        hits = []
        for d in self.dirs:
            for name, key, label in (("pids.events", "max", "process count"),
                                     ("memory.events", "oom_kill", "memory"),
                                     ("memory.failcnt", None, "memory")):
                try:
                    text = (d / name).read_text()
                except OSError:
                    continue
                if key is None:
                    if text.strip() not in ("", "0"):
                        hits.append(label)
                    continue
                for line in text.splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == key and parts[1] != "0":
                        hits.append(label)
        return sorted(set(hits))

    def close(self) -> None:
        """Kill whatever is left in the cgroups (nothing, normally: PID namespaces) and remove them."""
        import signal
        import time

        for d in self.dirs:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.02)
            for _ in range(100):  # exiting processes leave the cgroup a moment after SIGKILL
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _owner_is_running(name: str) -> bool:
    """Whether the grader that made the cgroup ``s-<pid>-<id>`` is still running."""
    parts = name.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return False  # not named by a grader of this version: nobody to wait for
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and is someone else's
        return True
    return True


def sweep() -> None:
    """Remove the per-student cgroups of earlier runs that are empty now (one that could not be
    removed at once, e.g. a process still exiting, is removed by the next run). Never those of a
    grader still running: an empty one is a student's run about to start, and removing it made
    that student's processes fail to start (graded as 0 points, seen with two graders at once)."""
    root = cgroup_root()
    if not root:
        return
    for base in root[1:]:
        if not base:
            continue
        for d in Path(base).glob("s-*"):
            if _owner_is_running(d.name):
                continue
            try:
                if not (d / "cgroup.procs").read_text().strip():
                    d.rmdir()
            except OSError:
                pass


def write_spec(path: Path, *, root: Path, host_dir: Path, writable: list[Path], cgroup: Cgroup | None,
               events: Path, mode: str, hide: list[Path] = ()) -> dict:
    """The student's sandbox, as a file the grading pytest process reads (WORKBOOK_SANDBOX_SPEC).
    ``hide``: folders that must stay out of view even if a bound folder holds them (the repository,
    the submissions, the output)."""
    repo = Path(__file__).resolve().parent.parent.parent
    spec = {"mode": mode, "root": str(root), "host_dir": str(host_dir), "writable": [str(w) for w in writable],
            "cgroup": cgroup.paths if cgroup else None, "events": str(events),
            "hide": sorted({str(repo), *(str(Path(h).resolve()) for h in hide)})}
    path.write_text(json.dumps(spec), encoding="utf-8")
    return spec


def load_spec() -> dict | None:
    path = os.environ.get("WORKBOOK_SANDBOX_SPEC")
    if not path:
        return None
    return json.loads(Path(path).read_text("utf-8"))


def record(spec: dict | None, kind: str, detail: str) -> None:
    """Tell the grader (outside the sandbox) that this run tripped a limit: one JSON line, capped."""
    if not spec or not spec.get("events"):
        return
    try:
        with open(spec["events"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "detail": detail[:300]}) + "\n")
    except OSError:
        pass


HOST_FILES = ("__init__.py", "course.py", "course.toml", "loader.py")


def stage_host(into: Path) -> Path:
    """A read-only copy of the few files the app host needs (workbook/{course,loader}.py, course.toml,
    the host itself): what the sandbox sees of the grader, and nothing else of its repository."""
    package = Path(__file__).resolve().parent.parent
    (into / "workbook").mkdir(parents=True)
    for name in HOST_FILES:
        shutil.copyfile(package / name, into / "workbook" / name)
    shutil.copyfile(Path(__file__).with_name("host.py"), into / "workbook_host.py")
    shutil.copyfile(Path(__file__).with_name("relay.py"), into / "relay.py")
    return into  # bound read-only into every sandbox
