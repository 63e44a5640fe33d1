"""`python -m workbook grade merge OUT SHARD_DIR...`: join the outputs of `grade --shard K/N` runs.

Each shard's results.json holds every verdict its grades came from, so merging re-scores nothing
from scratch and grades nothing again; it refuses shards graded with different tests or steps.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..course import load
from .report import flag_identical, grade_from_json, write_outputs
from .rubric import score


class MergeError(ValueError):
    pass


def merge(out: Path, shard_dirs: list[Path], show_extra: bool = False):
    course = load()
    metas, grades, seen = [], [], {}
    for folder in shard_dirs:
        results, meta = Path(folder) / "results.json", Path(folder) / "shard.json"
        if not results.is_file():
            raise MergeError(f"{folder} has no results.json: is it the --out of a `grade --shard` run?")
        metas.append(json.loads(meta.read_text("utf-8")) if meta.is_file() else {})
        for data in json.loads(results.read_text("utf-8")):
            if data["id"] in seen:
                raise MergeError(f"student {data['student']} ({data['id']}) is in both {seen[data['id']]} and {folder}")
            seen[data["id"]] = folder
            grades.append(grade_from_json(data))
    suites = {m.get("suite") for m in metas}
    steps_sets = {tuple(m.get("steps", [])) for m in metas}
    if len(suites) > 1 or len(steps_sets) > 1:
        raise MergeError("the shards were graded with different tests, options or steps: grade them again alike")
    shards = sorted(tuple(m["shard"]) for m in metas if m.get("shard"))
    if shards:
        n = shards[0][1]
        missing = sorted(set(range(1, n + 1)) - {k for k, _ in shards})
        if missing:
            raise MergeError(f"shard(s) {', '.join(f'{k}/{n}' for k in missing)} are missing")
    numbers = list(steps_sets.pop()) if steps_sets else []
    steps = [s for s in course.steps if not numbers or s.number in numbers]
    for g in grades:
        score(g, steps)
        g.flags = [f for f in g.flags if not f.startswith("identical ")]
    grades.sort(key=lambda g: (g.student.casefold(), g.id))
    from .run import _starter_and_solution_hashes  # noqa: PLC0415 - only merge needs it here
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        _, known = _starter_and_solution_hashes(course, steps, Path(scratch))
    flag_identical(grades, known)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(grades, out, steps, show_extra)
    return grades
