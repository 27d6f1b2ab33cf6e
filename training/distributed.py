"""LightGBM trained on a Dask cluster (``lightgbm.dask``) from an export's partitions (``features.export``):
the training set is built on the workers, partition by partition, with the single-machine builder, less the
rows in default at their as-of date (as the segment pipeline leaves them out), and never gathered; the fitted
booster comes back as an ordinary ``lightgbm.LGBMClassifier``. ``training.cluster`` trains, evaluates and
registers a segment's models with it (``creditgrade train --scheduler``).

The fit takes the segment's model inputs (``model_feature_names``, as the segment pipeline does; policy
inputs are not trained on) in float32 (:func:`as_matrix`; LightGBM bins from float32 itself), each worker's
share of the rows in one matrix that ``lightgbm.dask`` and LightGBM read without a copy: a worker holds its
rows once at 4 bytes a value, where a pandas partition of every feature in float64 was held four times at 8
(partition, column selection, ``lightgbm.dask``'s concatenation, LightGBM's matrix).

Why the fit stays within 0.005 AUC of a local fit on the same rows: LightGBM's data-parallel learner sums
every worker's histograms before it chooses a split, so splits, ``min_child_samples`` and the number of rounds
are the local fit's; only the bin bounds differ, because each worker bins its share of the features from its
own rows, as a local fit bins a set of more than 200,000 rows from a sample (``bin_construct_sample_cnt``).
On a few thousand rows that alone moves the test AUC by more than 0.005 (bins from a random half of the rows
move the local fit itself by up to 0.037 on the test's households), so the bound is tested on rows where the
local fit's own spread under that change is below it. Bins are not forced: LightGBM 4.7 gives feature
``start[rank] + i`` the forced bounds of feature ``i`` on every worker but the first (open pull request
lightgbm-org/LightGBM#7436), which put the Dask fit 0.03-0.04 AUC from the local one.
"""
from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from creditgrade.features.catalog import catalog, model_feature_names
from creditgrade.features.distributed import RETRIES, read_partition, training_rows
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.export import read_manifest
from creditgrade.models.estimator import codes
from creditgrade.models.grades import Scale, config

PARAMS = dict(objective="binary", n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
              subsample=1.0, colsample_bytree=1.0, reg_lambda=1.0, verbose=-1, random_state=0)
"""Fixed parameters: the Dask path trains the size chosen on one machine, it does not search."""


def outcome_dates(out, segment: str, horizon: int) -> list[pd.Timestamp]:
    """The export's as-of dates with outcomes at ``horizon`` months (its manifest's)."""
    dates = read_manifest(out, segment).get("outcome_dates", {}).get(str(horizon))
    if not dates:
        raise CreditgradeError(f"the {segment} export has no outcomes with a {horizon}-month horizon: ingest "
                               f"outcomes, then export again")
    return [pd.Timestamp(d) for d in dates]


def as_matrix(frame: pd.DataFrame, columns: list[str], out: np.ndarray | None = None) -> np.ndarray:
    """``frame[columns]`` as a C-ordered float32 matrix (written into ``out`` if given), a categorical column
    as its codes (missing NaN): what LightGBM makes of the DataFrame, in float32."""
    matrix = np.empty((len(frame), len(columns)), dtype=np.float32) if out is None else out
    for j, name in enumerate(columns):
        matrix[:, j], _ = codes(frame[name])  # a column at a time: only one column is ever held in float64
    return matrix


def partition_rows(folder: Path, entry: dict, segment: str, dates, horizon: int, policy: dict, share: float = 1.0):
    """One partition's training rows at ``dates`` (``features.distributed.training_rows``), a date at a time,
    without the rows in default at their as-of date by ``policy``'s default rules (``Scale.not_in_default``,
    as the segment pipeline leaves them out); of the subjects :func:`in_sample` keeps for ``share`` only, if
    below 1 (a subject's features are its own records', so they are the same without the others)."""
    frames = read_partition(folder, entry)
    if share < 1:
        frames = {name: frame[in_sample(frame["subject_key"], share)] for name, frame in frames.items()}
    scale = Scale.from_config(policy)
    for rows in training_rows(frames, segment, dates, horizon):
        yield scale.not_in_default(rows)


def in_sample(keys: pd.Series, share: float) -> np.ndarray:
    """Whether each subject key is in a random sample of about ``share`` of all subjects: its (fixed, seedless)
    pandas hash below that share of the hash range. Unlike a range of keys (a partition: credit codes and
    household numbers begin with their region), it spreads over every region; the same keys, the same sample."""
    return pd.util.hash_pandas_object(keys, index=False).to_numpy() / 2.0**64 < share


