"""Choose a segment's model family out of time, inside the training period: never on the test dates.

The validation dates are cut in two: each family is fitted on the training dates with the earlier half as
its held-out rows (early stopping, size, calibration), and scored on the later half, which no candidate has
seen. The family with the best AUC there is chosen; the pipeline then fits it on the whole split like the
others, and only it may become the champion. Each registered version carries the choice as tags.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from creditgrade.features.errors import CreditgradeError
from creditgrade.models.registry import configure, model_name
from creditgrade.training.evaluate import auc


@dataclass(frozen=True)
class Choice:
    kind: str
    valid_auc: dict[str, float]  # each candidate's AUC on the choice dates, in the order tried
    choice_from: str
    choice_to: str

    def chose(self, family: str) -> bool:
        """Whether the family of that name is the one chosen."""
        return family == self.kind


def choice_split(split):
    """``split`` with its validation dates cut in two: the earlier half as validation, the later as test."""
    dates = sorted(split.valid["as_of"].unique())
    if len(dates) < 2:
        raise CreditgradeError(f"choosing a family needs at least 2 validation as-of dates, found {len(dates)}")
    cut = dates[len(dates) // 2]
    early, late = split.valid[split.valid["as_of"] < cut], split.valid[split.valid["as_of"] >= cut]
    return dataclasses.replace(split, valid=early, test=late)


def choose(kinds: Sequence[str], split, fit: Callable) -> Choice:
    """The family of ``kinds`` whose model, ``fit(kind, inner_split)``, ranks the later validation dates best."""
    inner = choice_split(split)
    y = inner.test["defaulted"].to_numpy()
    if len(np.unique(y)) < 2:
        raise CreditgradeError("the later validation dates need defaulted and non-defaulted subjects to "
                               "choose a family")
    scores = {kind: auc(y, fit(kind, inner).pd(inner.test)) for kind in kinds}
    best = max(scores, key=scores.get)  # the first of equals, in the order tried
    return Choice(best, scores, str(inner.test["as_of"].min().date()), str(inner.test["as_of"].max().date()))


def record(choice: Choice, segment: str, versions: dict[str, str]) -> None:
    """Tag each family's registered version with its validation AUC and whether it was chosen."""
    client = configure()
    for kind, version in versions.items():
        tags = {"choice": "chosen" if choice.chose(kind) else "candidate",
                "choice_valid_auc": f"{choice.valid_auc[kind]:.6f}",
                "choice_dates": f"{choice.choice_from}..{choice.choice_to}"}
        for key, value in tags.items():
            client.set_model_version_tag(model_name(segment), version, key, value)
