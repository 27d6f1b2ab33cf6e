"""What follows a subject's default: when its default records end, and whether it stays or leaves the city.

SME and household borrowers: the loan is 90+ days past due until written off (``writeoff_months`` after the
default); the write-off (and the default's overdue record) ends when the debt is settled (``settle_months``
later) and the borrower stays, or, for a firm that leaves (``exit_after_default``), when it is extinguished at
the firm's deregistration. Some defaulted SME borrowers, and every SME defaulting without a loan, go bankrupt:
the proceedings close after ``bankruptcy_months``, the debt with them, and the firm is deregistered. A firm
that leaves stops operating ``wind_down_months`` after its default (its periodic records stop). Households
never leave. A practitioner's serious sanction suspends the licence for ``sanction_months``; then some leave
the profession. A subject that has left has no record starting from its exit day and no outcome row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creditgrade.data.sample.chunks import NULL
from creditgrade.data.sample.latent import Latent
from creditgrade.data.sample.subjects import Population
from creditgrade.data.sample.timeline import Timeline, months_to_days, params, rng

NEVER = 10**6  # a month index no simulation reaches


@dataclass
class Aftermath:
    written_off: np.ndarray   # (n,) month a defaulted loan is written off, NEVER when none
    settled: np.ndarray       # (n,) day the write-off and the default's overdue record end, NULL when none
    bankrupt: np.ndarray      # (n,) month bankruptcy proceedings open, NEVER when none
    closed: np.ndarray        # (n,) day they close, NULL when none
    sanction_end: np.ndarray  # (n,) day a practitioner's serious sanction ends, NULL when none
    stops: np.ndarray         # (n,) month the subject stops operating (no periodic record), NEVER when never
    exit: np.ndarray          # (n,) month it leaves the population, NEVER when it stays
    exit_day: np.ndarray      # (n,) day it leaves, NULL when it stays

    @classmethod
    def of(cls, pop: Population, lat: Latent, tl: Timeline, seed: int) -> "Aftermath":
        seg = params()["segments"][pop.segment]
        gen = rng(seed, pop.segment, "aftermath")
        n, T = pop.n, tl.T

        def months(key: str) -> np.ndarray:
            lo, hi = seg[key]
            return gen.integers(lo, hi + 1, n)

        def day(month: np.ndarray, when: np.ndarray) -> np.ndarray:
            """A random day of ``month`` where ``when``, else NULL."""
            first = months_to_days(tl.m0 + np.where(when, month, 0))
            return np.where(when, first + gen.integers(0, 28, n), NULL)

        defaulted = lat.event < T
        leaves = defaulted & (gen.random(n) < seg["exit_after_default"])
        if pop.segment == "practitioner":
            end = lat.default + months("sanction_months")
            sanction_end = day(end, defaulted)
            exit_day = np.where(leaves, sanction_end, NULL)
            stops = exit = np.where(leaves, end, NEVER)
            none = np.full(n, NEVER)
            return cls(none, np.full(n, NULL), none, np.full(n, NULL), sanction_end, stops, exit, exit_day)
        with_loan = defaulted & pop.flags["borrower"]
        bankrupt_later = with_loan & (gen.random(n) < seg["bankrupt_after_default"])
        opens = np.where(with_loan, lat.default + months("bankrupt_after_months"), lat.default)
        in_bankruptcy = bankrupt_later | (defaulted & ~with_loan)
        bankrupt = np.where(in_bankruptcy, opens, NEVER)
        close = bankrupt + months("bankruptcy_months")
        closed = day(close, in_bankruptcy)
        # a bankrupt borrower's loan is written off before the proceedings close
        written_off = np.where(with_loan, np.minimum(lat.default + months("writeoff_months"), close - 1), NEVER)
        settle = written_off + months("settle_months")
        settled = np.where(in_bankruptcy, closed, day(settle, with_loan))
        settled = np.where(with_loan, settled, NULL)
        leaves = in_bankruptcy | (leaves & with_loan)
        exit_day = np.where(in_bankruptcy, closed, np.where(leaves, settled, NULL))
        exit = np.where(leaves, np.where(in_bankruptcy, close, settle), NEVER)
        stops = np.where(leaves, np.minimum(lat.default + seg["wind_down_months"], exit), NEVER)
        return cls(written_off, settled, bankrupt, closed, np.full(n, NULL), stops, exit, exit_day)
