"""What every notebook build script shares: cells with stable ids, a notebook, a file.

A script in this folder declares its notebook's cells in order, then hands over:

    builder = Builder(__file__)            # builds notebooks/<the script's name>.ipynb
    md, code = builder.md, builder.code
    builder.intro(N)                       # the title, time and objectives from course.toml, as Markdown
    md("why", "...")                       # a Markdown cell
    code("attack", "...", hidden=False)    # a code cell (hidden: input collapsed in Jupyter)
    builder.your_turn("forge", question, attempt, answer_code, answer_text)
                                           # predict, try; the worked answer one click away
    builder.outro(N)                       # the exercise, key points, references, as Markdown
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

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from workbook.notebook import intro_markdown, outro_markdown  # noqa: E402

SETUP = """\
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))  # the repository root, so `solutions` and `workbook` import
"""


class Builder:
    def __init__(self, script: str):
        here = Path(script).resolve()
        self.notebook = here.parent.parent / f"{here.stem}.ipynb"
        self.cells: list[tuple[str, str, str]] = []  # (kind, id, source)

    def md(self, cell_id: str, text: str) -> None:
        self.cells.append(("markdown", cell_id, text.strip("\n")))

    def code(self, cell_id: str, text: str, hidden: bool = False) -> None:
        self.cells.append(("code-hidden" if hidden else "code", cell_id, text.strip("\n")))

    def answer(self, cell_id: str, text: str) -> None:
        """A code cell collapsed with its outputs: a worked answer, one click away."""
        self.cells.append(("code-answer", cell_id, text.strip("\n")))

    def intro(self, number: int, setup: str = "") -> None:
        """The opening as Markdown (from course.toml), then the cell that makes the repository importable."""
        self.md("intro", intro_markdown(number))
        self.code("begin", SETUP + ("\n" + setup.strip("\n") if setup.strip() else ""))

    def outro(self, number: int) -> None:
        self.md("outro", outro_markdown(number))

    def your_turn(self, cell_id: str, question: str, attempt: str, answer: str, explanation: str) -> None:
        """A "your turn": the question (Markdown), the learner's cell (it runs as it is: a `...`
        placeholder makes it say what to do), then the worked answer: a code cell whose source is
        collapsed (one click shows it) and its explanation, folded in a <details> element."""
        self.md(f"{cell_id}-question", "### Your turn\n\n" + question.strip("\n"))
        self.code(f"{cell_id}-try", attempt)
        self.md(f"{cell_id}-answer-intro", "**Worked answer**, in the cell below. JupyterLab and Jupyter "
                                           "Notebook 7 show it collapsed, code and output: click the bar or the "
                                           "`…` to open it; it runs either way. Other viewers (VS Code, GitHub, "
                                           "an HTML export) may show it open: try yours first.")
        self.answer(f"{cell_id}-answer", answer)
        self.md(f"{cell_id}-answer-why", "<details><summary><b>Why</b> (click)</summary>\n\n"
                + explanation.strip("\n") + "\n</details>")

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
                elif kind == "code-answer":
                    cell.metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
                    cell.metadata["tags"] = ["worked-answer"]
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
