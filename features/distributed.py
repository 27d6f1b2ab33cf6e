"""Features on a Dask cluster: each partition of an export (``features.export``) built on a worker with the
batch builder of ``features.build``, so the result equals the single-machine path row for row.

``connect("local")`` starts a LocalCluster (2 single-threaded worker processes); any other value is a
scheduler address. A partition whose file is missing, truncated or corrupt (its SHA-256 differs from the
manifest) fails the job with the partition named; a task whose worker dies is retried on another worker
(Dask reschedules it); results come back to the caller, which alone writes to the store.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from creditgrade.features import profile
from creditgrade.features.build import check_within, disputed_of, features_of, parse_date
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.export import FILES, read_manifest, sha256
from creditgrade.features.freshness import Freshness
from creditgrade.features.frames import normalise_outcomes, normalise_records, normalise_subjects

RETRIES = 2  # a task lost with its worker is retried this many times before the job fails


class PartitionError(CreditgradeError):
    """A partition of an export cannot be used; the message names it."""


def connect(scheduler: str = "local"):
    """A Dask client: a LocalCluster for ``"local"``, else the scheduler at that address."""
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        return Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None))
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise CreditgradeError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None


def read_partition(folder: Path, entry: dict) -> dict[str, pd.DataFrame]:
    """The partition's frames, normalised as the store's loader gives them, after checking every file."""
    frames = {}
    for name in FILES:
        path = Path(folder) / entry["name"] / f"{name}.parquet"
        if not path.is_file():
            raise PartitionError(f"partition {entry['name']}: {name}.parquet is missing")
        if sha256(path) != entry["sha256"][name]:
            raise PartitionError(f"partition {entry['name']}: {name}.parquet is truncated or corrupt "
                                 f"(its SHA-256 differs from the manifest): export again")
        try:
            frames[name] = pd.read_parquet(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise PartitionError(f"partition {entry['name']}: {name}.parquet cannot be read: {exc}") from None
    frames["subjects"] = normalise_subjects(frames["subjects"])
    frames["outcomes"] = normalise_outcomes(frames["outcomes"])
    return frames


def features_at(frames: dict[str, pd.DataFrame], segment: str, as_of: pd.Timestamp,
                with_disputed: bool = False) -> tuple[pd.DataFrame, dict]:
    """Features of a partition's frames as of ``as_of`` (and its disputed records), as ``build_features``."""
    subjects = frames["subjects"]
    subjects = subjects[profile.exists_at(subjects, segment, as_of)]
    raw = frames["records"]
    raw = raw[raw["reported_date"] < as_of]
    open_ids = frozenset(raw.loc[raw["disputed"], "record_id"].tolist())
    records = normalise_records(raw)
    features = features_of(subjects, records, segment, as_of)
    disputed = disputed_of(subjects, records, segment, as_of, open_ids, features) if with_disputed else {}
    return features, disputed


def partition_features(folder: Path, entry: dict, segment: str, as_of: pd.Timestamp,
                       with_disputed: bool = False) -> tuple[pd.DataFrame, dict]:
    """One partition's features as of ``as_of`` (and its disputed records)."""
    return features_at(read_partition(folder, entry), segment, as_of, with_disputed)


def training_rows(frames: dict[str, pd.DataFrame], segment: str, dates: list[pd.Timestamp], horizon: int = 12):
    """The rows of ``features.build.build_training_set`` of a partition's frames (:func:`read_partition`), a date
    at a time (so a caller need not hold them all): features at each date joined with the outcome at that date
    and horizon (columns ``defaulted`` and ``as_of``)."""
    outcomes = frames["outcomes"]
    outcomes = outcomes[outcomes["horizon_months"] == horizon]
    for day in dates:
        features, _ = features_at(frames, segment, day)
        labels = outcomes.loc[outcomes["as_of"] == day].set_index("subject_key")["defaulted"]
        part = features.join(labels.astype("int64"), how="inner")
        part.insert(len(features.columns), "as_of", pd.Timestamp(day).as_unit("ns"))  # the outcomes' unit
        yield part


def checked_as_of(manifest: dict, as_of) -> tuple[pd.Timestamp, Freshness]:
    """The as-of date, checked against the export as ``features.build.check_as_of`` checks the store, and
    what grades as of it stand on."""
    day = parse_date(as_of)
    marks = {k: pd.Timestamp(v).date() for k, v in manifest["watermarks"].items()}
    earliest = None if manifest["earliest"] == "None" else pd.Timestamp(manifest["earliest"])
    return day, check_within(manifest["segment"], day, manifest["subjects"], earliest, marks)


def submit_partitions(client, out, segment: str, task, *args) -> list:
    """Futures of ``task(folder, entry, segment, *args)`` on every partition of the export, in key order."""
    folder = Path(out).resolve() / segment
    return [client.submit(task, folder, entry, segment, *args, retries=RETRIES, pure=False)
            for entry in read_manifest(out, segment)["partitions"]]


def map_partitions(client, out, segment: str, task, *args) -> list:
    """The results of :func:`submit_partitions`, gathered."""
    return client.gather(submit_partitions(client, out, segment, task, *args))


def build_features(client, out, segment: str, as_of, *, with_disputed: bool = False):
    """:func:`features.build.build_features` of the export under ``out``, one task per partition."""
    day, _ = checked_as_of(read_manifest(out, segment), as_of)
    parts = map_partitions(client, out, segment, partition_features, day, with_disputed)
    features = pd.concat([f for f, _ in parts])
    if not with_disputed:
        return features
    return features, {k: v for _, d in parts for k, v in d.items()}
