"""The sample's tax-level shares, list-entry rates and loan roll rates beside the published figures.

    python -m data.sample.figures [--dir data/sample] [--write]    # --write: into data/sample/README.md

Shares and rates are computed from the committed Parquet files; the published figures and their sources
are in public_figures.toml.
"""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- figures: python -m data.sample.figures --write -->", "<!-- /figures -->"
BUCKETS = [-1, 0, 29, 59, 89, np.inf]
BUCKET_NAMES = ["current", "1-29", "30-59", "60-89", "90+"]


def public() -> dict:
    with (HERE / "public_figures.toml").open("rb") as fh:
        return tomllib.load(fh)


def _pct(x: float) -> str:
    return "-" if pd.isna(x) else f"{100 * x:.2f} %"


def _published(entry: dict) -> str:
    if "missing" in entry:
        return f"not found ({entry['missing']})"
    return f"{_pct(entry['value'])}: {entry['what']}; {entry['source']}"


def tax_levels(records: pd.DataFrame) -> str:
    lv = records[records.kind == "tax.credit_level"]
    year = pd.to_datetime(lv.end_date).dt.year
    shares = pd.crosstab(year, lv.category, normalize="index")
    overall = lv.category.value_counts(normalize=True)
    ref = public()["tax_level"]
    rows = ["| level | all years | " + " | ".join(str(y) for y in shares.index) + " | published |",
            "|---|---|" + "---|" * len(shares.index) + "---|"]
    for level in ("A", "B", "M", "C", "D"):
        cells = " | ".join(_pct(shares.get(level, pd.Series(dtype=float)).get(y, 0.0)) for y in shares.index)
        rows.append(f"| {level} | {_pct(overall.get(level, 0.0))} | {cells} | {_published(ref[level])} |")
    return "\n".join(rows) + f"\n\nTarget for D among live firms: {_published(ref['D_live'])}."


def list_rates(subjects: pd.DataFrame, records: pd.DataFrame) -> str:
    """Entries per list and year as a share of the segment's subjects existing that year."""
    lists = records[records.source == "lists"]
    year = pd.to_datetime(lists.start_date).dt.year
    born = pd.to_datetime(subjects.founded.fillna(subjects.licensed_since)).dt.year.fillna(0)
    years = sorted(year.unique())
    alive = {(seg, y): int(((subjects.segment == seg) & (born <= y)).sum()) for seg in subjects.segment.unique()
             for y in years}
    counts = lists.groupby([lists.segment, lists.kind, year]).size()
    rows = ["| segment | list | " + " | ".join(str(y) for y in years) + " |", "|---|---|" + "---|" * len(years)]
    for (seg, kind), per_year in counts.groupby(level=[0, 1]):
        per_year = per_year.droplevel([0, 1])
        cells = " | ".join(_pct(per_year.get(y, 0) / alive[seg, y]) if alive[seg, y] else "-" for y in years)
        rows.append(f"| {seg} | {kind.removeprefix('lists.')} | {cells} |")
    return "\n".join(rows) + (f"\n\nPublished: {_published(public()['lists'])}.\n\nAbnormal operations: "
                               f"{_published(public()['abnormal_operations'])}.")


def roll_rates(records: pd.DataFrame) -> str:
    """Month-to-month transitions of each loan's days past due (finance.loan_status), by segment."""
    st = records[records.kind == "finance.loan_status"][["segment", "account", "start_date", "value"]].copy()
    st["month"] = pd.to_datetime(st.start_date).dt.to_period("M").astype("int64")
    st = st.sort_values(["account", "month"])
    nxt = st.groupby("account").shift(-1)
    ok = nxt.month == st.month + 1
    st = st[ok].assign(now=pd.cut(st.value[ok], BUCKETS, labels=BUCKET_NAMES),
                       after=pd.cut(nxt.value[ok], BUCKETS, labels=BUCKET_NAMES))
    rows = ["| segment | 30-59 -> 60-89 | 30-59 cured | 60-89 -> 90+ | 60-89 cured | 90+ loan-months share |",
            "|---|---|---|---|---|---|"]
    for seg, g in st.groupby("segment"):
        at = lambda b: g[g.now == b]  # noqa: E731
        rate = lambda b, to: (at(b).after == to).mean() if len(at(b)) else np.nan  # noqa: E731
        rows.append(f"| {seg} | {_pct(rate('30-59', '60-89'))} | {_pct(rate('30-59', 'current'))} | "
                    f"{_pct(rate('60-89', '90+'))} | {_pct(rate('60-89', 'current'))} | {_pct((g.now == '90+').mean())} |")
    npl = public()["npl"]
    ref = "\n".join(f"- {_published(e)}" for e in npl.values())
    return "\n".join(rows) + f"\n\nPublished (loan quality, not roll rates): \n{ref}\n- roll rates: {_published(public()['roll'])}."


def report(directory: Path = HERE) -> str:
    subjects = pd.read_parquet(directory / "subjects.parquet")
    records = pd.read_parquet(directory / "records.parquet")
    return "\n\n".join([
        "### Tax credit levels (SMEs; individuals get none), share of rated firms per evaluation year",
        tax_levels(records),
        "### National credit list entries per year, share of the segment's subjects",
        list_rates(subjects, records),
        "### Loan roll rates (monthly finance.loan_status, days past due)",
        roll_rates(records)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=HERE)
    ap.add_argument("--write", action="store_true", help="replace the figures section of data/sample/README.md")
    args = ap.parse_args(argv)
    text = report(args.dir)
    if not args.write:
        print(text)
        return 0
    readme = HERE / "README.md"
    body = readme.read_text()
    if BEGIN not in body or END not in body:
        raise SystemExit(f"{readme}: markers {BEGIN!r} and {END!r} not found")
    head, rest = body.split(BEGIN, 1)
    readme.write_text(head + BEGIN + "\n\n" + text + "\n\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
