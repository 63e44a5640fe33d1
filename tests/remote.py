"""The grader's side of the app host (workbook/grading/host.py): objects shaped like a step, a
Flask app, its test client and its CLI runner, whose every call goes to the student's process.

With `--workbook-sandbox`, the tests get a RemoteStep instead of a StepTarget and run unchanged:
`make_app(...)`, `app.test_client().post(...)`, `app.config[...]`, `app.test_cli_runner()`. No
student code is ever imported into the test process. When grading (WORKBOOK_SANDBOX_SPEC names
the student's sandbox spec), the host and every process started in the student's folder run in
that student's bubblewrap sandbox (workbook/grading/bwrap.py); the answers that come back are
capped and checked (``_check_answer``): nothing the student's process sends is trusted.
"""

from __future__ import annotations

import base64
import builtins
import json
import logging
import os
import struct
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import Response
from werkzeug.test import EnvironBuilder

from workbook.course import Step
from workbook.loader import LearnerCodeError

ANSWER_TIMEOUT = float(os.environ.get("WORKBOOK_ANSWER_TIMEOUT", "20"))  # seconds for one answer
# Seconds for the host to start and say "ready", before any student code runs: the machine's time,
# not the student's, so generous (a grader with --jobs 5 on 2 busy cores took over 5 s).
STARTUP_TIMEOUT = 60.0
MAX_ANSWER = 8 * 1024**2  # bytes: a longer answer is refused unread (workbook/grading/host.py)
MAX_TEXT = 4000  # characters kept of a log message or an error message
MAX_LOGS = 200  # log records kept of one answer
MAX_HEADERS = 200  # response headers of one answer
MAX_OUTPUT = 64 * 1024  # characters kept of a CLI command's output


