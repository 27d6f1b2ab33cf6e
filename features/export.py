"""`creditgrade export`: one segment's subjects, records and outcomes as Parquet partitioned by subject, the
input of the Dask paths (``features.distributed``).

Layout: ``OUT/<segment>/part-00000/{subjects,records,outcomes}.parquet``, ..., and ``OUT/<segment>/manifest.json``
naming every partition with its key range, row counts and the SHA-256 of each file, and what the as-of check
needs (subjects, earliest reported day, watermarks) and the outcomes' as-of dates per horizon. A partition is a contiguous range of subject keys
(of its batch, for a source made in batches), so a subject's records and outcomes are all in one partition. Records carry ``disputed`` (under an open objection at
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
from creditgrade.features.build import subjects_and_earliest
from creditgrade.features.catalog import check_segment
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames, normalise_outcomes
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


def _parts(source, segment: str, size: int):
    """(subjects, records with ``disputed``, outcomes) of ``size`` subjects at a time, in key order."""
    if isinstance(source, Store):
        outcomes = normalise_outcomes(source.outcomes(segment))
        chunks = ((i.subjects, i.records, i.open_ids) for i in loader.chunks(source, segment, None, size))
    else:
        outcomes = source.outcomes[source.outcomes["segment"] == segment]
        every = source.subjects[source.subjects["segment"] == segment].sort_values("subject_key")
        records = source.records[source.records["segment"] == segment]
        chunks = ((part, records[records["subject_key"].isin(part["subject_key"])], source.open_objection_ids)
                  for part in (every.iloc[lo:lo + size] for lo in range(0, len(every), size)))
    for subjects, part_records, open_ids in chunks:  # not ``records``: the chunks above read it lazily
        keys = subjects["subject_key"]
        yield (subjects, part_records.assign(disputed=part_records["record_id"].isin(list(open_ids))),
               outcomes[outcomes["subject_key"].isin(keys)])


def export(source, segment: str, out, partition_subjects: int = PARTITION_SUBJECTS) -> dict:
    """Write ``segment``'s inputs from ``source`` under ``out`` (see the module) and return the manifest.
    ``source`` is a ``Store``, in-memory ``Frames``, or an iterable of ``Frames`` taken one at a time (a
    population larger than memory, made in batches of distinct subjects): each batch is partitioned on its
    own, so partitions of different batches may interleave in key order, while a subject stays in one."""
    check_segment(segment)
    if partition_subjects < 1:
        raise CreditgradeError(f"partition size must be at least 1 subject, not {partition_subjects}")
    final = Path(out) / segment
    work = Path(out) / f".{segment}.partial"
    shutil.rmtree(work, ignore_errors=True)
    parts, dates, marks, total, first = [], {}, {}, 0, None
    for batch in [source] if isinstance(source, (Store, Frames)) else source:
        n, earliest = subjects_and_earliest(batch, segment)
        if n == 0:
            continue
        total += n
        first = earliest if first is None or (earliest is not None and earliest < first) else first
        for source_name, through in freshness.watermarks_of(batch, segment).items():
            marks[source_name] = max(through, marks.get(source_name, through))
        for subjects, records, outcomes in _parts(batch, segment, partition_subjects):
            entry = _write_partition(work / f"part-{len(parts):05d}", {"subjects": subjects, "records": records,
                                                                       "outcomes": outcomes})
            parts.append({**entry, "keys": [subjects["subject_key"].iloc[0], subjects["subject_key"].iloc[-1]]})
            for horizon, days in outcomes.groupby("horizon_months")["as_of"].unique().items():
                dates.setdefault(str(horizon), set()).update(str(pd.Timestamp(d).date()) for d in days)
    if total == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise CreditgradeError(f"no {segment} subjects to export: ingest them first")
    manifest = {"segment": segment, "subjects": int(total), "earliest": str(first and pd.Timestamp(first).date()),
                "outcome_dates": {h: sorted(days) for h, days in dates.items()},
                "watermarks": {k: str(v) for k, v in sorted(marks.items())},
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
