"""The analyst's retraining notebook runs end to end against a trained home."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_retrain_notebook_executes(trained_env, tmp_path):
    from creditgrade.models.registry import configure, model_name

    before = len(configure().search_model_versions(f"name='{model_name('sme')}'"))
    nb = nbformat.read(NOTEBOOKS / "retrain.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "challenger AUC" in outputs
    assert ("promoted version" in outputs) or ("kept champion version" in outputs)
    # the same data and settings as the session's training: an identical model, nothing registered (issue 14)
    assert "nothing registered" in outputs
    assert len(configure().search_model_versions(f"name='{model_name('sme')}'")) == before
