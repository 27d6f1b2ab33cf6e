"""One subject's features as of a date without the DataFrame machinery: its records, loaded as arrays
(``features.loader.subject_records``), become a :class:`~features.snapshot.Snapshot` directly, and the
batch path's own builders and profile (``features.build.columns_of``) compute the vector, so the
definitions are shared and the two paths cannot drift (``tests/test_features_online.py`` proves them equal).
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

from creditgrade.features.build import columns_of
from creditgrade.features.profile import exists_at
from creditgrade.features.snapshot import CODED, FIELDS, RECENCY_CAP_MONTHS, Snapshot, counting

SMALL = 1000  # records: below this, text is coded by a dict


def _coded(values: np.ndarray) -> tuple[np.ndarray, list]:
    """Integer codes (-1 for None) and their labels, in order of first appearance (one subject's few
    records by a dict, a batch's by ``pd.factorize``: each the faster at its size)."""
    if len(values) > SMALL:
        codes, labels = pd.factorize(values)
        return codes, labels.tolist()
    labels = list(dict.fromkeys(values.tolist()))
    if None in labels:
        labels.remove(None)
    index = {v: i for i, v in enumerate(labels)}
    index[None] = -1
    return np.fromiter(map(index.__getitem__, values.tolist()), dtype=np.intp, count=len(values)), labels


class One(Snapshot):
    """The snapshot of one subject: the batch builders' own definitions, with the aggregates computed
    without the scatter over subjects (``bincount``, ``ufunc.at``) and the masks the builders ask for
    again and again computed once. Sums add in record order as ``bincount`` does, so values are equal."""

    def _fill(self, rec: dict, code: np.ndarray, n: int, as_of: pd.Timestamp) -> None:
        super()._fill(rec, code, n, as_of)
        self._code_of = {label: i for i, label in enumerate(self._kinds)}
        self._none = np.zeros(len(self._kind), dtype=bool)

    def _of_kind(self, name: str) -> np.ndarray | None:
        """The mask of one kind the subject has (None if it has none), made when first asked."""
        i = self._code_of.get(name)
        return None if i is None else self.kept(name, lambda: self._kind == i)

    def kinds(self, *names: str) -> np.ndarray:
        """As :meth:`Snapshot.kinds`, from one mask per kind the subject has."""
        masks = [m for m in map(self._of_kind, names) if m is not None]
        if len(masks) < 2:
            return masks[0] if masks else self._none
        return self.kept(names, lambda: np.logical_or.reduce(masks))

    def source(self, source: str) -> np.ndarray:
        return self.kept(("source", source), lambda: super(One, self).source(source))

    def negative(self, source: str) -> np.ndarray:
        return self.kept(("negative", source), lambda: super(One, self).negative(source))

    def ongoing(self) -> np.ndarray:
        return self.kept("ongoing", super().ongoing)

    def count(self, mask: np.ndarray) -> np.ndarray:
        return np.array([float(np.count_nonzero(mask))])

    def total(self, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.array([float(sum(values[mask].tolist()))])

    def mean(self, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        n = np.count_nonzero(mask)
        return np.array([sum(values[mask].tolist()) / n if n else np.nan])

    def maximum(self, mask: np.ndarray, values: np.ndarray, empty: float = 0.0) -> np.ndarray:
        top = np.maximum.reduce(values[mask], initial=-np.inf)
        return np.array([empty if top == -np.inf else float(top)])

    def months_since(self, mask: np.ndarray, ages: np.ndarray | None = None) -> np.ndarray:
        ages = self.age_months if ages is None else ages
        return np.array([float(np.minimum.reduce(ages[mask], initial=float(RECENCY_CAP_MONTHS)))])

    def pick(self, mask: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
        idx = np.flatnonzero(mask)
        if idx.size < 2:
            return np.array([idx[0] if idx.size else -1])
        keys = (self.record_id[idx], self.start[idx]) + (() if key is None else (key[idx],))
        return np.array([idx[np.lexsort(keys)[-1]]])

    def at(self, picked: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.array([np.nan if picked[0] < 0 else float(values[picked[0]])])

    def latest(self, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self.at(self.pick(mask), values)


def _coded_fields(records: Mapping[str, np.ndarray]) -> dict:
    """The text fields of :data:`~features.snapshot.CODED` as (codes, labels), once per request."""
    return {f: _coded(records[f]) for f in CODED}


def counts(records: Mapping[str, np.ndarray], as_of: pd.Timestamp, coded: dict | None = None) -> np.ndarray:
    """Mask of the records that count at ``as_of`` (``features.snapshot.counting``)."""
    kind = coded["kind"] if coded is not None else _coded(records["kind"])
    return counting(kind, records["start_date"], records["end_date"], records["reported_date"],
                    records["repaired_date"], as_of)


def snapshot(records: Mapping[str, np.ndarray], as_of: pd.Timestamp, coded: dict | None = None) -> Snapshot:
    """The snapshot of one subject's records (arrays as ``subject_records`` gives them) at ``as_of``;
    ``coded``: their text fields as :func:`_coded_fields` gives them, if the caller has them."""
    coded = _coded_fields(records) if coded is None else coded
    keep = counts(records, as_of, coded)
    columns = {f: (coded[f][0][keep], coded[f][1]) if f in CODED else records[f][keep] for f in FIELDS}
    return One.of_arrays(columns, np.zeros(int(keep.sum()), dtype=np.intp), 1, as_of)


def exists(subject: Mapping, segment: str, as_of: pd.Timestamp) -> bool:
    """Whether the subject exists at ``as_of`` (``features.profile.exists_at``)."""
    return bool(exists_at({k: [v] for k, v in subject.items()}, segment, as_of)[0])


def features(subject: Mapping, records: Mapping[str, np.ndarray], segment: str, as_of: pd.Timestamp) -> dict:
    """The subject's features (its stored row, its records) as ``features.build.features_of`` computes
    them: the catalogue's names in order, each a one-element array (categorical: a ``pd.Categorical``)."""
    return columns_of(snapshot(records, as_of), {k: [v] for k, v in subject.items()}, segment, as_of)


def many(subjects: list[Mapping], records: Mapping[str, np.ndarray], segment: str, as_of: pd.Timestamp) -> dict:
    """:func:`features` of several subjects at once (their stored rows, and their records as
    ``loader.many_records`` gives them, with ``subject_key``): one array per feature, the subjects in order,
    built by the batch builders from arrays (no frame)."""
    coded = _coded_fields(records)
    code = pd.Index([row["subject_key"] for row in subjects]).get_indexer(records["subject_key"])
    keep = counts(records, as_of, coded) & (code >= 0)
    columns = {f: (coded[f][0][keep], coded[f][1]) if f in CODED else records[f][keep] for f in FIELDS}
    snap = Snapshot.of_arrays(columns, code[keep], len(subjects), as_of)
    return columns_of(snap, _by_column(subjects), segment, as_of)


def _by_column(subjects: list[Mapping]) -> dict[str, list]:
    """Subject rows as one list per column."""
    return {c: [row[c] for row in subjects] for c in subjects[0]} if subjects else {}


def exist(subjects: list[Mapping], segment: str, as_of: pd.Timestamp) -> np.ndarray:
    """:func:`exists` of several subjects."""
    return exists_at(_by_column(subjects), segment, as_of) if subjects else np.zeros(0, dtype=bool)


def many_disputed(subjects: list[Mapping], records: Mapping[str, np.ndarray], segment: str, as_of: pd.Timestamp,
                  columns: dict) -> dict[str, list[tuple[int, list[str]]]]:
    """:func:`disputed` of the subjects of :func:`many` that have disputed records counting at ``as_of``, by
    key (as ``features.build.disputed_of``); ``columns``: their features as :func:`many` gives them."""
    out = {}
    where = {row["subject_key"]: i for i, row in enumerate(subjects)}
    for key in dict.fromkeys(records["subject_key"][records["disputed"]].tolist()):
        if key not in where:
            continue
        i, mine = where[key], records["subject_key"] == key
        found = disputed(subjects[i], {k: v[mine] for k, v in records.items()}, segment, as_of,
                         {n: v[i:i + 1] for n, v in columns.items()})
        if found:
            out[key] = found
    return out


def frame(columns: dict, key: str) -> pd.DataFrame:
    """The one-row frame of :func:`features`, as the batch builder gives it (index ``subject_key``): every
    column in one float block, then the categorical ones replaced in place (cheaper than a frame from a
    dict, or than inserting them)."""
    names = list(columns)
    coded = [j for j, n in enumerate(names) if isinstance(columns[n], pd.Categorical)]
    values = np.array([[np.nan if isinstance(v, pd.Categorical) else v[0] for v in columns.values()]], dtype=float)
    out = pd.DataFrame(values, columns=names, index=pd.Index([key], name="subject_key"))
    for j in coded:
        out.isetitem(j, columns[names[j]])
    return out


def table(columns: dict, names: list[str]) -> tuple[np.ndarray, list]:
    """Features ``names`` of :func:`features` as a one-row float matrix (categorical as codes, missing as
    NaN) with each column's category labels or None: the model's input without a frame."""
    picked = [columns[n] for n in names]
    labels = [_labels(col.dtype) if isinstance(col, pd.Categorical) else None for col in picked]
    values = np.concatenate([col if lab is None else np.where(col.codes >= 0, col.codes, np.nan)
                             for col, lab in zip(picked, labels)], dtype=float)
    return values.reshape(1, len(names)), labels


@lru_cache(maxsize=64)
def _labels(dtype: pd.CategoricalDtype) -> list:
    """A categorical feature's labels (the catalogue's categories: a handful of dtypes)."""
    return dtype.categories.tolist()


def _same(a, b) -> bool:
    if isinstance(a, pd.Categorical):
        return a.codes[0] == b.codes[0]
    return a[0] == b[0] or (np.isnan(a[0]) and np.isnan(b[0]))


def disputed(subject: Mapping, records: Mapping[str, np.ndarray], segment: str, as_of: pd.Timestamp,
             columns: dict) -> list[tuple[int, list[str]]]:
    """The records under open objection (``records["disputed"]``) that count at ``as_of``, in id order,
    each with the features whose value it changes, found by rebuilding the subject without it (as
    ``features.build.disputed_of`` does for a batch)."""
    ids = records["record_id"][records["disputed"] & counts(records, as_of)]
    out = []
    for rid in np.sort(ids).tolist():
        without = features(subject, {k: v[records["record_id"] != rid] for k, v in records.items()}, segment, as_of)
        out.append((rid, [n for n, v in columns.items() if not _same(v, without[n])]))
    return out
