"""The records of a set of subjects as they stood at an as-of date, with the windowed aggregations
every source builder shares.

Point-in-time rules (DESIGN.md, "Rules the law sets"), with ``as_of`` the snapshot date:

* a record is visible only if ``reported_date < as_of`` (strictly before); reported on or after, never;
* a negative kind counts while ``as_of < add_months(end, 60)``, ``end`` being its ``end_date`` if set,
  else its ``start_date``: on the day five years after the end of the behaviour it no longer counts;
* a repaired record of a repairable kind counts while ``as_of < repaired_date``: from its repair date on,
  it no longer counts;
* a window of ``m`` months holds records with ``add_months(as_of, -m) <= start_date < as_of``;
* a record is ongoing (open) at ``as_of`` if it has no ``end_date`` or ``end_date >= as_of``: an end that
  was not yet in the past at the snapshot is not known at it.
"""
from __future__ import annotations

import datetime as dt
from functools import cache, lru_cache

import numpy as np
import pandas as pd

from creditgrade.features.ids import add_months
from creditgrade.features.schemas import contract, kinds

DAYS_PER_MONTH = 30.4375
RECENCY_CAP_MONTHS = 60  # "months since" is capped at the retention horizon; no record = the cap
WINDOWS = (3, 12, 36)
FIELDS = ("record_id", "kind", "start_date", "end_date", "amount", "value", "category", "severity", "account")
CODED = ("kind", "category", "severity", "account")  # text fields: held as (codes, labels)


def positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent); fast for a categorical ``values``."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        where = index.get_indexer(values.cat.categories)
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, where[codes], -1)
    return index.get_indexer(values)


def _coded(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 missing) and their labels."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), values.cat.categories
    codes, labels = pd.factorize(values)
    return codes, pd.Index(labels)


def retention_months() -> int:
    return contract()["retention"]["negative_years"] * 12


@lru_cache(maxsize=4096)
def retention_cutoff(as_of: dt.date) -> dt.date:
    """The latest end of behaviour whose negative record no longer counts at ``as_of``.

    A negative record counts iff ``as_of < add_months(end, 60)``, i.e. iff ``end > retention_cutoff(as_of)``
    (``add_months`` is non-decreasing, so the ends that no longer count are a prefix of the calendar).
    """
    months = retention_months()
    day = add_months(as_of, -months)
    while add_months(day + dt.timedelta(days=1), months) <= as_of:
        day += dt.timedelta(days=1)
    return day


@cache
def flagged(flag: str) -> tuple[str, ...]:
    """The kinds of the records contract with ``flag`` set (``negative``, ``repairable``, ...)."""
    return tuple(k for k, v in kinds().items() if v.get(flag))


@cache
def _of_source(source: str, negative: bool) -> tuple[str, ...]:
    """The kinds of ``source`` (its link kinds left out), or its negative kinds."""
    if negative:
        return tuple(k for k in flagged("negative") if kinds()[k]["source"] == source)
    return tuple(k for k, v in kinds().items() if v["source"] == source and not v.get("link"))


@lru_cache(maxsize=4096)
def _window_bounds(day: dt.date, months: int, offset: int) -> tuple[np.datetime64, np.datetime64]:
    """The start dates ``[lo, hi)`` of a window of ``months`` calendar months ending ``offset`` months before ``day``."""
    return (np.datetime64(add_months(day, -(offset + months)), "ns"), np.datetime64(add_months(day, -offset), "ns"))


def _zero_nan(values: np.ndarray) -> np.ndarray:
    """Floats with NaN as 0 (``np.nan_to_num`` without its cost on a few values)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), 0.0, values)


def still_counts(records: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Mask of records that count at ``as_of``: reported before it, within retention, not repaired."""
    dates = (records[c].to_numpy() for c in ("start_date", "end_date", "reported_date", "repaired_date"))
    return counting(_coded(records["kind"]), *dates, as_of)


