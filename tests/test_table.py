"""Generic mode on real files: readers, odd column names, protected attributes, identifiers, special codes,
the choice among families inside the training rows, and the CLI's report."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditgrade.features.errors import CreditgradeError
from creditgrade.training.table_columns import binary_target, choose_columns, feature_frame
from creditgrade.training.table_read import read_dictionary, read_table

FAMILIES_FAST = ("scorecard", "lightgbm")


def credit_table(n=900, seed=1) -> pd.DataFrame:
    """A small credit-like table with a row number, an id, a protected column and odd names."""
    rng = np.random.default_rng(seed)
    ratio = rng.uniform(0, 1, n)
    late = rng.poisson(1.0, n).astype(float)
    logit = -1.2 + 2.5 * ratio + 0.5 * late
    df = pd.DataFrame({"Unnamed: 0": np.arange(n), "ID": [f"c{i:05d}" for i in range(n)],
                       'debt ratio, "net" [%]': ratio, "late {12m}": late,
                       "home": rng.choice(["own", "rent", "family"], n), "SEX": rng.choice([1, 2], n)})
    df.loc[rng.random(n) < 0.08, "late {12m}"] = -8
    df["bad"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.mark.parametrize("write, name, header", [
    (lambda df, p: df.to_csv(p, index=False), "t.csv", True),
    (lambda df, p: df.to_csv(p, index=False, sep=";"), "t.txt", True),
    (lambda df, p: df.to_csv(p, index=False, sep="\t"), "t.tsv", True),
    (lambda df, p: df.to_csv(p, index=False, sep=" ", header=False), "t.data", False),
    (lambda df, p: df.to_parquet(p), "t.parquet", True),
    (lambda df, p: df.to_excel(p, index=False), "t.xlsx", True),
])
def test_readers_sniff_the_format(tmp_path, write, name, header):
    df = pd.DataFrame({"a": [1.5, 2.0, 3.25], "b": ["x", "y", "z"], "bad": [0, 1, 0]})
    write(df, tmp_path / name)
    got = read_table(tmp_path / name, header=header)
    assert list(got.columns) == (["a", "b", "bad"] if header else ["A1", "A2", "A3"])
    assert got.iloc[:, 0].tolist() == [1.5, 2.0, 3.25] and got.iloc[:, 1].tolist() == ["x", "y", "z"]


def test_arff_is_read_with_its_attribute_names(tmp_path):
    path = tmp_path / "t.arff"
    path.write_text("@relation t\n@attribute Attr1 numeric\n@attribute kind {a,b}\n@attribute class {0,1}\n"
                    "@data\n0.5,a,0\n?,b,1\n1.5,a,0\n")
    df = read_table(path)
    assert list(df.columns) == ["Attr1", "kind", "class"] and np.isnan(df["Attr1"][1])
    assert binary_target(df, "class").tolist() == [0, 1, 0]  # nominal '0'/'1' read as 0/1


def test_unreadable_files_are_clear_errors(tmp_path):
    bad = tmp_path / "t.arff"
    bad.write_text("not an arff file\n")
    with pytest.raises(CreditgradeError, match=r"t.arff cannot be read as arff"):
        read_table(bad)
    with pytest.raises(CreditgradeError, match="no such file"):
        read_table(tmp_path / "none.csv")
    with pytest.raises(CreditgradeError, match="is a folder, not a table file"):
        read_table(tmp_path)


def test_bad_value_in_another_case_is_named():
    df = pd.DataFrame({"deny": ["no", "yes", "no"]})
    with pytest.raises(CreditgradeError, match=r"--bad 'YES' is not a value of 'deny' \(did you mean 'yes'\?"):
        binary_target(df, "deny", bad="YES")


def test_target_missing_hints_at_no_header(tmp_path):
    path = tmp_path / "german.data"
    path.write_text("A11 6 A34 1\nA12 48 A32 2\nA14 12 A34 1\n")
    df = read_table(path)
    with pytest.raises(CreditgradeError, match="--no-header"):
        binary_target(df, "A4")
    df = read_table(path, header=False)
    assert binary_target(df, "A4", bad="2").tolist() == [0, 1, 0]


def test_protected_by_name_option_and_dictionary_and_identifiers_with_reasons(tmp_path):
    df = credit_table(60).assign(X2=1, X5=30, seq=np.random.default_rng(0).permutation(60) + 1000,
                                 foreign_worker="yes", **{"Mother tongue": "x", "国籍": "y"})
    dictionary = tmp_path / "dict.csv"
    pd.DataFrame({"column": ["X2", "X5", "home"], "meaning": ["Gender (1 = male)", "Age (year)", "housing"]}) \
        .to_csv(dictionary, index=False)
    cols = choose_columns(df, "bad", protected=["home"], dictionary=read_dictionary(dictionary))
    assert cols.features == ['debt ratio, "net" [%]', "late {12m}"]
    why = cols.excluded
    assert "protected attribute (sex)" in why["SEX"] and "--protected" in why["home"]
    assert "Gender (1 = male)" in why["X2"] and "Age (year)" in why["X5"]
    assert "(foreign)" in why["foreign_worker"] and "(mother tongue)" in why["Mother tongue"] and "国籍" in why["国籍"]
    assert "identifier: id" in why["ID"] and "identifier: unnamed" in why["Unnamed: 0"]
    assert "consecutive whole numbers" in why["seq"]
    with pytest.raises(CreditgradeError, match="--protected: column.s. nope not in the table"):
        choose_columns(df, "bad", protected=["nope"])
    with pytest.raises(CreditgradeError, match=r"--dictionary: column\(s\) x2 \(did you mean 'X2'\?.*\) not in the "
                                               r"table: a data dictionary describes this table's columns"):
        choose_columns(df, "bad", dictionary={"x2": "Gender"})  # it would protect nothing
    pd.DataFrame({"column": ["X2", "X5", "X2"], "meaning": ["Gender", "Age", "Amount"]}).to_csv(dictionary, index=False)
    with pytest.raises(CreditgradeError, match=r"gives column 'X2' two meanings \('Gender', 'Amount'\)"):
        read_dictionary(dictionary)  # the last would win: the column would pass as an amount
    with pytest.raises(CreditgradeError, match="--protected names the target column 'bad'"):
        choose_columns(df, "bad", protected=["home", "bad"])
    assert choose_columns(df, "bad", exclude=["bad"]).features == cols.features + ["home"]  # excluding it is moot


def test_a_float_column_distinct_in_every_row_stays_a_feature():
    df = credit_table(80)
    assert 'debt ratio, "net" [%]' in choose_columns(df, "bad").features


def test_only_special_codes_is_an_error_naming_the_column():
    df = credit_table(50).assign(empty=[-9.0, np.nan] * 25)  # not constant: missing in half the rows
    cols = choose_columns(df, "bad")
    with pytest.raises(CreditgradeError, match="column.s. empty have no values at all .or only special codes"):
        feature_frame(df, cols, special=(-9.0,))


@pytest.fixture(scope="module")
def table_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "credit.csv"
    credit_table().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def result(table_file):
    from creditgrade.training.table import cross_validate

    return cross_validate(table_file, "bad", special=(-8.0,), folds=3, budget=600, families=FAMILIES_FAST, trials=4)


def test_odd_names_train_and_every_candidate_is_measured(result):
    assert {*FAMILIES_FAST, "blend", "chosen"} == set(result.auc)
    assert len(result.chosen) == 3 and set(result.chosen) <= {*FAMILIES_FAST, "blend"}
    assert all(len(a) == 3 for a in result.auc.values()) and result.folds == 3
    assert result.mean("chosen") > 0.65 and result.mean("lightgbm") > 0.65
    assert {"Unnamed: 0", "ID", "SEX"} == set(result.excluded)
    assert "names and data-dictionary meanings only" in result.only_check


def test_the_chosen_pipeline_is_reproducible_for_a_seed(table_file, result):
    from creditgrade.training.table import cross_validate

    again = cross_validate(table_file, "bad", special=(-8.0,), folds=3, budget=600, families=FAMILIES_FAST, trials=4)
    assert again.auc == result.auc and again.chosen == result.chosen


def test_a_fold_whose_fixed_costs_would_overrun_the_budget_is_not_started(table_file):
    from creditgrade.training.table import cross_validate

    spent = cross_validate(table_file, "bad", folds=3, budget=0.0, families=("scorecard",))
    assert spent.folds == 1 and len(spent.auc["chosen"]) == 1 and np.isnan(spent.decisions["chosen"]).sum() > 500


def test_special_codes_are_bins_of_the_scorecard_and_missing_for_lightgbm():
    from creditgrade.models.scorecard import Scorecard
    from creditgrade.models.tuning import TunedLGBMPD
    from creditgrade.training.candidates import _inputs

    X = credit_table(40)[["late {12m}"]]
    card = Scorecard()
    assert _inputs(card, X, (-8.0,)) is X and card.special_values == [-8.0]
    masked = _inputs(TunedLGBMPD(), X, (-8.0,))
    assert masked["late {12m}"].isna().sum() == (X["late {12m}"] == -8).sum() > 0


def test_a_special_number_matches_its_text_form_in_a_text_column():
    from creditgrade.models.binning import bin_index
    from creditgrade.models.scorecard import Scorecard

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"code": rng.choice(["A", "B", "C", "-8"], 400)})
    y = (rng.random(400) < np.where(X["code"] == "-8", 0.7, 0.2)).astype(int)
    card = Scorecard(special_values=[-8.0], min_iv=0, min_gini=0).fit(X, y)
    spec = card.characteristics_[0]
    special = next(b for b in spec["bins"] if b["bin"].startswith("special"))
    assert special["count"] == (X["code"] == "-8").sum() > 0
    assert bin_index(spec, "-8") == bin_index(spec, -8.0) == spec["bins"].index(special)
    codes = card._codes(pd.DataFrame({"code": ["-8", "-8.0", "A"]}))[:, 0]
    assert codes[0] == codes[1] == spec["bins"].index(special) != codes[2]


def test_tuned_lightgbm_bags_its_fold_models_and_calibrates_out_of_fold():
    from creditgrade.models.tuning import TunedLGBMPD

    df = credit_table(1200)
    X = feature_frame(df, choose_columns(df, "bad"))
    y = df["bad"].to_numpy()
    model = TunedLGBMPD(trials=3, seconds=30, inner_folds=3, num_threads=1).fit(X, y)
    assert model.search_["trials"] == 3 and 1 <= model.search_["members"] == len(model.size_trials_) <= 3
    assert sum(t["weight"] for t in model.size_trials_) == pytest.approx(1.0)
    assert model.search_["bagged_folds"] == 3  # each member: its three inner-fold models, not a refit
    assert model.booster_.num_trees() == 3 * sum(t["trees"] for t in model.size_trials_)
    assert not np.isnan(model.oof_decision_).any()  # every row is out of fold once (three inner folds)
    pd_ = model.predict_pd(X)
    assert abs(pd_.mean() - y.mean()) < 0.05
    contrib = model.contributions(X)
    assert list(contrib.columns)[:2] == ['debt ratio, "net" [%]', "late {12m}"]
    assert np.abs(contrib.sum(axis=1) - np.log(pd_ / (1 - pd_))).max() < 1e-6


def test_a_single_holdout_is_refitted_on_all_rows(monkeypatch):
    from creditgrade.models import folds, tuning

    monkeypatch.setattr(folds, "HOLDOUT_ABOVE", 100)  # as if there were many rows: one holdout of a third
    df = credit_table(600)
    X = feature_frame(df, choose_columns(df, "bad"))
    model = tuning.TunedLGBMPD(trials=2, seconds=30, num_threads=1).fit(X, df["bad"])
    assert model.search_["bagged_folds"] == 0 and np.isnan(model.oof_decision_).sum() == 400
    assert model.booster_.num_trees() == sum(t["trees"] for t in model.size_trials_)


def test_cli_prints_exclusions_the_plain_statement_and_every_candidate(tmp_path):
    small = tmp_path / "small.csv"
    credit_table(300).to_csv(small, index=False)
    out = subprocess.run([sys.executable, "-m", "creditgrade.cli", "train", "--table", str(small), "--target",
                          "bad", "--special", "-8", "--folds", "2", "--budget", "5", "--protected", "home"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for text in ("not used 未使用: home: named by --protected", "not used 未使用: ID: an identifier",
                 "names and data-dictionary meanings only", "read as 编码: utf-8-sig", "lightgbm", "ebm", "scorecard", "blend", "chosen",
                 "fold 1 第 1 折: ", "settings in the ensemble", "次试验", "blend weights 权重 "):
        assert text in out.stdout


def test_cli_unknown_column_is_a_clear_error(table_file):
    out = subprocess.run([sys.executable, "-m", "creditgrade.cli", "train", "--table", str(table_file), "--target",
                          "bad", "--exclude", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "--exclude: column(s) nope not in the table" in out.stderr
    assert "Traceback" not in out.stderr


def test_tuned_lightgbm_saves_as_a_plain_lightgbm_model():
    from creditgrade.models.families import family
    from creditgrade.models.tuning import TunedLGBMPD

    df = credit_table(600)
    X = feature_frame(df, choose_columns(df, "bad"))
    model = TunedLGBMPD(trials=2, seconds=30, num_threads=1).fit(X, df["bad"])
    back = family("lightgbm").from_json(model.to_json())
    assert np.allclose(back.predict_pd(X), model.predict_pd(X), rtol=0, atol=1e-12)
    members = back.describe()["details"]["size_trials"]  # the ensemble's settings, each with its weight
    assert members == model.size_trials_ and sum(m["weight"] for m in members) == pytest.approx(1.0)


def test_merged_boosters_predict_and_explain_the_weighted_sum():
    import lightgbm as lgb

    from creditgrade.models.tuning import merge

    df = credit_table(500)
    X = feature_frame(df, choose_columns(df, "bad")).set_axis(["a", "b", "c"], axis=1)
    data = lgb.Dataset(X, df["bad"], free_raw_data=False)
    boosters = [lgb.train(dict(objective="binary", num_leaves=n, verbosity=-1, seed=0), data, rounds)
                for n, rounds in ((4, 30), (16, 12))]
    merged = merge(boosters, [0.7, 0.3])
    want = 0.7 * boosters[0].predict(X, raw_score=True) + 0.3 * boosters[1].predict(X, raw_score=True)
    assert merged.num_trees() == 42 and np.allclose(merged.predict(X, raw_score=True), want, atol=1e-9)
    assert np.allclose(merged.predict(X, pred_contrib=True).sum(axis=1), want, atol=1e-9)


def test_ensemble_selection_weighs_complementary_decisions_and_leaves_noise_out():
    from creditgrade.models.folds import covered_auc
    from creditgrade.models.tuning import ensemble_selection

    rng = np.random.default_rng(0)
    a, b, noise = rng.standard_normal((3, 4000))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(a + b)))).astype(int)
    weights = ensemble_selection(y, [a, noise, b], rounds=10, pool=3)
    assert set(weights) == {0, 2} and sum(weights.values()) == pytest.approx(1.0)
    assert abs(weights[0] - weights[2]) <= 0.2
    better = max((0, 2), key=lambda i: covered_auc(y, [a, noise, b][i]))
    assert ensemble_selection(y, [a, noise, b], rounds=10, pool=1) == {better: 1.0}


def test_a_trial_past_its_deadline_ends_with_the_rounds_it_has():
    import lightgbm as lgb

    from creditgrade.models.tuning import _until

    df = credit_table(300)
    data = lgb.Dataset(df[["late {12m}"]].set_axis(["a"], axis=1), df["bad"])
    params = dict(objective="binary", verbosity=-1)
    assert lgb.train(params, data, 50, callbacks=[_until(0.0)]).current_iteration() == 2
    assert lgb.train(params, data, 50, callbacks=[_until(float("inf"))]).current_iteration() == 50


def test_the_blend_leaves_noise_out_and_is_calibrated():
    from creditgrade.training.candidates import Blend

    rng = np.random.default_rng(1)
    a, b, noise = rng.standard_normal((3, 2000))
    y = (rng.random(2000) < 1 / (1 + np.exp(-(a + b) - 1))).astype(int)
    oof = {"scorecard": noise, "lightgbm": a, "ebm": b}
    blend = Blend.best(y, oof, folds=5)
    assert blend.shrink < 1 and blend.weights.get("scorecard", 0) < 0.1  # equal weights would take the noise in
    assert blend.weights["lightgbm"] > 0.4 and blend.weights["ebm"] > 0.4 and "lightgbm" in str(blend)
    assert abs(np.mean(1 / (1 + np.exp(-blend.mix(oof)))) - y.mean()) < 0.01
    assert set(blend.fold_auc) == {"blend", *oof} and all(len(v) == 5 for v in blend.fold_auc.values())


def test_near_equal_candidates_are_blended_about_equally():
    from creditgrade.training.candidates import Blend

    rng = np.random.default_rng(2)
    signal, *errors = rng.standard_normal((4, 2000))
    y = (rng.random(2000) < 1 / (1 + np.exp(-signal))).astype(int)
    blend = Blend.best(y, {name: signal + e for name, e in zip(("scorecard", "ebm", "lightgbm"), errors)}, folds=5)
    assert blend.shrink >= 0.75 and set(blend.weights) == {"scorecard", "ebm", "lightgbm"}
    assert all(abs(w - 1 / 3) < 0.05 for w in blend.weights.values())


def test_the_one_standard_error_rule():
    from creditgrade.training.candidates import within_one_se

    folds = np.array([[0.80, 0.81, 0.70], [0.83, 0.82, 0.71], [0.78, 0.80, 0.69], [0.81, 0.81, 0.72]])
    assert within_one_se(folds).tolist() == [True, True, False]  # 0.805 vs 0.81, one standard error 0.0065
    assert within_one_se(folds[:, [0, 1]] + [[0.0, 0.01]] * 4).tolist() == [False, True]  # a steady gap is clear


def test_the_first_trial_runs_to_its_early_stop_whatever_the_seconds():
    from creditgrade.models.tuning import TunedLGBMPD

    df = credit_table(600)
    X = feature_frame(df, choose_columns(df, "bad"))
    rushed = TunedLGBMPD(trials=5, seconds=0.0, num_threads=1).fit(X, df["bad"])
    calm = TunedLGBMPD(trials=1, seconds=1e9, num_threads=1).fit(X, df["bad"])
    assert rushed.search_["trials"] == 1 and rushed.size_trials_[0]["trees"] == calm.size_trials_[0]["trees"] > 2


def test_every_candidate_is_judged_on_the_same_inner_folds(monkeypatch):
    from creditgrade.models import ebm, folds, tuning
    from creditgrade.models.grades import scales
    from creditgrade.training import candidates
    from creditgrade.training.table import table_specs

    calls = []

    def spy(y, seed, n=3, groups=None):
        calls.append((np.asarray(y).tobytes(), seed, n, groups))
        return folds.inner_splits(y, seed, n, groups)

    for module in (candidates, tuning, ebm):
        monkeypatch.setattr(module, "inner_splits", spy)
    df = credit_table(300)
    X, y = feature_frame(df, choose_columns(df, "bad")), df["bad"].to_numpy()
    choice = candidates.choose(X, y, X.iloc[:50], table_specs(X), scales()["sme"], seed=3, trials=1)
    assert len(calls) == 3 and len(set(calls)) == 1 and calls[0][1:] == (3, 8, None)  # one set of folds for all
    assert {"scorecard", "ebm", "lightgbm"} <= set(choice.oof) and not np.isnan(np.stack(list(choice.oof.values()))).any()
    assert choice.chosen in choice.inner_auc and "shrunk" in choice.notes["blend"]


def test_the_ebm_bagged_on_inner_folds_scores_each_fold_by_a_bag_that_never_saw_it():
    from creditgrade.models.ebm import EBMPD

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"noise": rng.normal(size=800), "more noise": rng.normal(size=800)})
    y = (rng.random(800) < 0.3).astype(int)  # nothing to learn: a bag that saw its fold would score it well
    model = EBMPD(inner_folds=4, min_samples_leaf=2, learning_rate=0.1).fit(X, y)
    inside, outside = roc_auc_score(y, model.decision_function(X)), roc_auc_score(y, model.oof_decision_)
    assert not np.isnan(model.oof_decision_).any() and inside > outside + 0.04 and abs(outside - 0.5) < 0.05


def test_covered_auc_is_roc_auc_over_the_rows_with_a_value():
    from creditgrade.models.folds import covered_auc

    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(int)
    score = np.round(rng.normal(size=500) + y, 1)  # many ties
    score[::7] = np.nan
    seen = ~np.isnan(score)
    assert covered_auc(y, score) == pytest.approx(roc_auc_score(y[seen], score[seen]), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        covered_auc(np.zeros(5), np.arange(5.0))
