"""`python -m workbook grade SUBMISSIONS --out DIR`: grade a class with the instructor's tests.

Each entry of SUBMISSIONS is one student: a copy of the repository, a copy of its `steps/`
folder, or a `.zip` of either. For each student:

1. the step folders are copied into a scratch folder — regular files only; no symlinks, no
   `conftest.py`, `pytest.ini`, `*.pth` or `sitecustomize.py` (nothing that could reach the
   grader's own pytest); a zip is read entry by entry and any path leaving the folder refused;
2. the instructor's tests run against that copy, each lesson on its own step (the in-process
   suites; `--http` adds the attacks over real HTTP and the multi-process test), in a pytest
   process of their own (`--workbook-sandbox`): the student's code runs only in separate,
   resource-limited app hosts (workbook/sandbox.py) and `flask run` servers, so it can answer
   requests well or badly but cannot touch the verdicts;
3. each exercise earns its `points` (course.toml, default 1) when every one of its tests passes.

Outputs in DIR: gradebook.csv, feedback/<student>.md, report.html, results.json. Unchanged
submissions are not graded again (DIR/.cache). The exit code is 0 whenever grading ran.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .course import REPO, TESTS, Course, lesson_of, load
from .runner import TestResult, results_of, run_pytest

REFUSED_NAMES = {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "sitecustomize.py", "usercustomize.py"}
MAX_FILE_BYTES = 2 * 1024**2
MAX_ZIP_BYTES = 200 * 1024**2
MAX_ZIP_FILES = 20_000
STUDENT_TIMEOUT = 180.0  # seconds for one student's whole grading run
HTTP_SUITES = ("_live.py", "_workers.py")  # the attacks over real HTTP, the multi-process test


@dataclass
class Grade:
    student: str
    steps: dict[str, float] = field(default_factory=dict)  # slug -> points earned
    exercises: dict[str, float] = field(default_factory=dict)  # exercise id -> points earned
    maximum: dict[str, float] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.steps.values())


def student_name(entry: Path) -> str:
    stem = entry.name[:-4] if entry.name.lower().endswith(".zip") else entry.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "student"


def discover(submissions: Path) -> list[Path]:
    return sorted(p for p in submissions.iterdir()
                  if not p.name.startswith(".") and (p.is_dir() or p.name.lower().endswith(".zip")))


def unzip_safely(archive: Path, into: Path, notes: list[str]) -> None:
    """Extract regular files only, refusing paths that leave `into` (zip slip) and oversized archives."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_FILES:
            notes.append(f"the zip holds {len(infos)} entries; only the first {MAX_ZIP_FILES} were read")
            infos = infos[:MAX_ZIP_FILES]
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            mode = info.external_attr >> 16
            if info.is_dir():
                continue
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]) or stat.S_ISLNK(mode):
                notes.append(f"refused a zip entry that points outside the submission: {name!r}")
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES or info.file_size > MAX_FILE_BYTES:
                notes.append(f"skipped {name!r}: the zip is too large")
                continue
            target = into.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def find_steps_root(base: Path, course: Course) -> Path | None:
    """The folder that holds the step folders: the submission itself, its steps/, or one level down."""
    slugs = {s.slug for s in course.steps}
    candidates = [base, base / "steps"]
    candidates += [c for d in sorted(base.iterdir()) if d.is_dir() and not d.is_symlink()
                   for c in (d, d / "steps")] if base.is_dir() else []
    for candidate in candidates:
        if candidate.is_dir() and any((candidate / slug).is_dir() for slug in slugs):
            return candidate
    return None


def copy_steps(root: Path, dest: Path, steps: list, notes: list[str]) -> None:
    """Copy the step folders' plain files; leave out anything that could reach the grader's pytest."""
    for step in steps:
        src = root / step.slug
        if not src.is_dir() or src.is_symlink():
            notes.append(f"{step.slug} is missing: 0 points for step {step.number}")
            continue
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if path.is_symlink() or not path.is_file() or "__pycache__" in rel.parts:
                continue
            if path.name in REFUSED_NAMES or path.suffix == ".pth":
                notes.append(f"left out {step.slug}/{rel.as_posix()} (not part of an exercise)")
                continue
            if path.stat().st_size > MAX_FILE_BYTES:
                notes.append(f"left out {step.slug}/{rel.as_posix()}: larger than 2 MB")
                continue
            target = dest / step.slug / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def fingerprint(folder: Path, extra: list[Path]) -> str:
    """What a grade depends on: the student's files, the instructor's tests and the course."""
    digest = hashlib.sha256()
    for base in [folder, TESTS] + extra:
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(base if base.is_dir() else base.parent)).encode())
            digest.update(path.read_bytes())
    digest.update((REPO / "workbook" / "course.toml").read_bytes())
    return digest.hexdigest()


