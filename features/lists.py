"""National credit list features (the joint rewards and punishments lists of ``features/sources.toml``).

For each negative list ``lists.<name>``: ``list_<name>`` (on the list as of the date: an entry that still
counts and is not yet removed), ``list_<name>_months_since_entry`` and ``list_<name>_months_since_removal``
(60 if none), and ``list_<name>_record``, the id of the entry that holds the subject on the list (the
latest; NaN if not listed). The record id is a policy input, not a model input (``model = false`` in
``features/catalog.toml``): ``models/grades.toml`` caps the grade of a listed subject and names that record.
For each red list: ``list_<name>`` (on it as of the date).

Point-in-time, the 5-year rule (from the removal, or the entry while listed) and credit repair are those
of ``features.snapshot``.
"""
from __future__ import annotations

from functools import cache

import numpy as np

from creditgrade.features.schemas import kinds
from creditgrade.features.snapshot import Snapshot


@cache
def list_kinds(red: bool) -> tuple[str, ...]:
    return tuple(k for k, v in kinds().items() if v.get("list") and bool(v.get("red")) == red)


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = {}
    on_now = s.ongoing()
    for kind in list_kinds(red=False):
        name = f"list_{kind.split('.', 1)[1]}"
        entries = s.kinds(kind)
        out[name] = (s.count(entries & on_now) > 0).astype(float)
        out[f"{name}_months_since_entry"] = s.months_since(entries)
        out[f"{name}_months_since_removal"] = s.months_since_end(entries)
        out[f"{name}_record"] = s.at(s.pick(entries & on_now), s.record_id)
    for kind in list_kinds(red=True):
        out[f"list_{kind.split('.', 1)[1]}"] = (s.count(s.kinds(kind) & on_now) > 0).astype(float)
    return out
