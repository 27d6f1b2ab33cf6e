"""The regulator's review pack (a one-screen summary first, every section and plot present, features named in
Chinese and English, every stated rule with its threshold, logged to MLflow) and the notebook."""
import re
from pathlib import Path

import pytest

SECTIONS = ("summary", "model-card", "global-importance", "shap-summary", "dependence", "shapes", "peer-levels",
            "roc-ks", "calibration", "default-rate", "validation", "psi", "distribution", "features")
PLOTTED = ("global-importance", "shap-summary", "dependence", "roc-ks", "calibration", "default-rate", "psi",
           "distribution")
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "review_explanations.ipynb"


def _sections(text: str) -> dict[str, str]:
    parts = re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S)
    return dict(parts)


def test_review_pack_has_every_section_and_plot_and_is_logged(trained_env, tmp_path):
    from mlflow import MlflowClient

    from creditgrade.features.store import Store
    from creditgrade.models.registry import configure, load_champion
    from creditgrade.training.review import log_review_pack

    store = Store(trained_env.db_url)
    champion = load_champion("sme")
    path = log_review_pack(store, "sme", tmp_path / "review-sme.html", champion)
    store.dispose()
    text = path.read_text(encoding="utf-8")
    sections = _sections(text)
    assert list(sections) == list(SECTIONS)
    for sid in PLOTTED:
        assert '<img src="data:image/png;base64,' in sections[sid], sid
    assert sections["dependence"].count("<img ") >= 2
    peers = sections["peer-levels"]  # the SMEs' levels: each group's median, the coarser ones, all firms
    assert all(w in peers for w in ("tax_paid_12m_vs_peers", "size=small, sector=", "size=micro<", "all 全部"))
    assert all(f"By {g}" in sections["distribution"] for g in ("district", "sector", "size"))
    card = sections["model-card"]
    assert champion.version in card and champion.run_id in card and "Intended use" in card and "Limits" in card
    assert "http" not in re.sub(r'<img src="data:[^"]+"', "", text)  # self-contained
    summary = sections["summary"]
    assert re.search(r'class="verdict (pass|fail)"', summary) and ("通过" in summary)
    for threshold in ("AUC不低于0.7", "KS at least 0.3", "at least 30 subjects", "below 0.25", "at most 0 red"):
        assert threshold in summary, threshold
    assert champion.version in summary and re.search(r"pack [0-9a-f]{7,}", summary)  # the git commit
    assert "训练期" in summary and champion.model.info["train_from"] in summary and "UTC" in summary
    assert text.index('id="summary"') < text.index("<table")  # no table before the summary starts
    assert "近12个月纳税额" in sections["global-importance"] or "近12个月纳税额" in sections["psi"]
    assert "<td>近12个月纳税额</td>" in sections["features"] and "Tax paid in the last 12 months" in sections["features"]
    configure()
    logged = [a.path for a in MlflowClient().list_artifacts(champion.run_id, "review")]
    assert logged == ["review/review-sme.html"]


def test_review_pack_of_a_scorecard_household_model(trained_env, tmp_path):
    from creditgrade.features.store import Store
    from creditgrade.models.registry import load_version
    from creditgrade.training.review import write_review_pack

    version = next(r.version for r in trained_env.results["household"] if r.kind == "scorecard")
    store = Store(trained_env.db_url)
    text = write_review_pack(store, "household", tmp_path / "h.html", load_version("household", version)).read_text()
    store.dispose()
    sections = _sections(text)
    assert list(sections) == [s for s in SECTIONS if s != "peer-levels"]  # households have no levels against peers
    assert "points relative to the best bin" in sections["shap-summary"]
    assert "By township_code" in sections["distribution"] and "name 名称" in sections["distribution"]


@pytest.mark.slow
def test_notebook_executes(trained_env, tmp_path):
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


def test_monotone_rule_names_its_threshold_and_the_grades_it_did_not_count():
    import numpy as np
    import pandas as pd

    from creditgrade.training.review import _monotone_value, monotone_rates

    # grade A: 100 subjects, 1 default; B: 100, 5; C: 21, none (the silent 0/21)
    y = np.r_[np.zeros(99), 1, np.zeros(95), np.ones(5), np.zeros(21)]
    graded = pd.DataFrame({"model_grade": ["A"] * 100 + ["B"] * 100 + ["C"] * 21})
    rates = monotone_rates(y, graded, ["A", "B", "C"])
    assert rates["counted"].tolist() == [True, True, False]
    text = _monotone_value(rates)
    assert text.startswith("holds") and "counted 计入: A, B" in text
    assert "not counted, under 30 subjects" in text and "C 0/21" in text
    falling = monotone_rates(np.r_[np.zeros(90), np.ones(10), np.zeros(99), 1], graded.iloc[:200], ["A", "B"])
    assert "does NOT hold" in _monotone_value(falling) and "A 10.00% > B 1.00%" in _monotone_value(falling)


def test_shape_functions_are_plotted_for_a_family_that_describes_them():
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from creditgrade.models.ebm import EBMPD
    from creditgrade.training.review import TOP_SHAPES, _shapes

    gen = np.random.default_rng(0)
    X = pd.DataFrame({"tax_paid_12m": gen.lognormal(8, 1, 600), "fin_dpd_worst_12m": gen.integers(0, 90, 600)})
    y = (gen.random(600) < 1 / (1 + np.exp(3 - X["fin_dpd_worst_12m"] / 30))).astype(int)
    ebm = EBMPD(monotone={"tax_paid_12m": -1, "fin_dpd_worst_12m": 1}, outer_bags=2).fit(X, y)
    text = _shapes(SimpleNamespace(estimator=ebm))
    assert text.startswith('<section id="shapes">') and text.count("<img ") == min(TOP_SHAPES, 2)
    assert "近12个月纳税额" in text and "Tax paid in the last 12 months" in text
    from creditgrade.models.blend import Blend
    from creditgrade.models.logistic import LogisticPD

    blend = Blend([LogisticPD().fit(X, y), ebm], [0.4, 0.6])  # additive members: the EBM's shapes, weighted
    mixed = _shapes(SimpleNamespace(estimator=blend))
    assert "ebm member, each bin&#x27;s log-odds times its weight 0.60" in mixed and "ebm 成员" in mixed
    assert mixed.count("<img ") == min(TOP_SHAPES, 2) and "gives no shape functions" not in mixed
    from creditgrade.models.scorecard import Scorecard

    card = Scorecard().fit(X, y)  # a card's bins in log-odds beside the EBM's shapes, each weighted
    carded = _shapes(SimpleNamespace(estimator=Blend([card, ebm], [0.5, 0.5])))
    assert "scorecard member, each bin&#x27;s log-odds times its weight 0.50" in carded and "ebm 成员" in carded
    assert carded.count("<img ") == min(TOP_SHAPES, len(card.selection_["kept"])) + min(TOP_SHAPES, 2) > 2
    flat = _shapes(SimpleNamespace(estimator=SimpleNamespace(describe=lambda: {"details": {"size_trials": []}})))
    assert "<img " not in flat and "gives no shape functions" in flat and "不提供形状函数" in flat
