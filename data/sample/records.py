"""Records of one segment: event kinds (Poisson counts per subject-month) and periodic tax and insurance.

Every builder works on whole (subjects x months) arrays; the only loops are over kinds and months.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from creditgrade.data.sample.aftermath import Aftermath
from creditgrade.data.sample.chunks import NULL, SEGMENT_CODE, Chunk, join, padded, take
from creditgrade.data.sample.latent import Latent
from creditgrade.data.sample.subjects import Population
from creditgrade.data.sample.timeline import Timeline, add_months_days, params, rng
from creditgrade.features.schemas import contract, kinds


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def severity(gen, bad: np.ndarray, shares: list[float], slope: float) -> np.ndarray:
    """1 minor, 2 general, 3 serious: ordered-logit draw whose shares at quality 0 are ``shares``."""
    cum = np.cumsum(shares)
    cuts = _logit(np.clip(cum[:2], 0, 1))
    z = slope * bad + _logit(gen.random(len(bad)))
    return (1 + (z >= cuts[0]) + (z >= cuts[1])).astype(np.int8)


class Context:
    """What every builder of a segment needs: subjects, latent state, calendar and random streams."""

    def __init__(self, pop: Population, lat: Latent, tl: Timeline, seed: int):
        self.pop, self.lat, self.tl, self.seed = pop, lat, tl, seed
        self.code = SEGMENT_CODE[pop.segment]
        t = np.arange(tl.T)[None, :]
        self.after = Aftermath.of(pop, lat, tl, seed)
        self.active = (t >= pop.birth[:, None]) & (t < self.after.exit[:, None])
        self.running = self.active & (t < self.after.stops[:, None])
        self.stress = lat.shocks.stress
        self.loadings = params()["segments"][pop.segment].get("loadings", {})
        self.token = pa.array(pop.token)

    def quality(self, source: str) -> np.ndarray:
        """(n, T) the quality a source's records follow: the latent, or partly an independent one."""
        w = self.loadings.get(source, 1.0)
        return self.lat.quality if w == 1.0 else w * self.lat.quality + np.sqrt(1 - w**2) * self.lat.other

    def gen(self, name: str) -> np.random.Generator:
        return rng(self.seed, self.pop.segment, "records", name)

    def serials(self, kind_prefix: str, start: np.ndarray, tag: str = "") -> pa.Array:
        """Case numbers 'PREFIX-S2023-0000001', unique per kind and segment."""
        year = start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        head = join(pa.scalar(self.code + tag), padded(year, 4), sep="")
        return join(kind_prefix, head, padded(np.arange(1, len(start) + 1), 7))


def events(ctx: Context, kind: str, spec: dict, loan_active: np.ndarray, accounts) -> Chunk:
    """Poisson counts per subject-month, at a rate rising with bad quality and under stress (the shocks)."""
    pop, tl, gen = ctx.pop, ctx.tl, ctx.gen(kind)
    spec = {**params()["defaults"], **spec}
    who = spec["who"]
    mask = loan_active if who == "loan" else ctx.active if who == "all" else ctx.active & pop.flags[who][:, None]
    bad = -ctx.quality(kinds()[kind]["source"])
    rate = spec["rate"] * np.exp(spec["slope"] * bad + spec["shock"] * ctx.stress)
    if "rate_by" in spec:
        rate = rate * pop.scale[spec["rate_by"]][:, None]
    counts = gen.poisson(np.where(mask, rate, 0.0)).ravel()
    cells = np.flatnonzero(counts)
    cells = np.repeat(cells, counts[cells])
    row, t = np.divmod(cells, tl.T)
    start = tl.random_day(t, gen)
    lag = spec["lag"]
    chunk = Chunk(kind, row, start, start + gen.integers(lag[0], lag[1] + 1, len(row)), ctx.serials(spec["prefix"], start))
    b = bad[row, t]
    contract_kind = kinds()[kind]
    if contract_kind.get("negative"):
        chunk.severity = severity(gen, b, spec["severity"], spec["severity_slope"])
    if "amount" in spec:
        amount = np.exp(gen.normal(*spec["amount"], len(row)))
        chunk.amount = np.round(amount * (pop.scale[spec["scale"]][row] if "scale" in spec else 1.0), 2)
    if "values" in spec:
        bounds = np.array(spec["values"])[chunk.severity - 1]
        chunk.value = gen.integers(bounds[:, 0], bounds[:, 1] + 1).astype(float)
    if "fail" in spec:
        fail = gen.random(len(row)) < _sigmoid(_logit(spec["fail"]) + spec["fail_slope"] * b)
        chunk.category = take(np.array(["pass", "fail"]), fail.astype(np.int8))
    if "duration" in spec:
        days = np.exp(gen.normal(*spec["duration"], len(row))).astype(np.int64)
        chunk.end = np.where(gen.random(len(row)) < spec["open"], NULL, start + days)
    if contract_kind.get("repairable") and spec["repair"] > 0:
        chunk.repaired = repairs(gen, start, chunk.severity, spec)
    if who == "loan":
        chunk.account = accounts.take(pa.array(cells))
    return chunk


