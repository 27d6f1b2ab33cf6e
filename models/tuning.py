"""LightGBM tuned by Optuna inside the training rows, kept as the bag of its cross-fitted fold models (or
refitted on all rows), calibrated on its out-of-fold margins.

The search (TPE, seeded) tries leaves, depth, minimum child size, learning rate, L2 regularisation, the
row and feature fractions and extremely randomised trees; the rounds of each trial come from early
stopping on the mean AUC of the inner folds. The first trial is the untuned :class:`LGBMPD`'s setting (so
the search never ends below it), the second LightGBM's own defaults (AutoGluon's and TabArena's starting
point). The model is an ensemble of the trials (Caruana's greedy selection with replacement over their
out-of-fold margins, at most ``ensemble`` distinct settings). Each member is either the average of its 8
inner-fold models (cross-fit bagging, AutoGluon's and TabArena's way: the very models the inner folds
measured, each on 7/8 of the rows, no refit) or, when one holdout validates (many rows: a single model
that saw two thirds of them), refitted once on every row with its rounds. Measured (bench/table_choice.py):
with 3 inner folds the bag of 2/3-row models lost to the refit on German and Taiwan; 8 folds, bagged, at
least matched it (2.5 times the CPU of a search on 3 folds). Either way the members merge into one
booster whose leaf values carry the weights: one model string, exact TreeSHAP contributions (those of an
average are the average of the contributions). It is calibrated (``logit PD = a * margin + b``) on the ensemble's
out-of-fold margins on the inner folds, which are kept as ``oof_decision_`` for a caller choosing between
models on the same rows.

``seconds`` bounds the whole fit but for the first trial, which always runs to its early stop: the search
stops when one more trial and the refits would not fit, and a later trial still training when only the
refits' time is left ends there, with the rounds it has. ``search_["fixed_seconds"]`` is what no budget
cuts (the first trial and the refits).

LightGBM refuses some characters in feature names (``: , [ ] { } "``): it sees ``f0, f1, ...`` and the
model keeps the table's own names for prediction and contributions.

Reproducible for a seed while the search runs all its ``trials``; when ``seconds`` stops it first, how
many trials ran depends on the machine (``search_`` says how many).
"""
from __future__ import annotations

import re
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from creditgrade.models.estimator import Estimator
from creditgrade.models.families import family
from creditgrade.models.folds import covered_auc, inner_splits
from creditgrade.models.lgbm import LGBMPD, ONE_THREAD_BELOW


def _space(trial) -> dict:
    return dict(
        num_leaves=trial.suggest_int("num_leaves", 4, 128, log=True),
        max_depth=trial.suggest_int("max_depth", 2, 12),
        min_child_samples=trial.suggest_int("min_child_samples", 5, 300, log=True),
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 50.0, log=True),
        feature_fraction=trial.suggest_float("feature_fraction", 0.4, 1.0),
        bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
        extra_trees=trial.suggest_categorical("extra_trees", [False, True]),
    )


def _untuned() -> dict:
    """LGBMPD's defaults in the search's terms (its middle tree size)."""
    base = LGBMPD()
    return dict(num_leaves=16, max_depth=12, min_child_samples=base.min_child_samples,
                learning_rate=base.learning_rate, reg_lambda=base.reg_lambda,
                feature_fraction=base.feature_fraction, bagging_fraction=0.8, extra_trees=False)


def _library() -> dict:
    """LightGBM's own defaults (AutoGluon's first LightGBM) in the search's terms, early stopped."""
    return dict(num_leaves=31, max_depth=12, min_child_samples=20, learning_rate=0.05, reg_lambda=1e-3,
                feature_fraction=1.0, bagging_fraction=1.0, extra_trees=False)


def ensemble_selection(y, oof: list[np.ndarray], rounds: int, pool: int) -> dict[int, float]:
    """Caruana's greedy selection with replacement: index -> weight of the mean of out-of-fold decisions
    that maximises AUC, adding one of the ``pool`` best at a time for ``rounds`` rounds (the best round
    kept; ties keep the fewer)."""
    ranked = sorted(range(len(oof)), key=lambda i: -covered_auc(y, oof[i]))[:pool]
    picks, total, best = [], 0.0, (-np.inf, [])
    for _ in range(rounds):
        scores = [covered_auc(y, (total + oof[i]) / (len(picks) + 1)) for i in ranked]
        picks.append(ranked[int(np.argmax(scores))])  # the first maximum: the better ranked on ties
        total = total + oof[picks[-1]]
        if max(scores) > best[0]:
            best = (max(scores), list(picks))
    counts = np.bincount(best[1], minlength=len(oof))
    return {int(i): float(counts[i] / len(best[1])) for i in np.flatnonzero(counts)}


