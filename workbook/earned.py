"""Exit 0 when a graded submission earned an exercise's points: `python workbook/earned.py RESULTS ID`.

Used by the GitHub Classroom workflow (one autograding test per exercise) on the results.json
that `python -m workbook grade` wrote. Standard library only: it runs outside the course's venv.
"""

import json
import sys


def main() -> int:
    results, exercise = sys.argv[1], sys.argv[2]
    with open(results, encoding="utf-8") as fh:
        students = json.load(fh)
    earned = students[0].get("exercises", {}).get(exercise, 0) if students else 0
    print(f"{exercise}: {'earned' if earned else 'not yet'} ({earned:g} point{'s' if earned != 1 else ''})")
    return 0 if earned else 1


if __name__ == "__main__":
    sys.exit(main())
