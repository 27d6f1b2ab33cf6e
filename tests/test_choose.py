"""A segment's family is chosen on expanding out-of-time folds over every validation date, never on the test
dates; a family preferred for its simplicity is kept unless the leader clearly beats it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from creditgrade.features.errors import CreditgradeError
from creditgrade.training.choose import choice_folds, choose, config, decide, fitting_split, pick
from creditgrade.training.pipeline import Split

SETTINGS = {**config(), "folds": 2, "held_out_dates": 2, "resamples": 50, "confidence": 0.8,
            "preference": ["simple", "middle", "complex"], "blend_members": 2}


def _rows(dates: list[str], n: int, seed: int) -> pd.DataFrame:
    gen = np.random.default_rng(seed)
    frame = pd.DataFrame({"as_of": np.repeat(pd.to_datetime(dates), n), "signal": gen.normal(size=n * len(dates)),
                          "noise": gen.normal(size=n * len(dates))})
    frame["defaulted"] = (frame["signal"] + gen.normal(size=len(frame)) > 1.5).astype(int)
    return frame


@pytest.fixture
def split() -> Split:
    return Split(_rows(["2020-03-31", "2020-06-30", "2020-09-30"], 300, 1),
                 _rows(["2020-12-31", "2021-03-31", "2021-06-30", "2021-09-30"], 300, 2),
                 _rows(["2021-12-31"], 300, 3), horizon=3)  # a quarter's outcome is known at the next date


@dataclass
class Fixed:
    """A 'model' whose PD is a fixed function of the signal and the noise."""
    sign: float
    noise: float = 0.0

    def pd(self, rows: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-self.sign * rows["signal"].to_numpy() - self.noise * rows["noise"].to_numpy()))


def test_folds_score_every_validation_date_once_on_models_fitted_before_it(split):
    folds = choice_folds(split, 2, 2)
    scored = [sorted(f.test.as_of.dt.strftime("%Y-%m").unique()) for f in folds]
    assert scored == [["2020-12", "2021-03"], ["2021-06", "2021-09"]]
    assert sorted(folds[0].valid.as_of.dt.strftime("%Y-%m").unique()) == ["2020-06", "2020-09"]
    assert sorted(folds[1].valid.as_of.dt.strftime("%Y-%m").unique()) == ["2020-12", "2021-03"]
    for f in folds:
        assert f.train.as_of.max() < f.valid.as_of.min() and f.valid.as_of.max() < f.test.as_of.min()
        assert pd.Timestamp("2021-12-31") not in set(f.train.as_of) | set(f.valid.as_of) | set(f.test.as_of)


def test_the_clear_leader_is_chosen_and_no_candidate_sees_its_fold_or_the_test(split):
    seen = []

    def fit(kind, inner):
        seen.append((kind, set(inner.train.as_of) | set(inner.valid.as_of), set(inner.test.as_of)))
        return Fixed({"simple": 0.0, "middle": -1.0, "complex": 1.0}[kind])

    choice = choose(["simple", "middle", "complex"], split, fit, SETTINGS)
    assert choice.kind == "complex"
    assert choice.valid_auc["complex"] > 0.7 > 0.3 > choice.valid_auc["middle"]
    assert choice.valid_auc["simple"] == 0.5
    assert choice.beats == {"simple": 1.0, "middle": 1.0}
    assert (choice.choice_from, choice.choice_to) == ("2020-12-31", "2021-09-30")
    assert all(not (fitted & scored) and pd.Timestamp("2021-12-31") not in fitted for _, fitted, scored in seen)


def test_a_near_tie_keeps_the_preferred_family(split):
    """'complex' adds a little noise to the right signal: its lead over 'simple' is chance, so 'simple' stays
    even when 'complex' happens to lead."""
    models = {"simple": Fixed(1.0), "complex": Fixed(1.0, noise=0.02)}
    choice = choose(["complex", "simple"], split, lambda kind, inner: models[kind], SETTINGS)
    assert choice.kind == "simple"
    assert abs(choice.valid_auc["complex"] - choice.valid_auc["simple"]) < 0.01


def _two_signals(dates: list[str], n: int, seed: int) -> pd.DataFrame:
    """Rows whose default follows the signal and the noise column alike."""
    frame = _rows(dates, n, seed)
    frame["defaulted"] = (frame["signal"] + frame["noise"] + np.random.default_rng(seed + 10).normal(size=len(frame))
                          > 2.0).astype(int)
    return frame


def test_a_blend_of_the_best_two_is_judged_from_their_scores_and_chosen_when_it_clearly_beats_them():
    """'left' reads the signal, 'right' the noise column, 'blind' neither: default follows both, so the
    blend of the best two (left and right, equal weights in log-odds) ranks clearly better than either."""
    split = Split(_two_signals(["2020-03-31", "2020-06-30", "2020-09-30"], 400, 1),
                  _two_signals(["2020-12-31", "2021-03-31", "2021-06-30", "2021-09-30"], 400, 2),
                  _two_signals(["2021-12-31"], 400, 3), horizon=3)
    models = {"left": Fixed(1.0), "right": Fixed(0.0, noise=1.0), "blind": Fixed(0.0)}
    fitted = []

    def fit(kind, inner):
        fitted.append(kind)
        return models[kind]

    settings = {**SETTINGS, "preference": ["blind", "left", "right"]}
    choice = choose(["blind", "left", "right"], split, fit, settings)
    assert "blend" not in fitted  # judged from its members' scores, no fit of its own
    assert set(choice.blend) == {"left", "right"} and choice.kind == "blend" and choice.blend_beats == 1.0
    assert choice.valid_auc["blend"] > max(choice.valid_auc["left"], choice.valid_auc["right"]) + 0.03
    assert "blend" not in choice.beats  # the families' own choice is unchanged by the blend
    assert "blend" not in choose(["blind", "left", "right"], split, fit, {**settings, "blend_members": 0}).valid_auc


def test_a_blend_that_is_not_clearly_better_leaves_the_family_chosen(split):
    """Two families reading the same signal: their blend ranks as they do, so the preferred family stays."""
    models = {"simple": Fixed(1.0), "complex": Fixed(1.0, noise=0.02)}
    choice = choose(["simple", "complex"], split, lambda kind, inner: models[kind], SETTINGS)
    assert set(choice.blend) == {"simple", "complex"}
    assert abs(choice.valid_auc["blend"] - choice.valid_auc["simple"]) < 0.01
    assert choice.kind == "simple" and choice.blend_beats < 0.8


def test_a_blend_that_leads_without_clearly_beating_the_family_does_not_move_the_choice():
    """The blend leads 'middle' and 'complex' without clearly beating 'middle', which is not clearly beaten by
    'complex' either: the families' choice ('simple' clearly beaten by both, so 'middle') stands, as without a blend."""
    ys = [np.repeat([0, 1], 200)]
    gen = np.random.default_rng(5)
    base = ys[0] + gen.normal(size=400)
    pds = {"simple": [1 / (1 + np.exp(-(ys[0] + 3 * gen.normal(size=400))))],
           "middle": [1 / (1 + np.exp(-base))],
           "complex": [1 / (1 + np.exp(-(base + 0.05 * gen.normal(size=400))))]}
    settings = {**SETTINGS, "resamples": 100}
    alone = pick(ys, pds, {**settings, "blend_members": 0})
    picked = pick(ys, pds, settings)
    assert alone.kind == picked.kind == "middle" and alone.shares == picked.shares
    assert max(picked.scores, key=picked.scores.get) == "blend" and picked.blend_beats < 0.8
    assert alone.members == () and alone.blend_beats is None


