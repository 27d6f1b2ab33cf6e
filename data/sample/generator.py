"""Synthetic population for creditgrade: subjects, monthly records from five sources, outcomes, oracle.

Each subject's latent credit quality drifts monthly (AR(1)) around a static level set by segment, sector,
size, district and profession, under the shocks of population.toml (the 2020 epidemic with deferred
repayments, the 2021 Zhengzhou flood, the property downturn, the 2022 lockdowns). Defaults are drawn from a
monthly hazard of that quality plus a hidden part no record shows; records are noisy, thin-file traces of
it; the tax credit level and the national credit lists follow from the records (taxlevel.py, lists.py).
The oracle holds the true 12-month PD of every outcome row given the full latent state (latent.py).

    generate(n_smes=2000, n_households=1500, n_practitioners=800, seed=0) -> dict of DataFrames
    write_population(out_dir, fmt="parquet", **same) -> dict of paths
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from creditgrade.data.sample import latent, links, lists, subjects
from creditgrade.data.sample.chunks import assemble
from creditgrade.data.sample.loans import Loans, default_traces
from creditgrade.data.sample.records import Context, events, insurance, tax
from creditgrade.data.sample.timeline import Timeline, params

SUBJECT_COLUMNS = {
    "segment": pa.string(), "subject_id": pa.string(), "name": pa.string(), "district": pa.string(),
    "sector": pa.string(), "size": pa.string(), "founded": pa.date32(), "village_code": pa.string(),
    "township_code": pa.string(), "village_name": pa.string(), "township_name": pa.string(), "head_id": pa.string(), "members": pa.int16(), "labour_force": pa.int16(),
    "land_mu": pa.float64(), "agri_insurance": pa.bool_(), "coop_member": pa.bool_(), "profession": pa.string(),
    "licensed_since": pa.date32(),
}
TABLES = ("subjects", "records", "outcomes", "oracle")


def _subject_table(pop: subjects.Population) -> pa.Table:
    cols = {"segment": np.full(pop.n, pop.segment), "subject_id": pop.subject_id, **pop.columns}
    arrays = {}
    for name, typ in SUBJECT_COLUMNS.items():
        v = cols.get(name)
        if v is None:
            arrays[name] = pa.nulls(pop.n, typ)
        elif typ == pa.date32():
            arrays[name] = pa.array(np.asarray(v, np.int32), typ)
        else:
            arrays[name] = pa.array(v, typ)
    return pa.table(arrays)


def _records(pop, lat, tl, seed) -> pa.Table:
    ctx = Context(pop, lat, tl, seed)
    loans = Loans(ctx)
    chunks = tax(ctx) + insurance(ctx) + loans.chunks() + default_traces(ctx, loans)
    for kind, spec in params()["events"][pop.segment].items():
        chunks.append(events(ctx, kind, spec, loans.active, loans.accounts))
    chunks += lists.entries(ctx, chunks)
    chunks = [c.until(ctx.after.exit_day).clipped(tl.end_day) for c in chunks]
    table = assemble(pop.segment, pop.subject_id, [c for c in chunks if len(c.row)])
    return pa.concat_tables([table, links.links(ctx, table)]) if pop.segment == "sme" else table


def _outcomes(pop, lat, tl, seed) -> tuple[pa.Table, pa.Table]:
    o = latent.outcomes(pop, lat, seed, tl)
    keys = {"segment": pa.array(np.full(len(o["row"]), pop.segment)),
            "subject_id": pa.array(pop.subject_id).take(pa.array(o["row"])),
            "as_of": pa.array(tl.last[o["t"]].astype(np.int32), pa.date32())}
    horizon = params()["period"]["horizon_months"]
    outcomes = pa.table({**keys, "horizon_months": pa.array(np.full(len(o["row"]), horizon, np.int8)),
                         "defaulted": pa.array(o["defaulted"])})
    return outcomes, pa.table({**keys, "true_pd": pa.array(o["true_pd"])})


def populations(n_smes: int, n_households: int, n_practitioners: int, seed: int, tl: Timeline):
    """Each non-empty segment's subjects and latent state, in generation order (persons' identity numbers
    are distinct across segments)."""
    taken: set = set()
    makers = [(n_smes, lambda: subjects.smes(n_smes, seed, tl)),
              (n_households, lambda: subjects.households(n_households, seed, tl, taken)),
              (n_practitioners, lambda: subjects.practitioners(n_practitioners, seed, tl, taken))]
    for n, make in makers:
        if n:
            pop = make()
            yield pop, latent.simulate(pop, seed, tl)


def generate_tables(n_smes: int = 2000, n_households: int = 1500, n_practitioners: int = 800, seed: int = 0,
                    start: str = "2019-01", end: str = "2025-12") -> dict[str, pa.Table]:
    """The four tables as Arrow tables (dates as date32)."""
    tl = Timeline(start, end)
    out = {name: [] for name in TABLES}
    for pop, lat in populations(n_smes, n_households, n_practitioners, seed, tl):
        out["subjects"].append(_subject_table(pop))
        out["records"].append(_records(pop, lat, tl, seed))
        outcomes, oracle = _outcomes(pop, lat, tl, seed)
        out["outcomes"].append(outcomes)
        out["oracle"].append(oracle)
    return {name: pa.concat_tables(tables) for name, tables in out.items()}


def generate(n_smes: int = 2000, n_households: int = 1500, n_practitioners: int = 800, seed: int = 0,
             start: str = "2019-01", end: str = "2025-12") -> dict:
    """The population as pandas DataFrames: subjects, records, outcomes, oracle (dates as datetime64)."""
    tables = generate_tables(n_smes, n_households, n_practitioners, seed, start, end)
    nullable = {pa.int16(): pd.Int16Dtype(), pa.bool_(): pd.BooleanDtype()}.get
    return {name: t.to_pandas(date_as_object=False, types_mapper=nullable) for name, t in tables.items()}


def write_population(out_dir, fmt: str = "parquet", **kwargs) -> dict[str, Path]:
    """Write subjects, records, outcomes and oracle/true_pd as Parquet (zstd) or CSV; return the paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out_dir = Path(out_dir)
    (out_dir / "oracle").mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in generate_tables(**kwargs).items():
        path = out_dir / ("oracle/true_pd" if name == "oracle" else name)
        path = path.with_suffix("." + fmt)
        if fmt == "parquet":
            pq.write_table(table, path, compression="zstd", compression_level=9)
        else:
            pacsv.write_csv(table, path)
        paths[name] = path
    return paths
