"""A segment's family is chosen on the later validation dates, fitted without them, never on the test dates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from creditgrade.features.errors import CreditgradeError
from creditgrade.training.choose import choice_split, choose
from creditgrade.training.pipeline import Split


def _rows(dates: list[str], n: int, seed: int) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    frame = pd.DataFrame({"as_of": np.repeat(pd.to_datetime(dates), n), "signal": gen.normal(size=n * len(dates))})
    frame["defaulted"] = (frame["signal"] + gen.normal(size=len(frame)) > 1.5).astype(int)
    return frame


@pytest.fixture
def split() -> Split:
    return Split(_rows(["2020-03-31", "2020-06-30"], 300, 1),
                 _rows(["2020-09-30", "2020-12-31", "2021-03-31", "2021-06-30"], 300, 2),
                 _rows(["2021-09-30"], 300, 3))


@dataclass
class Fixed:
    """A 'model' whose PD is a fixed function of the signal."""
    sign: float

    def pd(self, rows: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-self.sign * rows["signal"].to_numpy()))


def test_the_later_half_of_validation_chooses_and_no_candidate_sees_it_or_the_test(split):
    seen = []

    def fit(kind, inner):
        seen.append((kind, set(inner.train.as_of) | set(inner.valid.as_of)))
        return Fixed({"backwards": -1.0, "right": 1.0, "flat": 0.0}[kind])

    choice = choose(["backwards", "right", "flat"], split, fit)
    assert choice.kind == "right"
    assert choice.valid_auc["right"] > 0.7 > 0.3 > choice.valid_auc["backwards"]
    assert choice.valid_auc["flat"] == 0.5
    assert (choice.choice_from, choice.choice_to) == ("2021-03-31", "2021-06-30")
    later = {pd.Timestamp("2021-03-31"), pd.Timestamp("2021-06-30"), pd.Timestamp("2021-09-30")}
    assert [k for k, _ in seen] == ["backwards", "right", "flat"]
    assert all(not (dates & later) for _, dates in seen)


def test_choice_split_halves_the_validation_dates(split):
    inner = choice_split(split)
    assert inner.train is split.train
    assert sorted(inner.valid.as_of.dt.strftime("%Y-%m").unique()) == ["2020-09", "2020-12"]
    assert sorted(inner.test.as_of.dt.strftime("%Y-%m").unique()) == ["2021-03", "2021-06"]


def test_one_validation_date_is_a_clear_error(split):
    one = Split(split.train, split.valid[split.valid.as_of == split.valid.as_of.min()], split.test)
    with pytest.raises(CreditgradeError, match="at least 2 validation as-of dates"):
        choose(["right"], one, lambda kind, inner: Fixed(1.0))
