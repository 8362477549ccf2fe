"""Each notebook runs top to bottom against the installed package, and its committed outputs
are what the code produces now (no stale outputs). See notebooks/execute.py."""

import importlib.util

import pytest

from conftest import REPO_ROOT

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

_spec = importlib.util.spec_from_file_location("nb_execute", REPO_ROOT / "notebooks" / "execute.py")
nb_execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nb_execute)


def test_every_notebook_is_listed():
    assert nb_execute.NOTEBOOKS == ["01_quickstart.ipynb", "02_gnn_vs_llm_vs_hybrid.ipynb", "03_cold_start.ipynb"]


def test_output_comparison_ignores_only_volatile_parts():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    def nb(text, tags=()):
        cell = new_code_cell("print(x)", outputs=[new_output("stream", name="stdout", text=text)])
        cell.metadata["tags"] = list(tags)
        return new_notebook(cells=[cell])

    assert not nb_execute.differences(nb("run /tmp/abc/x-20261126-101010\n"), nb("run /tmp/zz/x-20250101-000000\n"))
    assert nb_execute.differences(nb("recall 0.1234\n"), nb("recall 0.1235\n"))
    assert not nb_execute.differences(nb("3.2 s\n", ["timing"]), nb("4.1 s\n", ["timing"]))
    assert isinstance(nbformat.v4.new_notebook(), dict)


@pytest.mark.slow
@pytest.mark.parametrize("name", nb_execute.NOTEBOOKS)
def test_notebook_runs_and_outputs_are_current(name):
    import nbformat

    path = REPO_ROOT / "notebooks" / name
    committed = nbformat.read(path, as_version=4)
    assert any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), "committed without outputs"
    fresh = nb_execute.execute(path)  # a failing cell raises CellExecutionError
    diffs = nb_execute.differences(committed, fresh)
    assert not diffs, (f"{name}: committed outputs are stale; refresh them with "
                       f"`python notebooks/execute.py {name}`\n" + "\n".join(diffs))
