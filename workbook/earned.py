"""Read the results.json that `python -m workbook grade` wrote (standard library only: it also runs
outside the course's venv, in the GitHub Classroom workflow).

    python workbook/earned.py RESULTS ID          exit 0 when the (first) student earned exercise ID
    python workbook/earned.py RESULTS --points    print "total / maximum"
    python workbook/earned.py RESULTS --classroom [COURSE_TOML]
                                                  print `result=<base64 JSON>` for $GITHUB_OUTPUT: the
                                                  payload education/autograding-grading-reporter reads,
                                                  one test per exercise, worth its points

The Classroom workflow computes the points in the same step that grades (nothing runs between).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path


def _first(results: str) -> dict:
    with open(results, encoding="utf-8") as fh:
        students = json.load(fh)
    return students[0] if students else {}


def _points(course_toml: Path) -> dict[str, tuple[str, int]]:
    """exercise id -> (label and title, points), from course.toml (tomllib: Python 3.11+)."""
    import tomllib

    with open(course_toml, "rb") as fh:
        raw = tomllib.load(fh)
    out = {}
    for step in raw["steps"]:
        for i, ex in enumerate(step.get("exercises", []), start=1):
            out[ex["id"]] = (f"{step['number']}.{i} {ex['title']}", int(ex.get("points", 1)))
    return out


def classroom_payload(student: dict, course_toml: Path) -> dict:
    exercises = _points(course_toml)
    earned = student.get("exercises", {})
    tests = []
    for ex_id, (title, points) in exercises.items():
        got = earned.get(ex_id, 0) or 0
        tests.append({"name": title, "status": "pass" if got else "fail", "score": got, "line_no": 0,
                      "message": "" if got else f"not yet: see the job summary (`python -m workbook hint` helps)",
                      "execution_time": "0s"})
    status = "pass" if all(t["status"] == "pass" for t in tests) else "fail"
    return {"version": 1, "status": status, "max_score": sum(p for _, p in exercises.values()), "tests": tests}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    results, what = argv[0], argv[1]
    student = _first(results)
    if what == "--points":
        print(f"{student.get('total', 0):g} / {student.get('maximum', 0):g}")
        return 0
    if what == "--classroom":
        course = Path(argv[2]) if len(argv) > 2 else Path(__file__).with_name("course.toml")
        payload = json.dumps(classroom_payload(student, course)).encode("utf-8")
        print(f"result={base64.b64encode(payload).decode('ascii')}")
        return 0
    earned = student.get("exercises", {}).get(what, 0)
    print(f"{what}: {'earned' if earned else 'not yet'} ({earned:g} point{'s' if earned != 1 else ''})")
    return 0 if earned else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
