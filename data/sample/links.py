"""Links between firms (``finance.link`` records): the firm a guarantor's guarantee backs, and firms sharing
a legal representative. Firms link to firms like themselves: each link's partner is, among ``candidates``
random firms of the same district, the one whose latent quality that month is closest (guarantee circles
of weak firms; one owner's firms riding the same fortunes), so a partner's default tells of one's own risk.
Parameters: ``[links]`` in population.toml.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from stdnum.cn import uscc

from creditgrade.data.sample.chunks import NULL
from creditgrade.data.sample.records import Context
from creditgrade.data.sample.timeline import params


def _partners(ctx: Context, row: np.ndarray, t: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Per (firm, month), a partner firm of the same district operating that month (with a valid code) with
    the closest latent quality; -1 where the district has no other such firm (no link then)."""
    district = np.asarray(ctx.pop.columns["district"])
    valid = np.array([uscc.is_valid(sid) for sid in ctx.pop.subject_id])  # a link names a firm by a valid code
    quality = ctx.lat.quality
    out = np.empty(len(row), dtype=np.int64)
    for i, (r, m) in enumerate(zip(row, t)):
        pool = np.flatnonzero((district == district[r]) & valid & ctx.active[:, m] & (np.arange(len(district)) != r))
        if len(pool) == 0:
            out[i] = -1
            continue
        picks = gen.choice(pool, size=min(params()["links"]["candidates"], len(pool)), replace=False)
        out[i] = picks[np.argmin(np.abs(quality[picks, m] - quality[r, m]))]
    return out


def links(ctx: Context, records: pa.Table) -> pa.Table:
    """The link records of an SME population whose other records are ``records`` (their guarantees)."""
    conf, tl, pop = params()["links"], ctx.tl, ctx.pop
    gen = ctx.gen("finance.link")
    index = {sid: i for i, sid in enumerate(pop.subject_id)}
    guarantees = records.filter(pa.compute.equal(records["kind"], "finance.guarantee"))
    g_row = np.array([index[s] for s in guarantees["subject_id"].to_pylist()], dtype=np.int64)
    g_start = guarantees["start_date"].cast(pa.int32()).to_numpy().astype(np.int64)
    shared = gen.random(pop.n) < conf["shared_representative_share"]
    s_row = np.flatnonzero(shared)
    s_t = gen.integers(0, tl.T, len(s_row))
    s_start = tl.random_day(s_t, gen)
    row = np.concatenate([g_row, s_row])
    start = np.concatenate([g_start, s_start])
    t = np.clip(tl.month_of(start), 0, tl.T - 1)
    category = np.array(["guarantee"] * len(g_row) + ["legal_representative"] * len(s_row))
    end = np.concatenate([guarantees["end_date"].cast(pa.int32()).to_numpy(zero_copy_only=False).astype(float),
                          np.full(len(s_row), np.nan)])
    keep = ctx.active[row, t]
    row, start, t, category, end = row[keep], start[keep], t[keep], category[keep], end[keep]
    partner = _partners(ctx, row, t, gen)
    found = partner >= 0
    row, start, t, category, end, partner = (a[found] for a in (row, start, t, category, end, partner))
    exit_day = ctx.after.exit_day.astype(float)
    stop = np.fmin(np.where(exit_day[row] == NULL, np.nan, exit_day[row]),
                   np.where(exit_day[partner] == NULL, np.nan, exit_day[partner]))  # a link ends when a firm leaves
    ok = ~(stop <= start)  # a firm that leaves before the link would begin has none
    row, partner, start, category, end = row[ok], partner[ok], start[ok], category[ok], np.fmin(end, stop)[ok]
    reported = np.minimum(start + gen.integers(*conf["report_lag_days"], len(row)), tl.end_day)
    n = len(row)
    days = pa.date32()
    return pa.table({
        "segment": pa.array(["sme"] * n, pa.string()), "subject_id": pa.array(pop.subject_id[row], pa.string()),
        "source": pa.array(["finance"] * n, pa.string()), "kind": pa.array(["finance.link"] * n, pa.string()),
        "start_date": pa.array(start.astype(np.int32), days),
        "end_date": pa.array([None if np.isnan(e) else int(e) for e in end], pa.int32()).cast(days),
        "reported_date": pa.array(reported.astype(np.int32), days),
        "severity": pa.nulls(n, pa.string()), "amount": pa.nulls(n, pa.float64()), "value": pa.nulls(n, pa.float64()),
        "category": pa.array(category.tolist(), pa.string()), "account": pa.array(pop.subject_id[partner], pa.string()),
        "doc_ref": pa.array([f"LINK-S-{i + 1:07d}" for i in range(n)], pa.string()),
        "repaired_date": pa.nulls(n, days),
    })
