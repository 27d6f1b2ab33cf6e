"""Generic mode: choose and tune a PD model for any table with a binary target, measured by nested CV.

The outer folds (5, stratified) only measure. Inside each outer training part, ``training.candidates``
fits every model family (LightGBM searched by Optuna and ensembled), judges each and a blend of them on
inner folds, and chooses one; the chosen pipeline's outer AUC is the honest figure. ``budget`` bounds the
whole run: each outer fold gets an equal share of what is left, of which the search gets what the other
families leave, and a fold whose fixed costs (the other families, the first trial and the refits, as the
costliest fold so far took them) would overrun the budget is not started: the figures are then those of
the folds measured (``TableResult.folds``; the first fold always runs). Protected attributes (by
name, ``--protected`` or a data dictionary's meanings) and identifiers are never features, nor a column that
alone all but separates the target (a leak of it, unless ``--keep`` names it); the result says which columns
were left out and why. Rows equal in every feature and the target stay together in every split, outer and
inner (copies on both sides flatter a model that remembers them), unless the rarer class has too few distinct
rows for the folds (features of few values repeat by nature: the rows are then split as any rows, and the
result says so; ``TableResult.distinct``). Each class needs a row in every outer test
fold and two in every outer training part (``models.folds.nested_minimum``; a clear error names a --folds
that works otherwise).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from creditgrade.features.catalog import FeatureSpec
from creditgrade.features.errors import CreditgradeError
from creditgrade.models.folds import least_class, nested_minimum, stratified_folds
from creditgrade.models.grades import scales
from creditgrade.training.candidates import choose
from creditgrade.training.evaluate import auc
from creditgrade.training.table_columns import binary_target, choose_columns, config, feature_frame, leaks, no_features_left
from creditgrade.training.table_read import read_dictionary, read_table

CHOSEN = "chosen"
DEFAULT_BUDGET = 420.0  # seconds for the whole run: a 150,000-row table within 10 minutes on 2 cores
POINTS_SCALE = "sme"  # the scorecard's points follow this grade scale (points do not change the AUC)


@dataclass
class TableResult:
    """Outer AUC per fold and out-of-fold log-odds per row (``decisions``) of every candidate and of the
    chosen pipeline, with the columns left out and why."""

    rows: int
    bad_rate: float
    features: list[str]
    excluded: dict[str, str]
    auc: dict[str, list[float]] = field(default_factory=dict)
    decisions: dict[str, np.ndarray] = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    only_check: str = ""
    folds: int = 0  # outer folds measured (fewer than asked when the budget ran out)
    read: dict[str, str] = field(default_factory=dict)  # text columns read as numbers, and how
    encoding: str | None = None  # the text encoding the file was read in (None: Excel, Parquet)
    sheet: str | None = None  # the sheet read, if the workbook has several
    copies: int = 0  # rows equal to an earlier row in every feature and the target (kept with it in every split)
    distinct: int | None = None  # the rarer class's distinct rows, if too few to keep copies together

    def mean(self, kind: str) -> float:
        return float(np.mean(self.auc[kind]))


def table_specs(X: pd.DataFrame, directions: dict[str, int] | None = None) -> list[FeatureSpec]:
    """Each column as a feature declaration: risk direction as given (1 up, -1 down), none otherwise."""
    word = {1: "up", -1: "down", 0: "none"}
    unknown = sorted(set(directions or {}) - set(X.columns))
    if unknown:
        raise CreditgradeError(f"monotone direction given for column(s) {', '.join(unknown)} not among the features")
    return [FeatureSpec(name=c, source="table", segments=(), en=c, zh=c, unit="",
                        direction=word[int((directions or {}).get(c, 0))], actionable=False,
                        categories=tuple(X[c].cat.categories) if isinstance(X[c].dtype, pd.CategoricalDtype)
                        else None) for c in X.columns]


def _check_classes(y: np.ndarray, folds: int) -> None:
    """A clear error unless each class has rows enough for ``folds`` outer folds, each of whose training parts
    can be cut into two inner folds with rows of both classes (``models.folds.nested_minimum``); a training
    part with fewer rows of a class than the inner folds asked gets fewer of them (``training.candidates``)."""
    if folds < 2:
        raise CreditgradeError(f"cross-validation needs at least 2 folds, not {folds} / 交叉验证至少需要 2 折")
    need, have = nested_minimum(folds), least_class(y)
    if have >= need:
        return
    works = [k for k in range(2, have + 1) if nested_minimum(k) <= have]  # 3 folds need the fewest rows: 3
    other = max((k for k in works if k < folds), default=min(works, default=0))
    advice = (f"use --folds {other} / 请改用 --folds {other}" if other else
              f"no cross-validation is possible: at least {nested_minimum(3)} are needed / 无法交叉验证：至少需要 "
              f"{nested_minimum(3)} 行")
    raise CreditgradeError(
        f"{folds}-fold nested CV needs at least {need} rows of each class (one in every outer test fold and two "
        f"in every outer training part, for two inner folds with both classes); the rarer class has {have}: "
        f"{advice} / {folds} 折嵌套交叉验证要求每个类别至少 {need} 行（每个外层测试折至少一行，每个外层训练部分至少两行，"
        f"以便两个内层折都含两类）；较少的类别仅 {have} 行")


def copy_groups(X: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray | None, int]:
    """A label per row shared by the rows equal in every feature and the target (None if no row repeats
    another), and how many rows repeat an earlier one: copies on both sides of a split flatter the model
    that remembers them, so every split keeps each set of copies on one side."""
    labels = pd.factorize(pd.util.hash_pandas_object(X.assign(**{"\0target": y}), index=False))[0]
    repeats = len(labels) - int(labels.max(initial=-1)) - 1
    return (labels if repeats else None), repeats


def cross_validate(path: Path, target: str, bad=None, exclude=(), protected=(), dictionary: Path | None = None,
                   header: bool = True, special=(), directions=None, folds: int = 5, seed: int = 0,
                   budget: float = DEFAULT_BUDGET, families=None, trials: int | None = None, keep=()) -> TableResult:
    """Nested CV of the generic mode on the table in ``path`` (see the module docstring). Reproducible for a
    seed while no search is cut short by ``budget``; ``trials`` caps each search (``models.tuning``); ``keep``
    names columns the leak check (``table_columns.leaks``) must not leave out."""
    start = time.perf_counter()
    df = read_table(path, header=header)
    y = binary_target(df, target, bad)
    meanings = read_dictionary(Path(dictionary)) if dictionary else None
    columns = choose_columns(df, target, exclude, protected, meanings)
    X = feature_frame(df, columns, special)
    _check_classes(y, folds)
    overruled = {c: columns.excluded[c] for c in keep if c in columns.excluded}
    if overruled:
        raise CreditgradeError("--keep overrides the leak check only; " + "; ".join(
            f"{c} is left out as {why}" for c, why in overruled.items()) + " / --keep 仅用于泄漏检查，不能恢复上述列")
    leaked = leaks(X, y, keep)
    if len(leaked) == X.shape[1]:
        raise no_features_left({**columns.excluded, **leaked})
    X = X.drop(columns=list(leaked))
    columns.features, columns.excluded = list(X.columns), {**columns.excluded, **leaked}
    specs, scale = table_specs(X, directions), scales()[POINTS_SCALE]
    result = TableResult(len(df), float(y.mean()), columns.features, columns.excluded,
                         only_check=config()["protected"]["only_check"], read=columns.read,
                         encoding=df.attrs.get("encoding"), sheet=df.attrs.get("sheet"))
    groups, result.copies = copy_groups(X, y)
    distinct = None if groups is None else least_class(y, groups)
    if distinct is not None and distinct < nested_minimum(folds):  # few distinct rows: repeats by nature
        result.distinct, groups = distinct, None
    outer = list(stratified_folds(folds, seed, groups).split(X, y, groups))
    fixed = 0.0  # the costliest fold's fixed seconds so far
    for k, (train, test) in enumerate(outer):
        left = budget - (time.perf_counter() - start)
        if k and fixed > left:
            break
        choice = choose(X.iloc[train], y[train], X.iloc[test], specs, scale, seed=seed,
                        seconds=max(left, 0.0) / (folds - k), special=tuple(special), families=families,
                        trials=trials, groups=None if groups is None else groups[train])
        for name, decision in [*choice.outer.items(), (CHOSEN, choice.outer[choice.chosen])]:
            result.auc.setdefault(name, []).append(auc(y[test], decision))
            result.decisions.setdefault(name, np.full(len(y), np.nan))[test] = decision
        result.chosen.append(choice.chosen)
        result.notes.append(choice.notes)
        result.folds, fixed = k + 1, max(fixed, choice.fixed_seconds)
    result.seconds = time.perf_counter() - start
    return result
