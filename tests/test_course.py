"""The course metadata is the one source of truth: it is valid, and what repeats it agrees."""

import pytest

from workbook import cli
from workbook.course import NOTEBOOKS, README_FILE, SOLUTIONS, STEPS, load


def test_metadata_loads_and_names_real_files():
    course = load()
    assert course.steps, "workbook/course.toml lists no steps"
    for step in course.steps:
        assert step.folder(SOLUTIONS).is_dir(), f"solutions/{step.slug} is missing"
        assert step.folder(STEPS).is_dir(), f"steps/{step.slug} is missing (python -m workbook dev sync)"
        assert (NOTEBOOKS / step.notebook).is_file(), f"notebooks/{step.notebook} is missing"
        assert step.test_files, f"tests/test_{step.slug}*.py is missing"
        assert step.objectives and step.key_points and step.references, f"step {step.number} lacks framing"


def test_readme_course_map_is_generated_from_the_metadata():
    """The README's course map is exactly what `python -m workbook dev sync` writes."""
    text = README_FILE.read_text("utf-8")
    assert cli.readme_with_map(text) == text, "README.md's course map is stale: run `python -m workbook dev sync`"


def test_bad_metadata_is_reported_in_words(tmp_path):
    bad = tmp_path / "course.toml"
    bad.write_text(
        '[course]\ntitle = "t"\nsubtitle = "s"\n'
        '[[steps]]\nnumber = 2\nslug = "step01_x"\ntitle = "x"\nconcept = "c"\nnotebook = "01_x.ipynb"\nminutes = 1\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="numbered 1, 2, 3"):
        load.__wrapped__(bad)


def test_exercise_lookup_by_number_id_or_label():
    step = load().steps[0]
    first = step.exercises[0]
    assert step.exercise("1") is step.exercise(first.id) is step.exercise(first.label) is first
    with pytest.raises(KeyError, match="has no exercise"):
        step.exercise("99")


@pytest.mark.parametrize("step", load().steps, ids=[s.slug for s in load().steps])
def test_notebooks_are_built_from_their_scripts(step):
    """notebooks/NN_slug.ipynb has exactly the cells of notebooks/build/NN_slug.py (edit the script, not the .ipynb)."""
    import importlib.util
    import json

    script = NOTEBOOKS / "build" / step.notebook.replace(".ipynb", ".py")
    assert script.is_file(), f"{script.name} is missing: notebooks are generated from a build script"
    spec = importlib.util.spec_from_file_location(f"_notebook_build_{step.slug}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = [(c.cell_type, c.id, c.source) for c in module.build().cells]
    stored = json.loads((NOTEBOOKS / step.notebook).read_text("utf-8"))["cells"]
    actual = [(c["cell_type"], c.get("id"), "".join(c["source"])) for c in stored]
    assert actual == expected, (
        f"notebooks/{step.notebook} differs from {script.name}: run `python -m workbook dev notebooks {step.number}`"
    )
    assert any(c.get("outputs") for c in stored if c["cell_type"] == "code"), (
        f"notebooks/{step.notebook} is stored without outputs: it must render on GitHub"
    )


def test_the_classroom_workflow_is_generated_from_the_metadata():
    """.github/workflows/classroom.yml has one autograding test per exercise, worth its points."""
    from workbook.grader import classroom_workflow

    path = README_FILE.parent / ".github" / "workflows" / "classroom.yml"
    assert path.read_text("utf-8") == classroom_workflow(load()), (
        "the Classroom workflow is stale: run `python -m workbook dev classroom`"
    )


def test_earned_reads_the_graders_results(tmp_path):
    import json
    import subprocess
    import sys

    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"student": "s", "exercises": {"health": 1, "config-order": 0}}]))
    earned = README_FILE.parent / "workbook" / "earned.py"
    run = lambda ex: subprocess.run([sys.executable, str(earned), str(results), ex], capture_output=True)  # noqa: E731
    assert run("health").returncode == 0 and run("config-order").returncode == 1 and run("nope").returncode == 1
