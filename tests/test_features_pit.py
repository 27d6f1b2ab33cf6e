"""Point in time: records reported on or after the as-of date change no feature of any subject."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgrade.features.build import build_features
from creditgrade.features.frames import Frames
from tests.helpers import generated, random_population

AS_OF = pd.Timestamp("2021-09-30")


def with_future(frames: Frames, as_of: pd.Timestamp, seed: int = 1) -> Frames:
    """``frames`` plus records reported on or after ``as_of``: late reports of past behaviour (start, end
    and repair dates before it) and new behaviour, every kind, some reported on ``as_of`` itself."""
    rng = np.random.default_rng(seed)
    extra = frames.records.sample(frac=0.5, random_state=seed).copy()
    extra["reported_date"] = as_of + pd.to_timedelta(rng.integers(0, 400, len(extra)), unit="D")
    extra.loc[extra.index[::7], "reported_date"] = as_of
    past = rng.random(len(extra)) < 0.5
    shift = pd.to_timedelta(rng.integers(0, 1500, len(extra)), unit="D")
    extra["start_date"] = np.where(past, extra["start_date"].clip(upper=as_of - pd.Timedelta(days=1)),
                                   as_of + shift)
    extra["start_date"] = extra[["start_date", "reported_date"]].min(axis=1)
    extra["record_id"] = np.arange(len(extra)) + frames.records["record_id"].max() + 1
    records = pd.concat([frames.records, extra], ignore_index=True)
    open_ids = frames.open_objection_ids | set(extra["record_id"].iloc[::3])
    return Frames(frames.subjects, records, frames.outcomes, open_ids)


@pytest.fixture(scope="module")
def population() -> Frames:
    pop = random_population(n_per_segment=120, records_per_subject=60, seed=3)
    pop.open_objection_ids = frozenset(pop.records["record_id"].iloc[::50])
    return pop


@pytest.mark.parametrize("segment", ["sme", "household", "practitioner"])
def test_future_records_change_no_feature(population, segment):
    before, disputed = build_features(population, segment, AS_OF, with_disputed=True)
    after, disputed_after = build_features(with_future(population, AS_OF), segment, AS_OF, with_disputed=True)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    assert disputed == disputed_after
    assert disputed  # the test population does dispute records that count


@pytest.mark.parametrize("segment", ["sme", "household", "practitioner"])
def test_chunks_change_nothing(population, segment):
    whole = build_features(population, segment, AS_OF)
    pd.testing.assert_frame_equal(whole, build_features(population, segment, AS_OF, chunk_size=7),
                                  check_exact=True)


def test_generated_population_is_point_in_time():
    frames = generated(300, 200, 200)
    for segment in ("sme", "household", "practitioner"):
        as_of = frames.outcomes.loc[frames.outcomes["segment"] == segment, "as_of"].median()
        before = build_features(frames, segment, as_of)
        after = build_features(with_future(frames, as_of), segment, as_of)
        pd.testing.assert_frame_equal(before, after, check_exact=True)
