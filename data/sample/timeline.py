"""Parameters, the monthly calendar of a simulation and seeded random streams.

Dates are int64 days since 1970-01-01 throughout the generator; months are indices 0..T-1.
"""
from __future__ import annotations

import tomllib
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

PARAMS_FILE = Path(__file__).with_name("population.toml")


@cache
def params() -> dict:
    """The population parameters (``population.toml``)."""
    with PARAMS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def rng(seed: int, *names: str) -> np.random.Generator:
    """An independent random stream for one purpose, stable across runs and code changes elsewhere."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def month_index(month: str) -> int:
    """'2019-01' -> months since 1970-01."""
    return int(np.datetime64(month, "M").astype(np.int64))


def months_to_days(months: np.ndarray) -> np.ndarray:
    """First day (days since epoch) of months given as months since 1970-01."""
    return np.asarray(months, dtype="int64").astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def add_months_days(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Days plus whole months, the day of month clamped to the target month's length."""
    d = np.asarray(days, dtype="int64").astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + np.asarray(months, dtype="int64")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]").astype(np.int64) + np.minimum(dom, length - 1)


@dataclass(frozen=True)
class Timeline:
    """The simulated months: first and last day of each, the as-of months."""

    start: str
    end: str

    def __post_init__(self):
        m0, m1 = month_index(self.start), month_index(self.end)
        if m1 < m0:
            raise ValueError(f"end {self.end} is before start {self.start}")
        months = np.arange(m0, m1 + 1)
        object.__setattr__(self, "m0", m0)
        object.__setattr__(self, "first", months_to_days(months))
        object.__setattr__(self, "last", months_to_days(months + 1) - 1)

    @property
    def T(self) -> int:
        return len(self.first)

    @property
    def end_day(self) -> int:
        return int(self.last[-1])

    def month_of(self, days: np.ndarray) -> np.ndarray:
        """Month index (may be negative or >= T) of days since epoch."""
        return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) - self.m0

    def random_day(self, t: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        """A uniformly random day within each month index t (0 <= t < T)."""
        length = self.last[t] - self.first[t] + 1
        return self.first[t] + (gen.random(len(t)) * length).astype(np.int64)

    def as_of_months(self) -> np.ndarray:
        """Quarter-end month indices whose 12-month horizon ends within the simulation."""
        p = params()["period"]
        t = np.arange(p["first_as_of_month"] - 1, self.T - p["horizon_months"])
        return t[(t + self.m0) % 3 == 2]

    def labels(self, fmt: str) -> np.ndarray:
        """Period label per month: 'month' -> 202301, 'quarter' -> 2023Q1, 'year' -> 2023."""
        m = self.m0 + np.arange(self.T)
        year, mon = m // 12 + 1970, m % 12 + 1
        if fmt == "month":
            return np.char.mod("%06d", year * 100 + mon)
        if fmt == "quarter":
            return np.char.add(np.char.add(year.astype(str), "Q"), ((mon - 1) // 3 + 1).astype(str))
        return year.astype(str)
