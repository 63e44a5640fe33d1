"""The workbook's command line: ``python -m workbook`` (see workbook/cli.py)."""