def score(grade: Grade, course: Course, steps: list) -> None:
    for step in steps:
        grade.maximum[step.slug] = float(sum(ex.points for ex in step.exercises))
        earned = 0.0
        for ex in step.exercises:
            tests = [t for t in grade.tests if t.lesson == step.number and ex.id in t.exercises and not t.skipped]
            won = ex.points if tests and all(t.passed for t in tests) else 0
            grade.exercises[ex.id] = won
            earned += won
        grade.steps[step.slug] = earned


def grade_student(entry: Path, scratch: Path, out: Path, course: Course, steps: list,
                  extra: list[Path], timeout: float, answer_timeout: float, http: bool) -> Grade:
    name = student_name(entry)
    grade = Grade(student=name)
    work = scratch / name
    raw = work / "raw"
    raw.mkdir(parents=True)
    if entry.is_dir():
        base = entry
    else:
        try:
            unzip_safely(entry, raw, grade.notes)
        except (zipfile.BadZipFile, OSError) as exc:
            grade.notes.append(f"the zip could not be read ({exc})")
        base = raw
    root = find_steps_root(base, course) if base.is_dir() else None
    if root is None:
        grade.notes.append("no step folder found (expected steps/stepNN_... or stepNN_... folders)")
        score(grade, course, steps)
        return grade
    dest = work / "steps"
    dest.mkdir()
    copy_steps(root, dest, steps, grade.notes)
    key = fingerprint(dest, extra) + ("+http" if http else "")
    cache = out / ".cache" / f"{name}.json"
    if cache.exists():
        cached = json.loads(cache.read_text("utf-8"))
        if cached.get("key") == key:
            grade.tests = [TestResult(**t) for t in cached["tests"]]
            grade.notes = cached["notes"]
            grade.seconds = cached["seconds"]
            score(grade, course, steps)
            return grade
    files = [f for s in steps for f in s.test_files if http or not f.name.endswith(HTTP_SUITES)]
    files += [f for f in extra if lesson_of(f) in {s.number for s in steps}]
    # Only the tests that carry points: those marked with an exercise (the rubric is per exercise).
    data, problem, grade.seconds, _ = run_pytest(
        files, dest, ["--workbook-own-lessons", "--workbook-sandbox", "-m", "exercise"], timeout=timeout,
        env={"WORKBOOK_SANDBOX": "1", "WORKBOOK_ANSWER_TIMEOUT": str(answer_timeout)})
    if data is None:
        grade.notes.append(f"grading stopped: {problem.splitlines()[0]}")
    else:
        grade.tests = results_of(data)
    score(grade, course, steps)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "notes": grade.notes, "seconds": grade.seconds,
                                 "tests": [t.__dict__ for t in grade.tests]}), encoding="utf-8")
    return grade


def grade_class(submissions: Path, out: Path, *, extra_tests: Path | None = None, show_extra: bool = False,
                jobs: int | None = None, step_numbers: list[int] | None = None,
                timeout: float = STUDENT_TIMEOUT, answer_timeout: float = 5.0, http: bool = False,
                progress=None) -> list[Grade]:
    """Grade every submission; write gradebook.csv, feedback/, report.html and results.json into `out`."""
    course = load()
    steps = [s for s in course.steps if not step_numbers or s.number in step_numbers]
    out.mkdir(parents=True, exist_ok=True)
    entries = discover(submissions)
    extra_dir = None
    extra: list[Path] = []
    if extra_tests:
        # Hidden tests join the instructor's suite for this run only (they need its conftest).
        extra_dir = Path(tempfile.mkdtemp(prefix="_extra_", dir=TESTS))
        (extra_dir / "__init__.py").touch()
        for path in sorted(Path(extra_tests).glob("test_step*.py")):
            shutil.copyfile(path, extra_dir / path.name)
            extra.append(extra_dir / path.name)
    # The app hosts run as the same OS user as the grader: check that no submission touched the
    # grader's own files (tests, workbook) while it ran — a tampered run is stopped, not trusted.
    own = fingerprint(REPO / "workbook", [TESTS])
    grades: list[Grade] = []
    try:
        with tempfile.TemporaryDirectory(prefix="workbook-grade-") as scratch:
            # One more student than cores: a submission that hangs waits on timeouts, not on a CPU.
            with ThreadPoolExecutor(max_workers=jobs or (os.cpu_count() or 2) + 1) as pool:
                futures = [pool.submit(grade_student, e, Path(scratch), out, course, steps, extra, timeout,
                                       answer_timeout, http) for e in entries]
                for future in as_completed(futures):
                    grades.append(future.result())
                    if progress:
                        progress(grades[-1])
                    if fingerprint(REPO / "workbook", [TESTS]) != own:
                        raise RuntimeError("the grader's own files (tests/, workbook/) changed during grading: "
                                           "a submission may have tampered with them; restore them from git")
    finally:
        if extra_dir:
            shutil.rmtree(extra_dir, ignore_errors=True)
    grades.sort(key=lambda g: g.student)
    write_outputs(grades, out, course, steps, show_extra)
    return grades


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

