"""Choose a segment's model family out of time, inside the training period: never on the test dates.

Expanding out-of-time folds over every validation date (``training/choice.toml``): the validation dates
are cut into consecutive groups, and each group is scored by every family fitted on the dates before it
whose outcomes are known by then (as-of date + outcome horizon <= the group's first date; the last few
held out for early stopping, size and calibration, if the file says so). A row's outcome window must not
overlap the judged rows': they are mostly the same subjects, and a model that recognises a subject about
to default scores well on its later rows without ranking anyone better in service, where the latest
training outcome ends before the grade is asked for. A family's figure is its mean AUC
over the folds. The leader is chosen unless a family earlier in the preference order (simpler to read)
is not clearly worse: the leader must beat it in a share ``confidence`` of paired bootstrap resamples of
the validation rows. One later half of four dates (the previous rule) is too few defaults to choose on:
on the committed sample it chose the scorecard where LightGBM ranked the test dates better. The pipeline
then fits the chosen family on the whole split like the others; only it may become the champion. Each
registered version carries the choice as tags.

Beside the families, a blend of the best ``blend_members`` of them on the folds (each at its own window, equal
weights in log-odds: ``models.blend``) is judged on the same folds from their scores, with no fit of its own.
It replaces the family chosen only if it beats that family in a share ``confidence`` of the resamples
(:func:`pick`); a blend that merely leads neither wins nor moves the choice among the families.
"""
from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from creditgrade.features.errors import CreditgradeError
from creditgrade.models.blend import FAMILY as BLEND, mixed_pd
from creditgrade.models.registry import configure, model_name

CONFIG_FILE = Path(__file__).with_name("choice.toml")


@cache
def config(path: Path = CONFIG_FILE) -> dict:
    with Path(path).open("rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True)
class Choice:
    kind: str
    valid_auc: dict[str, float]  # each candidate's mean AUC over the choice folds, in the order tried
    choice_from: str
    choice_to: str
    beats: dict[str, float] = dataclasses.field(default_factory=dict)  # share of resamples the leader wins, per family preferred to it
    windows: dict[str, int] = dataclasses.field(default_factory=dict)  # each family's training window (as-of dates, 0 all)
    blend: tuple[str, ...] = ()  # the families the blend candidate mixes (valid_auc[BLEND]), best first; () none
    blend_beats: float | None = None  # share of resamples the blend beats the family chosen without it

    def chose(self, family: str) -> bool:
        """Whether the family of that name is the one chosen."""
        return family == self.kind


def window_rows(data: pd.DataFrame, before, held_out_dates: int, window: int,
                horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, validation) rows of ``data`` whose ``horizon``-month outcomes are known at ``before`` (as-of
    date + horizon <= before: a row's outcome window never overlaps those of the dates judged, whose
    subjects are mostly the same): the ``held_out_dates`` latest of those dates as validation (none if 0: a
    family then holds out subjects of its own), the ``window`` dates before them as training (every earlier
    date if 0, or if fewer)."""
    dates = sorted(d for d in data["as_of"].unique() if d + pd.DateOffset(months=horizon) <= before)
    if len(dates) < held_out_dates + 1:
        raise CreditgradeError(f"choosing a family needs training dates whose {horizon}-month outcomes are known "
                               f"before the validation dates")
    fit_dates = dates[:len(dates) - held_out_dates]
    as_of = data["as_of"]
    return (data[as_of.isin(fit_dates[-window:] if window else fit_dates)],
            data[as_of.isin(dates[len(fit_dates):])])


def choice_folds(split, folds: int, held_out_dates: int, window: int = 0) -> list:
    """Inner splits, one per consecutive group of ``split``'s validation dates: that group as the test, and
    before it, among the dates whose outcomes are known then (``split.horizon``, :func:`window_rows`), the
    ``held_out_dates`` latest as validation, the ``window`` dates before those (every earlier date of training
    and validation if 0) as training."""
    data = pd.concat([split.train, split.valid])
    valid_dates = sorted(split.valid["as_of"].unique())
    if len(valid_dates) < folds:
        raise CreditgradeError(f"choosing a family needs at least {folds} validation as-of dates, "
                               f"found {len(valid_dates)}")
    out = []
    for group in np.array_split(np.asarray(valid_dates), folds):
        train, valid = window_rows(data, group[0], held_out_dates, window, split.horizon)
        out.append(dataclasses.replace(split, train=train, valid=valid, test=data[data["as_of"].isin(group)]))
    return out


def fitting_split(split, window: int, settings: dict | None = None):
    """``split`` as a family is finally fitted, as each choice fold was: the same test, its ``window`` of the
    latest dates whose outcomes are known at the test's first date as training (:func:`window_rows`, over
    training and validation dates)."""
    cfg = settings or config()
    train, valid = window_rows(pd.concat([split.train, split.valid]), split.test["as_of"].min(),
                               cfg["held_out_dates"], window, split.horizon)
    return dataclasses.replace(split, train=train, valid=valid)


def _mean_auc(ys: list[np.ndarray], scores: list[np.ndarray], weights: list[np.ndarray] | None = None) -> float:
    weights = weights or [None] * len(ys)
    return float(np.mean([roc_auc_score(y, s, sample_weight=w) for y, s, w in zip(ys, scores, weights)]))


def beat_share(ys: list[np.ndarray], first: list[np.ndarray], second: list[np.ndarray], resamples: int,
               seed: int = 0) -> float:
    """Share of paired (Poisson) bootstrap resamples, each fold resampled on its own, in which ``first``'s
    mean AUC over the folds exceeds ``second``'s on the same resample."""
    gen = np.random.default_rng(seed)
    wins = 0
    for _ in range(resamples):
        w = [gen.poisson(1.0, len(y)).astype(float) for y in ys]
        wins += _mean_auc(ys, first, w) > _mean_auc(ys, second, w)
    return wins / resamples


