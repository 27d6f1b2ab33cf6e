"""Finance records of one segment: loans, monthly loan status, overdue episodes, and the default's traces.

Borrowers hold one loan at a time, renewed at maturity. Before the default event, missed payments roll
through 1-29, 30-59 and 60-89 days past due and cure (an overdue record once 30+); none reaches 90, and none
starts while repayments are deferred (2020). At a borrower's default event the loan is 30 days past due,
60 the next month and 90+ (the default) the month after, rising each month until it is written off
(finance.write_off), with a serious overdue record; some defaulters are later under court enforcement or in
bankruptcy. An SME without a loan defaults by bankruptcy. Practitioners' default is a serious sanction.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from creditgrade.data.sample.chunks import NULL, Chunk, join, padded, take
from creditgrade.data.sample.records import Context, _logit, _sigmoid, repairs
from creditgrade.data.sample.timeline import add_months_days, month_index, params


class Loans:
    """Which loan each borrower holds each month, and the finance records that follow from it."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        pop, tl, lat = ctx.pop, ctx.tl, ctx.lat
        gen = ctx.gen("loans")
        n, T = pop.n, tl.T
        term = pop.scale["term"].astype(np.int64)
        first = lat.first_loan
        t = np.arange(T)[None, :]
        self.in_default = pop.segment != "practitioner"
        d = lat.event[:, None]
        self.with_loan = pop.flags["borrower"] & (lat.event < T) & self.in_default
        self.written_off = ctx.after.written_off
        stop = np.where(self.with_loan[:, None], self.written_off[:, None] + 1, np.where(self.in_default, d, T))
        self.active = pop.flags["borrower"][:, None] & (t >= first[:, None]) & (t < np.minimum(stop, T)) & ctx.active
        k = (t - first[:, None]) // term[:, None]
        k_default = ((lat.event - first) // term)[:, None]
        self.k = np.where(self.with_loan[:, None] & (t > d), k_default, k)
        self.start_month = first[:, None] + self.k * term[:, None]
        self.term, self.first = term, first
        kmax = int(self.k.max(initial=0)) + 1
        self.principal = np.round(pop.scale["loan"][:, None] * np.exp(gen.normal(0, 0.15, (n, kmax))), -3)
        cells = np.arange(n * T).reshape(n, T)
        acct = join(pa.scalar("LN" + ctx.code), padded(cells // T, 8), padded(np.maximum(self.k, 0).ravel(), 2), sep="")
        self.accounts = acct  # account per (subject, month) cell, row-major
        self.dpd = self._delinquency(gen)

    def _paused(self) -> np.ndarray:
        """(n, T) months whose repayments are deferred."""
        p, tl = params()["deferral"], self.ctx.tl
        t = np.arange(tl.T)[None, :]
        s, e = month_index(p["start"]) - tl.m0, month_index(p["end"]) - tl.m0
        return self.ctx.lat.deferred[:, None] & (t >= s) & (t <= e)

    def _delinquency(self, gen) -> np.ndarray:
        """Days past due per subject-month, and the cured or open 30+ episodes (as overdue records)."""
        p, ctx = params()["periodic"]["loans"], self.ctx
        lat, tl = ctx.lat, ctx.tl
        n, T = ctx.pop.n, tl.T
        q = ctx.quality("finance")
        paused = self._paused()
        dpd = np.zeros((n, T))
        state = np.zeros(n, np.int8)
        ep_start, ep_max, ep_cell = np.full(n, NULL), np.zeros(n), np.zeros(n, np.int64)
        out = {"row": [], "start": [], "end": [], "value": [], "cell": []}
        offset = gen.integers(0, 30, n)
        for t in range(T):
            live = self.active[:, t] & (t < lat.event) & ~paused[:, t]
            bad = -q[:, t]
            u = gen.random(n)
            begin = (state == 0) & (u < p["episode_rate"] * np.exp(p["episode_slope"] * bad))
            roll = (state > 0) & (state < 3) & (u < _sigmoid(_logit(p["roll_rate"]) + p["roll_slope"] * bad))
            new = np.where(begin | roll, state + 1, 0).astype(np.int8)
            new[~live] = 0
            days = np.where(new > 0, 30 * (new - 1) + gen.integers(1, 30, n), 0)
            opened = (new == 2)
            day = tl.random_day(np.full(n, t), gen)
            ep_start = np.where(opened, day, ep_start)
            ep_cell = np.where(opened, np.arange(n) * T + t, ep_cell)
            ep_max = np.where(new >= 2, np.maximum(ep_max, days), ep_max)
            closing = ((state >= 2) & (new < 2)) | ((new >= 2) & (t == T - 1))
            cured = (state >= 2) & (new == 0) & (live | paused[:, t])
            fatal = self.with_loan & (t == lat.event)  # the open episode becomes the default's record
            if closing.any():
                rows = np.flatnonzero(closing & ~fatal)
                for key, val in (("row", rows), ("start", ep_start[rows]), ("value", ep_max[rows]),
                                 ("end", np.where(cured[rows], day[rows], NULL)), ("cell", ep_cell[rows])):
                    out[key].append(val)
                ep_max[closing] = 0
            state = new
            dpd[:, t] = days
            hit = self.with_loan & (t >= lat.event)
            dpd[hit, t] = 30 + offset[hit] + 30 * (t - lat.event[hit])
        self.episodes = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in out.items()}
        return dpd

    def _balance(self, row, t, principal, gen) -> np.ndarray:
        since = t - self.start_month[row, t]
        revolving = self.term[row] <= 12
        frozen = np.minimum(since, np.maximum(self.ctx.lat.event[row] - self.start_month[row, t], 0))
        return np.where(revolving, principal * gen.uniform(0.7, 1.0, len(row)), principal * (1 - frozen / self.term[row]))

    def chunks(self) -> list[Chunk]:
        ctx, tl, p = self.ctx, self.ctx.tl, params()["periodic"]["loans"]
        gen = ctx.gen("loan-records")
        row, t = np.nonzero(self.active)
        cells = pa.array(row * tl.T + t)
        acct = self.accounts.take(cells)
        k = self.k[row, t]
        principal = self.principal[row, k]
        since = t - self.start_month[row, t]
        balance = self._balance(row, t, principal, gen)
        lag = p["status_lag"]
        status = Chunk("finance.loan_status", row, tl.first[t], tl.last[t] + gen.integers(lag[0], lag[1] + 1, len(row)),
                       join("LOANST", acct, take(tl.labels("month"), t)), end=tl.last[t],
                       amount=np.round(balance, 2), value=self.dpd[row, t], account=acct)
        new = (since == 0) & (t < ctx.lat.event[row])
        r, tt = row[new], t[new]
        start = tl.random_day(tt, gen)
        grant = Chunk("finance.loan", r, start, start + gen.integers(p["loan_lag"][0], p["loan_lag"][1] + 1, len(r)),
                      join("LOAN", acct.filter(pa.array(new))), end=add_months_days(start, self.term[r]),
                      amount=principal[new], account=acct.filter(pa.array(new)))
        at_writeoff = self.with_loan[row] & (t == self.written_off[row])
        r = row[at_writeoff]
        start = tl.random_day(t[at_writeoff], gen)
        write_off = Chunk("finance.write_off", r, start, start + gen.integers(1, 31, len(r)),
                          join("WOFF", acct.filter(pa.array(at_writeoff))), end=self.ctx.after.settled[r],
                          severity=np.full(len(r), 3, np.int8),
                          amount=np.round(balance[at_writeoff], 2), account=acct.filter(pa.array(at_writeoff)))
        return [status, grant, self._overdue(gen), write_off]

    def _overdue(self, gen) -> Chunk:
        """finance.overdue: cured or open 30+ episodes, and the default's (from the event, reported at 90+)."""
        ctx, tl, lat, p = self.ctx, self.ctx.tl, self.ctx.lat, params()["periodic"]["loans"]
        ep = self.episodes
        r = np.flatnonzero(self.with_loan & (lat.default < tl.T))
        d = lat.event[r]
        worst = self.dpd[r, np.minimum(self.written_off[r], tl.T - 1)]
        row = np.concatenate([ep["row"], r])
        start = np.concatenate([ep["start"], tl.random_day(d, gen)])
        value = np.concatenate([ep["value"], worst]).astype(float)
        cells = pa.array(np.concatenate([ep["cell"], r * tl.T + d]))
        sev = np.concatenate([np.where(ep["value"] >= 60, 2, 1), np.full(len(r), 3)]).astype(np.int8)
        acct = self.accounts.take(cells)
        month = take(tl.labels("month"), tl.month_of(start))
        lag = gen.integers(p["overdue_lag"][0], p["overdue_lag"][1] + 1, len(row))
        reported = np.concatenate([ep["start"], tl.last[lat.default[r]]]) + lag
        end = np.concatenate([ep["end"], ctx.after.settled[r]])
        return Chunk("finance.overdue", row, start, reported, join("OVD", acct, month), end=end, severity=sev,
                     value=value, account=acct)


def default_traces(ctx: Context, loans: Loans) -> list[Chunk]:
    """Bankruptcy (an SME without a loan, some defaulted borrowers) until the proceedings close, court
    enforcement after a default; the serious sanction that is a practitioner's default, for its period."""
    pop, tl, lat, after = ctx.pop, ctx.tl, ctx.lat, ctx.after
    gen = ctx.gen("default-traces")
    if pop.segment == "practitioner":
        row = np.flatnonzero(lat.default < tl.T)
        start = tl.random_day(lat.default[row], gen)
        sev = np.full(len(row), 3, np.int8)
        spec = {**params()["defaults"], "repair": 0.2}
        return [Chunk("quality.sanction", row, start, start + gen.integers(1, 46, len(row)),
                      ctx.serials("SANC", start, "D"), end=after.sanction_end[row], severity=sev,
                      repaired=repairs(gen, start, sev, spec))]
    row = np.flatnonzero(after.bankrupt < tl.T)
    start = tl.random_day(after.bankrupt[row], gen)
    bankruptcy = Chunk("finance.bankruptcy", row, start, start + gen.integers(1, 31, len(row)),
                       ctx.serials("BANKR", start), end=after.closed[row], severity=np.full(len(row), 3, np.int8))
    seg = params()["segments"][pop.segment]
    sued = loans.with_loan & (gen.random(pop.n) < seg["court_after_default"])
    month = lat.default + gen.integers(2, 10, pop.n)
    row = np.flatnonzero((lat.default < tl.T) & sued & (month < tl.T))
    start = tl.random_day(month[row], gen)
    scale = pop.scale["loan"][row] * np.exp(gen.normal(-0.5, 0.6, len(row)))
    end = np.where(gen.random(len(row)) < 0.3, start + gen.integers(90, 720, len(row)), NULL)
    court = Chunk("finance.court_enforcement", row, start, start + gen.integers(1, 46, len(row)),
                  ctx.serials("COURT", start, "D"), end=end, severity=np.full(len(row), 3, np.int8),
                  amount=np.round(scale, 2))
    return [bankruptcy, court]
