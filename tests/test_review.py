"""The regulator's review pack (every section and plot present, logged to MLflow) and the notebook."""
import re
from pathlib import Path

import pytest

SECTIONS = ("model-card", "global-importance", "shap-summary", "dependence", "roc-ks", "calibration",
            "default-rate", "validation", "psi", "distribution")
PLOTTED = ("global-importance", "shap-summary", "dependence", "roc-ks", "calibration", "default-rate", "psi",
           "distribution")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "review_explanations.ipynb"


@pytest.fixture
def env(trained, monkeypatch):
    monkeypatch.setenv("CREDITGRADE_HOME", str(trained.home))
    monkeypatch.setenv("CREDITGRADE_DB_URL", trained.db_url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return trained


def _sections(text: str) -> dict[str, str]:
    parts = re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S)
    return dict(parts)


def test_review_pack_has_every_section_and_plot_and_is_logged(env, tmp_path):
    from mlflow import MlflowClient

    from features.store import Store
    from models.registry import configure, load_champion
    from training.review import log_review_pack

    store = Store(env.db_url)
    champion = load_champion("sme")
    path = log_review_pack(store, "sme", tmp_path / "review-sme.html", champion)
    store.dispose()
    text = path.read_text(encoding="utf-8")
    sections = _sections(text)
    assert list(sections) == list(SECTIONS)
    for sid in PLOTTED:
        assert '<img src="data:image/png;base64,' in sections[sid], sid
    assert sections["dependence"].count("<img ") >= 2
    assert all(f"By {g}" in sections["distribution"] for g in ("district", "sector", "size"))
    card = sections["model-card"]
    assert champion.version in card and champion.run_id in card and "Intended use" in card and "Limits" in card
    assert "http" not in re.sub(r'<img src="data:[^"]+"', "", text)  # self-contained
    configure()
    logged = [a.path for a in MlflowClient().list_artifacts(champion.run_id, "review")]
    assert logged == ["review/review-sme.html"]


def test_review_pack_of_a_scorecard_household_model(env, tmp_path):
    from features.store import Store
    from models.registry import load_version
    from training.review import write_review_pack

    version = next(r.version for r in env.results["household"] if r.kind == "scorecard")
    store = Store(env.db_url)
    text = write_review_pack(store, "household", tmp_path / "h.html", load_version("household", version)).read_text()
    store.dispose()
    sections = _sections(text)
    assert list(sections) == list(SECTIONS)
    assert "points relative to the best bin" in sections["shap-summary"]
    assert "By township_code" in sections["distribution"]


def test_notebook_executes(env, tmp_path):
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "household" in text and "practitioner" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the waterfall