def decide(scores: dict[str, float], beats: Callable[[str, str], float], preference: Sequence[str],
           confidence: float) -> tuple[str, dict[str, float]]:
    """The leader by ``scores``, unless it wins against a family earlier in ``preference`` in less than
    ``confidence`` of resamples (``beats(leader, other)``): then the most preferred such family."""
    leader = max(scores, key=scores.get)  # the first of equals, in the order tried
    rank = {kind: i for i, kind in enumerate(preference)}
    simpler = sorted((k for k in scores if rank.get(k, len(rank)) < rank.get(leader, len(rank))), key=rank.get)
    shares = {other: beats(leader, other) for other in simpler}
    kept = [other for other in simpler if shares[other] < confidence]
    return (kept[0] if kept else leader), shares


def choose(kinds: Sequence[str], split, fit: Callable, settings: dict | None = None) -> Choice:
    """The family of ``kinds``, and each family's training window, chosen on the validation dates;
    ``fit(kind, inner_split)`` returns a model with ``pd(rows)``, fitted on ``inner_split.train`` and ``.valid``
    only. A family's window is the longest of ``windows`` that the leader among them does not clearly beat
    (the same rule as families, longer windows preferred: more dates, steadier fits)."""
    cfg = settings or config()
    folds: dict[int, list] = {}
    for window in cfg["windows"]:
        inner = choice_folds(split, cfg["folds"], cfg["held_out_dates"], window)
        starts = [f.train["as_of"].min() for f in inner]
        if all(starts != [f.train["as_of"].min() for f in other] for other in folds.values()):
            folds[window] = inner  # a window reaching past the first date in every fold is an earlier one
    first = next(iter(folds.values()))
    ys = [f.test["defaulted"].to_numpy() for f in first]
    if any(len(np.unique(y)) < 2 for y in ys):
        raise CreditgradeError("every group of validation dates needs defaulted and non-defaulted subjects "
                               "to choose a family")
    pds = {(kind, w): [np.asarray(fit(kind, f).pd(f.test)) for f in inner] for kind in kinds for w, inner in folds.items()}

    def beats(first: tuple, second: tuple) -> float:
        return beat_share(ys, pds[first], pds[second], cfg["resamples"])

    windows = {kind: decide({w: _mean_auc(ys, pds[kind, w]) for w in folds},
                            lambda a, b, kind=kind: beats((kind, a), (kind, b)), list(folds), cfg["confidence"])[0]
               for kind in kinds}
    picked = pick(ys, {kind: pds[kind, windows[kind]] for kind in kinds}, cfg)
    return Choice(picked.kind, picked.scores, str(first[0].test["as_of"].min().date()),
                  str(first[-1].test["as_of"].max().date()), picked.shares, windows, picked.members, picked.blend_beats)


@dataclass(frozen=True)
class Picked:
    kind: str
    scores: dict[str, float]  # mean AUC over the folds: each family's, then the blend's if there is one
    shares: dict[str, float]  # decide's: the share of resamples the leading family wins, per family preferred to it
    members: tuple[str, ...]  # the blend candidate's families, () none
    blend_beats: float | None  # the share of resamples the blend beats the family chosen without it


def pick(ys: list[np.ndarray], pds: dict[str, list[np.ndarray]], cfg: dict) -> Picked:
    """The family :func:`decide` picks from each family's PDs per fold (``pds``, labels ``ys``); then the
    equal-weight blend (``models.blend``) of the ``blend_members`` best, chosen instead only if it beats that
    family in ``confidence`` of the resamples. A blend that leads without clearly beating the family stays out,
    and never moves the choice among the families."""
    scores = {kind: _mean_auc(ys, p) for kind, p in pds.items()}

    def beats(first: str, second: str) -> float:
        return beat_share(ys, pds[first], pds[second], cfg["resamples"])

    kind, shares = decide(scores, beats, cfg["preference"], cfg["confidence"])
    members = tuple(sorted(scores, key=lambda k: -scores[k])[:cfg["blend_members"]])  # ties in the order tried
    if len(members) < 2:
        return Picked(kind, scores, shares, (), None)
    weights = [1 / len(members)] * len(members)
    pds = {**pds, BLEND: [mixed_pd([pds[m][i] for m in members], weights) for i in range(len(ys))]}
    scores[BLEND], share = _mean_auc(ys, pds[BLEND]), beats(BLEND, kind)
    return Picked(BLEND if share >= cfg["confidence"] else kind, scores, shares, members, share)


def record(choice: Choice, segment: str, versions: dict[str, str]) -> None:
    """Tag each family's registered version with its validation AUC and whether it was chosen."""
    client = configure()
    for kind, version in versions.items():
        tags = {"choice": "chosen" if choice.chose(kind) else "candidate",
                "choice_valid_auc": f"{choice.valid_auc[kind]:.6f}",
                "choice_dates": f"{choice.choice_from}..{choice.choice_to}",
                "choice_window": str(choice.windows.get(kind, 0))}
        if kind == BLEND:
            tags.update(blend_members=",".join(choice.blend), blend_beats=f"{choice.blend_beats:.3f}")
        for key, value in tags.items():
            client.set_model_version_tag(model_name(segment), version, key, value)