def _until(deadline: float):
    """A LightGBM callback that ends training at ``deadline`` (``time.perf_counter``), keeping the rounds so far."""

    def callback(env) -> None:
        if env.iteration > env.begin_iteration and time.perf_counter() > deadline:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    callback.order = 40  # after early stopping's check of the same round
    return callback


_VALUES = re.compile(r"^((?:leaf|internal)_value=)(.*)$", re.M)


def merge(boosters: list[lgb.Booster], weights: list[float], rounds: list[int] | None = None) -> lgb.Booster:
    """One booster with every tree of ``boosters`` (trained on the same columns; each cut to its ``rounds``,
    if given), each tree's values scaled by its booster's weight: its raw margin and TreeSHAP contributions
    are the weighted sums of theirs."""
    if len(boosters) == 1 and weights[0] == 1.0 and rounds is None:
        return boosters[0]
    texts = [b.model_to_string(num_iteration=n) for b, n in zip(boosters, rounds or [None] * len(boosters))]
    head = re.sub(r"\ntree_sizes=[^\n]*", "", texts[0].partition("\nTree=")[0])
    tail = texts[0][texts[0].index("\nend of trees"):]
    trees = []
    for text, w in zip(texts, weights):
        body = text[text.index("\nTree="):text.index("\nend of trees")]
        for tree in re.split(r"\nTree=\d+\n", body)[1:]:
            trees.append(_VALUES.sub(lambda m: m[1] + " ".join(repr(float(v) * w) for v in m[2].split()), tree))
    body = "".join(f"\nTree={i}\n{tree}" for i, tree in enumerate(trees))
    return lgb.Booster(model_str=head + body + tail)


