"""LightGBM trained on a Dask cluster (``lightgbm.dask``) from an export's partitions (``features.export``):
the training set is built on the workers, partition by partition, with the single-machine builder, and never
gathered; the fitted booster comes back as an ordinary ``lightgbm.LGBMClassifier``.

The fit takes the segment's model inputs (``model_feature_names``, as the segment pipeline does; policy
inputs are not trained on) as one float32 matrix per partition (:func:`as_matrix`): LightGBM bins from
float32 itself, and a worker then holds its rows twice (Dask's partitions and ``lightgbm.dask``'s
concatenation, which LightGBM reads without a copy) at 4 bytes a value, where a pandas partition of every
feature in float64 was held four times at 8 (partition, column selection, concatenation, LightGBM's matrix).

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
from creditgrade.features.distributed import partition_training_set, submit_partitions
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.export import read_manifest

PARAMS = dict(objective="binary", n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
              subsample=1.0, colsample_bytree=1.0, reg_lambda=1.0, verbose=-1, random_state=0)
"""Fixed parameters: the Dask path trains the size chosen on one machine, it does not search."""


def _dates(out, segment: str, horizon: int) -> list[pd.Timestamp]:
    dates = read_manifest(out, segment).get("outcome_dates", {}).get(str(horizon))
    if not dates:
        raise CreditgradeError(f"the {segment} export has no outcomes with a {horizon}-month horizon: ingest "
                               f"outcomes, then export again")
    return [pd.Timestamp(d) for d in dates]


def as_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``frame[columns]`` as one C-ordered float32 matrix, a categorical column as its codes (missing NaN):
    what LightGBM makes of the DataFrame, in float32."""
    matrix = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, name in enumerate(columns):
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.cat.codes.where(column.cat.codes >= 0)
        matrix[:, j] = column.to_numpy(dtype=np.float32, na_value=np.nan)
    return matrix


def _partition_matrix(folder: Path, entry: dict, segment: str, dates, horizon: int, columns: list[str]):
    rows = partition_training_set(folder, entry, segment, dates, horizon)
    return as_matrix(rows, columns), rows["defaulted"].to_numpy()


def training_matrix(client, out, segment: str, horizon: int = 12):
    """The export's training set (``features.build.build_training_set``'s rows, built on the workers partition
    by partition) as Dask arrays ``(X, y)`` kept there, one chunk per export partition: ``X`` the segment's
    model inputs (:func:`model_inputs`) by :func:`as_matrix`, ``y`` ``defaulted``."""
    import dask
    import dask.array as da

    columns, _ = model_inputs(segment)
    parts = [dask.delayed(f) for f in submit_partitions(client, out, segment, _partition_matrix,
                                                         _dates(out, segment, horizon), horizon, columns)]
    X = da.concatenate([da.from_delayed(p[0], (np.nan, len(columns)), np.float32) for p in parts])
    y = da.concatenate([da.from_delayed(p[1], (np.nan,), np.int64) for p in parts])
    return X, y


def model_inputs(segment: str) -> tuple[list[str], dict[str, list[str]]]:
    """The segment's model inputs and the fixed categories of those that are categorical."""
    columns = model_feature_names(segment)
    return columns, {s.name: list(s.categories) for s in catalog(segment) if s.name in columns and s.categorical}


def fit_lightgbm(client, X, y, columns: list[str], categories: dict[str, list] | None = None,
                 **params) -> lgb.LGBMClassifier:
    """A LightGBM classifier fitted on the cluster from Dask arrays (:func:`training_matrix`, or any float32
    ``X`` made by :func:`as_matrix` and labels ``y``); ``columns`` names ``X``'s columns and ``categories``
    the categories of its categorical ones, so the model predicts from a feature DataFrame as if fitted on
    one; ``params`` over :data:`PARAMS`."""
    from lightgbm.dask import DaskLGBMClassifier

    categories = categories or {}
    model = DaskLGBMClassifier(client=client, **{**PARAMS, **params})
    model.fit(X, y, feature_name=columns,
              categorical_feature=[j for j, name in enumerate(columns) if name in categories] or "auto")
    model = model.to_local()
    model.booster_.pandas_categorical = [categories[name] for name in columns if name in categories] or None
    return model
