"""The app host: a student's step runs here, in a process of its own, never in the grader's.

    python -I STAGE/workbook_host.py ROOT      (inside the student's bubblewrap sandbox)

When grading, the tests do not import a student's code: they talk to this process, which
imports it, builds apps, answers requests and runs CLI commands on their behalf (see
tests/remote.py). The verdicts are computed in the test process, where no student code runs,
so nothing a submission does — patching pytest, writing report files, printing, exiting —
can change its grade. It can only answer requests well or badly, which is what is graded.

Protocol: length-prefixed JSON messages (4-byte big-endian length, then UTF-8 JSON) on the
process's original stdin and stdout. The host speaks first, once: ``{"ready": true}`` when it has
imported the libraries the steps are built on and before any student code is loaded, so that the
grader times its start (a busy machine) apart from its answers (the student's code). Then one
answer per command. The student's code gets /dev/null for stdin and stdout, so its prints
cannot corrupt the channel. The grader's side (tests/remote.py) trusts nothing of an answer: it
refuses one longer than MAX_ANSWER bytes without reading it, checks its shape, and caps what it
keeps (logs, messages). The caps below only keep an honest host under those limits.

This file is copied, with workbook/{course,loader}.py and course.toml, into a read-only folder that
is all the sandbox sees of the grader (workbook/grading/bwrap.py: stage_host); standard library
and Flask only.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import struct
import sys
import traceback
from pathlib import Path

MAX_ANSWER = 8 * 1024**2  # bytes of one answer (the grader refuses more, unread)
MAX_LOGS = 200  # log records sent back with one answer
MAX_TEXT = 4000  # characters of one log message, error message or CLI output
# Imported before "ready": every step imports some of them, and a student's first create_app would
# otherwise pay for them inside its answer time (~0.5 s of CPU, several seconds on a busy machine).
# Only a head start: a library missing here is simply imported later, by the step that needs it.
LIBRARIES = ("flask", "flask_jwt_extended", "flask_limiter", "limits", "marshmallow", "argon2", "jwt",
             "apispec", "sqlite3")


def _read(stream):
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return json.loads(stream.read(size))


def _write(stream, message) -> None:
    data = json.dumps(message).encode("utf-8")
    if len(data) > MAX_ANSWER:
        data = json.dumps({"error": {"type": "LearnerCodeError", "describe": "",
                                     "message": f"the answer was larger than {MAX_ANSWER} bytes"}}).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


class _Capture(logging.Handler):
    """Every log record of the current command, sent back with its answer."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if len(self.records) >= MAX_LOGS:
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not break the host
            message = str(record.msg)
        self.records.append({
            "name": str(record.name)[:200], "levelno": int(record.levelno), "msg": message[:MAX_TEXT],
            "exc_text": "".join(traceback.format_exception(*record.exc_info))[-MAX_TEXT:] if record.exc_info else None,
        })


def _error(exc: BaseException, root: Path) -> dict:
    from workbook.loader import describe_exception

    return {"error": {"type": type(exc).__name__, "message": str(exc)[:2000],
                      "describe": describe_exception(exc, root)}}


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _forget_dead_storage(app) -> None:
    """A new app starts with its rate-limit storage taken as working, as it would in a process of its own.

    Flask-Limiter 4.1.1 keeps "the storage is unreachable" (``_storage_dead``) on the Limiter object
    across ``init_app``, and a step keeps one Limiter in its module: here every test's app of that
    step is built in this one process. After a test whose Redis was down, the next apps started on
    the in-memory fallback, and the fallback's back-off re-check (1, 2, 4... s after the last one)
    moved them to their own storage in the middle of a test, losing the counts so far: on a busy
    machine a correct limiter let 7 of 7 calls through and lost its point. The in-process tests
    undo the flag after that test (tests/test_step04_rate_limiting.py, forget_the_dead_storage);
    this is the same, for every app the host builds."""
    try:
        for limiter in app.extensions.get("limiter", ()):
            if getattr(limiter, "_storage_dead", False) is True:
                limiter._storage_dead = False
    except Exception:  # noqa: BLE001 - the student's app; a strange one is graded as it is
        pass


def serve(root: Path, proto_in, proto_out) -> None:
    from workbook.loader import LearnerCodeError, StepTarget

    from workbook.course import load

    course = load()
    targets: dict[str, StepTarget] = {}
    apps = {}
    saved = []  # (object, name, original) of every sabotaged function, for "restore"
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    logging.getLogger().setLevel(logging.DEBUG)
    while True:
        command = _read(proto_in)
        if command is None:
            return
        capture.records = []
        op = command.get("op")
        try:
            slug = command.get("slug")
            if slug is not None and slug not in targets:
                targets[slug] = StepTarget(course.step(slug), root)
            target = targets.get(slug)
            if op == "create_app":
                for name in [n for n in os.environ if n.startswith("FLASK_")]:
                    del os.environ[name]
                os.environ.update(command.get("env") or {})
                app = target.create_app(command.get("config"))
                _forget_dead_storage(app)
                apps[len(apps) + 1] = app
                answer = {"app": len(apps), "name": app.name}
            elif op == "request":
                app = apps[command["app"]]
                # No cookie jar here: the request's headers are the test's, Cookie included (an empty
                # jar would drop a Cookie header sent by hand); a fresh client per request keeps none.
                response = app.test_client(use_cookies=False).open(
                    command["path"], method=command["method"], headers=command["headers"],
                    data=base64.b64decode(command["body"]), query_string=command["query"] or None,
                    environ_base={"REMOTE_ADDR": command["remote_addr"]},
                    environ_overrides={"wsgi.input_terminated": True} if command.get("streamed") else None,
                )
                answer = {"status": response.status_code, "headers": list(response.headers.items()),
                          "body": base64.b64encode(response.get_data()).decode("ascii")}
            elif op == "config":
                app = apps[command["app"]]
                answer = {"value": _jsonable(app.config.get(command["key"]))}
            elif op == "attr":
                answer = {"value": _jsonable(getattr(apps[command["app"]], command["name"]))}
            elif op == "cli":
                result = apps[command["app"]].test_cli_runner().invoke(args=command["args"], input=command["input"])
                answer = {"exit_code": result.exit_code, "output": result.output[-64 * 1024:]}
            elif op == "sabotage":
                module = target.module
                for part in command["module"].split("."):
                    module = getattr(module, part)
                message = command["message"]

                def explode(*args, **kwargs):
                    raise RuntimeError(message)

                saved.append((module, command["attr"], getattr(module, command["attr"])))
                setattr(module, command["attr"], explode)
                answer = {}
            elif op == "restore":
                while saved:
                    obj, name, original = saved.pop()
                    setattr(obj, name, original)
                answer = {}
            else:
                answer = {"error": {"type": "ValueError", "message": f"unknown op {op!r}", "describe": ""}}
        except LearnerCodeError as exc:
            answer = {"error": {"type": "LearnerCodeError", "message": str(exc), "describe": str(exc)}}
        except BaseException as exc:  # noqa: BLE001 - everything the student's code raises goes back
            if isinstance(exc, KeyboardInterrupt):
                raise
            answer = _error(exc, root)
        answer["logs"] = capture.records
        _write(proto_out, answer)


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    # Keep the protocol's pipes for ourselves; the student's code gets /dev/null.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # `python -I` leaves the script's folder off sys.path: put the staged copy of workbook/ there.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import importlib

    for name in LIBRARIES:  # before the student's folder is on sys.path: the installed ones
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a head start only
            pass
    _write(proto_out, {"ready": True})
    serve(root, proto_in, proto_out)


if __name__ == "__main__":
    main()
