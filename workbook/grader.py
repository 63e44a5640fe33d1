"""Compatibility: the grader is the package workbook/grading/ (one concern per module)."""

from .grading import *  # noqa: F401,F403
from .grading import classroom_workflow, discover, grade_class, grade_folder  # noqa: F401
