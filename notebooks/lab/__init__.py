"""Helpers and drawing code for the notebooks, so that a notebook's visible cells are the lesson.

One module per notebook (`lab.setup` for 01_setup.ipynb, `lab.authentication` for 02, ...) and
`lab.common` for what they share: a figure that carries its description (alt text), the
workbook's own commands, an environment with exactly the FLASK_* variables a cell asks for.
Nothing here is an exercise's solution; tests/test_notebook_helpers.py tests it like other code.
"""
