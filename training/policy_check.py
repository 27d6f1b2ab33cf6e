"""The policy layer's figures (issue 11, "Done when"): at each out-of-time as-of date, how many subjects were
in default and how many of them got the default grade, and for each cap rule how many subjects it held for
and how many were graded better than its cap. Both counts of failures must be 0.

Every subject existing at the date is graded, through ``GradeModel.grade`` as serving and the warnings scan
grade, with the model's own scale and rules; which subjects a rule holds for is read from the features.
"""
from __future__ import annotations

import pandas as pd

from creditgrade.features.build import build_features
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames
from creditgrade.models.bundle import GradeModel
from creditgrade.models.registry import Loaded, load_champion


def snapshot_rows(model: GradeModel, X: pd.DataFrame, as_of) -> list[dict]:
    """One row for "in default" (any default rule), one per default rule and one per cap rule."""
    scale = model.scale
    rank = {g: i for i, g in enumerate(scale.order)}
    graded = model.grade(X)
    final = graded["grade"].map(rank).to_numpy()

    def row(rule: str, action: str, grade: str, holds, authority: str) -> dict:
        return {"as_of": pd.Timestamp(as_of).date(), "rule": rule, "action": action, "grade": grade,
                "authority": authority, "subjects": int(holds.sum()),
                "graded_at_or_below": int((final[holds] >= rank[grade]).sum()),
                "graded_better": int((final[holds] < rank[grade]).sum())}

    rows = [row("in default (any default rule)", "default", scale.default_grade, scale.in_default(X), "")]
    for rule in scale.rules:
        rows.append(row(f"{rule.feature} {rule.when} {rule.value:g}", rule.action, rule.cap, rule.binds(X),
                        rule.authority["en"]))
    return rows


def out_of_time_dates(frames: Frames, segment: str, model: GradeModel) -> list[pd.Timestamp]:
    """The outcome as-of dates within the model's out-of-time test period (``model.info``)."""
    lo, hi = pd.Timestamp(model.info["test_from"]), pd.Timestamp(model.info["test_to"])
    dates = frames.outcomes.loc[frames.outcomes["segment"] == segment, "as_of"]
    dates = sorted(d for d in pd.to_datetime(dates.unique()) if lo <= d <= hi)
    if not dates:
        raise CreditgradeError(f"no {segment} outcome dates in the model's out-of-time period {lo.date()}..{hi.date()}")
    return dates


def policy_check(source, segment: str, model: GradeModel | Loaded | None = None, as_of_dates=None) -> pd.DataFrame:
    """The figures of the module docstring for a segment's model (default: its champion) over a Store or
    Frames, at ``as_of_dates`` (default: the model's out-of-time as-of dates); one row per date and rule:
    ``as_of, rule, action, grade`` (default grade or cap), ``authority, subjects`` (the rule holds),
    ``graded_at_or_below`` and ``graded_better`` (than ``grade``: a policy failure, expected 0)."""
    loaded = model if model is not None else load_champion(segment)
    model = loaded.model if isinstance(loaded, Loaded) else loaded
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    dates = out_of_time_dates(frames, segment, model) if as_of_dates is None else as_of_dates
    rows = [r for day in dates for r in snapshot_rows(model, build_features(frames, segment, day), day)]
    return pd.DataFrame(rows)
