"""What every notebook build script shares: cells with stable ids, a notebook, a file.

A script in this folder declares its notebook's cells in order, then hands over:

    builder = Builder(__file__)            # builds notebooks/<the script's name>.ipynb
    md, code = builder.md, builder.code
    md("why", "...")                       # a Markdown cell
    code("attack", "...", hidden=False)    # a code cell (hidden: input collapsed in Jupyter)
    build = builder.build
    if __name__ == "__main__":
        builder.main()

`python -m workbook dev notebooks N` runs the script, then executes the notebook and stores its
outputs; a test checks that each stored notebook has exactly its script's cells.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


class Builder:
    def __init__(self, script: str):
        here = Path(script).resolve()
        self.notebook = here.parent.parent / f"{here.stem}.ipynb"
        self.cells: list[tuple[str, str, str]] = []  # (kind, id, source)

    def md(self, cell_id: str, text: str) -> None:
        self.cells.append(("markdown", cell_id, text.strip("\n")))

    def code(self, cell_id: str, text: str, hidden: bool = False) -> None:
        self.cells.append(("code-hidden" if hidden else "code", cell_id, text.strip("\n")))

    def build(self) -> nbformat.NotebookNode:
        nb = new_notebook()
        nb.metadata = {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        }
        for kind, cell_id, source in self.cells:
            if kind == "markdown":
                cell = new_markdown_cell(source)
            else:
                cell = new_code_cell(source)
                if kind == "code-hidden":
                    cell.metadata["jupyter"] = {"source_hidden": True}
            cell.id = cell_id  # stable ids: a rebuild does not churn the diff
            nb.cells.append(cell)
        nbformat.validate(nb)
        return nb

    def main(self) -> None:
        ids = [cell_id for _, cell_id, _ in self.cells]
        if len(ids) != len(set(ids)):
            sys.exit("duplicate cell ids")
        nbformat.write(self.build(), self.notebook)
        print(f"wrote {self.notebook.name}: {len(self.cells)} cells")