def counting(kind: tuple[np.ndarray, pd.Index | list], start: np.ndarray, end: np.ndarray, reported: np.ndarray,
             repaired: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """:func:`still_counts` on arrays: ``kind`` as (codes, labels), dates as datetime64[ns] (NaT if missing)."""
    negative = Snapshot._among(*kind, flagged("negative"))
    repairable = Snapshot._among(*kind, flagged("repairable"))
    end = np.where(np.isnat(end), start, end)
    cutoff = np.datetime64(retention_cutoff(as_of.date()), "ns")
    as_of64 = np.datetime64(as_of, "ns")
    return (
        (reported < as_of64)
        & ~(negative & (end <= cutoff))
        & ~(repairable & (repaired <= as_of64))  # NaT compares False: unrepaired records stay
    )


class Snapshot:
    """Records that count at ``as_of`` for subjects ``keys``, as arrays aligned on ``self.code``
    (the subject's position in ``keys``); every aggregate returns one float per subject."""

    def __init__(self, records: pd.DataFrame, keys: pd.Index, as_of: pd.Timestamp):
        code = positions(keys, records["subject_key"])
        keep = np.flatnonzero((code >= 0) & still_counts(records, pd.Timestamp(as_of)))
        columns = {col: _coded(records[col].iloc[keep]) if col in CODED else records[col].iloc[keep].to_numpy()
                   for col in FIELDS}
        self._fill(columns, code[keep], len(keys), as_of)

    @classmethod
    def of_arrays(cls, columns: dict, code: np.ndarray, n: int, as_of: pd.Timestamp) -> Snapshot:
        """A snapshot of records that count at ``as_of`` (:func:`counting`), given as arrays: ``columns`` holds
        :data:`FIELDS` (dates datetime64[ns]; the :data:`CODED` ones as (codes, labels)), ``code`` each record's
        subject position in ``range(n)``."""
        snap = cls.__new__(cls)
        snap._fill(columns, code, n, as_of)
        return snap

    def _fill(self, rec: dict, code: np.ndarray, n: int, as_of: pd.Timestamp) -> None:
        self.as_of = pd.Timestamp(as_of)
        self.n = n
        self.code = code
        self.record_id = rec["record_id"]
        self._kind, self._kinds = rec["kind"]
        self.start = rec["start_date"]
        self.end = rec["end_date"]
        self.amount = _zero_nan(rec["amount"])
        self.value = _zero_nan(rec["value"])
        self._category, self._categories = rec["category"]
        self._severity, self._severities = rec["severity"]
        self.account = rec["account"][0]
        weights = contract()["severity_weights"]
        self.weight = _zero_nan(self._lookup(self._severity, [weights.get(s, 0.0) for s in self._severities]))
        self.age_months = (np.datetime64(self.as_of, "ns") - self.start) / np.timedelta64(1, "D") / DAYS_PER_MONTH
        self._windows: dict[tuple[int, int], np.ndarray] = {}
        self._kept: dict = {}

    def kept(self, key, make):
        """``make()``, computed once per snapshot under ``key`` (arrays several features read: never modified)."""
        found = self._kept.get(key)
        if found is None:
            found = self._kept[key] = make()
        return found

    @staticmethod
    def _lookup(codes: np.ndarray, per_label: list[float]) -> np.ndarray:
        """A float per record from one per label (NaN where the label is missing)."""
        return np.array([*per_label, np.nan], dtype=float)[codes]  # code -1 takes the NaN

    @staticmethod
    def _among(codes: np.ndarray, labels: pd.Index, wanted) -> np.ndarray:
        wanted = set(wanted)
        table = np.array([label in wanted for label in labels] + [False])  # a few labels: no np.isin
        return table[codes]  # code -1 (missing) takes the final False

    # --- masks
    def kinds(self, *names: str) -> np.ndarray:
        return self._among(self._kind, self._kinds, names)

    def source(self, source: str) -> np.ndarray:
        return self.kinds(*_of_source(source, False))

    def negative(self, source: str) -> np.ndarray:
        return self.kinds(*_of_source(source, True))

    def window(self, months: int, offset: int = 0) -> np.ndarray:
        """Records that started in ``[as_of - (offset + months), as_of - offset)`` (calendar months)."""
        if (months, offset) not in self._windows:
            self._windows[months, offset] = self._window(months, offset)
        return self._windows[months, offset]

    def _window(self, months: int, offset: int) -> np.ndarray:
        lo, hi = _window_bounds(self.as_of.date(), months, offset)
        return (self.start >= lo) & (self.start < hi)

    def ongoing(self) -> np.ndarray:
        return np.isnat(self.end) | (self.end >= np.datetime64(self.as_of, "ns"))

    def category_is(self, *values: str) -> np.ndarray:
        return self._among(self._category, self._categories, values)

    def category_rank(self, order: tuple[str, ...]) -> np.ndarray:
        """1-based position of each record's category in ``order``; NaN if absent."""
        return self._lookup(self._category, [order.index(c) + 1.0 if c in order else np.nan for c in self._categories])

    def severity_is(self, *values: str) -> np.ndarray:
        return self._among(self._severity, self._severities, values)

    def latest_per_account(self, mask: np.ndarray) -> np.ndarray:
        """Mask of the latest record (by start date, then record_id) of each (subject, account) among ``mask``."""
        idx = np.flatnonzero(mask)
        order = idx[np.lexsort((self.record_id[idx], self.start[idx], self.account[idx], self.code[idx]))]
        last = np.ones(len(order), dtype=bool)
        same = (self.code[order][1:] == self.code[order][:-1]) & (self.account[order][1:] == self.account[order][:-1])
        last[:-1] = ~same
        out = np.zeros(len(mask), dtype=bool)
        out[order[last]] = True
        return out

    # --- aggregates, one float per subject
    def count(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.code[mask], minlength=self.n).astype(float)

    def total(self, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.code[mask], weights=values[mask], minlength=self.n).astype(float)

    def maximum(self, mask: np.ndarray, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
        out = np.full(self.n, -np.inf)
        np.maximum.at(out, self.code[mask], values[mask])
        out[np.isneginf(out)] = empty
        return out

    def latest(self, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The value of each subject's latest record (by start date, then record_id) among ``mask``; NaN if none."""
        idx = np.flatnonzero(mask)
        order = idx[np.lexsort((self.record_id[idx], self.start[idx], self.code[idx]))]
        out = np.full(self.n, np.nan)
        out[self.code[order]] = values[order]  # later assignments win: the latest start per subject
        return out

    def months_since(self, mask: np.ndarray, ages: np.ndarray | None = None) -> np.ndarray:
        """Months since the latest start among ``mask`` (or the smallest of ``ages``), capped at 60; 60 if none."""
        recency = np.full(self.n, float(RECENCY_CAP_MONTHS))
        np.minimum.at(recency, self.code[mask], (self.age_months if ages is None else ages)[mask])
        return recency

    def ended(self) -> np.ndarray:
        """Records whose end_date is before ``as_of`` (the complement of :meth:`ongoing`)."""
        return ~self.ongoing()

    def months_since_end(self, mask: np.ndarray) -> np.ndarray:
        """Months since the latest end among the ended records of ``mask``, capped at 60; 60 if none."""
        ages = self.kept("end_ages", lambda: (np.datetime64(self.as_of, "ns") - self.end) / np.timedelta64(1, "D")
                         / DAYS_PER_MONTH)
        return self.months_since(mask & self.kept("ended", self.ended), ages)

    def pick(self, mask: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
        """Per subject, the position of the record among ``mask`` that sorts last by ``key``, then start
        date, then record_id (the latest record when no key); -1 if none."""
        idx = np.flatnonzero(mask)
        keys = (self.record_id[idx], self.start[idx]) + (() if key is None else (key[idx],))
        order = idx[np.lexsort((*keys, self.code[idx]))]
        out = np.full(self.n, -1)
        out[self.code[order]] = order  # later assignments win
        return out

    def at(self, picked: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` of the records :meth:`pick` chose, as floats; NaN where none was."""
        out = np.full(self.n, np.nan)
        some = picked >= 0
        out[some] = values[picked[some]]
        return out

    @property
    def start_day(self) -> np.ndarray:
        """Each record's start date as days since 1970-01-01 (the ``date`` unit of the catalogue)."""
        return self.kept("start_day", lambda: self.start.astype("datetime64[D]").astype(float))

    def mean(self, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` per subject among ``mask``; NaN if none."""
        n = self.count(mask)
        return np.divide(self.total(mask, values), n, out=np.full(self.n, np.nan), where=n > 0)

    def change(self, mask: np.ndarray, values: np.ndarray, now: np.ndarray, before: np.ndarray) -> np.ndarray:
        """``log1p(mean now) - log1p(mean before)`` of ``values`` among ``mask``, ``now`` and ``before``
        being windows; NaN if either holds no record."""
        return np.log1p(self.mean(mask & now, values)) - np.log1p(self.mean(mask & before, values))

    def source_summary(self, source: str, prefix: str) -> dict[str, np.ndarray]:
        """Features every source has: presence, adverse counts per window, severity, recency."""
        neg = self.negative(source)
        out = {f"has_{source}": (self.count(self.source(source)) > 0).astype(float)}
        for months in WINDOWS:
            out[f"{prefix}_negatives_{months}m"] = self.count(neg & self.window(months))
        out[f"{prefix}_negative_severity_36m"] = self.total(neg & self.window(36), self.weight)
        out[f"{prefix}_months_since_negative"] = self.months_since(neg)
        return out