def repairs(gen, start: np.ndarray, sev: np.ndarray, spec: dict) -> np.ndarray:
    """Repair dates after the minimum publication period (by severity), for a share of penalties."""
    minimum = np.array([0] + [contract()["retention"]["repair_min_months"][s] for s in ("minor", "general", "serious")])
    lo, hi = spec["repair_days"]
    day = add_months_days(start, minimum[sev]) + gen.integers(lo, hi + 1, len(start))
    return np.where(gen.random(len(start)) < spec["repair"], day, NULL)


def _quarter_ends(tl: Timeline) -> np.ndarray:
    t = np.arange(2, tl.T)
    return t[(tl.m0 + t) % 3 == 2]


def tax(ctx: Context) -> list[Chunk]:
    """tax.payment and tax.filing per quarter for taxed subjects (some filed late, some paid late)."""
    p, pop, tl, gen = params()["periodic"]["tax"], ctx.pop, ctx.tl, ctx.gen("tax")
    q = ctx.quality("tax")
    qe = _quarter_ends(tl)
    mean_q = (q[:, qe] + q[:, qe - 1] + q[:, qe - 2]) / 3
    row, j = np.nonzero(ctx.running[:, qe] & pop.flags["taxed"][:, None])
    t, qm = qe[j], mean_q[row, j]
    n = len(row)
    paid = pop.scale["tax"][row] * np.exp(p["slope"] * qm + gen.normal(0, p["noise"], n))
    paid *= ctx.lat.shocks.tax_factor[row, t]
    paid *= gen.random(n) >= _sigmoid(_logit(p["zero_share"]) + p["zero_slope"] * -qm)
    late = gen.random(n) < _sigmoid(_logit(p["late_share"]) + p["late_slope"] * -qm)
    late_days = np.where(late, gen.integers(p["late_days"][0], p["late_days"][1] + 1, n), 0)
    start, end = tl.first[t - 2], tl.last[t]
    label = take(tl.labels("quarter"), t)
    token = ctx.token.take(pa.array(row))
    pay_lag = gen.integers(p["pay_lag"][0], p["pay_lag"][1] + 1, (2, n))
    late_pay = gen.random(n) < _sigmoid(_logit(p["late_pay_share"]) + p["late_pay_slope"] * -qm)
    pay_lag[0] = np.where(late_pay, gen.integers(p["late_pay_days"][0], p["late_pay_days"][1] + 1, n), pay_lag[0])
    payment = Chunk("tax.payment", row, start, end + pay_lag[0], join("TAXPAY", token, label), end=end,
                    amount=np.round(paid, 2))
    filing = Chunk("tax.filing", row, start, end + pay_lag[1] + late_days, join("TAXFIL", token, label), end=end,
                   value=late_days.astype(float))
    return [payment, filing]


def insurance(ctx: Context) -> list[Chunk]:
    """labor.social_insurance per month: insured headcount following quality and the shock."""
    p, pop, tl, gen = params()["periodic"]["insurance"], ctx.pop, ctx.tl, ctx.gen("insurance")
    row, t = np.nonzero(ctx.running & pop.flags["employer"][:, None])
    n = len(row)
    if n == 0:
        return []
    factor = ctx.lat.shocks.headcount_factor[row, t] * np.where(t >= ctx.lat.default[row], 0.6, 1.0)
    heads = pop.scale["headcount"][row] * np.exp(p["slope"] * ctx.quality("labor")[row, t] + gen.normal(0, p["noise"], n))
    heads = np.maximum(1, np.round(heads * factor))
    paid = np.round(heads * p["wage"] * p["rate"] * np.exp(gen.normal(0, 0.05, n)), 2)
    doc = join("SI", ctx.token.take(pa.array(row)), take(tl.labels("month"), t))
    reported = tl.last[t] + gen.integers(p["lag"][0], p["lag"][1] + 1, n)
    return [Chunk("labor.social_insurance", row, tl.first[t], reported, doc, end=tl.last[t], amount=paid, value=heads)]