def test_decide_falls_back_to_the_most_preferred_family_not_clearly_beaten():
    scores = {"complex": 0.80, "middle": 0.79, "simple": 0.70}
    shares = {("complex", "simple"): 0.99, ("complex", "middle"): 0.6}
    kind, beats = decide(scores, lambda a, b: shares[a, b], ["simple", "middle", "complex"], 0.8)
    assert (kind, beats) == ("middle", {"simple": 0.99, "middle": 0.6})
    assert decide(scores, lambda a, b: 0.9, ["simple", "middle", "complex"], 0.8)[0] == "complex"
    assert decide({"simple": 0.8, "complex": 0.7}, lambda a, b: 0.0, ["simple", "complex"], 0.8) == ("simple", {})


def test_too_few_validation_dates_is_a_clear_error(split):
    one = Split(split.train, split.valid[split.valid.as_of == split.valid.as_of.min()], split.test)
    with pytest.raises(CreditgradeError, match="at least 2 validation as-of dates"):
        choose(["simple"], one, lambda kind, inner: Fixed(1.0), SETTINGS)


QUARTERS = [str(d.date()) for d in pd.date_range("2018-03-31", periods=13, freq="QE")]


def _drifting(flipped: int, seed: int = 4, horizon: int = 3) -> Split:
    """Twelve dates of training and validation, then one test date; on the first ``flipped`` dates the signal
    meant the opposite (a shock period); outcomes over ``horizon`` months."""
    rows = _rows(QUARTERS, 200, seed)
    early = rows["as_of"].isin(pd.to_datetime(QUARTERS[:flipped]))
    rows.loc[early, "signal"] *= -1
    dates = pd.to_datetime(QUARTERS)
    return Split(rows[rows.as_of < dates[8]], rows[(rows.as_of >= dates[8]) & (rows.as_of < dates[12])],
                 rows[rows.as_of == dates[12]], horizon)


