"""Band validation: the ECB Jeffreys p-value, traffic lights at their configured thresholds, band PD ranges
that agree with the scale, a miscalibrated grade lit red, defaulters left out of the test, and the
`creditgrade validate` command on a trained home (village shares, HTML, MLflow)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from creditgrade.models.bundle import GradeModel
from creditgrade.models.grades import scales
from creditgrade.training.validate import (band_ranges, config, findings, inversions, jeffreys_p_value, significant,
                               traffic_light, validate_snapshots)


def test_jeffreys_p_value_is_the_beta_posterior_cdf_at_the_pd():
    for defaults, subjects, pd_ in ((0, 100, 0.01), (3, 250, 0.02), (12, 90, 0.05)):
        a, b = defaults + 0.5, subjects - defaults + 0.5
        by_hand = integrate.quad(lambda x: x ** (a - 1) * (1 - x) ** (b - 1), 0, pd_)[0] / special.beta(a, b)
        assert jeffreys_p_value(defaults, subjects, pd_) == pytest.approx(by_hand, rel=1e-6)
    assert jeffreys_p_value(20, 200, 0.02) < 0.001 < 0.5 < jeffreys_p_value(0, 200, 0.02)  # too many / none


def test_traffic_light_thresholds_come_from_configuration():
    j = config()["jeffreys"]
    n = j["min_subjects"]
    lights = traffic_light([j["red_below"] * 0.99, j["red_below"], j["amber_below"] * 0.99, j["amber_below"], 0.5],
                           [n] * 5)
    assert lights.tolist() == ["red", "amber", "amber", "green", "green"]
    assert traffic_light([0.0001], [n - 1]).tolist() == ["untested"]


@pytest.mark.parametrize("segment", ["sme", "household", "practitioner"])
def test_band_ranges_agree_with_the_scale(segment):
    scale = scales()[segment]
    bands = band_ranges(scale)
    assert list(bands.index) == [b["grade"] for b in scale.bands]
    assert bands["pd_low"].iloc[0] == 0 and bands["pd_high"].iloc[-1] == 1
    assert (bands["pd_low"].to_numpy()[1:] == bands["pd_high"].to_numpy()[:-1]).all()
    inside = np.sqrt(np.maximum(bands["pd_low"], 1e-6) * bands["pd_high"])  # a PD within each band
    assert scale.apply(inside.to_numpy())["model_grade"].tolist() == list(bands.index)


class _GivenPD:
    """An estimator that returns the PD in column ``pd_in``."""

    def predict_pd(self, X):
        return X["pd_in"].to_numpy()


def _snapshots() -> pd.DataFrame:
    """Two as-of dates of SMEs: BBB (PD 0.7 %) and B (3 %) default at their PD; BB (PD 1.5 %) defaults at
    6 % on the second date; C has 10 subjects; 20 subjects in default at the date, all of whom default."""
    parts = []
    for day, bb_defaults in (("2024-03-31", 6), ("2024-06-30", 24)):
        groups = [(0.007, 400, 3), (0.015, 400, bb_defaults), (0.03, 300, 9), (0.3, 10, 3)]
        rows = [(pd_, int(i < d), 0) for pd_, n, d in groups for i in range(n)]
        rows += [(0.015, 1, 120)] * 20  # in default at the date: model grade BB, 120 days past due
        parts.append(pd.DataFrame(rows, columns=["pd_in", "defaulted", "fin_dpd_current"]).assign(
            as_of=pd.Timestamp(day)))
    data = pd.concat(parts, ignore_index=True)
    inputs = {name for r in scales()["sme"].rules for name in (r.feature, r.evidence, r.since) if name}
    data = data.assign(**{name: np.nan for name in sorted(inputs - set(data))})  # the other policy inputs
    return data.set_axis(pd.Index([f"s{i}" for i in range(len(data))], name="subject_key"))


def test_a_miscalibrated_grade_is_red_and_defaulters_are_left_out():
    model = GradeModel("sme", "lightgbm", _GivenPD(), ["pd_in"])
    result = validate_snapshots(_snapshots(), model)
    t = result["table"].set_index(["as_of", "grade"])
    first, second = pd.Timestamp("2024-03-31"), pd.Timestamp("2024-06-30")
    bb = t.loc[(second, "BB")]
    assert (bb["subjects"], bb["defaults"], bb["default_rate"]) == (400, 24, 0.06)  # the 20 defaulters left out
    assert bb["mean_pd"] == pytest.approx(0.015)
    assert bb["p_value"] == pytest.approx(jeffreys_p_value(24, 400, 0.015)) and bb["light"] == "red"
    assert (bb["pd_low"], bb["pd_high"], bb["position"]) == (0.01, 0.02, "above")
    assert t.loc[(first, "BB"), "light"] == "green" and t.loc[(first, "BB"), "position"] == "within"
    assert t.loc[(first, "BBB"), "light"] == "green" and t.loc[(first, "B"), "light"] == "green"
    assert t.loc[(first, "C"), "light"] == "untested" and t.loc[(first, "C"), "subjects"] == 10
    assert t.loc[(first, "AAA"), "subjects"] == 0 and t.loc[(first, "AAA"), "light"] == "untested"
    d = t.loc[(first, "D")]
    assert (d["subjects"], d["final_subjects"], d["final_defaults"], d["light"]) == (0, 20, 20, "")
    assert result["in_default"] == {first: 20, second: 20}
    assert result["monotone"] == {first: True, second: False}  # BB at 6 % above B at 3 %
    assert "BB 6.00% > B 3.00%" in findings(result)[1] and "red 红灯 1" in findings(result)[1]
    shares = result["shares"].loc[first]
    assert shares["D"] == pytest.approx(20 / 1130) and shares["BB"] == pytest.approx(400 / 1130)
    assert "rated" not in result["shares"]


def test_inversions_are_tested_for_significance_and_the_oracle_table_sits_beside():
    model = GradeModel("sme", "lightgbm", _GivenPD(), ["pd_in"])
    data = _snapshots()
    true_pd = np.where(data["pd_in"] == 0.015, 0.05, data["pd_in"])  # the truth: "BB" subjects are CCC risks
    result = validate_snapshots(data, model, oracle=true_pd)
    first, second = pd.Timestamp("2024-03-31"), pd.Timestamp("2024-06-30")
    assert result["inversions"][first] == []
    (fall,) = result["inversions"][second]
    assert (fall["better"], fall["worse"]) == ("BB", "B") and fall["p_value"] < 0.05  # 24/400 vs 9/300
    assert fall["p_value"] == pytest.approx(stats.fisher_exact([[24, 376], [9, 291]], alternative="greater").pvalue)
    assert "significant inversions 显著倒挂 (p < 0.05): 1" in findings(result)[1]
    oracle = result["oracle_table"].set_index(["as_of", "grade"])
    assert oracle.loc[(second, "CCC"), "subjects"] == 400 and oracle.loc[(second, "BB"), "subjects"] == 0
    assert result["oracle_inversions"][second] == []  # on the true PD, CCC defaults above B
    assert any(line.startswith("oracle (true PD)") for line in findings(result))


def test_a_chance_inversion_is_not_significant():
    rates = pd.DataFrame({"grade": ["A", "BBB"], "n": [220, 300], "defaults": [2, 1]}).assign(
        rate=lambda d: d["defaults"] / d["n"])
    (fall,) = inversions(rates, 30)
    assert fall["p_value"] > 0.3 and not significant([fall])


def test_validate_command_on_a_trained_home(trained_env, tmp_path, capsys):
    from mlflow import MlflowClient

    from creditgrade.cli import main
    from creditgrade.features.store import Store
    from creditgrade.models.registry import configure, load_champion
    from creditgrade.training.validate import EXPERIMENT, validate

    out = tmp_path / "validate-household.html"
    assert main(["validate", "--segment", "household", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    champion = load_champion("household")
    dates = pd.date_range(champion.model.info["test_from"], champion.model.info["test_to"], freq="QE")
    assert all(f"{d.date()}: red 红灯" in printed for d in dates)
    assert "Jeffreys" in printed and "信用村占比" in printed
    page = out.read_text(encoding="utf-8")
    assert "Jeffreys p值" in page and "credit townships" in page
    store = Store(trained_env.db_url)
    result = validate(store, "household")
    store.dispose()
    t, shares = result["table"], result["shares"]
    assert sorted(t["as_of"].unique()) == list(dates) and list(t["grade"].unique()) == champion.model.scale.order
    tested, everyone = t.groupby("as_of")["subjects"].sum(), t.groupby("as_of")["final_subjects"].sum()
    assert (everyone - tested).to_dict() == result["in_default"]
    assert shares["rated"].to_numpy() == pytest.approx(1 - shares["NR"].to_numpy())
    assert shares[["credit_villages", "credit_townships"]].stack().between(0, 1).all()
    client = configure()
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert runs and {"lights_red", "lights_green", "monotone_all_dates"} <= set(runs[0].data.metrics)


def test_validate_names_a_bad_segment(trained_env, capsys):
    from creditgrade.cli import main

    with pytest.raises(SystemExit) as refused:  # argparse names the choices
        main(["validate", "--segment", "firms"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "firms" in err and "sme" in err
