"""A pytest plugin (loaded with `-p`, pyproject.toml) that trims what every process of the test run
pays for its imports. Only the full suite loads it; `check` and `grade` run pytest without it.

- nbval imports nbformat, nbformat imports jsonschema, and jsonschema's format checkers import
  rfc3987_syntax when it is installed (jupyter-events asks for jsonschema[format-nongpl]): it
  compiles an IRI grammar at import, 0.78 s of CPU in every pytest process (the controller and
  each xdist worker), for a format ("iri") that no schema read here uses. Marking it absent makes
  jsonschema skip that one checker, as it does wherever the extra is not installed. `-p` plugins
  are imported before the plugins pytest finds through entry points (nbval), so this comes first.
- Bytecode is written for the course's own files (tests/, workbook/, solutions/) even where the
  environment sets PYTHONDONTWRITEBYTECODE (as this project's CI machines do). The ~90 pytest
  processes the suite starts (`check` runs, starter checks, mutant runs, grading runs) keep that
  setting, so they write nothing, but they read what is there: collecting every lesson's tests
  costs 0.77 CPU-s with the compiled (assertion-rewritten) tests against 1.30 s without. Not when
  the tests target another folder (`--workbook-target steps`): a learner's files are never given
  a .pyc that a quick second save could make stale.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError

_DONT_WRITE = sys.dont_write_bytecode
sys.dont_write_bytecode = False  # tests/conftest.py and the modules it imports are the course's own


def pytest_configure(config):
    # Before collection, which is where a target's step packages are first imported.
    if config.getoption("--workbook-target", "solutions") != "solutions" or config.getoption("--workbook-targets", None):
        sys.dont_write_bytecode = _DONT_WRITE