def _hidden(test: TestResult) -> bool:
    return "/_extra_" in test.nodeid.replace("\\", "/")


def _fmt(points: float) -> str:
    return f"{points:g}"


def write_outputs(grades: list[Grade], out: Path, course: Course, steps: list, show_extra: bool) -> None:
    maximum = sum(sum(ex.points for ex in s.exercises) for s in steps)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *[s.slug for s in steps], "total", "maximum", "notes"])
        for g in grades:
            writer.writerow([g.student, *[_fmt(g.steps.get(s.slug, 0)) for s in steps], _fmt(g.total),
                             _fmt(maximum), "; ".join(g.notes)])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for g in grades:
        (feedback / f"{g.student}.md").write_text(feedback_markdown(g, steps, maximum, show_extra), encoding="utf-8")
    (out / "results.json").write_text(json.dumps([
        {"student": g.student, "total": g.total, "maximum": maximum, "steps": g.steps,
         "exercises": g.exercises, "notes": g.notes,
         "tests": [{"nodeid": t.nodeid, "outcome": t.outcome, "exercises": t.exercises} for t in g.tests]}
        for g in grades], indent=1), encoding="utf-8")
    (out / "report.html").write_text(report_html(grades, steps, maximum), encoding="utf-8")


def feedback_markdown(g: Grade, steps: list, maximum: float, show_extra: bool) -> str:
    lines = [f"# Feedback for {g.student}", "", f"**Total: {_fmt(g.total)} / {_fmt(maximum)}**", ""]
    for note in g.notes:
        lines.append(f"- {note}")
    if g.notes:
        lines.append("")
    for step in steps:
        lines += [f"## Step {step.label} — {step.title}: {_fmt(g.steps.get(step.slug, 0))} / "
                  f"{_fmt(sum(ex.points for ex in step.exercises))}", ""]
        own = [t for t in g.tests if t.lesson == step.number]
        for ex in step.exercises:
            tests = [t for t in own if ex.id in t.exercises and not t.skipped]
            visible = [t for t in tests if show_extra or not _hidden(t)]
            failing = [t for t in visible if not t.passed]
            hidden_failing = [t for t in tests if _hidden(t) and not t.passed and not show_extra]
            ok = tests and all(t.passed for t in tests)
            lines.append(f"- {'✓' if ok else '✗'} **{ex.label} {ex.title}** ({ex.points} point{'s' if ex.points != 1 else ''})")
            seen = set()
            for t in failing:
                key = t.test.split("[", 1)[0]
                if key in seen:
                    continue
                seen.add(key)
                lines.append(f"  - {t.property} — {t.reason.splitlines()[0] if t.reason else t.outcome}")
            if hidden_failing:
                lines.append(f"  - {len(hidden_failing)} further check(s) the class did not see failed")
            if not ok:
                lines.append(f"  - Hint: `python -m workbook hint {step.number} {ex.index}`")
        if not own:
            lines.append("- No test ran for this step (see the notes above).")
        lines.append("")
    return "\n".join(lines)


