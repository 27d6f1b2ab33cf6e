"""Levels against peers: a family's estimator fed, beside the catalogue's inputs, where a firm stands
against the firms of its size and sector at the date, with the medians learned from its training rows.

A firm's size and sector set the scale of its tax paid and insured headcount; within them the level follows
its condition. The catalogue declares each level (``features.catalog.peer_levels``: ``peer_of`` a feature,
``peer_by`` the categorical features that make its groups). :class:`PeerLevels` learns, per group and as-of
date, the median of ``log(1 + value)`` over the training rows with a positive value, and gives its family
each row's level: ``log(1 + value)`` minus its group's median at the row's date (missing where the value is
not positive), so a year when every firm paid less (a lockdown) moves no level. It keeps the latest training
date's medians for what it grades. A group with fewer than ``min_rows`` such rows (or a category never
trained on) takes the median of the group without its last ``peer_by`` feature, then of every row.

The medians travel in the model's JSON, so every path that grades (a batch, one subject, an export, a
what-if) feeds the catalogue's inputs as before and gets the same levels. A level's contribution is added to
its ``peer_of`` feature's: contributions still add up to the margin, and a reason names the catalogue's
feature. Written here, not with a library transformer: the medians must travel in the model's own JSON
(no pickle) and the walk must run on the one-subject table path.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from creditgrade.models.estimator import Estimator, Table, Walk, read_table, table_columns

FORMAT = "creditgrade.peer-levels/1"


class PeerLevels(Estimator):
    """``estimator`` (any family, configured with the levels' specs as extra inputs) fed the levels of
    ``levels`` (``[{"name", "of", "by"}]``) learned by :meth:`fit`; an :class:`Estimator` over the
    catalogue's inputs. Built with :meth:`around`, not :meth:`configured` (it wraps a family)."""

    dated = True

    def __init__(self, estimator: Estimator, levels: list[dict], min_rows: int = 30):
        self.estimator = estimator
        self.levels = levels
        self.min_rows = min_rows

    @classmethod
    def around(cls, estimator: Estimator, specs: list, min_rows: int) -> PeerLevels:
        """Wrap a fresh ``estimator`` configured with the peer-level ``specs`` (``FeatureSpec``) as inputs."""
        return cls(estimator, [{"name": s.name, "of": s.peer_of, "by": list(s.peer_by)} for s in specs], min_rows)

    @classmethod
    def configured(cls, specs: list, scale, seed: int = 0) -> PeerLevels:
        raise TypeError("PeerLevels wraps a family's estimator: build it with PeerLevels.around")

    @property
    def family(self) -> str:
        return self.estimator.family

    @property
    def unit(self) -> str:
        return self.estimator.unit

    @property
    def num_threads(self) -> int:
        """The wrapped family's threads, where it has such a setting (serving sets one row's to 1)."""
        return self.estimator.num_threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self.estimator.num_threads = value

    @property
    def level_names(self) -> list[str]:
        """The levels' names: the inputs the family takes after the catalogue's."""
        return [lv["name"] for lv in self.levels]

    def get_params(self, deep: bool = True) -> dict:
        return {**self.estimator.get_params(deep), "peer_levels": ",".join(self.level_names),
                "peer_min_rows": self.min_rows}

    # ------------------------------------------------------------ learning and applying the medians

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None, groups=None,
            dates=None) -> PeerLevels:
        """Learn the medians from ``X`` and ``X_val`` (rows before the dates judged; no outcome is read,
        :meth:`learn`), then fit the family on the inputs and their levels. ``dates``: each row's as-of date
        (of ``X``, then of ``X_val``); without, every row is levelled against all rows."""
        seen = X if X_val is None else pd.concat([X, X_val[list(X.columns)]])
        frame = self.learn(seen, None if dates is None else np.concatenate([np.asarray(d) for d in dates]))
        held = None if X_val is None else frame.iloc[len(X):]
        self.estimator.fit(frame.iloc[:len(X)], y, held, y_val, groups=groups)
        return self

    def learn(self, X: pd.DataFrame, dates=None) -> pd.DataFrame:
        """Learn each date's medians from ``X``'s rows at that date (``dates``: one per row; None: all rows
        as one date), keep the latest date's to grade with, and return ``X``'s inputs with each row's level
        against its own date's peers (the family's training frame)."""
        self.feature_names_in_ = np.array(list(X.columns), dtype=object)
        when = np.zeros(len(X)) if dates is None else np.asarray(dates)
        if len(when) != len(X):
            raise ValueError(f"{len(when)} dates for {len(X)} rows")
        columns = _frame_columns(X, self._read())
        self.dated_ = {}
        for day in np.unique(when):  # ascending: the medians kept are the latest date's
            at = when == day
            self.dated_[day] = self.medians_ = {lv["name"]: self._learn(lv, {c: v[at] for c, v in columns.items()})
                                                for lv in self.levels}
        return self.inputs_at(X, when)

    def inputs_at(self, X: pd.DataFrame, dates) -> pd.DataFrame:
        """``X``'s inputs with each row's level against the medians :meth:`learn` found at its date in
        ``dates`` (the latest date's for a date it did not see): how a training set is levelled where it
        is built in parts (``training.cluster``)."""
        when = np.asarray(dates)
        columns = _frame_columns(X, self._read())
        levels = {lv["name"]: np.full(len(X), np.nan) for lv in self.levels}
        for day in np.unique(when):
            at = when == day
            part = self._levels({c: v[at] for c, v in columns.items()}, self.dated_.get(day, self.medians_))
            for name, values in part.items():
                levels[name][at] = values
        return self._joined(X, levels)

    def _learn(self, level: dict, columns: dict) -> list[dict]:
        """Medians of ``log(1 + value)`` per group of the first ``d`` ``by`` features, from all of them down
        to none (every row), each group with at least ``min_rows`` positive values."""
        value = columns[level["of"]]
        keep = value > 0
        logged = pd.Series(np.log1p(value[keep]))
        out = []
        for depth in range(len(level["by"]), -1, -1):
            keys = [pd.Series(columns[b][keep], dtype=object).fillna("") for b in level["by"][:depth]]
            if not depth:
                groups = [([], logged)] if len(logged) >= 1 else []
            else:
                groups = [(list(k if isinstance(k, tuple) else (k,)), g) for k, g in logged.groupby(keys, sort=True)]
            out.append({"depth": depth, "groups": [[key, float(g.median())] for key, g in groups
                                                   if len(g) >= (self.min_rows if depth else 1) and "" not in key]})
        return out

    def _medians(self, level: dict, columns: dict, medians: dict | None = None) -> np.ndarray:
        """The peers' median of ``level`` per row from ``columns`` (feature -> numbers, or labels with None
        missing) in ``medians`` (the kept ones if None): its finest group kept, else a coarser one."""
        n = len(columns[level["of"]])
        median = np.full(n, np.nan)
        for depth, lookup in self._lookups(self.medians_ if medians is None else medians)[level["name"]]:
            keys = zip(*(columns[b] for b in level["by"][:depth])) if depth else [()] * n
            found = np.array([lookup.get(tuple(k), np.nan) for k in keys], dtype=float)
            median = np.where(np.isnan(median), found, median)
        return median

    def _lookups(self, medians: dict) -> dict[str, list[tuple[int, dict]]]:
        """``medians`` as ``(depth, {group: median})`` per level, finest first (made once for the kept ones:
        one subject's walk reads them)."""
        kept = getattr(self, "_kept", None)
        if kept is not None and kept[0] is medians:
            return kept[1]
        out = {name: [(t["depth"], {tuple(k): m for k, m in t["groups"]}) for t in tables]
               for name, tables in medians.items()}
        if medians is getattr(self, "medians_", None):
            self._kept = (medians, out)
        return out

    def _levels(self, columns: dict, medians: dict | None = None) -> dict[str, np.ndarray]:
        """Each level per row from ``columns`` against ``medians`` (as :meth:`_medians` reads them)."""
        out = {}
        for lv in self.levels:
            value = np.asarray(columns[lv["of"]], dtype=float)
            with np.errstate(invalid="ignore"):
                out[lv["name"]] = (np.where(value > 0, np.log1p(np.maximum(value, 0.0)), np.nan)
                                   - self._medians(lv, columns, medians))
        return out

    def _joined(self, X: pd.DataFrame, levels: dict[str, np.ndarray]) -> pd.DataFrame:
        """``X``'s inputs with ``levels`` appended (the family's input frame)."""
        return pd.concat([X[list(self.feature_names_in_)].reset_index(drop=True),
                          pd.DataFrame(levels)], axis=1).set_axis(X.index)

    def inputs_of(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X``'s inputs with their levels against the medians kept (the family's input frame)."""
        return self._joined(X, self._levels(_frame_columns(X, self._read())))

    def _read(self) -> list[str]:
        """The inputs the levels read."""
        return list(dict.fromkeys(c for lv in self.levels for c in (lv["of"], *lv["by"])))

    # ------------------------------------------------------------ the Estimator contract

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_pd(self.inputs_of(X))

    def own_score(self, X: pd.DataFrame) -> np.ndarray | None:
        return self.estimator.own_score(self.inputs_of(X))

    def walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """The family's walk over the inputs and levels, each level's contribution added to its feature's."""
        return self._folded(self.estimator.walk, X, table)

    def log_odds_walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """:meth:`walk` in log-odds (the family's :meth:`~Estimator.log_odds_walk`), levels folded the same way."""
        return self._folded(self.estimator.log_odds_walk, X, table)

    def _folded(self, walk, X: pd.DataFrame, table: Table | None) -> Walk:
        """``walk`` (one of the family's) over the inputs and levels, each level's contribution added to its
        feature's."""
        names, read = list(self.feature_names_in_), self._read()
        values, labels = read_table(X, names) if table is None else table
        at = [names.index(c) for c in read]
        levels = self._levels(table_columns((values[:, at], [labels[j] for j in at]), read))
        inner = walk(None, (np.column_stack([values, *levels.values()]), [*labels, *[None] * len(levels)]))
        c = inner.contributions
        folded = np.concatenate([c[:, :len(names)], c[:, -1:]], axis=1)
        for j, lv in enumerate(self.levels):
            folded[:, names.index(lv["of"])] += c[:, len(names) + j]
        return Walk(folded, inner.pd, inner.score)

    @property
    def used_features_(self) -> list[str]:
        """The inputs the family uses, directly or through a level."""
        used = set(self.estimator.used_features_)
        used |= {lv["of"] for lv in self.levels if lv["name"] in used}
        return [f for f in self.feature_names_in_ if f in used]

    def boundaries(self) -> dict[str, list[tuple[float, bool]]]:
        """The family's boundaries; a level's, mapped back to its feature for every median it may use
        (a superset: where the output may change for some group; one subject's: :meth:`boundaries_of`)."""
        return self._mapped({lv["name"]: sorted({m for t in self.medians_[lv["name"]] for _, m in t["groups"]})
                             for lv in self.levels})

    def boundaries_of(self, X: pd.DataFrame) -> dict[str, list[tuple[float, bool]]]:
        """The boundaries of the subject of ``X`` (one row): a level's mapped back with its own peers' median."""
        columns = _frame_columns(X, self._read())
        return self._mapped({lv["name"]: [m for m in self._medians(lv, columns)[:1] if np.isfinite(m)]
                             for lv in self.levels})

    def _mapped(self, medians: dict[str, list[float]]) -> dict[str, list[tuple[float, bool]]]:
        """The family's boundaries of the inputs, and each level's at ``log(1 + x) - m`` for each of its
        ``medians`` m as values x of its feature."""
        inner = self.estimator.boundaries()
        out = {f: list(inner[f]) for f in self.feature_names_in_ if f in inner}
        for lv in self.levels:
            mapped = [(float(np.expm1(t + m)), strict)
                      for t, strict in inner.get(lv["name"], []) for m in medians[lv["name"]]]
            out.setdefault(lv["of"], []).extend(b for b in mapped if b[0] > 0 and np.isfinite(b[0]))
        return {f: sorted(set(b)) for f, b in out.items()}

    def describe(self) -> dict:
        """The family's description, plus each level's peers under ``details["peer_levels"]``: its feature,
        groups, and per group kept (finest first) the peers' median value of the feature (``exp(median) - 1``)."""
        inner = self.estimator.describe()
        details = {lv["name"]: {"of": lv["of"], "by": lv["by"],
                                "medians": [{"group": dict(zip(lv["by"], key)), "median": float(np.expm1(m))}
                                            for t in self.medians_[lv["name"]] for key, m in t["groups"]]}
                   for lv in self.levels}
        return {**inner, "summary": f"{inner['summary']}; levels against peers of "
                                    f"{', '.join(lv['of'] for lv in self.levels)}",
                "details": {**inner.get("details", {}), "peer_levels": details}}

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "family": self.family, "levels": self.levels, "min_rows": self.min_rows,
                           "features": list(self.feature_names_in_), "medians": self.medians_,
                           "estimator": self.estimator.to_json()})

    @classmethod
    def from_json(cls, text: str) -> PeerLevels:
        from creditgrade.models.families import family  # families names this module's loader

        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        model = cls(family(doc["family"]).from_json(doc["estimator"]), doc["levels"], doc["min_rows"])
        model.feature_names_in_ = np.array(doc["features"], dtype=object)
        model.medians_ = doc["medians"]
        return model


def _frame_columns(X: pd.DataFrame, names: list[str]) -> dict:
    """``X``'s columns ``names`` as :func:`~creditgrade.models.estimator.table_columns` gives them."""
    return table_columns(read_table(X, names), names)
