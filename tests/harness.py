"""What the tests use to load a step's app and to talk to it: in-process or over real HTTP.

A *target* is a folder holding step packages (``solutions/``, ``steps/``, or a student's copy
handed to the grader). Each step package is imported under a name of its own, so that
``solutions/step01_setup`` and ``steps/step01_setup`` (or two students' copies) never share a
module in ``sys.modules``.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from workbook.course import REPO, Step


class LearnerCodeError(Exception):
    """The code under test does not import, or its app cannot be created."""


def strong_key() -> str:
    """A fresh 256-bit key, as the README tells learners to make one."""
    return secrets.token_hex(32)


def describe_exception(exc: BaseException, root: Path | None = None) -> str:
    """One line that points the learner at their own code: type, message, file and line."""
    if isinstance(exc, SyntaxError):
        where = f"{_short(exc.filename)}, line {exc.lineno}" if exc.filename else "your code"
        return f"SyntaxError in {where}: {exc.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if root is None or _is_under(f.filename, root)]
    where = f" (at {_short(mine[-1].filename)}:{mine[-1].lineno})" if mine else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + message if message else ''}{where}"


def _is_under(filename: str, root: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _short(filename: str | None) -> str:
    if not filename:
        return "?"
    path = Path(filename).resolve()
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return path.as_posix()


def import_step_package(root: Path, slug: str):
    """Import ``root/slug`` as a package. The course's own folders keep their real names."""
    root = root.resolve()
    folder = root / slug
    if not (folder / "__init__.py").is_file():
        raise LearnerCodeError(f"{_short(str(folder))}/__init__.py is missing: the step's folder is not there")
    if root.parent == REPO and (root / "__init__.py").is_file():
        name = f"{root.name}.{slug}"  # solutions.step01_setup, steps.step01_setup
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        return importlib.import_module(name)
    tag = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    name = f"_workbook_target_{tag}_{slug}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@dataclass
class StepTarget:
    """Step ``step`` of the course, as found in folder ``root``."""

    step: Step
    root: Path
    _module: object = field(default=None, repr=False)

    @property
    def number(self) -> int:
        return self.step.number

    @property
    def folder(self) -> Path:
        return self.step.folder(self.root)

    @property
    def module(self):
        if self._module is None:
            try:
                self._module = import_step_package(self.root, self.step.slug)
            except LearnerCodeError:
                raise
            except Exception as exc:  # SyntaxError, ImportError, anything at import time
                raise LearnerCodeError(
                    f"The code in {_short(str(self.folder))} does not import: "
                    f"{describe_exception(exc, self.root)}"
                ) from exc
        return self._module

    def create_app(self, test_config=None):
        """Call the step's ``create_app`` exactly as a user of the step would."""
        factory = getattr(self.module, "create_app", None)
        if not callable(factory):
            raise LearnerCodeError(f"{_short(str(self.folder))}/__init__.py has no create_app function")
        return factory(test_config)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class LiveServer:
    """A real server process (``flask run``) on 127.0.0.1, talked to over real HTTP.

    Black-box: the tests see only what an outsider on the network sees.
    """

    def __init__(self, target: StepTarget, workdir: Path, env: dict[str, str] | None = None):
        self.target = target
        self.workdir = workdir
        self.extra_env = env or {}
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update(
            FLASK_JWT_SECRET_KEY=strong_key(),
            FLASK_DATABASE=str(self.workdir / "live.sqlite"),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        self.port = free_port()
        command = [
            sys.executable, "-m", "flask", "--app", self.target.step.slug,
            "run", "--host", "127.0.0.1", "--port", str(self.port), "--no-reload", "--no-debugger",
        ]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command, cwd=self.target.root, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise LearnerCodeError(
                    "The server did not start (`flask run` exited): " + self.output()[-1500:].strip()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise LearnerCodeError(f"The server did not start within {timeout:.0f} s: {self.output()[-1500:]}")

    def output(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def request(self, method: str, path: str, *, body: bytes | str | None = None, json_body=None,
                headers: dict[str, str] | None = None, timeout: float = 10.0) -> Response:
        """Send one raw HTTP request, exactly as given: an attacker controls every byte."""
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            raw = conn.getresponse()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Response:
        return self.request("POST", path, **kwargs)
