"""The shocks of population.toml: each one's monthly intensity and each subject's exposure to it.

The epidemic, the Zhengzhou flood (by district), the property downturn (by sector) and the 2022 lockdowns
overlap; a subject's stress in a month is the sum over shocks of exposure times intensity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creditgrade.data.sample.subjects import Population
from creditgrade.data.sample.timeline import Timeline, month_index, params


def intensity(tl: Timeline, start: str, end: str, recovery_months: int) -> np.ndarray:
    """Per month in [0, 1]: 1 from start to end, fading linearly over the recovery months."""
    t = np.arange(tl.T)
    s, e = month_index(start) - tl.m0, month_index(end) - tl.m0
    fade = np.clip(1 - (t - e) / (recovery_months + 1), 0, 1)
    return np.where((t >= s) & (t <= e), 1.0, np.where(t > e, fade, 0.0))


def _area(pop: Population) -> np.ndarray:
    """District code of each subject (a household's county)."""
    if "district" in pop.columns:
        return np.asarray(pop.columns["district"], dtype=str)
    return np.array([code[:6] for code in pop.columns["township_code"]])


def exposure(pop: Population, spec: dict) -> np.ndarray:
    """(n,) exposure of each subject to one shock."""
    how = spec["exposure"]
    if how == "sensitivity":
        return pop.sensitivity
    key = {"district": _area(pop), "sector": np.asarray(pop.columns.get("sector", np.full(pop.n, "")), dtype=str)}[how]
    return np.array([spec["weights"].get(k, 0.0) for k in key])


@dataclass
class Shocks:
    """(n, T) stress of each subject and the shocks' effects on quality, hazard, tax and headcount."""

    stress: np.ndarray
    latent: np.ndarray
    hazard: np.ndarray
    tax_factor: np.ndarray
    headcount_factor: np.ndarray

    @classmethod
    def of(cls, pop: Population, tl: Timeline) -> "Shocks":
        zeros = np.zeros((pop.n, tl.T))
        stress, latent, hazard = zeros.copy(), zeros.copy(), zeros.copy()
        tax, heads = np.ones_like(zeros), np.ones_like(zeros)
        for spec in params()["shocks"]:
            level = exposure(pop, spec)[:, None] * intensity(tl, spec["start"], spec["end"], spec["recovery_months"])
            stress += level
            latent += spec["latent"] * level
            hazard += spec["hazard"] * level
            tax *= 1 - (1 - spec["tax_factor"]) * np.minimum(level, 1)
            heads *= 1 - (1 - spec["headcount_factor"]) * np.minimum(level, 1)
        return cls(stress, latent, hazard, tax, heads)