class TunedLGBMPD(LGBMPD):
    """LightGBM PD model whose settings and sizes are chosen by an Optuna search on inner folds.

    ``monotone`` maps feature -> -1/0/1; ``trials`` and ``seconds`` bound the search (whichever comes
    first; the first trial always runs); ``ensemble`` caps the distinct settings kept (1: the best
    trial alone); ``inner_folds`` as :func:`inner_splits`; ``refit`` whether the members are refitted on
    all rows (None: only when a single holdout validates, otherwise the bag of the fold models).
    """

    def __init__(self, monotone=None, trials=30, seconds=120.0, inner_folds=8, max_rounds=2000,
                 early_stopping=50, ensemble=5, monotone_method="intermediate", seed=0, num_threads=2,
                 refit=None):
        self.refit = refit
        self.monotone = monotone
        self.trials = trials
        self.seconds = seconds
        self.inner_folds = inner_folds
        self.max_rounds = max_rounds
        self.early_stopping = early_stopping
        self.ensemble = ensemble
        self.monotone_method = monotone_method
        self.seed = seed
        self.num_threads = num_threads

    def _full_params(self, setting: dict, columns: list[str], rows: int) -> dict:
        mono = self.monotone or {}
        return dict(setting, objective="binary", metric="auc", bagging_freq=1,
                    monotone_constraints=[int(mono.get(c, 0)) for c in columns],
                    monotone_constraints_method=self.monotone_method, seed=self.seed, deterministic=True,
                    force_row_wise=True, num_threads=1 if rows < ONE_THREAD_BELOW else self.num_threads,
                    verbosity=-1, max_bin=255)

    def fit(self, X: pd.DataFrame, y, X_val=None, y_val=None, groups=None):
        import optuna

        if X_val is not None:
            raise ValueError("TunedLGBMPD validates on its own inner folds: give no X_val")
        start = time.perf_counter()
        y = np.asarray(y).astype(int)
        columns = list(X.columns)
        inner = X.set_axis([f"f{i}" for i in range(len(columns))], axis=1)
        data = lgb.Dataset(inner, y, params={"feature_pre_filter": False, "max_bin": 255}, free_raw_data=False)
        splits = inner_splits(y, self.seed, self.inner_folds, groups)
        refit = len(splits) == 1 if self.refit is None else self.refit
        tried = []  # per trial: auc, setting, rounds, out-of-fold margins, seconds, fold models (the best only)

        def best() -> list[dict]:
            """The trials the ensemble may take (Caruana's pool)."""
            return sorted(tried, key=lambda t: -t["auc"])[:self.ensemble]

        def refits() -> float:
            """Seconds the refits of the best trials will take (an all-rows fit costs ~1.5 / len(splits) of
            a trial; none for a bag)."""
            return 1.5 / len(splits) * sum(t["seconds"] for t in best()) if refit else 0.0

        def objective(trial):
            began, setting = time.perf_counter(), _space(trial)
            result = lgb.cv(self._full_params(setting, columns, len(y)), data, num_boost_round=self.max_rounds,
                            folds=splits, return_cvbooster=True,
                            callbacks=[lgb.early_stopping(self.early_stopping, verbose=False),
                                       _until(start + self.seconds - refits() if tried else np.inf)])
            rounds, boosters = len(result["valid auc-mean"]), result["cvbooster"].boosters
            oof = np.full(len(y), np.nan)
            for booster, (_, valid) in zip(boosters, splits):
                oof[valid] = booster.predict(inner.iloc[valid], raw_score=True, num_iteration=rounds)
                booster.free_dataset()
            tried.append(dict(auc=covered_auc(y, oof), setting=setting, rounds=rounds, oof=oof,
                              seconds=time.perf_counter() - began, boosters=None if refit else boosters))
            pool = {id(t) for t in best()}
            for t in tried:  # only the pool's fold models can join the bag
                if id(t) not in pool:
                    t["boosters"] = None
            return tried[-1]["auc"]

        def enough() -> bool:
            """Whether one more trial and the refits would overrun ``seconds``."""
            return time.perf_counter() - start + np.mean([t["seconds"] for t in tried]) + refits() > self.seconds

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed))
        for setting in (_untuned(), _library()):
            study.enqueue_trial(setting)
        study.optimize(objective, n_trials=1)
        if self.trials > 1 and not enough():
            study.optimize(objective, n_trials=self.trials - 1, callbacks=[lambda st, _: enough() and st.stop()])
        weights = ensemble_selection(y, [t["oof"] for t in tried], rounds=2 * self.ensemble, pool=self.ensemble)
        members = [(tried[i], w) for i, w in weights.items()]
        refit_start = time.perf_counter()
        if refit:
            boosters = [lgb.train(self._full_params(t["setting"], columns, len(y)), data,
                                  num_boost_round=t["rounds"]) for t, _ in members]
            self.booster_ = merge(boosters, [w for _, w in members])
        else:
            bag = [(b, w / len(t["boosters"]), t["rounds"]) for t, w in members for b in t["boosters"]]
            self.booster_ = merge([b for b, _, _ in bag], [w for _, w, _ in bag], [n for _, _, n in bag])
        self.booster_.free_dataset()
        oof = sum(w * t["oof"] for t, w in members)
        seen = ~np.isnan(oof)
        platt = LogisticRegression(C=1e6).fit(oof[seen].reshape(-1, 1), y[seen])
        a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.calibration_ = (a, b)
        self.oof_decision_ = a * oof + b
        top = max(tried, key=lambda t: t["auc"])
        self.search_ = {"trials": len(tried), "seconds": round(time.perf_counter() - start, 1),
                        "fixed_seconds": tried[0]["seconds"] + time.perf_counter() - refit_start,
                        "inner_auc": covered_auc(y, oof), "best_trial_auc": top["auc"],
                        "members": len(members), "rounds": sum(t["rounds"] for t, _ in members),
                        "bagged_folds": 0 if refit else len(splits), **top["setting"]}
        self.size_trials_ = [dict(t["setting"], leaves=t["setting"]["num_leaves"], trees=t["rounds"],
                                  auc=t["auc"], weight=w) for t, w in members]
        self.feature_names_in_ = np.array(columns, dtype=object)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(columns)
        return self

    def plain(self) -> LGBMPD:
        """The fitted model as a plain :class:`LGBMPD` (the search is how it was fitted, not a format)."""
        s = self.search_
        model = LGBMPD(monotone=self.monotone, leaves_grid=(s["num_leaves"],), learning_rate=s["learning_rate"],
                       max_rounds=s["rounds"], min_child_samples=s["min_child_samples"], reg_lambda=s["reg_lambda"],
                       feature_fraction=s["feature_fraction"], monotone_method=self.monotone_method, seed=self.seed,
                       num_threads=self.num_threads)
        for name in ("booster_", "calibration_", "size_trials_", "feature_names_in_", "classes_", "n_features_in_"):
            setattr(model, name, getattr(self, name))
        return model

    def to_json(self) -> str:
        """An :class:`LGBMPD` document: it loads with the ``lightgbm`` family's ``from_json``."""
        return self.plain().to_json()

    @classmethod
    def from_json(cls, text: str) -> LGBMPD:
        return LGBMPD.from_json(text)


SEARCHED = {"lightgbm": TunedLGBMPD}
"""Families with a search: the class that fits them by searching (``seconds`` bounds it)."""


def candidate(name: str, specs: list, scale, seed: int = 0, seconds: float = 60.0, trials: int | None = None
              ) -> Estimator:
    """The family ``name`` configured for these features, searched within ``seconds`` (and ``trials``, if
    given) where it has a search."""
    if name in SEARCHED:
        est = SEARCHED[name].configured(specs, scale, seed).set_params(seconds=seconds)
        return est if trials is None else est.set_params(trials=trials)
    return family(name).configured(specs, scale, seed)
