"""What do the security layers cost? An authenticated request against a bare Flask JSON endpoint,
side by side in one run, behind the same gunicorn (budget: ≤ 1.5×, DESIGN §9).

    python bench/api_throughput.py [--step N] [--seconds 10] [--workers 2] [--connections 8]

POSIX only (gunicorn). Needs `wrk`, a real HTTP load generator (Debian/Ubuntu:
`apt-get install wrk`; macOS: `brew install wrk`).

Three servers, started one after the other on 127.0.0.1, each `gunicorn -w WORKERS`:
  bare       a five-line Flask app answering GET /bare with {"status": "ok"}: the floor;
  health     the step's app, GET /health (every layer but authentication);
  protected  the step's app, GET /protected with a valid Bearer token (signature, iss/aud where the
             step has them, revocation and role look-ups, limiter, logging, security headers).
wrk runs for SECONDS against each, with a warm-up; the result is requests per second and the cost
of one request relative to `bare` (bare req/s ÷ the endpoint's req/s).

The step's limits stay on; only the default limit is raised (FLASK_RATELIMIT_DEFAULT, to a million a
second: a one-second moving window keeps the counter as short as real traffic would) so that wrk
measures the cost of counting, not a wall of 429s. Login is not measured: its cost is the
password hash's, by design (bounded per process, see step 04).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness import free_port, wait_for_port  # noqa: E402
from workbook.course import load  # noqa: E402

BUDGET = 1.5
BARE_APP = '''from flask import Flask

app = Flask(__name__)


@app.get("/bare")
def bare():
    return {"status": "ok"}
'''
PASSWORD = "violet kettle under a quiet moon"


def gunicorn(app_spec: str, cwd: Path, env: dict, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "--no-control-socket", app_spec],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    wait_for_port(port, process, "gunicorn", timeout=30)
    time.sleep(1.0)  # every worker booted (the master listens before its workers are ready)
    return process, port


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def call(port: int, method: str, path: str, body=None, token=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def wrk(port: int, path: str, seconds: int, connections: int, token: str | None = None) -> dict:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    url = f"http://127.0.0.1:{port}{path}"
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d2s", *headers, url], capture_output=True, timeout=60)
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url],
                          capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {"rate": rate, "errors": int(non2xx.group(1)) if non2xx else 0, "p99": p99.group(1) if p99 else "?"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    course = load()
    parser.add_argument("--step", type=int, default=course.steps[-1].number, help="the step to measure (default: the last)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--target", default="solutions", help="folder holding the step packages")
    args = parser.parse_args()
    if os.name == "nt":
        print("gunicorn does not run on Windows: run this in WSL.")
        return 2
    if shutil.which("wrk") is None:
        print("This benchmark needs wrk, a real HTTP load generator: apt-get install wrk (macOS: brew install wrk).")
        return 2
    step = course.step(args.step)
    root = (REPO / args.target).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    (scratch / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    step_env = {**base_env, "FLASK_JWT_SECRET_KEY": secrets.token_hex(32),
                "FLASK_DATABASE": str(scratch / "bench.sqlite"),
                "FLASK_RATELIMIT_DEFAULT": "1000000 per second"}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; gunicorn -w {args.workers}, "
          f"wrk -t1 -c{args.connections} -d{args.seconds}s; {step.slug} from {args.target}/")
    results = {}
    try:
        server, port = gunicorn("bare_app:app", scratch, base_env, args.workers)
        try:
            results["bare"] = wrk(port, "/bare", args.seconds, args.connections)
        finally:
            stop(server)
        server, port = gunicorn(f"{step.slug}:create_app()", root, step_env, args.workers)
        try:
            results["health"] = wrk(port, "/health", args.seconds, args.connections)
            status, _ = call(port, "POST", "/register", {"username": "bench", "password": PASSWORD})
            status, body = call(port, "POST", "/login", {"username": "bench", "password": PASSWORD})
            if status != 200 or "access_token" not in body:
                print(f"could not log in to {step.slug} (status {status})")
                return 1
            results["protected"] = wrk(port, "/protected", args.seconds, args.connections, body["access_token"])
        finally:
            stop(server)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    bare = results["bare"]["rate"]
    print(f"{'endpoint':<12}{'req/s':>10}{'cost vs bare':>14}{'p99':>10}{'non-2xx':>9}")
    for name, r in results.items():
        print(f"{name:<12}{r['rate']:>10.0f}{bare / r['rate']:>13.2f}x{r['p99']:>10}{r['errors']:>9}")
    ratio = bare / results["protected"]["rate"]
    ok = ratio <= BUDGET and results["protected"]["errors"] == 0
    print(f"an authenticated request costs {ratio:.2f}x a bare Flask JSON endpoint; budget {BUDGET}x: "
          f"{'within' if ok else 'OVER'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
