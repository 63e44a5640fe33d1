"""What the tests use to talk to a step's app: in-process (see workbook.loader) or over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workbook.loader import LearnerCodeError, StepTarget, describe_exception  # noqa: F401


def property_settings(max_examples: int):
    """Hypothesis settings for the property-based tests: deterministic (the same examples on every
    machine, in every check and every grade). Inside `python -m workbook check` (WORKBOOK_CHECK=1)
    a third of the examples and no shrinking, so the verdict comes in about a second; the full
    test run tries them all and shrinks a failure to its smallest example."""
    from hypothesis import HealthCheck, Phase, settings

    quick = os.environ.get("WORKBOOK_CHECK") == "1"
    return settings(
        max_examples=max(10, max_examples // 3) if quick else max_examples,
        phases=[Phase.explicit, Phase.reuse, Phase.generate] if quick else list(Phase),
        deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def share_url_builders() -> None:
    """Compile each URL rule's builder once per test process instead of once per app.

    Nearly every test builds an app of its own (fresh key, fresh database), and most of what
    ``create_app`` costs is Werkzeug compiling, for every route of every new app, the two
    functions ``url_for`` would build its URLs with (``Rule._compile_builder``: an AST made and
    compiled each time): 2.7 of step 07's 3.9 ms, 1 of step 02's 1.4 ms, measured over 60 apps.
    The compiled function depends only on the rule's text, its parsed parts, the names of its
    defaults and ``append_unknown``; it is called with the rule itself bound as ``self``, so
    the apps still share nothing. A default that fills a variable of the URL is resolved when
    compiling (by that rule's converter): such rules are compiled as before. If Werkzeug's
    internals ever differ from this, nothing is changed."""
    try:
        from werkzeug.routing.rules import Rule
    except ImportError:
        return
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "shared", False):
        return
    builders: dict = {}

    def shared_builder(self, append_unknown: bool = True):
        trace = getattr(self, "_trace", None)
        defaults = self.defaults or {}
        if not isinstance(trace, list) or any(dynamic and name in defaults for dynamic, name in trace):
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(trace), tuple(str(k) for k in defaults), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    shared_builder.shared = True
    Rule._compile_builder = shared_builder


def strong_key() -> str:
    """A fresh 256-bit key, as the README tells learners to make one."""
    return secrets.token_hex(32)


def subprocess_timeout() -> float:
    """How long a test waits for a `flask ...` command of the step: shorter when grading."""
    return 10.0 if os.environ.get("WORKBOOK_SANDBOX") == "1" else 20.0


def student_limits():
    """When grading (WORKBOOK_SANDBOX=1), processes running a student's code get resource limits."""
    if os.environ.get("WORKBOOK_SANDBOX") == "1" and os.name == "posix":
        from tests.remote import sandbox_limits

        return sandbox_limits
    return None


def loopback_aliases_work() -> bool:
    """Can this machine send from 127.0.0.2? (Linux: yes; macOS only after `ifconfig lo0 alias`.)"""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


def error_message(body) -> str:
    """The human message of an error body: RFC 9457's "detail" (step 05 on) or the classic "msg"."""
    if not isinstance(body, dict):
        return ""
    return str(body.get("detail") or body.get("msg") or "")


def without_request_id(body):
    """An error body without its per-request id (step 05 on): what must be equal between two answers."""
    return {k: v for k, v in body.items() if k != "request_id"} if isinstance(body, dict) else body


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 20.0) -> None:
    """Return once `process` listens on 127.0.0.1:port; RuntimeError if it exits or time runs out.

    The port came from ``free_port``, free when we looked: another process (an xdist worker, a
    parallel part of `check`) may have bound it since. Then something listens there, but not
    our server, which is about to exit with "Address already in use": on Linux the listening
    socket must be one of ``process``'s own (see ``listener_is_elsewhere``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        if not listener_is_elsewhere(port, process.pid):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def listener_is_elsewhere(port: int, pid: int) -> bool:
    """True when the socket listening on 127.0.0.1:port is known to belong to another process
    than ``pid`` (Linux: /proc/net/tcp names the socket, /proc/<pid>/fd holds ours). False
    whenever that cannot be told: another system, or a sandboxed server (grading) whose
    listener is the grader's relay."""
    if os.environ.get("WORKBOOK_SANDBOX") == "1" or not sys.platform.startswith("linux"):
        return False
    inode = None
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # 127.0.0.1, LISTEN
                    inode = fields[9]
                    break
        if inode is None:
            return False
        mine = f"socket:[{inode}]"
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == mine:
                return False
    except OSError:
        return False
    return True


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
        self._ready = False
        self.failure = ""  # why it could not start: every later wait_until_ready says so at once

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float | None = None) -> LiveServer:
        """Start the server and return once it listens (LearnerCodeError if it does not)."""
        self.launch()
        return self.wait_until_ready(timeout)

    def launch(self) -> LiveServer:
        """Start the server process and return at once: it boots while other tests run."""
        if self.process is not None:
            return self
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        self.jwt_key = strong_key()  # known to the tests, as a leaked key would be
        self.database = self.workdir / "live.sqlite"
        env.update(
            FLASK_JWT_SECRET_KEY=self.jwt_key,
            FLASK_DATABASE=str(self.database),
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
            command, cwd=self.target.root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=student_limits(),
        )
        return self

    def wait_until_ready(self, timeout: float | None = None) -> LiveServer:
        """Return once the launched server listens; LearnerCodeError if it exits or time runs out."""
        if self.failure:
            raise LearnerCodeError(self.failure)
        if self._ready:
            return self
        # Grading (WORKBOOK_SANDBOX=1): a student's server that hangs costs 10 s, not 20.
        timeout = timeout or (10.0 if os.environ.get("WORKBOOK_SANDBOX") == "1" else 20.0)
        for attempt in range(2):
            try:
                wait_for_port(self.port, self.process, "`flask run`", timeout)
                break
            except RuntimeError as exc:
                self.stop()
                if attempt == 0 and "Address already in use" in self.output():
                    # Another process (a parallel part of `check`, an xdist worker) took the free
                    # port we were given between our look and our bind: take another one.
                    self.process = None
                    self.launch()
                    continue
                self.failure = f"The server did not start ({exc}): {self.output()[-1500:].strip()}"
                raise LearnerCodeError(self.failure) from None
        self._ready = True
        return self

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
                headers: dict[str, str] | None = None, timeout: float = 10.0,
                source: str | None = None) -> Response:
        """Send one raw HTTP request, exactly as given: an attacker controls every byte.

        ``source`` picks the client's address on loopback (127.0.0.2, 127.0.0.3, ...: Linux
        routes all of 127.0.0.0/8 to the loopback interface; see ``loopback_aliases_work``).
        """
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            try:
                conn.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The server answered (a 413 for a body over its limit) and closed before the
                # whole body was sent: how soon depends on the machine's load. A client then
                # reads that answer; without one, the request failed.
                try:
                    raw = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    raise exc from None
                return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
            raw = conn.getresponse()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Response:
        return self.request("POST", path, **kwargs)


