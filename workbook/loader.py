"""Import a step's package from any folder, under a name of its own.

A *target* is a folder holding step packages (``solutions/``, ``steps/``, or a student's copy
handed to the grader). Each step package is imported under a name of its own, so that
``solutions/step01_setup`` and ``steps/step01_setup`` (or two students' copies) never share a
module in ``sys.modules``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .course import REPO, Step


class LearnerCodeError(Exception):
    """The code under test does not import, or its app cannot be created."""


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
