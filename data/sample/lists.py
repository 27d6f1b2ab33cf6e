"""National credit list entries (source ``lists``) that follow from a segment's other records.

Negative lists: the court lists a judgment debtor whose enforcement is still unpaid months later (removed
once paid); market regulation lists firms that fail to file their annual report (abnormal operations;
moved to the serious-violation list after three years); the tax authority names major tax violators after
an evasion case; the work-safety and quality blacklists follow serious accidents, violations, recalls and
complaints. Red lists: A-level taxpayers each year, and the contract-honouring and harmonious-labour awards
to clean firms. Each entry: category = the authority, value = publication months, end = removal (at the end
of the period, or earlier on repair or payment).
"""
from __future__ import annotations

import numpy as np

from creditgrade.data.sample.chunks import NULL, Chunk, gather, take
from creditgrade.data.sample.records import Context, _logit, _sigmoid
from creditgrade.data.sample.taxlevel import credit_levels
from creditgrade.data.sample.timeline import add_months_days, month_index, params
from creditgrade.features.schemas import kinds

PREFIX = {"dishonest_debtor": "SXBZX", "abnormal_operations": "JYYC", "serious_violation": "YZWF",
          "major_tax_violator": "ZDSS", "safety_blacklist": "AQHMD", "quality_blacklist": "ZLHMD",
          "a_taxpayer": "ANSR", "contract_honoring": "SHTZXY", "harmonious_labour": "HXLD"}


def _entry(ctx: Context, name: str, row, start, removed=None) -> Chunk:
    """List entries: removal at the end of the publication period or at ``removed`` if earlier."""
    p, gen = params()["lists"][name], ctx.gen("list-" + name)
    kind = "lists." + name
    end = add_months_days(start, np.full(len(row), p["months"]))
    if removed is not None:
        end = np.where((removed != NULL) & (removed < end), np.maximum(removed, start), end)
    lag = p.get("lag", [1, 20])
    return Chunk(kind, row, start, start + gen.integers(lag[0], lag[1] + 1, len(row)),
                 ctx.serials(PREFIX[name], start), end=end, value=np.full(len(row), float(p["months"])),
                 category=take(np.array(kinds()[kind]["categories"][:1]), np.zeros(len(row), np.int64)))


def _after(ctx: Context, name: str, source: Chunk, chosen: np.ndarray) -> Chunk:
    """Entries a few months after the chosen source records, some removed early on repair."""
    p, gen = params()["lists"][name], ctx.gen("list-" + name + "-timing")
    row, base = source.row[chosen], source.start[chosen]
    start = add_months_days(base, gen.integers(p["after_months"][0], p["after_months"][1] + 1, len(row)))
    repair = p.get("repair", 0.0)
    early = add_months_days(start, gen.integers(*p.get("repair_months", [12, 24]), len(row)))
    return _entry(ctx, name, row, start, np.where(gen.random(len(row)) < repair, early, NULL))


def dishonest_debtors(ctx: Context, chunks: list[Chunk]) -> Chunk:
    p, gen = params()["lists"]["dishonest_debtor"], ctx.gen("list-dishonest-pick")
    court = gather(chunks, "finance.court_enforcement")
    start = add_months_days(court.start, gen.integers(p["after_months"][0], p["after_months"][1] + 1, len(court.row)))
    unpaid = (court.end == NULL) | (court.end > start)
    chosen = unpaid & (gen.random(len(court.row)) < p["share"])
    paid = np.where(court.end == NULL, NULL, court.end + gen.integers(1, 11, len(court.row)))
    return _entry(ctx, "dishonest_debtor", court.row[chosen], start[chosen], paid[chosen])


def major_tax_violators(ctx: Context, chunks: list[Chunk]) -> Chunk:
    evasion = gather(chunks, "tax.evasion")
    return _after(ctx, "major_tax_violator", evasion, evasion.severity >= 2)


def blacklists(ctx: Context, chunks: list[Chunk]) -> list[Chunk]:
    """The work-safety and quality blacklists after serious incidents (SMEs)."""
    out = []
    for name, causes in (("safety_blacklist", ("safety.accident", "safety.violation")),
                         ("quality_blacklist", ("quality.recall", "quality.complaint"))):
        gen = ctx.gen("list-" + name + "-pick")
        source = _serious(chunks, causes)
        chosen = gen.random(len(source.row)) < params()["lists"][name]["share"]
        out.append(_after(ctx, name, source, chosen))
    return out


def _serious(chunks: list[Chunk], causes) -> Chunk:
    """The serious records of the given kinds (subject and start only)."""
    parts = [c for c in (gather(chunks, k) for k in causes) if c.severity is not None]
    rows = np.concatenate([c.row[c.severity == 3] for c in parts] + [np.zeros(0, np.int64)])
    starts = np.concatenate([c.start[c.severity == 3] for c in parts] + [np.zeros(0, np.int64)])
    return Chunk(causes[0], rows, starts, starts, None)


