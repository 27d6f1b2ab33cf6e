"""The yearly tax credit level of each taxed SME, derived from its own tax records by the tax authority's rules.

100 points (90 without a recent tax audit) less deductions for late returns, late payments, arrears, missed returns and penalties; A, B, C,
D by the cuts of population.toml; M in a firm's first evaluation year; D directly after tax evasion (general
or serious), a major-tax-violator listing or failing to file (a non-normal taxpayer), held for
``direct_d_years`` and followed by years without an A; no A with too many quarters of nothing paid.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from creditgrade.data.sample.chunks import NULL, Chunk, gather, join, take
from creditgrade.data.sample.records import Context
from creditgrade.data.sample.timeline import params

LEVELS = np.array(["A", "B", "C", "D", "M"])


def year_ends(ctx: Context) -> np.ndarray:
    t = np.arange(11, ctx.tl.T)
    return t[(ctx.tl.m0 + t) % 12 == 11]


def _per_year(ctx: Context, ye: np.ndarray, row: np.ndarray, day: np.ndarray, weight=1.0) -> np.ndarray:
    """(n, Y) sum of ``weight`` over records by subject and the evaluation year of ``day``."""
    out = np.zeros((ctx.pop.n, len(ye)))
    y = np.searchsorted(ye, ctx.tl.month_of(day))
    ok = (y < len(ye)) & (ctx.tl.month_of(day) >= ye[0] - 11)
    np.add.at(out, (row[ok], y[ok]), np.broadcast_to(np.asarray(weight, float), row.shape)[ok])
    return out


def credit_levels(ctx: Context, chunks: list[Chunk], listed: Chunk) -> Chunk:
    """tax.credit_level per year for taxed SMEs that filed that year or the year before."""
    p, rules, pop, tl = params()["periodic"]["tax"], params()["tax_level"], ctx.pop, ctx.tl
    gen = ctx.gen("tax-level")
    ye = year_ends(ctx)
    ded = rules["deductions"]
    filing, payment = gather(chunks, "tax.filing"), gather(chunks, "tax.payment")
    filed = _per_year(ctx, ye, filing.row, filing.end)
    late_filing = _per_year(ctx, ye, filing.row, filing.end, filing.value > 0)
    late_payment = _per_year(ctx, ye, payment.row, payment.end, payment.reported - payment.end > p["pay_lag"][1])
    zero = _per_year(ctx, ye, payment.row, payment.end, payment.amount == 0)
    quarters = np.stack([np.clip((e - np.maximum(pop.birth, e - 11)) // 3 + 1, 0, 4) for e in ye], axis=1)
    registered = ctx.active[:, ye]  # founded and not deregistered at the year's end
    previous = np.concatenate([np.zeros((pop.n, 1)), filed[:, :-1]], axis=1)
    rated = pop.flags["taxed"][:, None] & registered & ((filed > 0) | (previous > 0))
    missed = np.where(rated, np.maximum(quarters - filed, 0), 0)
    arrears, penalty, evasion = (gather(chunks, k) for k in ("tax.arrears", "tax.penalty", "tax.evasion"))
    pen = _per_year(ctx, ye, penalty.row, penalty.start, np.array(ded["penalty"])[penalty.severity - 1])
    minor_evasion = evasion.severity == 1
    audited = gen.random((pop.n, len(ye))) < rules["audited_share"]
    score = (np.where(audited, rules["start"]["audited"], rules["start"]["not_audited"]) - ded["late_filing"] * late_filing - ded["late_payment"] * late_payment
             - ded["arrears"] * _per_year(ctx, ye, arrears.row, arrears.start) - ded["missed_filing"] * missed - pen
             - ded["penalty"][1] * _per_year(ctx, ye, evasion.row[minor_evasion], evasion.start[minor_evasion]))
    direct = ((_per_year(ctx, ye, evasion.row[~minor_evasion], evasion.start[~minor_evasion]) > 0)
              | (_per_year(ctx, ye, listed.row, listed.start) > 0) | (missed >= rules["direct_d_missed_filings"]))
    cuts = rules["cuts"]
    level = np.where(score >= cuts["A"], 0, np.where(score >= cuts["B"], 1, np.where(score >= cuts["C"], 2, 3)))
    first_year = pop.birth[:, None] > ye[None, :] - 12
    level = np.where(first_year & (score >= cuts["B"]), 4, level)
    level = np.where((level == 0) & (zero >= rules["zero_quarters_no_a"]), 1, level)
    held, barred = np.zeros_like(direct), np.zeros_like(direct)
    for k in range(1, rules["direct_d_years"]):
        held[:, k:] |= direct[:, :-k]
    for k in range(rules["direct_d_years"], rules["direct_d_years"] + rules["no_a_after_d_years"]):
        barred[:, k:] |= direct[:, :-k]
    level = np.where(direct | held, 3, np.where(barred & (level == 0), 1, level))
    row, j = np.nonzero(rated)
    t = ye[j]
    start, end = tl.first[t - 11], tl.last[t]
    reported = end + gen.integers(p["level_lag"][0], p["level_lag"][1] + 1, len(row))
    exit_day = ctx.after.exit_day[row]
    published = (exit_day == NULL) | (reported < exit_day)  # none for a firm deregistered before publication
    row, t, start, end, reported = (a[published] for a in (row, t, start, end, reported))
    level = level[row, j[published]]
    return Chunk("tax.credit_level", row, start, reported,
                 join("TAXCL", ctx.token.take(pa.array(row)), take(tl.labels("year"), t)), end=end,
                 category=take(LEVELS, level))
