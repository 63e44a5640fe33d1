"""The grader's side of the app host (workbook/sandbox.py): objects shaped like a step, a Flask
app, its test client and its CLI runner, whose every call goes to the student's process.

With `--workbook-sandbox`, the tests get a RemoteStep instead of a StepTarget and run unchanged:
`make_app(...)`, `app.test_client().post(...)`, `app.config[...]`, `app.test_cli_runner()`. No
student code is ever imported into the test process.
"""

from __future__ import annotations

import base64
import builtins
import json
import logging
import os
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import Response
from werkzeug.test import EnvironBuilder

from workbook.course import REPO, Step
from workbook.loader import LearnerCodeError

ANSWER_TIMEOUT = float(os.environ.get("WORKBOOK_ANSWER_TIMEOUT", "20"))  # seconds for one answer
MEMORY_LIMIT = 2 * 1024**3  # bytes of address space for the student's process
CPU_LIMIT = 300  # seconds of CPU for the student's process, over its whole life
FILE_LIMIT = 200 * 1024**2  # bytes: the largest file the student's process may write


def sandbox_limits():  # runs in the child, before the student's code (POSIX only)
    """Resource limits for a process that runs a student's code. It stays in the grading run's
    process group, which the grader kills as a whole when the run ends or times out."""
    import resource

    for limit, value in ((resource.RLIMIT_AS, MEMORY_LIMIT), (resource.RLIMIT_CPU, CPU_LIMIT),
                         (resource.RLIMIT_FSIZE, FILE_LIMIT)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    try:  # at most 64 more processes of this user: a fork loop stops there (not for root)
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        running = len([p for p in os.listdir("/proc") if p.isdigit()]) if os.path.isdir("/proc") else 0
        cap = running + 64
        if hard == resource.RLIM_INFINITY or cap < hard:
            resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap if hard == resource.RLIM_INFINITY else hard))
    except (ValueError, OSError):
        pass


class Host:
    """One process for one student's step folders, restarted if it dies (not if it hangs)."""

    def __init__(self, root: Path):
        self.root = root
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.hung: set[str] = set()  # steps whose app hung once: later calls fail at once
        self.deaths: dict[str, int] = {}  # steps whose process died: after two, later calls fail at once

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PYTEST_", "WORKBOOK_"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbook.sandbox", str(self.root)],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            preexec_fn=sandbox_limits if os.name == "posix" else None,
        )

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
                        answer["value"] = json.loads(self.process.stdout.read(struct.unpack(">I", head)[0]))
                except (OSError, ValueError):
                    pass

            worker = threading.Thread(target=exchange, daemon=True)
            worker.start()
            worker.join(ANSWER_TIMEOUT)
            if worker.is_alive():
                self.stop()  # the other steps get a fresh process
                self.hung.add(command.get("slug"))
                raise LearnerCodeError(f"your app did not answer within {ANSWER_TIMEOUT:.0f} s "
                                       "(an endless loop? a server started inside create_app?)")
            if "value" not in answer:
                code = self.process.poll() if self.process else None
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

    def test_client(self) -> RemoteClient:
        return RemoteClient(self)

    def test_cli_runner(self) -> RemoteCliRunner:
        return RemoteCliRunner(self)


class RemoteClient:
    """Flask's test client, as far as the tests use it: open/get/post/put/patch/delete."""

    def __init__(self, app: RemoteApp):
        self.app = app

    def open(self, path="/", method="GET", *, headers=None, environ_base=None, **kwargs):
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
            remote_addr=(environ_base or {}).get("REMOTE_ADDR", "127.0.0.1"),
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
