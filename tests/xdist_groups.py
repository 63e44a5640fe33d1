"""Which tests must run together on one pytest-xdist worker (`--dist loadgroup`, pyproject.toml).

Everything else is handed out test by test, so that the few long tests (a step's mutant run,
a starter check) spread over the workers instead of queueing behind each other in one file.
Together, in order, on one worker:
- the cells of one notebook (nbval runs them in one kernel, top to bottom);
- a module whose tests share one expensive module fixture (the graded class of test_grader.py).

pytest-xdist 3.8.0 groups tests by an "@group" suffix that each worker appends to the node ids
(remote.py writes `item._nodeid`); pytest 9.2 keeps a node's id in `item._id` instead, so that
assignment changes nothing and every test is scheduled on its own. The suffix is set here, the
way pytest 9.2 stores ids (both versions are pinned in requirements.txt).
"""

from __future__ import annotations

import pytest

TOGETHER = {"test_grader.py"}
# Modules whose tests of one parameter share a run (cached per process): each step's mutant run
# serves both the kill test and the grading test of that step.
TOGETHER_BY_PARAM = {"test_mutants.py": "step"}


def group_of(item) -> str | None:
    name = item.path.name
    if name.endswith(".ipynb") or name in TOGETHER:
        return name
    param = TOGETHER_BY_PARAM.get(name)
    callspec = getattr(item, "callspec", None)
    if param and callspec and param in callspec.params:
        value = callspec.params[param]
        return f"{name}-{getattr(value, 'slug', value)}"
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