def _julys(ctx: Context) -> np.ndarray:
    t = np.arange(ctx.tl.T)
    return t[(ctx.tl.m0 + t) % 12 == 6]


def abnormal_operations(ctx: Context) -> list[Chunk]:
    """No annual report by 30 June: firms that stopped operating and are not yet deregistered (listed until
    they are) and a few running ones (mostly removed once they file); still listed after three years: the
    serious-violation list."""
    p, pop, tl = params()["lists"]["abnormal_operations"], ctx.pop, ctx.tl
    gen = ctx.gen("list-abnormal")
    julys = _julys(ctx)
    stopped = ctx.active & ~ctx.running
    first_stop = np.where(stopped.any(axis=1), stopped.argmax(axis=1), tl.T)
    stop_july = julys[np.minimum(np.searchsorted(julys, first_stop), len(julys) - 1)] if len(julys) else first_stop
    gone = np.flatnonzero((first_stop < tl.T) & (stop_july >= first_stop) & ctx.active[np.arange(pop.n), stop_july])
    bad = -ctx.lat.quality[:, julys]
    p_fail = _sigmoid(_logit(p["base_rate"]) + p["slope"] * bad)
    eligible = ctx.running[:, julys] & (pop.birth[:, None] <= julys[None, :] - 7)
    row, j = np.nonzero(eligible & (gen.random(p_fail.shape) < p_fail))
    rows = np.concatenate([gone, row])
    start = tl.random_day(np.concatenate([stop_july[gone], julys[j]]), gen)
    repaired = np.concatenate([np.zeros(len(gone), bool), gen.random(len(row)) < p["repair"]])
    removed = np.where(repaired, add_months_days(start, gen.integers(*p["repair_months"], len(rows))), NULL)
    abnormal = _entry(ctx, "abnormal_operations", rows, start, removed)
    moved = add_months_days(start, np.full(len(rows), p["months"]))
    exit_day = ctx.after.exit_day[rows]
    kept = (~repaired & (gen.random(len(rows)) < params()["lists"]["serious_violation"]["share"])
            & ((exit_day == NULL) | (moved < exit_day)))
    return [abnormal, _entry(ctx, "serious_violation", rows[kept], moved[kept])]


def a_taxpayers(ctx: Context, levels: Chunk) -> Chunk:
    """Every A-level firm, from the day its level is published."""
    a = np.asarray(levels.category.to_numpy(zero_copy_only=False)) == "A"
    return _entry(ctx, "a_taxpayer", levels.row[a], levels.reported[a])


def _awards(ctx: Context, name: str, negatives: list[Chunk], who: np.ndarray, merit: np.ndarray) -> Chunk:
    """Red-list awards to the best ``share`` of clean, established subjects on each award date."""
    p, pop, tl = params()["lists"][name], ctx.pop, ctx.tl
    gen = ctx.gen("list-" + name)
    rows, starts = [], []
    for month in p["awarded"]:
        t = month_index(month) - tl.m0
        if not 0 <= t < tl.T:
            continue
        dirty = np.zeros(pop.n, bool)
        lo = tl.first[max(t - p["clean_months"], 0)]
        for c in negatives:
            dirty[c.row[(c.start >= lo) & (c.start <= tl.last[t])]] = True
        ok = who & ctx.running[:, t] & (pop.birth <= t - p["min_age_months"]) & ~dirty
        score = np.where(ok, merit[:, t] + gen.normal(0, 0.5, pop.n), -np.inf)
        best = np.argsort(-score)[:int(p["share"] * ok.sum())]
        rows.append(best)
        starts.append(tl.random_day(np.full(len(best), t), gen))
    return _entry(ctx, name, np.concatenate(rows + [np.zeros(0, np.int64)]),
                  np.concatenate(starts + [np.zeros(0, np.int64)]))


def entries(ctx: Context, chunks: list[Chunk]) -> list[Chunk]:
    """All list entries of the segment, and the SMEs' tax credit levels (which follow the major-tax-violator
    list and make the A-level red list)."""
    out = [dishonest_debtors(ctx, chunks), violators := major_tax_violators(ctx, chunks)]
    if ctx.pop.segment != "sme":
        return out
    out += blacklists(ctx, chunks) + abnormal_operations(ctx)
    levels = credit_levels(ctx, chunks, violators)
    negative = [c for c in chunks + out if kinds()[c.kind].get("negative") and len(c.row)]
    out += [levels, a_taxpayers(ctx, levels),
            _awards(ctx, "contract_honoring", negative, np.ones(ctx.pop.n, bool), ctx.lat.quality),
            _awards(ctx, "harmonious_labour", [c for c in negative if c.kind.startswith(("labor.", "lists."))],
                    ctx.pop.flags["employer"], ctx.quality("labor"))]
    return out
