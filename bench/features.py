"""Benchmark of the SME feature build against its anchor: the same aggregations as ONE DuckDB query.

    python bench/features.py                  # 100,000 SMEs: records/s and peak memory, ratio to DuckDB
    python bench/features.py --smes 1000000   # 1,000,000 SMEs in parts of 100,000: time and peak memory

The population comes from data/sample/generator.py and is cached as Parquet under --workdir (never in git).
Both sides start from the same records in memory (ours as normalised Frames, DuckDB's as native tables); the DuckDB result is also compared with ours, column by
column, so the anchor is known to compute the same thing. Peak memory is the process's peak RSS above
its level before the step, sampled every 10 ms, and for our build also tracemalloc's peak (RSS misses
memory the allocator reuses from the warm-up run).
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, and this file's name would hide the features package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-key")

from creditgrade.features.build import build_features  # noqa: E402
from creditgrade.features.catalog import feature_names  # noqa: E402
from creditgrade.features.finance import default_kinds  # noqa: E402
from creditgrade.features.frames import Frames  # noqa: E402
from creditgrade.features.ids import add_months  # noqa: E402
from creditgrade.features.lists import list_kinds  # noqa: E402
from creditgrade.features.schemas import contract  # noqa: E402
from creditgrade.features.snapshot import RECENCY_CAP_MONTHS, flagged, retention_cutoff  # noqa: E402
from creditgrade.features.tax import CREDIT_LEVELS  # noqa: E402
from creditgrade.features.trajectory import HALF_LIFE_MONTHS  # noqa: E402

PART = 100_000


class PeakRSS:
    """Peak resident memory above the level at entry, sampled in a thread."""

    def __enter__(self):
        self.proc, self.base, self.peak, self.stop = psutil.Process(), psutil.Process().memory_info().rss, 0, False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        self.t0 = time.perf_counter()
        return self

    def _sample(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
            time.sleep(0.01)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss - self.base)


def population(workdir: Path, n: int, seed: int) -> tuple[Path, Path]:
    """Subjects and records of ``n`` SMEs as Parquet, generated once and cached."""
    subjects, records = workdir / f"sme{n}_s{seed}_subjects.parquet", workdir / f"sme{n}_s{seed}_records.parquet"
    if not records.exists():
        from creditgrade.data.sample.generator import generate
        workdir.mkdir(parents=True, exist_ok=True)
        pop = generate(n, 1, 1, seed=seed)
        sme = {k: v[v["segment"] == "sme"] for k, v in pop.items()}
        sme["subjects"].to_parquet(subjects)
        sme["records"].assign(record_id=np.arange(1, len(sme["records"]) + 1)).to_parquet(records)
    return subjects, records


def load(subjects: Path, records: Path) -> Frames:
    rename = {"subject_id": "subject_key"}  # SME keys are their codes (features.ids.subject_key)
    return Frames(pd.read_parquet(subjects).rename(columns=rename), pd.read_parquet(records).rename(columns=rename),
                  pd.DataFrame())


# ---------------------------------------------------------------- the anchor: one DuckDB query

def duckdb_sql(as_of: pd.Timestamp) -> str:
    """The SME features of features/*.py as one SQL query over ``records`` and ``subjects``."""
    d = as_of.date()
    back = {m: add_months(d, -m) for m in (3, 6, 12, 15, 24, 36)}
    negative, repairable, links = (", ".join(f"'{k}'" for k in flagged(flag)) or "NULL"
                                   for flag in ("negative", "repairable", "link"))
    weights = contract()["severity_weights"]
    rank = " ".join(f"WHEN '{c}' THEN {i + 1}" for i, c in enumerate(CREDIT_LEVELS))
    order = "epoch(start_date)::BIGINT * 1000000000 + record_id"

    def win(m):
        return f"start_date >= DATE '{back[m]}'"

    def cnt(cond):
        return f"count(*) FILTER (WHERE {cond})::DOUBLE"

    def tot(x, cond):
        return f"coalesce(sum({x}) FILTER (WHERE {cond}), 0)::DOUBLE"

    def mx(x, cond):
        return f"coalesce(max({x}) FILTER (WHERE {cond}), 0)::DOUBLE"

    def change(x, kind, now, before):
        return (f"ln(1 + avg({x}) FILTER (WHERE kind = '{kind}' AND {now})) "
                f"- ln(1 + avg({x}) FILTER (WHERE kind = '{kind}' AND {before}))")

    def between(m, offset):
        return f"start_date >= DATE '{add_months(d, -(m + offset))}' AND start_date < DATE '{add_months(d, -offset)}'"

    def latest(x, cond):
        return f"arg_max({x}, {order}) FILTER (WHERE {cond})"

    def mean(x, cond):
        return f"avg({x}) FILTER (WHERE {cond})"

    def log_ratio(a, b):
        return f"ln(1 + {a}) - ln(1 + {b})"

    decay = f"pow(2, -greatest(age, 0) / {HALF_LIFE_MONTHS})"

    def recency(cond):
        return tot(f"(CASE WHEN w > 0 THEN w ELSE 1 END) * {decay}", cond)

    prev12 = f"{win(24)} AND NOT {win(12)}"
    prev3 = f"{win(15)} AND NOT {win(12)}"
    cols = {}
    for source, prefix in (("tax", "tax"), ("safety", "safety"), ("quality", "quality"), ("labor", "labor"),
                           ("finance", "fin")):
        neg = f"neg AND source = '{source}'"
        cols[f"has_{source}"] = f"(count(*) FILTER (WHERE source = '{source}' AND NOT link) > 0)::DOUBLE"
        for m in (3, 12, 36):
            cols[f"{prefix}_negatives_{m}m"] = cnt(f"{neg} AND {win(m)}")
        cols[f"{prefix}_negative_severity_36m"] = tot("w", f"{neg} AND {win(36)}")
        cols[f"{prefix}_months_since_negative"] = (
            f"least(coalesce(min(age) FILTER (WHERE {neg}), {RECENCY_CAP_MONTHS}), {RECENCY_CAP_MONTHS})::DOUBLE")
    k = "kind = "
    limit = tot("amount", "kind = 'finance.loan' AND ongoing")
    paid_12m = f"{k}'tax.payment' AND {win(12)}"
    paid_latest = latest("amount", paid_12m)
    head_latest = latest("value", f"{k}'labor.social_insurance' AND {win(3)}")
    cols.update({
        "tax_filings_late_12m": cnt(f"{k}'tax.filing' AND {win(12)} AND value > 0"),
        "tax_filing_days_late_max_12m": mx("value", f"{k}'tax.filing' AND {win(12)}"),
        "tax_arrears_12m": cnt(f"{k}'tax.arrears' AND {win(12)}"),
        "tax_arrears_amount_12m": tot("amount", f"{k}'tax.arrears' AND {win(12)}"),
        "tax_arrears_open": cnt(f"{k}'tax.arrears' AND ongoing"),
        "tax_arrears_open_amount": tot("amount", f"{k}'tax.arrears' AND ongoing"),
        "tax_arrears_open_age_months": mx("age", f"{k}'tax.arrears' AND ongoing"),
        "tax_penalties_36m": cnt(f"{k}'tax.penalty' AND {win(36)}"),
        "tax_evasion_cases": cnt(f"{k}'tax.evasion'"),
        "tax_credit_level": f"arg_max(CASE category {rank} END, {order}) FILTER (WHERE {k}'tax.credit_level')::DOUBLE",
        "tax_credit_level_record": f"arg_max(record_id, {order}) FILTER (WHERE {k}'tax.credit_level')::DOUBLE",
        "tax_paid_12m": tot("amount", f"{k}'tax.payment' AND {win(12)}"),
        "tax_paid_yoy": change("amount", "tax.payment", win(12), prev12),
        "tax_paid_vs_3y": change("amount", "tax.payment", win(6), win(36)),
        "safety_inspections_36m": cnt(f"{k}'safety.inspection' AND {win(36)}"),
        "safety_inspections_failed_36m": cnt(f"{k}'safety.inspection' AND {win(36)} AND category = 'fail'"),
        "safety_violations_12m": cnt(f"{k}'safety.violation' AND {win(12)}"),
        "safety_violations_serious_36m": cnt(f"{k}'safety.violation' AND {win(36)} AND severity = 'serious'"),
        "safety_accidents_36m": cnt(f"{k}'safety.accident' AND {win(36)}"),
        "safety_casualties_36m": tot("value", f"{k}'safety.accident' AND {win(36)}"),
        "quality_spot_checks_36m": cnt(f"{k}'quality.spot_check' AND {win(36)}"),
        "quality_spot_checks_failed_36m": cnt(f"{k}'quality.spot_check' AND {win(36)} AND category = 'fail'"),
        "quality_recalls_36m": cnt(f"{k}'quality.recall' AND {win(36)}"),
        "quality_complaints_12m": cnt(f"{k}'quality.complaint' AND {win(12)}"),
        "labor_insured_headcount": (f"coalesce(arg_max(value, {order}) FILTER (WHERE {k}'labor.social_insurance' "
                                    f"AND {win(3)}), 0)::DOUBLE"),
        "labor_headcount_yoy": change("value", "labor.social_insurance", win(3), prev3),
        "labor_headcount_vs_3y": change("value", "labor.social_insurance", win(3), win(36)),
        "labor_si_arrears_12m": cnt(f"{k}'labor.si_arrears' AND {win(12)}"),
        "labor_si_arrears_open_amount": tot("amount", f"{k}'labor.si_arrears' AND ongoing"),
        "labor_wage_arrears_36m": cnt(f"{k}'labor.wage_arrears' AND {win(36)}"),
        "labor_wage_arrears_workers_36m": tot("value", f"{k}'labor.wage_arrears' AND {win(36)}"),
        "labor_disputes_36m": cnt(f"{k}'labor.dispute' AND {win(36)}"),
        "fin_loans_open": cnt(f"{k}'finance.loan' AND ongoing"),
        "fin_credit_limit": limit,
        "fin_balance": "coalesce(any_value(acc.balance), 0)::DOUBLE",
        "fin_utilisation": (f"CASE WHEN {limit} > 0 THEN coalesce(any_value(acc.balance), 0) / {limit} END"),
        "fin_dpd_current": "coalesce(any_value(acc.dpd), 0)::DOUBLE",
        "fin_dpd_current_record": "any_value(acc.dpd_record)::DOUBLE",
        "fin_past_due_since": "any_value(CASE WHEN acc.dpd > 0 THEN acc.dpd_since END)::DOUBLE",
        "fin_dpd_worst_3m": mx("value", f"{k}'finance.loan_status' AND {win(3)}"),
        "fin_dpd_worst_12m": mx("value", f"{k}'finance.loan_status' AND {win(12)}"),
        "fin_months_past_due_12m": cnt(f"{k}'finance.loan_status' AND {win(12)} AND value > 0"),
        "fin_overdue_open": cnt(f"{k}'finance.overdue' AND ongoing"),
        "fin_restructurings_36m": cnt(f"{k}'finance.restructuring' AND {win(36)}"),
        "fin_guarantees_amount": tot("amount", f"{k}'finance.guarantee' AND ongoing"),
        "fin_court_enforcements": cnt(f"{k}'finance.court_enforcement'"),
        "fin_court_enforcement_open_amount": tot("amount", f"{k}'finance.court_enforcement' AND ongoing"),
        "fin_court_enforcements_open": cnt(f"{k}'finance.court_enforcement' AND ongoing"),
        "fin_court_enforcement_record": (f"arg_max(record_id, {order}) FILTER (WHERE {k}'finance.court_enforcement' "
                                         f"AND ongoing)::DOUBLE"),
        # features/trajectory.py
        "tax_paid_latest_vs_12m": log_ratio(paid_latest, mean("amount", paid_12m)),
        "tax_paid_latest_vs_prior_year": log_ratio(paid_latest,
                                                   mean("amount", f"{k}'tax.payment' AND {between(12, 12)}")),
        "tax_zero_quarters_12m": cnt(f"{k}'tax.payment' AND {win(12)} AND amount <= 0"),
        "tax_negatives_recency": recency("neg AND source = 'tax'"),
        "labor_headcount_latest_vs_6m": log_ratio(head_latest,
                                                  mean("value", f"{k}'labor.social_insurance' AND {between(6, 3)}")),
        "labor_headcount_latest_vs_12m": log_ratio(head_latest,
                                                   mean("value", f"{k}'labor.social_insurance' AND {win(12)}")),
        "labor_tax_per_head_log": (f"ln(1 + {mean('amount', paid_12m)} / "
                                   f"(CASE WHEN {head_latest} > 0 THEN {head_latest} END))"),
        "labor_negatives_recency": recency("neg AND source = 'labor'"),
        "fin_past_due_recency": tot(decay, f"{k}'finance.loan_status' AND value > 0"),
        "fin_dpd_worst_3m_vs_12m": (mx("value", f"{k}'finance.loan_status' AND {win(3)}") + " - "
                                    + mx("value", f"{k}'finance.loan_status' AND {between(12, 3)}")),
        "fin_negatives_recency": recency("neg AND source = 'finance'"),
        "quality_negatives_recency": recency("neg AND source = 'quality'"),
        "quality_complaints_recency": recency(f"{k}'quality.complaint'"),
        "firm_age_years": "any_value(date_diff('day', s.founded, DATE '{d}') / 365.25)".replace("{d}", str(d)),
        "sector": "any_value(s.sector)",
        "size": "any_value(s.size)",
    })
    for kind in default_kinds():  # ongoing default records: the earliest, by start then highest record_id
        name, cond = f"fin_{kind.split('.', 1)[1]}", f"{k}'{kind}' AND ongoing"
        cols[f"{name}_open"] = cnt(cond)
        cols[f"{name}_record"] = f"arg_max(record_id, [-day, record_id]) FILTER (WHERE {cond})::DOUBLE"
        cols[f"{name}_since"] = f"min(day) FILTER (WHERE {cond})::DOUBLE"
    for kind in list_kinds(red=False):
        name, cond = f"list_{kind.split('.', 1)[1]}", f"{k}'{kind}'"
        cols[name] = f"(count(*) FILTER (WHERE {cond} AND ongoing) > 0)::DOUBLE"
        cols[f"{name}_months_since_entry"] = (
            f"least(coalesce(min(age) FILTER (WHERE {cond}), {RECENCY_CAP_MONTHS}), {RECENCY_CAP_MONTHS})::DOUBLE")
        cols[f"{name}_months_since_removal"] = (f"least(coalesce(min(end_age) FILTER (WHERE {cond} AND NOT ongoing), "
                                                f"{RECENCY_CAP_MONTHS}), {RECENCY_CAP_MONTHS})::DOUBLE")
        cols[f"{name}_record"] = f"arg_max(record_id, {order}) FILTER (WHERE {cond} AND ongoing)::DOUBLE"
    for kind in list_kinds(red=True):
        cols[f"list_{kind.split('.', 1)[1]}"] = f"(count(*) FILTER (WHERE {k}'{kind}' AND ongoing) > 0)::DOUBLE"
    cols = {name: cols[name] for name in feature_names("sme")}  # the catalogue's order
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in cols.items())
    return f"""
WITH r AS (
  SELECT subject_key, record_id, source, kind, start_date, end_date, severity, category, account,
         coalesce(amount, 0) AS amount, coalesce(value, 0) AS value,
         kind IN ({negative}) AS neg, kind IN ({links}) AS link,
         (end_date IS NULL OR end_date >= DATE '{d}') AS ongoing,
         CASE severity {" ".join(f"WHEN '{s}' THEN {w}" for s, w in weights.items())} ELSE 0 END AS w,
         date_diff('day', start_date, DATE '{d}') / 30.4375 AS age,
         date_diff('day', end_date, DATE '{d}') / 30.4375 AS end_age,
         date_diff('day', DATE '1970-01-01', start_date) AS day
  FROM records
  WHERE segment = 'sme' AND reported_date < DATE '{d}'
    AND NOT (kind IN ({negative}) AND coalesce(end_date, start_date) <= DATE '{retention_cutoff(d)}')
    AND NOT (kind IN ({repairable}) AND repaired_date IS NOT NULL AND repaired_date <= DATE '{d}')
), latest_status AS (
  SELECT subject_key, arg_max(amount, {order}) AS balance, arg_max(value, {order}) AS dpd,
         arg_max(record_id, {order}) AS record_id, arg_max(day, {order}) AS day
  FROM r WHERE kind = 'finance.loan_status' AND {win(3)} GROUP BY subject_key, account
), acc AS (
  SELECT subject_key, sum(balance) AS balance, max(dpd) AS dpd,
         arg_max(record_id, [dpd, day, record_id]) AS dpd_record, arg_max(day - dpd, [dpd, day, record_id]) AS dpd_since
  FROM latest_status GROUP BY subject_key
)
SELECT s.subject_key,
  {select}
FROM subjects s LEFT JOIN r USING (subject_key) LEFT JOIN acc USING (subject_key)
WHERE s.segment = 'sme' AND s.founded < DATE '{d}'
GROUP BY s.subject_key
ORDER BY s.subject_key
"""


def duckdb_tables(frames: Frames):
    """A DuckDB connection holding the records and subjects as native tables (loaded outside the timing)."""
    import duckdb
    con = duckdb.connect()
    text = ("subject_key", "segment", "source", "kind", "severity", "category", "account")
    records = frames.records.assign(**{c: frames.records[c].astype(str).where(frames.records[c].notna()) for c in text})
    con.register("records_df", records)
    con.register("subjects_df", frames.subjects)
    con.execute("CREATE TABLE records AS SELECT * FROM records_df")
    con.execute("CREATE TABLE subjects AS SELECT * FROM subjects_df")
    return con


def compare(ours: pd.DataFrame, anchor: pd.DataFrame) -> list[str]:
    """Columns on which the two disagree (numbers to 1e-9 relative, categories exactly)."""
    anchor = anchor.loc[ours.index]
    bad = []
    for col in feature_names("sme"):
        a, b = ours[col], anchor[col]
        if isinstance(a.dtype, pd.CategoricalDtype):
            same = (a.astype(object) == b.astype(object)) | (a.isna() & b.isna())
        else:
            same = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9, equal_nan=True)
        if not np.all(same):
            bad.append(col)
    return bad


def run_100k(args):
    subjects, records = population(args.workdir, args.smes, args.seed)
    with PeakRSS() as load_m:
        frames = load(subjects, records)
    n_rec = len(frames.records)
    as_of = pd.Timestamp(args.as_of)
    build_features(frames, "sme", as_of)  # warm-up (imports, caches)
    with PeakRSS() as ours_m:
        ours = build_features(frames, "sme", as_of)
    tracemalloc.start()  # RSS hides memory the allocator reuses; numpy reports its buffers here
    build_features(frames, "sme", as_of)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    con = duckdb_tables(frames)
    sql = duckdb_sql(as_of)
    con.execute(sql).df()  # warm-up
    with PeakRSS() as duck_m:
        anchor = con.execute(sql).df().set_index("subject_key")
    mismatched = compare(ours, anchor)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"SMEs {args.smes:,}  records {n_rec:,}  as of {as_of.date()}  features {ours.shape[1]}  "
          f"rows {len(ours):,}  duckdb threads {threads}")
    print(f"load + normalise   {load_m.seconds:7.2f} s  peak +{load_m.peak / 2**20:,.0f} MiB")
    print(f"creditgrade build  {ours_m.seconds:7.2f} s  {n_rec / ours_m.seconds:,.0f} records/s  "
          f"peak +{ours_m.peak / 2**20:,.0f} MiB RSS, {traced_peak / 2**20:,.0f} MiB allocated (tracemalloc)")
    print(f"duckdb one query   {duck_m.seconds:7.2f} s  {n_rec / duck_m.seconds:,.0f} records/s  "
          f"peak +{duck_m.peak / 2**20:,.0f} MiB")
    print(f"ratio time creditgrade / duckdb = {ours_m.seconds / duck_m.seconds:.2f}  (goal <= 2)")
    print(f"anchor agrees on {len(feature_names('sme')) - len(mismatched)}/{len(feature_names('sme'))} columns"
          + (f"; differs on {mismatched}" if mismatched else ""))


def run_parts(args):
    """``--smes`` SMEs in generated parts of 100,000, loaded and built one after another: total time and
    peak memory of that phase (generation, cached on disk, happens first and is not measured)."""
    as_of = pd.Timestamp(args.as_of)
    parts = [population(args.workdir, min(PART, args.smes - lo), args.seed + i)
             for i, lo in enumerate(range(0, args.smes, PART))]
    build_s, rows, n_rec = 0.0, 0, 0
    with PeakRSS() as whole:
        for subjects, records in parts:
            frames = load(subjects, records)
            n_rec += len(frames.records)
            t0 = time.perf_counter()
            rows += len(build_features(frames, "sme", as_of))
            build_s += time.perf_counter() - t0
            del frames
    print(f"SMEs {args.smes:,} in {len(parts)} parts  records {n_rec:,}  rows {rows:,}")
    print(f"build {build_s:.1f} s ({n_rec / build_s:,.0f} records/s); load + build {whole.seconds:.1f} s, "
          f"peak +{whole.peak / 2**20:,.0f} MiB RSS")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smes", type=int, default=PART)
    ap.add_argument("--as-of", default="2024-06-30")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "creditgrade-bench")
    args = ap.parse_args()
    (run_100k if args.smes <= PART else run_parts)(args)


if __name__ == "__main__":
    main()
