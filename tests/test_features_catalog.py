"""The catalogue declares exactly the built columns, with directions, reasons and fixed categories."""
from __future__ import annotations

import pandas as pd
import pytest

from creditgrade.features.build import build_features
from creditgrade.features.catalog import catalog, feature_names, monotone_constraints, reason_text
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.schemas import SEGMENTS, prohibited_fields
from tests.helpers import random_population


@pytest.fixture(scope="module")
def built() -> dict[str, pd.DataFrame]:
    pop = random_population(n_per_segment=40, seed=5)
    return {seg: build_features(pop, seg, "2021-06-30") for seg in SEGMENTS}


def test_catalogue_covers_exactly_the_built_columns(built):
    for segment, df in built.items():
        assert list(df.columns) == feature_names(segment)
    assert set().union(*(df.columns for df in built.values())) == {s.name for s in catalog()}


def test_dtypes_are_float_or_the_catalogued_categories(built):
    for segment, df in built.items():
        for spec in catalog(segment):
            col = df[spec.name]
            if spec.categorical:
                assert isinstance(col.dtype, pd.CategoricalDtype)
                assert list(col.cat.categories) == list(spec.categories)
            else:
                assert col.dtype == "float64", spec.name
    assert built["sme"]["sector"].isna().any()  # "unknown_sector" is not a catalogued sector: missing


def test_every_feature_reads_as_a_reason_in_both_languages():
    for spec in catalog():
        assert reason_text(spec.name, "en") == spec.en and spec.en[0].isupper()
        assert reason_text(spec.name, "zh") == spec.zh and spec.zh
        assert spec.direction in ("up", "down", "none") and isinstance(spec.actionable, bool)
        assert set(spec.segments) <= set(SEGMENTS)
    with pytest.raises(CreditgradeError):
        reason_text("no_such_feature")


def test_monotone_constraints_follow_declared_directions():
    cols = ["tax_arrears_12m", "firm_age_years", "sector", "has_safety"]
    assert monotone_constraints("sme", cols) == [1, -1, 0, 0]
    with pytest.raises(CreditgradeError, match="land_mu"):
        monotone_constraints("sme", ["land_mu"])


def test_no_prohibited_feature_and_profiles_are_not_actionable():
    assert prohibited_fields(s.name for s in catalog()) == []
    for name in ("firm_age_years", "sector", "size", "profession", "years_licensed"):
        assert not next(s for s in catalog() if s.name == name).actionable


def test_unknown_segment_is_refused():
    with pytest.raises(CreditgradeError, match="unknown segment 'bank'"):
        catalog("bank")
