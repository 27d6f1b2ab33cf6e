"""Latent credit quality over time, default months, and the oracle's true probability of default.

quality(i, t) = static_i + dynamic_i(t) + shift_i(t), dynamic an AR(1) with persistence rho and
stationary sd s; shift the shocks (shocks.py). Monthly hazard exp(eta), event probability 1 - exp(-exp(eta)),
eta(i, t) = c(i, t) - beta * dynamic_i(t), where c holds everything known in advance (alpha, static and
hidden quality, the shocks, youth, having no loan, a repayment deferral). A borrower's event is the first
missed payment that is never cured: 30 days past due that month, 60 the next, 90+ (the default) roll_months
after it. The true PD at an as-of month is 1 for a subject whose roll to default shows in records by then,
otherwise 1 - E[exp(-sum_m exp(eta(i, t+m)))] over the event months that default within the horizon (from
the as-of month itself, whose missed payment is reported only after the date): with
dynamic(t+m) = rho^m dynamic(t) + w_m, the sum factorises as A @ B.T (A from the subject's state, B from
shared Monte Carlo paths w).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creditgrade.data.sample.shocks import Shocks
from creditgrade.data.sample.subjects import Population
from creditgrade.data.sample.timeline import Timeline, month_index, params, rng


@dataclass
class Latent:
    quality: np.ndarray   # (n, T) what records see
    dynamic: np.ndarray   # (n, T)
    c: np.ndarray         # (n, T) deterministic part of the log-hazard
    event: np.ndarray     # (n,) month of the default event (a borrower's fatal missed payment), T when none
    default: np.ndarray   # (n,) month the subject is in default (event + roll months), >= T when none
    beta: float
    rho: float
    innovation_sd: float
    hidden: np.ndarray    # (n,) the part of the hazard no record shows (the oracle knows it)
    first_loan: np.ndarray  # (n,) month a borrower's first loan starts
    deferred: np.ndarray  # (n,) borrowers whose repayments were deferred in 2020
    shocks: Shocks
    other: np.ndarray     # (n, T) an independent quality of the same law (records with a loading < 1)


def _ar1(gen, n: int, T: int, rho: float, sd: float) -> np.ndarray:
    dyn = np.empty((n, T))
    dyn[:, 0] = gen.normal(0, sd, n)
    shocks = gen.normal(0, sd * np.sqrt(1 - rho**2), (n, T))
    for t in range(1, T):
        dyn[:, t] = rho * dyn[:, t - 1] + shocks[:, t]
    return dyn


def _deferral(pop: Population, tl: Timeline, quality: np.ndarray, first_loan: np.ndarray, seed: int):
    """Who deferred, and the (n, T) log-hazard change: none in default while deferred, a catch-up after."""
    p = params()["deferral"]
    s, e = month_index(p["start"]) - tl.m0, month_index(p["end"]) - tl.m0
    gen = rng(seed, pop.segment, "deferral")
    share = p["share"][pop.segment]
    eligible = pop.flags["borrower"] & (first_loan <= s) & (share > 0) & (s >= 0)
    odds = np.log(share / (1 - share)) if share > 0 else -np.inf
    bad = -quality[:, max(s, 0)]
    deferred = eligible & (gen.random(pop.n) < 1 / (1 + np.exp(-(odds + p["slope"] * bad))))
    t = np.arange(tl.T)[None, :]
    during = deferred[:, None] & (t >= s) & (t <= e)
    after = deferred[:, None] & (t > e) & (t <= e + p["catch_up_months"])
    return deferred, np.where(during, -np.inf, p["catch_up_hazard"] * after)


def simulate(pop: Population, seed: int, tl: Timeline) -> Latent:
    seg = params()["segments"][pop.segment]
    gen = rng(seed, pop.segment, "latent")
    n, T = pop.n, tl.T
    rho, sd, beta = seg["rho"], seg["dynamic_sd"], seg["beta"]
    dyn = _ar1(gen, n, T, rho, sd)
    sh = Shocks.of(pop, tl)
    quality = pop.static[:, None] + dyn + sh.latent
    hidden = gen.normal(0, seg["hidden_sd"], n)
    other_gen = rng(seed, pop.segment, "other-quality")
    other = (other_gen.normal(pop.static.mean(), pop.static.std() + 1e-9, n)[:, None]
             + _ar1(other_gen, n, T, rho, sd) + sh.latent)
    borrower = pop.flags["borrower"]
    term = pop.scale["term"].astype(np.int64)
    lo = np.maximum(pop.birth, 1 - term)
    loan_gen = rng(seed, pop.segment, "first-loan")
    first = lo + (loan_gen.random(n) * np.maximum(int(0.7 * T) - lo, 1)).astype(np.int64)
    deferred, deferral = _deferral(pop, tl, quality, first, seed)
    no_loan = seg["no_loan_hazard"] * ~borrower
    # alpha: the shock-free mean monthly hazard of the population equals the target rate
    target = -np.log1p(-seg["annual_default_rate"]) / 12
    level = np.mean(np.exp(-beta * (pop.static + hidden) + no_loan)) * np.exp((beta * sd) ** 2 / 2)
    alpha = np.log(target / level)
    age = np.arange(T)[None, :] - pop.birth[:, None]
    young = seg["young_hazard"] * ((age >= 0) & (age < seg["young_months"]))
    c = (alpha - beta * (pop.static + hidden)[:, None] - beta * sh.latent + no_loan[:, None] + young
         + sh.hazard + deferral)
    c = np.where(age >= 0, c, -np.inf)  # no default before the subject exists
    prob = -np.expm1(-np.exp(c - beta * dyn))
    hit = gen.random((n, T)) < prob
    event = np.where(hit.any(axis=1), hit.argmax(axis=1), T)
    lag = seg["roll_months"] * borrower
    first = np.where(borrower & (event < first), event, first)  # a defaulting borrower holds a loan
    return Latent(quality, dyn, c, event, event + lag, beta, rho, sd * np.sqrt(1 - rho**2), hidden, first,
                  deferred, sh, other)


def roll_months(lat: Latent) -> np.ndarray:
    """(n,) months from the default event to the default."""
    return lat.default - lat.event


def true_pd(lat: Latent, t: int, rows: np.ndarray, paths: np.ndarray, horizon: int) -> np.ndarray:
    """P(default in months t+1..t+horizon | state at t) for subjects ``rows`` (alive, not defaulted). A
    payment missed in month t is reported after the as-of date: the oracle knows the subject's quality at t
    but not whether that month's payment was missed, so a borrower's event month t is still uncertain."""
    out = np.ones(len(rows))
    lag = roll_months(lat)[rows]
    first = (lag == 0).astype(np.int64)  # the earliest event month ahead (t + first) still uncertain
    waiting = lat.event[rows] >= t + first
    for k in np.unique(lag[waiting]):
        sel = np.flatnonzero(waiting & (lag == k))
        f = int(k == 0)
        h = horizon - int(k)
        r = rows[sel]
        m = np.arange(f, h + 1)
        a = np.exp(lat.c[r, t + f:t + 1 + h] - lat.beta * lat.rho**m * lat.dynamic[r, t][:, None])
        w = np.concatenate([np.zeros((len(paths), 1)), paths[:, :h]], axis=1)[:, f:]
        out[sel] = -np.expm1(-(a @ np.exp(-lat.beta * w).T)).mean(axis=1)
    return out


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
