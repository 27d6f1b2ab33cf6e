"""A rich random population covering every kind of record, for point-in-time tests of the builders.

Deliberately cruder than data/sample/generator.py: it exists to exercise every branch of every builder
(every kind, open and closed records, repairs, late reports), not to carry signal.
"""
from __future__ import annotations

import os
from functools import cache

import numpy as np
import pandas as pd

from creditgrade.features.schemas import kinds
from creditgrade.features.frames import Frames, keyed, to_datetime

os.environ.setdefault("CREDITGRADE_ID_KEY", "test-key")  # practitioners' keys are HMACs of their numbers
SEVERITIES = np.array(["minor", "general", "serious"])
DAY0 = np.datetime64("2016-01-01")


def random_population(n_per_segment: int = 60, records_per_subject: int = 40, seed: int = 0) -> Frames:
    rng = np.random.default_rng(seed)
    spec = kinds()
    subjects = []
    for seg in ("sme", "household", "practitioner"):
        n = n_per_segment
        subjects.append(pd.DataFrame({
            "subject_key": [f"{seg[:2].upper()}{i:06d}" for i in range(n)],
            "segment": seg,
            "sector": rng.choice(["manufacturing", "catering", "transport", "unknown_sector"], n),
            "size": rng.choice(["micro", "small", "medium"], n),
            "founded": DAY0 + rng.integers(-3000, 2500, n).astype("timedelta64[D]"),
            "members": rng.integers(1, 7, n),
            "labour_force": rng.integers(0, 3, n),
            "land_mu": rng.gamma(2.0, 2.0, n),
            "agri_insurance": rng.random(n) < 0.5,
            "coop_member": rng.random(n) < 0.3,
            "profession": rng.choice(["lawyer", "doctor", "agent"], n),
            "licensed_since": DAY0 + rng.integers(-3000, 2500, n).astype("timedelta64[D]"),
        }))
    subjects = pd.concat(subjects, ignore_index=True)
    n_rec = len(subjects) * records_per_subject
    kind = rng.choice(list(spec), n_rec)
    who = rng.integers(0, len(subjects), n_rec)
    start = DAY0 + rng.integers(0, 3000, n_rec).astype("timedelta64[D]")
    has_end = rng.random(n_rec) < 0.6
    end = np.where(has_end, start + rng.integers(0, 900, n_rec).astype("timedelta64[D]"), np.datetime64("NaT"))
    reported = start + rng.integers(0, 120, n_rec).astype("timedelta64[D]")
    repairable = np.array([spec[k].get("repairable", False) for k in kind])
    repaired = np.where(repairable & (rng.random(n_rec) < 0.5),
                        start + rng.integers(400, 1500, n_rec).astype("timedelta64[D]"), np.datetime64("NaT"))
    category = np.array([rng.choice(spec[k]["categories"]) if "categories" in spec[k] else None for k in kind],
                        dtype=object)
    records = pd.DataFrame({
        "record_id": np.arange(1, n_rec + 1),
        "subject_key": subjects["subject_key"].to_numpy()[who],
        "segment": subjects["segment"].to_numpy()[who],
        "source": [spec[k]["source"] for k in kind],
        "kind": kind,
        "start_date": start, "end_date": end, "reported_date": reported,
        "severity": rng.choice(SEVERITIES, n_rec),
        "amount": rng.lognormal(8, 2, n_rec),
        "value": rng.integers(0, 120, n_rec).astype(float),
        "category": category,
        "account": rng.choice(["L1", "L2", "L3"], n_rec),
        "repaired_date": repaired,
    })
    outcomes = pd.DataFrame(columns=["subject_key", "segment", "as_of", "horizon_months", "defaulted"])
    return Frames(subjects, records, outcomes)


@cache
def _generated(n_smes: int, n_households: int, n_practitioners: int, seed: int) -> tuple[Frames, pd.DataFrame]:
    from creditgrade.data.sample.generator import generate  # a broken generator fails the tests, never skips them

    pop = generate(n_smes, n_households, n_practitioners, seed)
    return Frames.from_population(pop), to_datetime(keyed(pop["oracle"]), ["as_of"])


def generated(n_smes: int, n_households: int, n_practitioners: int, seed: int = 11) -> Frames:
    """A population from data/sample/generator.py, cached."""
    return _generated(n_smes, n_households, n_practitioners, seed)[0]


def generated_oracle(n_smes: int, n_households: int, n_practitioners: int, seed: int = 11) -> pd.DataFrame:
    """The oracle (``subject_key``, ``as_of``, ``true_pd``) of the same generated population."""
    return _generated(n_smes, n_households, n_practitioners, seed)[1]
