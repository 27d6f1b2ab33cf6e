"""On a generated population: declared directions hold, and a plain logistic regression on the features,
trained on early as-of dates, ranks later defaults well above chance (beside the oracle's true PD)."""
from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from creditgrade.features.build import build_training_set, out_of_time_split
from creditgrade.features.catalog import catalog
from tests.helpers import generated, generated_oracle

TEST_FROM = "2023-01-01"
SIZES = (3000, 2000, 2000)  # SMEs, households, practitioners
SEGMENTS = ("sme", "household", "practitioner")


@pytest.fixture(scope="module")
def training_sets() -> dict[str, pd.DataFrame]:
    """Half-yearly snapshots (every other as-of date of the outcomes) with their outcomes."""
    population = generated(*SIZES)
    dates = sorted(population.outcomes["as_of"].unique())[::2]
    return {seg: build_training_set(population, seg, as_of_dates=dates) for seg in SEGMENTS}


def numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Features as numbers for scikit-learn: categorical columns as their codes (-1 missing)."""
    x = df.drop(columns=["as_of", "defaulted"])
    return x.apply(lambda c: c.cat.codes if isinstance(c.dtype, pd.CategoricalDtype) else c)


def lr_and_oracle_auc(df: pd.DataFrame, oracle: pd.DataFrame) -> tuple[float, float]:
    """Out-of-time AUC of a standardised, median-imputed logistic regression, and of the true PD."""
    train, test = out_of_time_split(df, TEST_FROM)
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    model.fit(numeric(train), train["defaulted"])
    lr = roc_auc_score(test["defaulted"], model.predict_proba(numeric(test))[:, 1])
    true_pd = oracle.set_index(["subject_key", "as_of"])["true_pd"]
    rows = pd.MultiIndex.from_arrays([test.index, test["as_of"]])
    return lr, roc_auc_score(test["defaulted"], true_pd.reindex(rows).to_numpy())


@pytest.mark.parametrize("segment", SEGMENTS)
def test_logistic_regression_ranks_later_defaults(training_sets, segment):
    lr, oracle = lr_and_oracle_auc(training_sets[segment], generated_oracle(*SIZES))
    print(f"{segment}: LR AUC {lr:.3f}, oracle AUC {oracle:.3f}")
    assert lr > 0.64  # measured 0.71 sme, 0.69 household, 0.67 practitioner (seed 11); oracle 0.78-0.80
    assert lr < oracle  # the records show the latent quality only in part


@pytest.mark.parametrize("segment", SEGMENTS)
def test_declared_directions_agree_with_defaults(training_sets, segment):
    """Every feature with a declared direction and a clear rank correlation with default (|rho| >= 0.02)
    has the declared sign, and each segment has several such features. Features without a clear
    correlation are not judged: a practitioner's tax and loan records follow income, not the conduct
    behind a sanction (data/sample/README.md), so most of them carry next to no signal on purpose."""
    df = training_sets[segment]
    clear, clear_wrong = 0, []
    for spec in catalog(segment):
        if spec.monotone == 0:
            continue
        x = df[spec.name]
        known = x.notna()
        if x[known].nunique() < 2:
            continue
        rho = spearmanr(x[known], df.loc[known, "defaulted"]).statistic * spec.monotone
        clear += rho >= 0.02
        if rho <= -0.02:
            clear_wrong.append((spec.name, round(rho, 3)))
    assert not clear_wrong
    assert clear >= 8  # measured: 75 SME, 21 household, 8 practitioner features (SIZES, seed of the module)