def _worker_matrix(folder: Path, entries: list[dict], segment: str, dates, horizon: int, columns: list[str],
                   policy: dict, levels=None):
    """The training rows of ``entries`` (:func:`partition_rows`), a partition and a date at a time, in one
    float32 matrix made once: its rows are bounded by subjects x dates, and the pages past the rows written
    are never touched, so they take no memory. ``levels``: a ``models.peers.PeerLevels`` that learned its
    medians; each row's levels at its date are added."""
    bound = sum(e["rows"]["subjects"] for e in entries) * len(dates)
    matrix, labels, n = np.empty((bound, len(columns)), dtype=np.float32), np.empty(bound, dtype=np.int64), 0
    for entry in entries:
        for rows in partition_rows(folder, entry, segment, dates, horizon, policy):
            inputs = rows if levels is None else levels.inputs_at(rows, rows["as_of"].to_numpy())
            as_matrix(inputs, columns, matrix[n:n + len(rows)])
            labels[n:n + len(rows)] = rows["defaulted"].to_numpy()
            n += len(rows)
    return pd.DataFrame(matrix[:n], columns=columns, copy=False), labels[:n]


def training_matrix(client, out, segment: str, horizon: int = 12, dates=None, policy: dict | None = None,
                    levels=None):
    """The export's training set at ``dates`` (every date with outcomes if None) without the rows in default
    at their as-of date by ``policy`` (the grades file's, now, if None): ``features.build.build_training_set``'s
    rows less ``training.pipeline.without_defaulters``', built on the workers partition by partition, as
    ``(X, y)`` kept there: ``X`` a Dask DataFrame of the segment's model inputs (:func:`model_inputs`) in
    float32 (:func:`as_matrix`), ``y`` a Dask array of ``defaulted``. ``levels``: a ``models.peers.PeerLevels``
    that learned its medians (from a sample): its levels are added to the inputs, each row's at its date.

    Each worker builds its share of the partitions into one matrix, which ``lightgbm.dask`` and LightGBM
    then read without a copy (a single float32 frame is concatenated and turned into an array as views), so
    a worker holds its rows once, at 4 bytes a value. A worker that dies has its share rebuilt on another."""
    import dask
    import dask.array as da
    import dask.dataframe as dd

    columns, _ = model_inputs(segment)
    columns += [] if levels is None else levels.level_names
    dates = outcome_dates(out, segment, horizon) if dates is None else list(dates)
    policy = config(segment) if policy is None else policy
    folder = Path(out).resolve() / segment
    entries = read_manifest(out, segment)["partitions"]
    workers = sorted(client.scheduler_info()["workers"])[:len(entries)]
    parts = [dask.delayed(client.submit(_worker_matrix, folder, entries[i::len(workers)], segment, dates, horizon,
                                        columns, policy, levels, workers=[w], allow_other_workers=True, retries=RETRIES,
                                        pure=False))
             for i, w in enumerate(workers)]
    X = dd.from_delayed([p[0] for p in parts], meta=pd.DataFrame(columns=columns, dtype=np.float32),
                        verify_meta=False)
    y = da.concatenate([da.from_delayed(p[1], (np.nan,), np.int64) for p in parts])
    return client.persist(X), client.persist(y)  # keys of their own: the tuples are released, not counted twice


def model_inputs(segment: str) -> tuple[list[str], dict[str, list[str]]]:
    """The segment's model inputs and the fixed categories of those that are categorical."""
    columns = model_feature_names(segment)
    return columns, {s.name: list(s.categories) for s in catalog(segment) if s.name in columns and s.categorical}


def fit_lightgbm(client, X, y, columns: list[str], categories: dict[str, list] | None = None,
                 **params) -> lgb.LGBMClassifier:
    """A LightGBM classifier fitted on the cluster on :func:`training_matrix` (or any Dask collections of
    float32 ``X`` made by :func:`as_matrix` and labels ``y``); ``columns`` names ``X``'s columns and ``categories``
    the categories of its categorical ones, so the model predicts from a feature DataFrame as if fitted on
    one; ``params`` over :data:`PARAMS`."""
    from lightgbm.dask import DaskLGBMClassifier

    categories = categories or {}
    # force_col_wise: LightGBM otherwise lays the bins out both ways to time them, about 100 more bytes a row
    model = DaskLGBMClassifier(client=client, **{**PARAMS, "force_col_wise": True, **params})
    model.fit(X, y, feature_name=columns,
              categorical_feature=[j for j, name in enumerate(columns) if name in categories] or "auto")
    model = model.to_local()
    model.booster_.pandas_categorical = [categories[name] for name in columns if name in categories] or None
    return model
