"""The outputs of a grading run: gradebook.csv, feedback/<id>.md, report.html, results.json.

results.json holds everything a grade was computed from (each test's verdict), so that
`grade merge` can join shards without grading again. Rows are flagged where an instructor should
look: a run that tripped a limit or the tamper check (never cached), identical submissions (by
content hash), a copy of the course's solutions.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from ..runner import TestResult
from .rubric import Grade

def _hidden(test: TestResult) -> bool:
    return "/_extra_" in test.nodeid.replace("\\", "/")


def _fmt(points: float) -> str:
    return f"{points:g}"


def flag_identical(grades: list[Grade], known: dict[str, str] | None = None) -> None:
    """Flag submissions whose graded copies are byte-identical (a hash in common), or identical to a
    known folder (``known``: hash -> what, e.g. the course's solutions; the starter is not flagged)."""
    known = known or {}
    by_hash: dict[str, list[Grade]] = {}
    for g in grades:
        if g.content and g.attempted:
            by_hash.setdefault(g.content, []).append(g)
    for content, group in by_hash.items():
        if content in known:
            for g in group:
                _flag(g, f"identical to {known[content]}")
        if len(group) > 1:
            for g in group:
                others = ", ".join(o.student for o in group if o is not g)
                _flag(g, f"identical submission to {others}")


def _flag(g: Grade, flag: str) -> None:
    if flag not in g.flags:
        g.flags.append(flag)


def grade_to_json(g: Grade, maximum: float) -> dict:
    return {"student": g.student, "id": g.id, "total": g.total, "maximum": maximum, "steps": g.steps,
            "exercises": g.exercises, "notes": g.notes, "flags": g.flags, "seconds": round(g.seconds, 2),
            "content": g.content, "attempted": g.attempted,
            "tests": [t.__dict__ for t in g.tests]}


def grade_from_json(data: dict) -> Grade:
    g = Grade(student=data["student"], id=data["id"], notes=list(data["notes"]), flags=list(data.get("flags", [])),
              seconds=data.get("seconds", 0.0), content=data.get("content", ""),
              attempted=list(data.get("attempted", [])))
    g.tests = [TestResult(**t) for t in data["tests"]]
    return g


def write_outputs(grades: list[Grade], out: Path, steps: list, show_extra: bool) -> None:
    maximum = sum(sum(ex.points for ex in s.exercises) for s in steps)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "id", *[s.slug for s in steps], "total", "maximum", "flags", "notes"])
        for g in grades:
            writer.writerow([g.student, g.id, *[_fmt(g.steps.get(s.slug, 0)) for s in steps], _fmt(g.total),
                             _fmt(maximum), "; ".join(g.flags), "; ".join(g.notes)])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for g in grades:
        (feedback / f"{g.id}.md").write_text(feedback_markdown(g, steps, maximum, show_extra), encoding="utf-8")
    (out / "results.json").write_text(json.dumps([grade_to_json(g, maximum) for g in grades], indent=1,
                                                 ensure_ascii=False), encoding="utf-8")
    (out / "report.html").write_text(report_html(grades, steps, maximum), encoding="utf-8")


def feedback_markdown(g: Grade, steps: list, maximum: float, show_extra: bool) -> str:
    lines = [f"# Feedback for {g.student}", "", f"**Total: {_fmt(g.total)} / {_fmt(maximum)}**", ""]
    for flag in g.flags:
        lines.append(f"- ⚑ {flag}")
    for note in g.notes:
        lines.append(f"- {note}")
    if g.notes or g.flags:
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
    attempted_avg = []
    for step in steps:
        top = sum(ex.points for ex in step.exercises) or 1
        average = 100 * sum(g.steps.get(step.slug, 0) for g in grades) / (top * len(grades)) if grades else 0
        per_step.append((f"{step.label} {step.title}", average))
        tried = [g for g in grades if step.slug in g.attempted]
        if tried:  # "struggled most": over the students who attempted the step, not the whole class
            attempted_avg.append((f"{step.label} {step.title} ({len(tried)} attempted)",
                                  100 * sum(g.steps.get(step.slug, 0) for g in tried) / (top * len(tried))))
    per_test: dict[str, list[bool]] = {}
    for g in grades:
        for t in g.tests:
            if t.skipped or _hidden(t):
                continue
            per_test.setdefault(f"{t.lesson:02d} {t.property}" if t.lesson else t.property, []).append(t.passed)
    rates = sorted(((name, 100 * sum(v) / len(v)) for name, v in per_test.items()), key=lambda x: x[1])
    struggled = ", ".join(name for name, avg in sorted(attempted_avg, key=lambda x: x[1])[:2]) or "(no step attempted)"
    flagged = [g for g in grades if g.flags]
    rows = "".join(
        f"<tr{' class=flag' if g.flags else ''}><td>{html.escape(g.student)}</td><td><code>{html.escape(g.id)}</code></td>"
        + "".join(f"<td>{_fmt(g.steps.get(s.slug, 0))}</td>" for s in steps)
        + f"<td><b>{_fmt(g.total)}</b></td><td>{html.escape('; '.join(g.flags))}</td>"
        f"<td>{html.escape('; '.join(g.notes))}</td></tr>" for g in grades)
    suspicious = "".join(f"<li>{html.escape(g.student)} (<code>{html.escape(g.id)}</code>): "
                         f"{html.escape('; '.join(g.flags))}</li>" for g in flagged) or "<li>none</li>"
    mean = sum(totals) / len(totals) if totals else 0
    return f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>Class report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}h2{{margin-top:1.6em}}tr.flag{{background:#fff3cd}}</style>
<h1>Class report</h1>
<p>{len(grades)} submissions · mean {mean:.1f} / {_fmt(maximum)} points ·
the class struggled most with: <b>{html.escape(struggled)}</b></p>
<h2>Suspicious rows ({len(flagged)})</h2><ul>{suspicious}</ul>
<h2>Distribution of totals (share of the maximum)</h2>{histogram}
<h2>Average score per step (%)</h2>{_bars(per_step, scale=100, unit="%")}
<h2>Pass rate per check (%), hardest first</h2>{_bars(rates, scale=100, unit="%")}
<h2>Gradebook</h2><table><tr><th>student</th><th>id</th>{"".join(f"<th>{s.label}</th>" for s in steps)}<th>total</th><th>flags</th><th>notes</th></tr>{rows}</table>
</html>
"""
