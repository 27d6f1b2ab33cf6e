"""Choosing a model inside the training rows of one outer fold: every family of ``models.families``, tuned
where the family has a search (``models.tuning``), and a blend of them, judged by the AUC of their
out-of-fold log-odds on one set of inner folds (``candidates.inner_folds`` in table.toml, the same folds for
every family: the tuned LightGBM and the EBM bag their fold models, the others are cross-fitted); the outer
rows are only scored.

The blend's weights are Caruana's greedy selection shrunk toward equal weights, the share of equal weights
chosen by cross-validation over the out-of-fold rows with the one-standard-error rule; the blend is chosen
unless a single candidate beats its cross-validated AUC by more than one standard error (near-equal
candidates are blended, not picked between by luck).

A wide table's training part keeps its columns of highest information value beyond chance (``limits`` in
table.toml), ranked on its own rows; a training part with fewer rows of its rarer class than the inner folds
asked gets one inner fold per such row (the AUC of a fold needs both classes).

A family that takes ``special_values`` (the scorecard) bins the special codes itself; any other sees them
as missing values, which LightGBM and the EBM keep apart as a bin of their own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from creditgrade.models.binning import MonotoneBinner
from creditgrade.models.families import FAMILIES
from creditgrade.models.folds import covered_auc, inner_splits, least_class
from creditgrade.models.tuning import candidate, ensemble_selection
from creditgrade.training.table_columns import config

BLEND = "blend"
FOLDS = "folds"  # the notes' key for the inner folds when the rarer class has too few rows for all of them
SCREEN = "columns"  # the notes' key for the columns a wide table's training part kept
BLEND_ROUNDS = 10  # the blend's weights go in tenths


def logit(pd_: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(pd_, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def _inputs(est, X: pd.DataFrame, special: tuple) -> pd.DataFrame:
    """X as the family reads it: special codes binned by a family that takes them, otherwise missing."""
    if not special:
        return X
    if "special_values" in est.get_params():
        est.set_params(special_values=list(special))
        return X
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    return X.assign(**{c: X[c].mask(X[c].isin(special)) for c in numeric})


def screen(X: pd.DataFrame, y: np.ndarray, specs: list, special: tuple, seed: int = 0) -> list[str]:
    """The columns a training part keeps: all of them, or above ``limits.screen_above`` (table.toml) at most
    that many, by information value on these rows (the scorecard's binning, special codes binned apart), and
    of those only the ones above the ``limits.screen_null_quantile`` of the values the same binning gives the
    columns against the labels shuffled (at least the best column): a column kept for a value chance gives
    holds on the inner folds too and flatters the candidates that use it."""
    limits = config()["limits"]
    if X.shape[1] <= limits["screen_above"]:
        return list(X.columns)
    binner = MonotoneBinner(directions={s.name: s.direction for s in specs}, special_values=list(special))
    iv = binner.fit(X, y).iv_
    chance = np.quantile(list(clone(binner).fit(X, np.random.default_rng(seed).permutation(y)).iv_.values()),
                         limits["screen_null_quantile"])
    ranked = sorted(X.columns, key=lambda c: (-iv[c], str(c)))
    return ranked[:max(1, min(limits["screen_above"], sum(iv[c] > chance for c in ranked)))]


def cross_fit(est, X: pd.DataFrame, y: np.ndarray, splits, groups=None) -> np.ndarray:
    """Out-of-fold log-odds of ``est`` on the inner folds (NaN on rows no fold validates)."""
    oof = np.full(len(y), np.nan)
    for train, valid in splits:
        model = clone(est).fit(X.iloc[train], y[train], groups=None if groups is None else groups[train])
        oof[valid] = logit(model.predict_pd(X.iloc[valid]))
    return oof


def within_one_se(fold_auc: np.ndarray) -> np.ndarray:
    """Which options (columns of per-fold AUCs, folds in rows) are within one standard error of the best
    mean: the error of each one's paired per-fold difference to the best (the one-standard-error rule)."""
    mean = fold_auc.mean(axis=0)
    gap = fold_auc[:, [int(np.argmax(mean))]] - fold_auc
    return mean >= mean.max() - gap.std(axis=0, ddof=1) / np.sqrt(len(fold_auc))


def _greedy(y: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """Caruana's weights (a tenth at a time, greedily) of the columns of ``decisions`` for the best AUC."""
    chosen = ensemble_selection(y, list(decisions.T), rounds=BLEND_ROUNDS, pool=decisions.shape[1])
    return np.bincount(list(chosen), weights=list(chosen.values()), minlength=decisions.shape[1])


@dataclass
class Blend:
    """A weighted mean of candidates' log-odds, recalibrated: ``a * sum(w * decision) + b``; ``shrink`` is the
    share of equal weights in ``weights``, ``fold_auc`` each candidate's and the blend's AUC on the folds
    that judged the weights (the blend's weighed on the other folds)."""

    weights: dict[str, float]
    calibration: tuple[float, float] = (1.0, 0.0)
    shrink: float = 0.0
    fold_auc: dict[str, np.ndarray] = field(default_factory=dict)
    decision: np.ndarray | None = None  # the blend's cross-validated log-odds on the inner rows

    def mix(self, decisions: dict[str, np.ndarray]) -> np.ndarray:
        a, b = self.calibration
        return a * sum(w * decisions[name] for name, w in self.weights.items()) + b

    def __str__(self) -> str:
        return " + ".join(f"{w:.2f} {name}" for name, w in sorted(self.weights.items(), key=lambda kv: -kv[1]))

    @classmethod
    def best(cls, y: np.ndarray, oof: dict[str, np.ndarray], folds: int, seed: int = 0) -> "Blend":
        """Caruana's greedy weights on the out-of-fold log-odds, shrunk toward equal weights: by the largest
        share of ``candidates.shrink`` (table.toml) whose AUC, the weights found on the other folds of the
        out-of-fold rows and the mix scored on each, is within one standard error of the best share's."""
        names = list(oof)
        rows = np.flatnonzero(~np.isnan(np.column_stack([oof[n] for n in names])).any(axis=1))
        target, decisions = y[rows], np.column_stack([oof[n][rows] for n in names])
        shares = np.sort(np.asarray(config()["candidates"]["shrink"], dtype=float))
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(decisions, target))
        mixed = np.empty((len(shares), len(rows)))
        for train, valid in splits:
            weights = np.outer(1 - shares, _greedy(target[train], decisions[train])) + shares[:, None] / len(names)
            mixed[:, valid] = weights @ decisions[valid].T
        per_fold = np.array([[covered_auc(target[v], m[v]) for m in (*mixed, *decisions.T)] for _, v in splits])
        pick = int(np.flatnonzero(within_one_se(per_fold[:, :len(shares)]))[-1])
        weights = (1 - shares[pick]) * _greedy(target, decisions) + shares[pick] / len(names)
        blend = cls({n: float(w) for n, w in zip(names, weights) if w > 0}, shrink=float(shares[pick]),
                    fold_auc={BLEND: per_fold[:, pick], **dict(zip(names, per_fold[:, len(shares):].T))})
        platt = LogisticRegression(C=1e6).fit(blend.mix(oof)[rows].reshape(-1, 1), target)
        blend.calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        blend.decision = np.full(len(y), np.nan)
        blend.decision[rows] = blend.calibration[0] * mixed[pick] + blend.calibration[1]
        return blend


@dataclass
class Choice:
    """One outer fold: each candidate's inner AUC and log-odds on the outer rows, the one chosen."""

    inner_auc: dict[str, float] = field(default_factory=dict)
    oof: dict[str, np.ndarray] = field(default_factory=dict)  # out-of-fold log-odds on the inner folds
    outer: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    chosen: str = ""
    fixed_seconds: float = 0.0  # what no budget cuts: the screen, every family's fit but the searches beyond their first trial


def choose(X: pd.DataFrame, y: np.ndarray, X_test: pd.DataFrame, specs: list, scale, seed: int = 0,
           seconds: float = 60.0, special: tuple = (), families=None, trials: int | None = None,
           groups=None) -> Choice:
    """Fit every candidate on ``X, y``, judge it on inner folds, score ``X_test``; searches share what is
    left of ``seconds`` once the other families are fitted (and run at most ``trials`` each, if given).
    Rows sharing a label of ``groups`` (copies of one row) stay on one side of every inner split."""
    began = time.perf_counter()
    deadline = began + seconds
    choice = Choice()
    kept = screen(X, y, specs, special, seed)
    choice.fixed_seconds = time.perf_counter() - began  # the screen's
    if len(kept) < X.shape[1]:
        choice.notes[SCREEN] = (f"{len(kept)} of {X.shape[1]} kept (a wide table): those of the highest information "
                                f"value on this training part, beyond chance / 宽表：保留 {X.shape[1]} 列中本训练部分信息值"
                                f"最高且超出随机水平的 {len(kept)} 列")
        X, X_test, specs = X[kept], X_test[kept], [s for s in specs if s.name in set(kept)]
    asked, rare = config()["candidates"]["inner_folds"], least_class(y, groups)
    if groups is not None and rare < 2:  # an outer split left too few distinct rows to group
        groups, rare = None, least_class(y)
    folds = min(asked, rare)
    if folds < asked:
        once = "" if groups is None else " (copies of a row counted once / 相同的行计一次)"
        choice.notes[FOLDS] = (f"{folds} inner folds: the training part has only {rare} rows of its "
                               f"rarer class, one at least for each fold / 内层 {folds} 折：训练部分较少的类别仅 "
                               f"{rare} 行，每折至少一行{once}")
    splits = inner_splits(y, seed, folds, groups)
    estimators = {name: candidate(name, specs, scale, seed, seconds, trials) for name in (families or FAMILIES)}
    for est in estimators.values():  # a family that cross-fits itself does so on the same folds
        if "inner_folds" in est.get_params():
            est.set_params(inner_folds=folds)
    searched = [n for n, e in estimators.items() if "seconds" in e.get_params()]
    oof = choice.oof
    for name in sorted(estimators, key=lambda n: n in searched):
        start = time.perf_counter()
        est = estimators[name]
        if name in searched:
            est.set_params(seconds=max(deadline - start, 0.0) / (len(searched) - searched.index(name)))
        train, test = _inputs(est, X, special), _inputs(est, X_test, special)
        model = clone(est).fit(train, y, groups=groups)
        found = getattr(model, "oof_decision_", None)
        oof[name] = cross_fit(est, train, y, splits, groups) if found is None else found
        choice.outer[name] = logit(model.predict_pd(test))
        choice.inner_auc[name] = covered_auc(y, oof[name])
        choice.seconds[name] = time.perf_counter() - start
        search = getattr(model, "search_", None)
        choice.fixed_seconds += search["fixed_seconds"] if search else choice.seconds[name]
        if search:
            trials, members = search["trials"], search["members"]
            choice.notes[name] = (f"{trials} trials, {members} settings in the ensemble / "
                                  f"{trials} 次试验，集成 {members} 组参数")
    choice.chosen = max(oof, key=lambda n: choice.inner_auc[n])
    covered = ~np.isnan(np.column_stack(list(oof.values()))).any(axis=1)
    validated = least_class(y[covered])
    blend_folds = min(folds, validated)
    if len(oof) >= 2 and blend_folds < 2:
        choice.notes[BLEND] = (f"not tried: the rows the inner folds validate hold {validated} of "
                               f"the rarer class, too few to weigh a blend on two folds / 未尝试：内层验证行中较少的类别仅 "
                               f"{validated} 行，不足以在两折上确定混合权重")
    elif len(oof) >= 2:
        blend = Blend.best(y, oof, blend_folds, seed)
        choice.inner_auc[BLEND] = covered_auc(y, blend.decision)
        choice.outer[BLEND] = blend.mix(choice.outer)
        choice.notes[BLEND] = (f"weights 权重 {blend} (shrunk {blend.shrink:.2f} toward equal weights / "
                               f"向等权重收缩 {blend.shrink:.2f})")
        if within_one_se(np.column_stack(list(blend.fold_auc.values())))[0]:
            choice.chosen = BLEND
    return choice
