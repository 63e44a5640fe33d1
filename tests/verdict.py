"""Failures that say where the fix belongs, for the few tests that cover several exercises.

    from tests.verdict import check
    check(r.status_code == 400, "register-schema", "an unknown field was accepted ...")

A failing ``check`` raises an AssertionError that names its exercise; the report plugin
(workbook/pytest_report.py) then reports the failure under that exercise alone, so `check`
shows it — with that exercise's hint — and `grade` withholds that exercise's points, not the
points of the other exercises the test also covers. The exercise must be one of the test's
``@pytest.mark.exercise`` markers.
"""

from __future__ import annotations


class ExerciseFailure(AssertionError):
    """An assertion that failed, with the id of the exercise where the fix belongs."""

    def __init__(self, exercise: str, message: str):
        super().__init__(message)
        self.exercise = exercise


def check(condition, exercise: str, message: str) -> None:
    """``assert condition, message``, reported under ``exercise`` when it fails."""
    if not condition:
        raise ExerciseFailure(exercise, message)
