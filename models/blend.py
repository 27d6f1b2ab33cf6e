"""A blend of fitted models: the weighted mean of their log-odds of default, as one :class:`Estimator`.

Two families that rank well in different ways (a scorecard's monotone bins, a booster's interactions) often
rank better together than either alone. :class:`Blend` holds fitted members over the same inputs and
weights summing to 1; its log-odds are ``sum(w * member's log-odds)``, its PD their logistic. Each member's
contributions in log-odds (:meth:`Estimator.log_odds_walk`: a scorecard's ``coef * WOE``, a booster's
TreeSHAP, an EBM's terms) are weighted and added feature by feature, so a blend's contributions add up
exactly to its log-odds and a reason names the catalogue's feature as before. Which members, and whether
the blend is used at all, is chosen on the validation dates (``training.choose``); the blend learns nothing
itself.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from creditgrade.models.estimator import Estimator, Table, Walk, read_table

FORMAT = "creditgrade.blend/1"
FAMILY = "blend"


def mixed_pd(pds: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """The PD of the weighted mean of the log-odds of ``pds`` (what :class:`Blend` predicts from its members')."""
    logits = [np.log(p) - np.log1p(-p) for p in (np.clip(np.asarray(q, dtype=float), 1e-12, 1 - 1e-12) for q in pds)]
    return 1.0 / (1.0 + np.exp(-sum(w * z for w, z in zip(weights, logits))))


class Blend(Estimator):
    """Fitted ``members`` (estimators over the same inputs, in the same order) mixed by ``weights`` (positive,
    summing to 1) in log-odds; contributions in log-odds."""

    family = FAMILY
    unit = "log-odds"

    def __init__(self, members: list[Estimator], weights: list[float]):
        if len(members) < 2 or len(weights) != len(members):
            raise ValueError(f"a blend needs two or more members, one weight each: {len(members)} members, "
                             f"{len(weights)} weights")
        if min(weights) <= 0 or abs(sum(weights) - 1) > 1e-9:
            raise ValueError(f"a blend's weights are positive and sum to 1: {weights}")
        self.members, self.weights = list(members), [float(w) for w in weights]
        self._same_inputs()

    def _same_inputs(self) -> None:
        """Take the members' inputs as the blend's (none before they are fitted); they must be the same."""
        names = [list(getattr(m, "feature_names_in_", [])) for m in self.members]
        if any(n != names[0] for n in names[1:]):
            raise ValueError("a blend's members must be fitted on the same inputs, in the same order")
        self.feature_names_in_ = np.array(names[0], dtype=object)

    @classmethod
    def configured(cls, specs: list, scale, seed: int = 0) -> Blend:
        raise TypeError("a Blend mixes fitted members: build it with Blend(members, weights)")

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None, groups=None) -> Blend:
        """Fit every member on the same rows (the weights stay as given)."""
        for member in self.members:
            member.fit(X, y, X_val, y_val, groups=groups)
        self._same_inputs()
        return self

    def get_params(self, deep: bool = True) -> dict:
        return {"members": ",".join(m.family for m in self.members),
                "weights": ",".join(f"{w:.4f}" for w in self.weights)}

    @property
    def num_threads(self) -> int:
        """The most threads of a member that has such a setting (serving sets one row's to 1)."""
        threads = [m.num_threads for m in self.members if hasattr(m, "num_threads")]
        if not threads:
            raise AttributeError("no member of this blend has a thread setting")
        return max(threads)

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        for member in self.members:
            if hasattr(member, "num_threads"):
                member.num_threads = value

    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        return mixed_pd([m.predict_pd(X) for m in self.members], self.weights)

    def walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """The members' log-odds walks over one table, weighted and added; the PD is the logistic of the sum."""
        table = read_table(X, list(self.feature_names_in_)) if table is None else table
        out = sum(w * m.log_odds_walk(None, table).contributions for m, w in zip(self.members, self.weights))
        return Walk(out, 1.0 / (1.0 + np.exp(-out.sum(axis=1))), None)

    @property
    def used_features_(self) -> list[str]:
        used = {f for m in self.members for f in m.used_features_}
        return [f for f in self.feature_names_in_ if f in used]

    def boundaries(self) -> dict[str, list[tuple[float, bool]]]:
        return _union(m.boundaries() for m in self.members)

    def boundaries_of(self, X: pd.DataFrame) -> dict[str, list[tuple[float, bool]]]:
        return _union(m.boundaries_of(X) for m in self.members)

    def describe(self) -> dict:
        """Each member's description and weight under ``details["members"]``; a detail every member gives
        alike (levels against peers learned from the same dates) is the blend's too. A member's own (an EBM's
        shape functions, a card's bins) is not: the blend's contributions are not those values."""
        inner = [m.describe() for m in self.members]
        names = [f"{w:.2f} {m.family}" for m, w in zip(self.members, self.weights)]
        given = [d.get("details", {}) for d in inner]
        details = {k: v for k, v in given[0].items() if all(k in g and g[k] == v for g in given[1:])}
        monotone = {f: "; ".join(f"{m.family}: {d['monotone'][f]}" for m, d in zip(self.members, inner)
                                 if f in d["monotone"]) for f in self.feature_names_in_}
        return {"size": {f"{m.family}_{k}": v for m, d in zip(self.members, inner) for k, v in d["size"].items()},
                "summary": f"blend of {' + '.join(names)} in log-odds ({'; '.join(d['summary'] for d in inner)})",
                "monotone": monotone,
                "contributions": "log-odds: the members' contributions in log-odds, weighted and added",
                "details": {**details, "members": [{"family": m.family, "weight": w, **d}
                                                   for m, w, d in zip(self.members, self.weights, inner)]}}

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "features": list(self.feature_names_in_),
                           "members": [{"family": m.family, "weight": w, "estimator": m.to_json()}
                                       for m, w in zip(self.members, self.weights)]})

    @classmethod
    def from_json(cls, text: str) -> Blend:
        from creditgrade.models.families import from_json  # families names this module's loader

        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        return cls([from_json(m["family"], m["estimator"]) for m in doc["members"]],
                   [m["weight"] for m in doc["members"]])


def _union(boundaries) -> dict[str, list[tuple[float, bool]]]:
    out: dict[str, set] = {}
    for b in boundaries:
        for feature, bounds in b.items():
            out.setdefault(feature, set()).update(bounds)
    return {f: sorted(b) for f, b in out.items()}
