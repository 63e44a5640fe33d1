"""``python -m workbook``: run from the repository root."""

import sys
from pathlib import Path

# Make the repository importable however the command is started (`python -m workbook` from the
# root, or `python path/to/workbook` from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from workbook.cli import main  # noqa: E402
except ModuleNotFoundError as missing:  # the usual cause: the course's virtual environment is not active
    if (missing.name or "").split(".")[0] == "workbook":
        raise  # a bug of ours, not the learner's setup
    sys.exit(f"This Python ({sys.executable}) does not have the course's packages ({missing.name} is "
             "missing).\nActivate the course's virtual environment (see the README), or install them into "
             "this one:\n    python -m pip install -r requirements.txt")

main(prog_name="python -m workbook")
