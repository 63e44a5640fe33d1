"""What do the security layers cost? An authenticated request against a bare Flask JSON endpoint,
side by side in one run, behind the same gunicorn (budget: ≤ 1.5×, DESIGN §9).

    python bench/api_throughput.py [--steps 5 6 7] [--rounds 3] [--seconds 5] [--workers 2]
                                   [--connections 8] [--health] [--floor]

POSIX only (gunicorn). Needs `wrk`, a real HTTP load generator: Debian/Ubuntu `sudo apt-get install
wrk` (it installs /usr/bin/wrk), macOS `brew install wrk`.

The servers, all started before anything is measured, each `gunicorn -w WORKERS` (sync workers) on
127.0.0.1:
  bare       a five-line Flask app answering GET /bare with {"status": "ok"}: the floor, same
             gunicorn, same worker count, a JSON body;
  stepNN     the step's reference solution, GET /protected with a valid Bearer token: every layer
             (signature, iss/aud, the user re-read from the database, revocation at step 07, the
             limiter, the request id, the security headers); with --health also GET /health;
  floor      with --floor, the bare app plus Flask-JWT-Extended's @jwt_required() alone, then also
             Flask-Limiter with one memory:// limit: what the libraries cost before any code of ours.
Each round runs wrk (one thread, CONNECTIONS connections, a 1 s warm-up, then SECONDS) against bare
and then against each step, so that the ratios of one round are measured minutes apart at most, on
the same machine load. The table gives the median over the rounds of requests per second, the cost
of one request relative to bare (bare req/s ÷ the endpoint's req/s: the budget's measure) with its
range over the rounds, and the server's CPU time per request (the workers' user+system time from
/proc, Linux only): on a machine shared with other work, CPU per request moves much less than
requests per second do.

The steps' limits stay on; only the default limit is raised (FLASK_RATELIMIT_DEFAULT, to a million
a second: a one-second moving window keeps the counter as short as real traffic would) so that wrk
measures the cost of counting, not a wall of 429s. Login is not measured: its cost is the password
hash's, by design (bounded per process, see step 04).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
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
# --floor: what the two extensions the course teaches cost on their own, with nothing of ours.
# The same five lines, plus Flask-JWT-Extended's @jwt_required() (and, in the second, Flask-Limiter
# with one limit in memory://): no database, no hooks, no headers. If these rows are already over
# the budget, no app built on these libraries can meet it.
FLOOR_APP = '''import os

from flask import Flask
from flask_jwt_extended import JWTManager, jwt_required

app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = os.environ["BENCH_JWT_KEY"]
JWTManager(app)
if os.environ.get("BENCH_LIMITER"):
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    Limiter(get_remote_address, app=app, default_limits=["1000000 per second"], storage_uri="memory://")


@app.get("/protected")
@jwt_required()
def protected():
    return {"status": "ok"}
'''
PASSWORD = "violet kettle under a quiet moon"


def floor_token(key: str) -> str:
    """An access token the floor apps accept (same key, the extension's defaults)."""
    from flask import Flask
    from flask_jwt_extended import JWTManager, create_access_token

    app = Flask("floor")
    app.config["JWT_SECRET_KEY"] = key
    JWTManager(app)
    with app.app_context():
        return create_access_token(identity="1")


class Server:
    """One gunicorn master and its workers."""

    def __init__(self, app_spec: str, cwd: Path, env: dict, workers: int):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "--no-control-socket", app_spec],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        wait_for_port(self.port, self.process, "gunicorn", timeout=30)
        time.sleep(1.0)  # every worker booted (the master listens before its workers are ready)

    def cpu_seconds(self) -> float | None:
        """User + system time of the workers so far (Linux /proc), or None elsewhere."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            total = 0
            for pid in children:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
            return total / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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


def wrk(server: Server, path: str, seconds: int, connections: int, token: str | None = None) -> dict:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    url = f"http://127.0.0.1:{server.port}{path}"
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d1s", *headers, url], capture_output=True, timeout=60)
    before = server.cpu_seconds()
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *headers, url],
                          capture_output=True, text=True, timeout=seconds + 60)
    after = server.cpu_seconds()
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not rate or not count:
        raise RuntimeError(f"wrk said: {out or done.stderr}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    cpu = (after - before) / int(count.group(1)) * 1e6 if before is not None and after is not None else None
    return {"rate": float(rate.group(1)), "errors": int(non2xx.group(1)) if non2xx else 0, "cpu_us": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    course = load()
    protected = [s.number for s in course.steps if s.number >= 5]
    parser.add_argument("--steps", type=int, nargs="+", default=protected,
                        help=f"the steps to measure (default: {' '.join(map(str, protected))})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk's duration per endpoint and round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--health", action="store_true", help="also measure each step's GET /health")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the extensions alone: @jwt_required(), then with Flask-Limiter")
    parser.add_argument("--target", default="solutions", help="folder holding the step packages")
    args = parser.parse_args()
    if os.name == "nt":
        print("gunicorn does not run on Windows: run this in WSL.")
        return 2
    if shutil.which("wrk") is None:
        print("This benchmark needs wrk, a real HTTP load generator: sudo apt-get install wrk "
              "(macOS: brew install wrk).")
        return 2
    steps = [course.step(number) for number in args.steps]
    root = (REPO / args.target).resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    (scratch / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; gunicorn -w {args.workers} (sync), wrk -t1 -c{args.connections} "
          f"-d{args.seconds}s, {args.rounds} rounds; steps {' '.join(s.slug for s in steps)} from {args.target}/")
    servers: dict[str, Server] = {}
    endpoints = [("bare", "bare", "/bare", None)]  # (row, server, path, token)
    results: dict[str, list[dict]] = {}
    try:
        servers["bare"] = Server("bare_app:app", scratch, base_env, args.workers)
        if args.floor:
            (scratch / "floor_app.py").write_text(FLOOR_APP, encoding="utf-8")
            key = secrets.token_hex(32)
            token = floor_token(key)
            for row, extra in (("floor: JWT", {}), ("floor: JWT+limiter", {"BENCH_LIMITER": "1"})):
                servers[row] = Server("floor_app:app", scratch, {**base_env, "BENCH_JWT_KEY": key, **extra},
                                      args.workers)
                endpoints.append((row, row, "/protected", token))
        for step in steps:
            env = {**base_env, "FLASK_JWT_SECRET_KEY": secrets.token_hex(32),
                   "FLASK_DATABASE": str(scratch / f"{step.slug}.sqlite"),
                   "FLASK_RATELIMIT_DEFAULT": "1000000 per second"}
            server = servers[step.slug] = Server(f"{step.slug}:create_app()", root, env, args.workers)
            call(server.port, "POST", "/register", {"username": "bench", "password": PASSWORD})
            status, body = call(server.port, "POST", "/login", {"username": "bench", "password": PASSWORD})
            if status != 200 or "access_token" not in body:
                print(f"could not log in to {step.slug} (status {status})")
                return 1
            name = f"step{step.number:02d}"
            if args.health:
                endpoints.append((f"{name} /health", step.slug, "/health", None))
            endpoints.append((f"{name} /protected", step.slug, "/protected", body["access_token"]))
        for round_number in range(args.rounds):
            for row, server, path, token in endpoints:
                results.setdefault(row, []).append(
                    wrk(servers[server], path, args.seconds, args.connections, token))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    bare = results["bare"]
    print(f"\n{'endpoint':<20}{'req/s':>8}{'cost vs bare':>14}{'range':>14}{'server CPU':>12}{'CPU vs bare':>13}"
          f"{'non-2xx':>9}")
    verdicts = []
    for row, runs in results.items():
        rate = statistics.median(r["rate"] for r in runs)
        ratios = [b["rate"] / r["rate"] for b, r in zip(bare, runs)]
        cpus = [r["cpu_us"] for r in runs if r["cpu_us"] is not None]
        bare_cpus = [r["cpu_us"] for r in bare if r["cpu_us"] is not None]
        cpu = f"{statistics.median(cpus):9.0f} µs" if cpus else f"{'-':>12}"
        cpu_ratio = f"{statistics.median(cpus) / statistics.median(bare_cpus):12.2f}x" if cpus and bare_cpus else f"{'-':>13}"
        errors = sum(r["errors"] for r in runs)
        ratio = statistics.median(ratios)
        print(f"{row:<20}{rate:>8.0f}{ratio:>13.2f}x{f'{min(ratios):.2f}-{max(ratios):.2f}x':>14}{cpu}{cpu_ratio}"
              f"{errors:>9}")
        if row.endswith("/protected"):
            verdicts.append((row, ratio, errors))
    print(f"\nbudget {BUDGET}x (DESIGN §9): an authenticated request against the bare endpoint, median over "
          f"{args.rounds} rounds")
    ok = True
    for row, ratio, errors in verdicts:
        within = ratio <= BUDGET and errors == 0
        ok &= within
        print(f"  {row:<20}{ratio:.2f}x  {'within' if within else 'OVER'}" + (f" ({errors} non-2xx)" if errors else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