def sandbox_limits():  # runs in the child, before the student's code (POSIX only)
    """Resource limits for a process that runs a student's code (--trusted grading, no bwrap)."""
    import resource

    from workbook.grading import bwrap

    for limit, value in ((resource.RLIMIT_AS, bwrap.MEMORY_BYTES), (resource.RLIMIT_CPU, bwrap.CPU_SECONDS),
                         (resource.RLIMIT_FSIZE, bwrap.FILE_BYTES)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass


def _spec():
    from workbook.grading import bwrap

    return bwrap.load_spec()


def _record(kind: str, detail: str) -> None:
    from workbook.grading import bwrap

    bwrap.record(_spec(), kind, detail)


LIMIT_SIGNALS = {getattr(signal, n): n for n in ("SIGXCPU", "SIGXFSZ", "SIGKILL", "SIGSEGV") if hasattr(signal, n)}


def limit_signal(code: int | None) -> str | None:
    """The limit signal that ended a student's process, from its exit code: bwrap reports a child
    killed by signal N as 128 + N; a process started without bwrap (--trusted) as -N. (A negative
    code of a sandboxed command is bwrap itself, stopped by the tests: no limit.)"""
    if code is None:
        return None
    sandboxed = bool(_spec() and _spec()["mode"] == "bwrap")
    number = code - 128 if sandboxed and code > 128 else (-code if not sandboxed and code < 0 else None)
    return LIMIT_SIGNALS.get(number) if number else None


def _served_port(argv: list[str]) -> int | None:
    """The port a server command listens on: `flask ... run --port N`, `gunicorn --bind 127.0.0.1:N`."""
    is_flask_run = argv[1:3] == ["-m", "flask"] and "run" in argv
    is_gunicorn = argv[1:3] == ["-m", "gunicorn"] or os.path.basename(argv[0]) == "gunicorn"
    for i, arg in enumerate(argv[:-1]):
        if is_flask_run and arg in ("--port", "-p") and argv[i + 1].isdigit():
            return int(argv[i + 1])
        if is_gunicorn and arg in ("--bind", "-b") and argv[i + 1].rsplit(":", 1)[-1].isdigit():
            return int(argv[i + 1].rsplit(":", 1)[-1])
    return None


def _reverse_ports(env: dict | None) -> list[int]:
    """Ports of the grader's machine a server is told to use (FLASK_*=redis://127.0.0.1:N): relayed in."""
    import re

    ports = set()
    for key, value in (env or {}).items():
        if key.startswith("FLASK_"):
            ports.update(int(m) for m in re.findall(r"(?:127\.0\.0\.1|localhost):(\d{2,5})", str(value)))
    return sorted(ports)


def sandboxed(argv: list[str], env: dict | None, cwd: str | None):
    """(argv, env, preexec_fn, relay) to start a student's command: in their bwrap sandbox when grading
    with one (WORKBOOK_SANDBOX_SPEC), else (--trusted) as it is, with resource limits. A server
    (`flask run`, gunicorn) is wrapped in the relay (workbook/grading/relay.py): its sandbox has no
    network, the tests reach it through a unix socket; relay = (sockdir, port, reverse ports)."""
    spec = _spec()
    if spec and spec["mode"] == "bwrap":
        import tempfile

        from workbook.grading import bwrap

        relay = None
        port = _served_port(argv)
        if port is not None:
            sockdir = tempfile.mkdtemp(prefix="relay-", dir=spec["writable"][0])
            reverse = _reverse_ports(env)
            argv = [sys.executable, "-I", os.path.join(spec["host_dir"], "relay.py"), "inside", sockdir, str(port),
                    *map(str, reverse), "--", *argv]
            relay = (sockdir, port, reverse)
        return (bwrap.wrap(argv, spec, env=env, cwd=cwd), {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                bwrap.preexec(spec), relay)
    return argv, env, (sandbox_limits if os.name == "posix" else None), None


_Popen = subprocess.Popen  # the real one (install_subprocess_sandbox replaces subprocess.Popen)


class _SandboxedPopen(_Popen):
    """subprocess.Popen while grading: a process started in the student's folder (``cwd``), or
    naming it, runs in that student's sandbox — `flask routes`, `flask run`, gunicorn — whoever
    starts it."""

    def __init__(self, args, *rest, cwd=None, env=None, preexec_fn=None, **kwargs):
        spec = _spec()
        self._student = False
        relay = None
        student = spec and isinstance(args, (list, tuple)) and (
            (cwd is not None and _inside(Path(cwd), Path(spec["root"]))) or any(spec["root"] in str(a) for a in args))
        if student:
            hung = _hung_step(args)
            if hung:
                # Its create_app never returned in the app host: `flask ...` and gunicorn build the
                # same app, so they would spin until their own time-out, burning a core the whole
                # class is waiting for (~10 CPU-s a command). The verdict is the same, sooner.
                raise LearnerCodeError(f"your {hung} app did not answer within {ANSWER_TIMEOUT:.0f} s earlier in "
                                       "this check (an endless loop?), so its commands are not started either")
            args, env, preexec_fn, relay = sandboxed([str(a) for a in args],
                                                     env if env is not None else dict(os.environ), str(cwd))
            self._student = True
        try:
            super().__init__(args, *rest, cwd=cwd, env=env, preexec_fn=preexec_fn, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            if self._student:  # the machine's problem, not the student's: the run is flagged, never cached
                _record("grading", f"a command of the student's could not be started: {exc}")
            raise
        if relay:
            from workbook.grading.relay import Outside

            self._relay = Outside(*relay, process=self)

    def wait(self, timeout=None):
        code = super().wait(timeout)
        if self._student and limit_signal(code):
            _record("limit", f"a command of the student's was stopped by {limit_signal(code)}")
        return code


def _hung_step(args) -> str | None:
    """The step a command runs (`flask --app SLUG`, gunicorn's `SLUG:create_app()`) if its app hung
    in the app host earlier in this run, else None."""
    hung = set().union(*(host.hung for host in _HOSTS.values())) if _HOSTS else set()
    for arg in map(str, args):
        slug = arg.split(":", 1)[0]
        if slug in hung:
            return slug
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def install_subprocess_sandbox() -> None:
    """Route every process started in a student's folder through their sandbox (grading only)."""
    if os.environ.get("WORKBOOK_SANDBOX_SPEC") and subprocess.Popen is not _SandboxedPopen:
        subprocess.Popen = _SandboxedPopen


def _check_answer(op: str, value) -> dict:
    """The answer's schema: anything else is the student's process misbehaving."""
    if not isinstance(value, dict):
        raise ValueError("not an object")
    logs = value.get("logs", [])
    if not isinstance(logs, list):
        raise ValueError("logs is not a list")
    clean = []
    for record in logs[:MAX_LOGS]:
        if not isinstance(record, dict) or not isinstance(record.get("levelno"), int):
            raise ValueError("a malformed log record")
        clean.append({"name": str(record.get("name", "student"))[:200], "levelno": record["levelno"],
                      "msg": str(record.get("msg", ""))[:MAX_TEXT],
                      "exc_text": str(record["exc_text"])[-MAX_TEXT:] if record.get("exc_text") else None})
    value["logs"] = clean
    if "error" in value:
        error = value["error"]
        if not isinstance(error, dict):
            raise ValueError("a malformed error")
        value["error"] = {"type": str(error.get("type", "RemoteError"))[:100],
                          "message": str(error.get("message", ""))[:MAX_TEXT],
                          "describe": str(error.get("describe", ""))[:MAX_TEXT]}
        return value
    expected = {"create_app": {"app": int, "name": str}, "request": {"status": int, "headers": list, "body": str},
                "cli": {"exit_code": int, "output": str}}.get(op, {})
    for key, kind in expected.items():
        if not isinstance(value.get(key), kind) or isinstance(value.get(key), bool):
            raise ValueError(f"{op}: {key} is not {kind.__name__}")
    if op == "request":
        if len(value["headers"]) > MAX_HEADERS or not all(
                isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) and len(x) <= MAX_TEXT for x in h)
                for h in value["headers"]):
            raise ValueError("request: malformed or too many headers")
    if op == "cli":
        value["output"] = value["output"][-MAX_OUTPUT:]
    return value


class Host:
    """One process for one student's step folders, restarted if it dies (not if it hangs)."""

    def __init__(self, root: Path):
        self.root = root
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.hung: set[str] = set()  # steps whose app hung once: later calls fail at once
        self.deaths: dict[str, int] = {}  # steps whose process died: after two, later calls fail at once
        self.unstartable = ""  # why the host could not be started (the machine's problem): later calls fail at once

    def start(self) -> None:
        spec = _spec()
        host_dir = Path(spec["host_dir"]) if spec else _stage_for_trusted()
        argv = [sys.executable, "-I", str(host_dir / "workbook_host.py"), str(self.root)]
        env = {"PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
        argv, env, preexec, _ = sandboxed(argv, env, str(self.root))
        try:
            self.process = _Popen(
                argv, cwd=self.root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, preexec_fn=preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:  # e.g. the student's cgroup is gone
            _record("grading", f"the app host could not be started: {exc}")
            self.unstartable = (f"the grader could not start the process that runs your app ({exc}): this is "
                                "the grading machine's problem, not your code's; ask for a regrade")
            raise LearnerCodeError(self.unstartable) from None
        ready: dict = {}

        def hello():  # the host's first message, {"ready": true}: a few bytes, before any student code
            try:
                head = self.process.stdout.read(4)
                (size,) = struct.unpack(">I", head) if len(head) == 4 else (0,)
                if 0 < size <= 64:
                    ready.update(json.loads(self.process.stdout.read(size)))
            except (OSError, ValueError, TypeError):
                pass

        waiter = threading.Thread(target=hello, daemon=True)
        waiter.start()
        waiter.join(STARTUP_TIMEOUT)
        if ready.get("ready") is not True:
            code = self.process.poll()
            self.stop()
            _record("grading", f"the app host did not start within {STARTUP_TIMEOUT:.0f} s (exit code {code})")
            self.unstartable = (f"the grader could not start the process that runs your app (exit code {code}): "
                                "this is the grading machine's problem, not your code's; ask for a regrade")
            raise LearnerCodeError(self.unstartable)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                self.process.kill()
            except OSError:
                pass
            self.process.wait()
        if self.process:
            for pipe in (self.process.stdin, self.process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        self.process = None

    def call(self, **command) -> dict:
        with self.lock:
            if self.unstartable:
                raise LearnerCodeError(self.unstartable)
            if self.deaths.get(command.get("slug"), 0) >= 2:
                raise LearnerCodeError("your app's process stopped twice earlier in this check "
                                       "(os._exit? a crash?), so it is not started again")
            if command.get("slug") in self.hung:
                raise LearnerCodeError(f"your app did not answer within {ANSWER_TIMEOUT:.0f} s earlier in this "
                                       "check (an endless loop?), so it is not asked again")
            if self.process is None or self.process.poll() is not None:
                self.start()
            data = json.dumps(command).encode("utf-8")
            answer: dict = {}

            def exchange():
                try:
                    self.process.stdin.write(struct.pack(">I", len(data)) + data)
                    self.process.stdin.flush()
                    head = self.process.stdout.read(4)
                    if len(head) == 4:
                        (size,) = struct.unpack(">I", head)
                        if size > MAX_ANSWER:
                            answer["oversized"] = size
                            return
                        raw = self.process.stdout.read(size)
                        answer["value"] = _check_answer(command.get("op"), json.loads(raw))
                except (OSError, ValueError, RecursionError) as exc:
                    answer["malformed"] = str(exc)[:200]

            worker = threading.Thread(target=exchange, daemon=True)
            worker.start()
            worker.join(ANSWER_TIMEOUT)
            if worker.is_alive():
                self.stop()  # the other steps get a fresh process
                _record("timeout", f"no answer within {ANSWER_TIMEOUT:.0f} s ({command.get('op')})")
                self.hung.add(command.get("slug"))
                raise LearnerCodeError(f"your app did not answer within {ANSWER_TIMEOUT:.0f} s "
                                       "(an endless loop? a server started inside create_app?)")
            if "oversized" in answer or "malformed" in answer:
                self.stop()
                self.hung.add(command.get("slug"))
                what = (f"an answer of {answer['oversized']} bytes (the limit is {MAX_ANSWER})"
                        if "oversized" in answer else f"a malformed answer ({answer['malformed']})")
                _record("limit", f"the app host sent {what}")
                raise LearnerCodeError(f"your app's process sent {what}, so it is not asked again")
            if "value" not in answer:
                code = self.process.poll() if self.process else None
                if limit_signal(code):
                    _record("limit", f"the app host was stopped by {limit_signal(code)} (a resource limit)")
                self.stop()
                slug = command.get("slug")
                self.deaths[slug] = self.deaths.get(slug, 0) + 1
                raise LearnerCodeError(f"your app's process stopped (exit code {code}) while handling {command['op']}")
        result = answer["value"]
        for record in result.pop("logs", []):
            logger = logging.getLogger(record["name"])
            rec = logging.makeLogRecord({"name": record["name"], "levelno": record["levelno"],
                                         "levelname": logging.getLevelName(record["levelno"]),
                                         "msg": record["msg"], "args": None})
            if record["exc_text"]:
                rec.exc_info = (RuntimeError, RuntimeError("(in the student's process)"), None)
                rec.exc_text = record["exc_text"]
            logger.handle(rec)
        if "error" in result:
            raise _rebuild(result["error"])
        return result


def _rebuild(error: dict) -> Exception:
    """The student's exception, as an exception of the same builtin type where there is one."""
    kind = getattr(builtins, error["type"], None)
    if error["type"] == "LearnerCodeError":
        return LearnerCodeError(error["message"])
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(error["message"])
        except Exception:  # noqa: BLE001
            pass
    # Same name as the student's exception, so that reports read "UnicodeEncodeError: ...".
    named = type(error["type"] if error["type"].isidentifier() else "RemoteError", (RemoteError,), {})
    return named(error["message"])


_HOSTS: dict[str, Host] = {}  # one process per student's folder, shared by its steps


_TRUSTED_STAGE: list[Path] = []


def _stage_for_trusted() -> Path:
    """--workbook-sandbox without a grading spec (trusted): the host's files, staged once."""
    if not _TRUSTED_STAGE:
        import atexit
        import shutil
        import tempfile

        from workbook.grading.bwrap import stage_host

        scratch = Path(tempfile.mkdtemp(prefix="workbook-host-"))
        atexit.register(shutil.rmtree, scratch, True)
        _TRUSTED_STAGE.append(stage_host(scratch / "host"))
    return _TRUSTED_STAGE[0]


class RemoteError(Exception):
    """An exception from the student's code whose type has no builtin counterpart here."""


class RemoteConfig:
    def __init__(self, app: RemoteApp):
        self.app = app

    def __getitem__(self, key):
        return self.app.host.call(op="config", slug=self.app.slug, app=self.app.id, key=key)["value"]

    def get(self, key, default=None):
        value = self[key]
        return default if value is None else value


@dataclass
class RemoteApp:
    host: Host
    id: int
    name: str
    slug: str

    @property
    def config(self) -> RemoteConfig:
        return RemoteConfig(self)

    def __getattr__(self, name):
        if name in ("debug", "testing"):
            return self.host.call(op="attr", slug=self.slug, app=self.id, name=name)["value"]
        raise AttributeError(name)

    def test_client(self, use_cookies: bool = True) -> RemoteClient:
        """The app's test client, in the student's process. It keeps no cookie jar, whatever
        ``use_cookies`` says (as Flask's does with use_cookies=False): a test sends cookies by hand."""
        return RemoteClient(self)

    def test_cli_runner(self) -> RemoteCliRunner:
        return RemoteCliRunner(self)


class RemoteClient:
    """Flask's test client, as far as the tests use it: open/get/post/put/patch/delete."""

    def __init__(self, app: RemoteApp):
        self.app = app

    def open(self, path="/", method="GET", *, headers=None, environ_base=None, environ_overrides=None, **kwargs):
        # The one environ override the tests use: a WSGI server's word that it ends the input stream
        # itself (as gunicorn and `flask run` do for a chunked body). Anything else would be dropped.
        overrides = dict(environ_overrides or {})
        streamed = bool(overrides.pop("wsgi.input_terminated", False))
        if overrides:
            raise ValueError(f"the app host forwards no environ override but wsgi.input_terminated: {sorted(overrides)}")
        builder = EnvironBuilder(path=path, method=method, headers=headers, **kwargs)
        try:
            environ = builder.get_environ()
            body = environ["wsgi.input"].read()
            sent = [(k, v) for k, v in builder.headers.items()]
            if builder.content_type and not any(k.lower() == "content-type" for k, _ in sent):
                sent.append(("Content-Type", builder.content_type))
            query = environ.get("QUERY_STRING", "")
        finally:
            builder.close()
        answer = self.app.host.call(
            op="request", slug=self.app.slug, app=self.app.id, method=method, path=builder.path, query=query,
            headers=sent, body=base64.b64encode(body).decode("ascii"),
            remote_addr=(environ_base or {}).get("REMOTE_ADDR", "127.0.0.1"), streamed=streamed,
        )
        return Response(base64.b64decode(answer["body"]), status=answer["status"], headers=answer["headers"])

    def get(self, path="/", **kwargs):
        return self.open(path, "GET", **kwargs)

    def post(self, path="/", **kwargs):
        return self.open(path, "POST", **kwargs)

    def put(self, path="/", **kwargs):
        return self.open(path, "PUT", **kwargs)

    def patch(self, path="/", **kwargs):
        return self.open(path, "PATCH", **kwargs)

    def delete(self, path="/", **kwargs):
        return self.open(path, "DELETE", **kwargs)


@dataclass
class CliResult:
    exit_code: int
    output: str


class RemoteCliRunner:
    def __init__(self, app: RemoteApp):
        self.app = app

    def invoke(self, args=None, input=None):
        answer = self.app.host.call(op="cli", slug=self.app.slug, app=self.app.id, args=list(args or []), input=input)
        return CliResult(answer["exit_code"], answer["output"])


@dataclass
class RemoteStep:
    """Step ``step`` of the student's folder ``root``, run in a process of its own."""

    step: Step
    root: Path
    host: Host = field(init=False, repr=False)

    def __post_init__(self):
        self.host = _HOSTS.setdefault(str(self.root), Host(self.root))

    @property
    def number(self) -> int:
        return self.step.number

    @property
    def folder(self) -> Path:
        return self.step.folder(self.root)

    def create_app(self, test_config=None):
        if not (self.folder / "__init__.py").is_file():
            raise LearnerCodeError(f"{self.step.slug}/__init__.py is missing: the step's folder is not there")
        env = {k: v for k, v in os.environ.items() if k.startswith("FLASK_")}
        answer = self.host.call(op="create_app", slug=self.step.slug, config=test_config, env=env)
        return RemoteApp(self.host, answer["app"], answer["name"], self.step.slug)

    def break_function(self, module: str, attr: str, message: str) -> None:
        """Make the student's `module.attr` raise RuntimeError(message): an injected bug."""
        self.host.call(op="sabotage", slug=self.step.slug, module=module, attr=attr, message=message)

    def restore_functions(self) -> None:
        """Undo every break_function of this process."""
        self.host.call(op="restore", slug=self.step.slug)

    def close(self) -> None:
        self.host.stop()
