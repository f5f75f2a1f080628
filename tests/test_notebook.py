"""The tutorial notebook runs clean from top to bottom in a real Jupyter kernel.

It runs the way a learner runs it: kernel "python3", working directory applications/, every
cell in order. A cell that raises fails the test with the cell's traceback. Two outputs are
checked as well: the gradients worked out by hand equal edugrad's, and the training loss falls.
"""

import os
import re

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat "
                                                  "(pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient "
                                                  "(pip install -e '.[dev]')")
pytest.importorskip("ipykernel", reason="the notebook test needs a Jupyter kernel: ipykernel "
                                        "(pip install -e '.[dev]')")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLICATIONS = os.path.join(ROOT, "applications")
NOTEBOOK = os.path.join(APPLICATIONS, "tutorial.ipynb")


@pytest.fixture(scope="module")
def executed():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": APPLICATIONS}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
    return notebook


def printed(notebook) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.outputs
                   if output.output_type == "stream")


def test_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the tutorial has no code cells"
    dirty = [i for i, cell in enumerate(code) if cell.outputs or cell.execution_count]
    assert not dirty, f"code cells {dirty} are stored with outputs; clear them before committing"


def test_runs_without_errors(executed):
    errors = [output for cell in executed.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors


def test_hand_gradients_match_backward(executed):
    text = printed(executed)
    by_hand = re.search(r"^by hand: (.*)$", text, re.MULTILINE)
    by_edugrad = re.search(r"^edugrad: (.*)$", text, re.MULTILINE)
    assert by_hand and by_edugrad, text
    assert by_hand.group(1) == by_edugrad.group(1) == "(16.0, -16.0)"
    assert "same as by hand: True" in text
    assert "gradcheck: True" in text


def test_graph_displays_inline(executed):
    shown = [output for cell in executed.cells if cell.cell_type == "code"
             for output in cell.outputs if output.output_type in ("display_data", "execute_result")]
    assert any("<svg" in output.get("data", {}).get("image/svg+xml", "") for output in shown)


def test_training_loss_goes_down(executed):
    match = re.search(r"first loss ([\d.]+), last loss ([\d.]+), accuracy ([\d.]+)%",
                      printed(executed))
    assert match, printed(executed)
    first, last, accuracy = (float(group) for group in match.groups())
    assert last < first / 10
    assert accuracy >= 95
