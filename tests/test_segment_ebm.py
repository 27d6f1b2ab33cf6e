"""The additive families in a segment (the EBM, the logistic regression): fitted on a segment's catalogue out
of time, their contributions add up exactly to the log-odds of the PD they grade with and are their reasons;
every feature the catalogue gives a direction has an EBM shape function monotone in that direction."""
from __future__ import annotations

import numpy as np
import pytest

from creditgrade.features.catalog import catalog
from creditgrade.models.explain import contributions, reasons
from tests.helpers import practitioner_fit


@pytest.fixture(scope="module")
def fitted():
    return practitioner_fit("ebm")


@pytest.mark.parametrize("kind", ["ebm", "logistic"])
def test_contributions_add_up_exactly_to_the_log_odds_and_are_the_reasons(kind):
    model, test = practitioner_fit(kind)
    parts = contributions(model, test)
    p = model.pd(test)
    assert np.abs(parts.sum(axis=1).to_numpy() - np.log(p / (1 - p))).max() < 1e-9
    assert set(parts.columns) == {*model.features, "bias"}
    assert parts.drop(columns="bias").abs().to_numpy().max() > 0.05  # features that move the PD
    given = [(i, r) for i, listed in enumerate(reasons(model, test.head(50), k=3)) for r in listed
             if not r.get("override")]
    assert given and all(r["unit"] == "log-odds" for _, r in given)
    assert all(r["contribution"] == pytest.approx(parts.iloc[i][r["feature"]], abs=1e-12) for i, r in given)


def test_shapes_are_monotone_where_the_catalogue_declares_a_direction(fitted):
    model, _ = fitted
    declared = {s.name: s.monotone for s in catalog("practitioner") if s.model and s.monotone}
    shapes = {s["feature"]: s for s in model.estimator.describe()["details"]["shapes"]}
    checked = 0
    for name, direction in declared.items():
        inner = np.asarray(shapes[name]["scores"][1:-1])  # regular bins: missing and unseen apart
        assert np.all(direction * np.diff(inner) >= -1e-12), name
        checked += len(inner) > 1 and np.ptp(inner) > 0
    assert checked >= 5  # shapes with an effect, not only flat ones


def test_the_table_path_bins_as_the_frame_path_missing_and_unseen_values_too(fitted):
    """One subject's serving path hands the EBM a float table (``read_table``), not a frame: the same bins,
    whether a value is present, missing, or a category the model never met."""
    from creditgrade.models.estimator import read_table

    model, test = fitted
    rows = test[model.features].head(60).copy()
    numeric = [f for f in model.features if f not in {s.name for s in catalog("practitioner") if s.categorical}]
    categorical = [f for f in model.features if f not in numeric]
    rows.iloc[:10, [model.features.index(f) for f in numeric[:5]]] = np.nan
    for f in categorical:
        rows.iloc[10:20, model.features.index(f)] = None
    est = model.estimator
    frame = est.walk(rows)
    table = est.walk(None, read_table(rows, model.features))
    np.testing.assert_array_equal(table.contributions, frame.contributions)
    one = [est.walk(None, read_table(rows.iloc[[i]], model.features)).contributions[0] for i in range(len(rows))]
    np.testing.assert_array_equal(np.array(one), frame.contributions)
    # a label the table carries that no term was trained on is binned as unseen, as in a frame
    term = next(t for t in est.terms_ if t["type"] != "continuous")
    j = model.features.index(term["feature"])
    values, labels = read_table(rows.head(1), model.features)
    labels[j] = ["never-seen"]
    values[0, j] = 0
    assert est.walk(None, (values, labels)).contributions[0, j] == term["scores"][-1]