def _bars(items: list[tuple[str, float]], width: int = 900, bar: int = 16, scale: float = 1.0, unit: str = "") -> str:
    label_w = 460
    height = bar * len(items) + 10
    rows = []
    for i, (label, value) in enumerate(items):
        y = 5 + i * bar
        w = max(0.0, min(1.0, value / scale)) * (width - label_w - 60)
        short = label if len(label) <= 70 else label[:69] + "…"
        rows.append(f'<text x="{label_w - 6}" y="{y + bar - 4}" text-anchor="end" font-size="11">'
                    f'<title>{html.escape(label)}</title>{html.escape(short)}</text>'
                    f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{bar - 4}" fill="#4a7bd0"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 4}" font-size="11">{value:.0f}{unit}</text>')
    return f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>'


def report_html(grades: list[Grade], steps: list, maximum: float) -> str:
    totals = [g.total for g in grades]
    buckets = 10
    counts = [0] * buckets
    for t in totals:
        counts[min(buckets - 1, int(buckets * t / maximum)) if maximum else 0] += 1
    histogram = _bars([(f"{i * 10}–{(i + 1) * 10}%", c) for i, c in enumerate(counts)],
                      scale=max(counts + [1]))
    per_step = []
    for step in steps:
        top = sum(ex.points for ex in step.exercises) or 1
        average = 100 * sum(g.steps.get(step.slug, 0) for g in grades) / (top * len(grades)) if grades else 0
        per_step.append((f"{step.label} {step.title}", average))
    per_test: dict[str, list[bool]] = {}
    for g in grades:
        for t in g.tests:
            if t.skipped or _hidden(t):
                continue
            per_test.setdefault(f"{t.lesson:02d} {t.property}" if t.lesson else t.property, []).append(t.passed)
    rates = sorted(((name, 100 * sum(v) / len(v)) for name, v in per_test.items()), key=lambda x: x[1])
    struggled = ", ".join(name for name, avg in sorted(per_step, key=lambda x: x[1])[:2])
    rows = "".join(
        f"<tr><td>{html.escape(g.student)}</td>" + "".join(f"<td>{_fmt(g.steps.get(s.slug, 0))}</td>" for s in steps)
        + f"<td><b>{_fmt(g.total)}</b></td><td>{html.escape('; '.join(g.notes))}</td></tr>" for g in grades)
    mean = sum(totals) / len(totals) if totals else 0
    return f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>Class report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}h2{{margin-top:1.6em}}</style>
<h1>Class report</h1>
<p>{len(grades)} submissions · mean {mean:.1f} / {_fmt(maximum)} points ·
the class struggled most with: <b>{html.escape(struggled)}</b></p>
<h2>Distribution of totals (share of the maximum)</h2>{histogram}
<h2>Average score per step (%)</h2>{_bars(per_step, scale=100, unit="%")}
<h2>Pass rate per check (%), hardest first</h2>{_bars(rates, scale=100, unit="%")}
<h2>Gradebook</h2><table><tr><th>student</th>{"".join(f"<th>{s.label}</th>" for s in steps)}<th>total</th><th>notes</th></tr>{rows}</table>
</html>
"""


def classroom_workflow(course: Course) -> str:
    """.github/workflows/classroom.yml: GitHub Classroom grades each exercise on every push.

    It checks out the instructor's copy of the course (INSTRUCTOR_REPO, a fixed ref) next to the
    student's repository, grades the student's steps/ with the instructor's tests (never the
    student's), then reports one autograding test per exercise worth its points in course.toml.
    """
    ids = [f"ex-{ex.id}" for s in course.steps for ex in s.exercises]
    lines = [
        "# Generated by `python -m workbook dev classroom` from workbook/course.toml: do not edit by hand.",
        "# GitHub Classroom autograding: every push is graded with the INSTRUCTOR's tests and rubric.",
        "# Set the repository variables INSTRUCTOR_REPO (owner/name of your copy of the course) and",
        "# INSTRUCTOR_REF (a tag or commit of it), e.g. in the classroom's template repository.",
        "name: Autograding",
        "on: [push, workflow_dispatch]",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  grade:",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 30",
        "    steps:",
        "      - uses: actions/checkout@v4",
        "        with:",
        "          path: submission",
        "      - uses: actions/checkout@v4",
        "        with:",
        "          repository: ${{ vars.INSTRUCTOR_REPO }}",
        "          ref: ${{ vars.INSTRUCTOR_REF }}",
        "          path: instructor",
        "      - uses: actions/setup-python@v5",
        "        with:",
        "          python-version: '3.12'",
        "      - name: Install",
        "        run: python -m pip install -r instructor/requirements.txt",
        "      - name: Grade with the instructor's tests",
        "        working-directory: instructor",
        "        run: |",
        '          mkdir -p ../class && ln -s "$GITHUB_WORKSPACE/submission" ../class/submission',
        "          python -m workbook grade ../class --out ../grading",
    ]
    for s in course.steps:
        for ex in s.exercises:
            lines += [
                f"      - name: {ex.label} {ex.id}",
                f"        id: ex-{ex.id}",
                "        uses: education/autograding-command-grader@v1",
                "        with:",
                f"          test-name: \"{ex.label} {ex.title.replace(chr(34), chr(39))}\"",
                "          setup-command: ''",
                f"          command: python instructor/workbook/earned.py grading/results.json {ex.id}",
                "          timeout: 1",
                f"          max-score: {ex.points}",
            ]
    lines += [
        "      - name: Autograding report",
        "        uses: education/autograding-grading-reporter@v1",
        "        env:",
        *[f"          {i.upper()}_RESULTS: \"${{{{ steps.{i}.outputs.result }}}}\"" for i in ids],
        "        with:",
        f"          runners: {','.join(ids)}",
    ]
    return "\n".join(lines) + "\n"
