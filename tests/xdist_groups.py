"""Which tests must run together on one pytest-xdist worker (`--dist loadgroup`, pyproject.toml).

Everything else is handed out test by test, so that the few long tests (a step's mutant run,
a starter check) spread over the workers instead of queueing behind each other in one file.
Together, in order, on one worker:
- the cells of one notebook (nbval runs them in one kernel, top to bottom);
- a module whose tests share one expensive module fixture (the graded class of test_grader.py);
- a step's tests that talk to server processes (its shared `flask run`, private servers, Redis).

pytest-xdist 3.8.0 groups tests by an "@group" suffix that each worker appends to the node ids
(remote.py writes `item._nodeid`); pytest 9.2 keeps a node's id in `item._id` instead, so that
assignment changes nothing and every test is scheduled on its own. The suffix is set here, the
way pytest 9.2 stores ids (both versions are pinned in requirements.txt).
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than the cores this process may use.

    Much of the suite waits rather than computes: servers booting, sandboxes starting, the
    grader's time limits, `check` runs in child processes. With one worker per core, a core
    sits idle whenever its worker waits (measured: 143 CPU-seconds in 122 s of wall time on 2
    cores, 1.2 cores busy on average); a spare worker fills that time.
    PYTEST_XDIST_AUTO_NUM_WORKERS (pytest-xdist's own setting) still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return cores + 1


TOGETHER = {"test_grader.py"}
# Modules whose tests of one parameter share a run (cached per process): each step's mutant run
# serves both the kill test and the grading test of that step.
TOGETHER_BY_PARAM = {"test_mutants.py": "step"}
# Tests that talk to a server process: those of one step run on one worker. The shared
# `live_server` of a step folder is then started once, not once per worker, and so are a
# module's private servers and its Redis (module fixtures: each worker that runs one test of
# a module sets its module fixtures up).
SERVER_FIXTURES = {"live_server", "start_server", "redis_url"}
SERVER_SUITES = ("_live.py", "_workers.py")


def group_of(item) -> str | None:
    name = item.path.name
    if name.endswith(".ipynb") or name in TOGETHER:
        return name
    param = TOGETHER_BY_PARAM.get(name)
    callspec = getattr(item, "callspec", None)
    if param and callspec and param in callspec.params:
        value = callspec.params[param]
        return f"{name}-{getattr(value, 'slug', value)}"
    step = callspec.params.get("step") if callspec else None
    if step is not None and (name.endswith(SERVER_SUITES) or SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))):
        return f"servers-{getattr(getattr(step, 'step', step), 'slug', step)}"  # a StepTarget's step
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):  # only in an xdist worker of a loadgroup run
        return
    from _pytest.nodeid import NodeId

    for item in items:
        group = group_of(item)
        if group and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{group}")