def flask_cli(server, *args, stdin=""):
    """Run `flask --app <step> ...` against a live server's database, as its operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(FLASK_JWT_SECRET_KEY=server.jwt_key, FLASK_DATABASE=str(server.database),
               FLASK_ARGON2_TIME_COST="1", FLASK_ARGON2_MEMORY_COST="8", FLASK_ARGON2_PARALLELISM="1")
    return subprocess.run([sys.executable, "-m", "flask", "--app", server.target.step.slug, *args],
                          cwd=server.target.root, env=env, input=stdin, capture_output=True, text=True,
                          timeout=subprocess_timeout())


def ignores_test_config(step, config: dict | None = None, refused: bool = False) -> bool:
    """Is the key in test_config lost on its way into the app? True when create_app(config) refuses a
    strong key given in test_config but starts with the same key from FLASK_JWT_SECRET_KEY (exercise
    1.1's mistake, which makes every refusal look like a missing key). ``refused``: the caller has just
    seen create_app(config) refuse, so it is not asked again. In-process only: grading runs the app in
    a sandbox, out of this environment's reach."""
    if hasattr(step, "break_function"):
        return False
    config = dict(config or {"TESTING": True, "JWT_SECRET_KEY": strong_key()})
    config.setdefault("JWT_SECRET_KEY", strong_key())
    if not refused:
        try:
            step.create_app(config)
            return False
        except Exception:
            pass
    rest = {k: v for k, v in config.items() if k != "JWT_SECRET_KEY"}
    saved = os.environ.get("FLASK_JWT_SECRET_KEY")
    os.environ["FLASK_JWT_SECRET_KEY"] = config["JWT_SECRET_KEY"]
    try:
        step.create_app(rest)
        return True
    except Exception:
        return False
    finally:
        if saved is None:
            os.environ.pop("FLASK_JWT_SECRET_KEY", None)
        else:
            os.environ["FLASK_JWT_SECRET_KEY"] = saved