@dataclass
class Learnt:
    """A 'model' that learns the signal's sign and size from its training rows only."""
    slope: float

    def pd(self, rows: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-self.slope * rows["signal"].to_numpy()))


def _learn(kind, inner) -> Learnt:
    return Learnt(float(np.corrcoef(inner.train["signal"], inner.train["defaulted"])[0, 1]))


def test_a_family_trained_on_a_shock_period_takes_the_window_after_it():
    choice = choose(["simple"], _drifting(flipped=4), _learn, {**SETTINGS, "windows": [0, 2]})
    assert choice.windows == {"simple": 2}
    assert choice.valid_auc["simple"] > 0.7


def test_without_drift_the_longest_window_is_kept():
    choice = choose(["simple"], _drifting(flipped=0), _learn, {**SETTINGS, "windows": [0, 2]})
    assert choice.windows == {"simple": 0}


def test_the_final_fit_holds_out_the_dates_before_the_test_and_trains_on_its_window():
    split = _drifting(flipped=0)
    fitted = fitting_split(split, 3, SETTINGS)
    month = lambda rows: sorted(rows.as_of.dt.strftime("%Y-%m").unique())  # noqa: E731
    assert month(fitted.valid) == ["2020-09", "2020-12"]
    assert month(fitted.train) == ["2019-12", "2020-03", "2020-06"]
    assert fitted.test is split.test
    assert month(fitting_split(split, 0, SETTINGS).train)[0] == "2018-03"


def test_with_no_held_out_dates_the_window_reaches_the_test_and_the_family_holds_out_its_own_rows():
    settings = {**SETTINGS, "held_out_dates": 0, "windows": [0, 2]}
    split = _drifting(flipped=5)  # the first fold's longest window is mostly the shock period
    fitted = fitting_split(split, 2, settings)
    assert fitted.valid.empty
    assert sorted(fitted.train.as_of.dt.strftime("%Y-%m").unique()) == ["2020-09", "2020-12"]
    seen = []

    def fit(kind, inner):
        seen.append((inner.valid.empty, inner.train.as_of.max(), inner.test.as_of.min()))
        return _learn(kind, inner)

    choice = choose(["simple"], split, fit, settings)
    assert choice.windows == {"simple": 2}
    assert all(empty and last < first for empty, last, first in seen)


def test_no_training_outcome_overlaps_the_outcomes_of_the_dates_judged():
    """With 12-month outcomes, a row dated less than a year before the first date judged is never trained on:
    its outcome window overlaps theirs (mostly the same subjects)."""
    settings = {**SETTINGS, "held_out_dates": 0, "windows": [0, 2]}
    split = _drifting(flipped=0, horizon=12)
    fitted = fitting_split(split, 2, settings)
    assert sorted(fitted.train.as_of.dt.strftime("%Y-%m").unique()) == ["2019-12", "2020-03"]  # test 2021-03
    seen = []

    def fit(kind, inner):
        seen.append((inner.train.as_of.max(), inner.test.as_of.min()))
        return _learn(kind, inner)

    choose(["simple"], split, fit, settings)
    assert len(seen) == 4 and all(last + pd.DateOffset(months=12) <= first for last, first in seen)
    assert all(last + pd.DateOffset(months=12) == first for last, first in seen)  # the latest known date
