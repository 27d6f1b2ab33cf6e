"""Latent credit quality over time, default months, and the oracle's true probability of default.

quality(i, t) = static_i + dynamic_i(t) + shift_i(t), dynamic an AR(1) with persistence rho and
stationary sd s; shift the macro shock. Monthly hazard exp(eta), default probability 1 - exp(-exp(eta)),
eta(i, t) = c(i, t) - beta * dynamic_i(t), where c holds everything known in advance (alpha, static and
hidden quality, the shock, youth, having no loan). The true PD at an as-of month is
1 - E[exp(-sum_m exp(eta(i, t+m)))] over the AR(1) paths after it: with dynamic(t+m) = rho^m dynamic(t) + w_m,
the sum factorises as A @ B.T (A from the subject's state, B from shared Monte Carlo paths w).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.sample.subjects import Population
from data.sample.timeline import Timeline, params, rng


@dataclass
class Latent:
    quality: np.ndarray   # (n, T) what records see
    dynamic: np.ndarray   # (n, T)
    c: np.ndarray         # (n, T) deterministic part of the log-hazard
    default: np.ndarray   # (n,) default month index, T when none
    beta: float
    rho: float
    innovation_sd: float
    hidden: np.ndarray    # (n,) the part of the hazard no record shows (the oracle knows it)


def simulate(pop: Population, seed: int, tl: Timeline) -> Latent:
    seg = params()["segments"][pop.segment]
    gen = rng(seed, pop.segment, "latent")
    n, T = pop.n, tl.T
    rho, sd, beta = seg["rho"], seg["dynamic_sd"], seg["beta"]
    e_sd = sd * np.sqrt(1 - rho**2)
    dyn = np.empty((n, T))
    dyn[:, 0] = gen.normal(0, sd, n)
    shocks = gen.normal(0, e_sd, (n, T))
    for t in range(1, T):
        dyn[:, t] = rho * dyn[:, t - 1] + shocks[:, t]
    profile = tl.shock()
    shift = params()["shock"]["latent"] * pop.sensitivity[:, None] * profile[None, :]
    quality = pop.static[:, None] + dyn + shift
    hidden = gen.normal(0, seg["hidden_sd"], n)
    no_loan = seg["no_loan_hazard"] * ~pop.flags["borrower"]
    # alpha: the shock-free mean monthly hazard of the population equals the target rate
    target = -np.log1p(-seg["annual_default_rate"]) / 12
    level = np.mean(np.exp(-beta * (pop.static + hidden) + no_loan)) * np.exp((beta * sd) ** 2 / 2)
    alpha = np.log(target / level)
    age = np.arange(T)[None, :] - pop.birth[:, None]
    young = seg["young_hazard"] * ((age >= 0) & (age < seg["young_months"]))
    c = (alpha - beta * (pop.static + hidden)[:, None] - beta * shift + no_loan[:, None] + young
         + params()["shock"]["hazard"] * pop.sensitivity[:, None] * profile[None, :])
    c = np.where(age >= 0, c, -np.inf)  # no default before the subject exists
    prob = -np.expm1(-np.exp(c - beta * dyn))
    hit = gen.random((n, T)) < prob
    default = np.where(hit.any(axis=1), hit.argmax(axis=1), T)
    return Latent(quality, dyn, c, default, beta, rho, e_sd, hidden)


def true_pd(lat: Latent, t: int, rows: np.ndarray, paths: np.ndarray, horizon: int) -> np.ndarray:
    """P(default in months t+1..t+horizon | state at t) for subjects ``rows`` (alive, not defaulted)."""
    m = np.arange(1, horizon + 1)
    a = np.exp(lat.c[rows, t + 1:t + 1 + horizon] - lat.beta * lat.rho**m * lat.dynamic[rows, t][:, None])
    b = np.exp(-lat.beta * paths[:, :horizon])
    return -np.expm1(-(a @ b.T)).mean(axis=1) if len(rows) else np.empty(0)


def paths(lat: Latent, seed: int, segment: str, horizon: int) -> np.ndarray:
    """Shared Monte Carlo paths w_m (K, horizon) of the AR(1) started from 0."""
    gen = rng(seed, segment, "oracle")
    e = gen.normal(0, lat.innovation_sd, (params()["oracle"]["paths"], horizon))
    w = np.empty_like(e)
    w[:, 0] = e[:, 0]
    for m in range(1, horizon):
        w[:, m] = lat.rho * w[:, m - 1] + e[:, m]
    return w


def outcomes(pop: Population, lat: Latent, seed: int, tl: Timeline) -> dict[str, np.ndarray]:
    """Outcome and oracle rows: (row, as-of month, defaulted, true PD) for alive, non-defaulted subjects."""
    h = params()["period"]["horizon_months"]
    w = paths(lat, seed, pop.segment, h)
    out = {"row": [], "t": [], "defaulted": [], "true_pd": []}
    for t in tl.as_of_months():
        rows = np.flatnonzero((pop.birth <= t) & (lat.default > t))
        out["row"].append(rows)
        out["t"].append(np.full(len(rows), t))
        out["defaulted"].append((lat.default[rows] <= t + h).astype(np.int8))
        out["true_pd"].append(true_pd(lat, t, rows, w, h))
    return {k: np.concatenate(v) for k, v in out.items()}
