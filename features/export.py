"""`creditgrade export`: one segment's subjects, records and outcomes as Parquet partitioned by subject, the
input of the Dask paths (``features.distributed``).

Layout: ``OUT/<segment>/part-00000/{subjects,records,outcomes}.parquet``, ..., and ``OUT/<segment>/manifest.json``
naming every partition with its key range, row counts and the SHA-256 of each file, and what the as-of check
needs (subjects, earliest reported day, watermarks) and the outcomes' as-of dates per horizon. A partition is a contiguous range of subject keys, so a
subject's records and outcomes are all in one partition. Records carry ``disputed`` (under an open objection at
export). The export is written into a temporary folder renamed into place once complete: an interrupted
export leaves the previous one, or none, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd

from creditgrade.features import freshness, loader
from creditgrade.features.catalog import check_segment
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import normalise_outcomes
from creditgrade.features.store import Store

PARTITION_SUBJECTS = 50_000  # one task's worth: ~50 k subjects' features build in a few seconds, in < 1 GB
FILES = ("subjects", "records", "outcomes")
MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_partition(folder: Path, frames: dict[str, pd.DataFrame]) -> dict:
    folder.mkdir(parents=True)
    entry = {"name": folder.name, "rows": {}, "sha256": {}}
    for name, df in frames.items():
        path = folder / f"{name}.parquet"
        df.to_parquet(path, index=False)
        entry["rows"][name] = len(df)
        entry["sha256"][name] = sha256(path)
    return entry


def export(store: Store, segment: str, out, partition_subjects: int = PARTITION_SUBJECTS) -> dict:
    """Write ``segment``'s inputs under ``out`` (see the module) and return the manifest."""
    check_segment(segment)
    if partition_subjects < 1:
        raise CreditgradeError(f"partition size must be at least 1 subject, not {partition_subjects}")
    final = Path(out) / segment
    work = Path(out) / f".{segment}.partial"
    shutil.rmtree(work, ignore_errors=True)
    outcomes = normalise_outcomes(store.outcomes(segment))
    with store.engine.connect() as conn:
        n, earliest = loader.extent(conn, segment)
    if n == 0:
        raise CreditgradeError(f"no {segment} subjects in the store: ingest them first")
    parts = []
    for i, inputs in enumerate(loader.chunks(store, segment, None, partition_subjects)):
        keys = inputs.subjects["subject_key"]
        records = inputs.records.assign(disputed=inputs.records["record_id"].isin(list(inputs.open_ids)))
        entry = _write_partition(work / f"part-{i:05d}", {
            "subjects": inputs.subjects, "records": records,
            "outcomes": outcomes[outcomes["subject_key"].isin(keys)]})
        parts.append({**entry, "keys": [keys.iloc[0], keys.iloc[-1]]})
    dates = outcomes.groupby("horizon_months")["as_of"].unique()
    manifest = {"segment": segment, "subjects": int(n), "earliest": str(earliest),
                "outcome_dates": {str(h): sorted(str(d.date()) for d in days) for h, days in dates.items()},
                "watermarks": {k: str(v) for k, v in freshness.of_store(store, segment).items()},
                "partitions": parts}
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return manifest


def read_manifest(out, segment: str) -> dict:
    path = Path(out) / segment / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CreditgradeError(f"no {segment} export in {out}: run `creditgrade export --segment {segment} "
                               f"--out {out}` first") from None
    except (ValueError, OSError) as exc:
        raise CreditgradeError(f"{path} cannot be read ({exc}): export again") from None
