"""``python -m workbook``: run from the repository root."""

import sys
from pathlib import Path

# Make the repository importable however the command is started (`python -m workbook` from the
# root, or `python path/to/workbook` from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbook.cli import main  # noqa: E402

main(prog_name="python -m workbook")
