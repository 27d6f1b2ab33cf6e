"""The model families by name: what ``creditgrade train --kind`` takes and what a registered version names.

Each entry is ``"module:Class"`` of a :class:`~creditgrade.models.estimator.Estimator`, imported when first
asked for (a family's library is loaded only when that family is used).
"""
from __future__ import annotations

import json
from importlib import import_module

from creditgrade.features.errors import CreditgradeError
from creditgrade.models.estimator import Estimator

FAMILIES = {
    "scorecard": "creditgrade.models.scorecard:Scorecard",
    "lightgbm": "creditgrade.models.lgbm:LGBMPD",
    "ebm": "creditgrade.models.ebm:EBMPD",
    "logistic": "creditgrade.models.logistic:LogisticPD",
}


DATA_PARALLEL = "lightgbm"
"""The family with a data-parallel learner (``lightgbm.dask``): ``creditgrade train --scheduler`` fits it on the
cluster, and every other family on one machine on a sample of subjects."""


def family(name: str) -> type[Estimator]:
    """The estimator class of the family ``name``."""
    if name not in FAMILIES:
        raise CreditgradeError(f"unknown model kind {name!r}: expected one of {', '.join(FAMILIES)}")
    module, cls = FAMILIES[name].split(":")
    return getattr(import_module(module), cls)


def from_json(kind: str, text: str) -> Estimator:
    """A fitted estimator from its JSON: a blend of members (``models.blend``), a family's estimator with its
    levels against peers around it (``models.peers``), or the family ``kind``'s own document."""
    from creditgrade.models.blend import FORMAT as BLEND, Blend
    from creditgrade.models.peers import FORMAT as PEERS, PeerLevels

    wrappers = {BLEND: Blend, PEERS: PeerLevels}
    document = json.loads(text).get("format")
    return wrappers[document].from_json(text) if document in wrappers else family(kind).from_json(text)
