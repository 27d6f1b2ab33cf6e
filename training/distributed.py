"""LightGBM trained on a Dask cluster (``lightgbm.dask``) from an export's partitions (``features.export``):
the training set is built on the workers, partition by partition, with the single-machine builder, and never
gathered; the fitted booster comes back as an ordinary ``lightgbm.LGBMClassifier``.

LightGBM's data-parallel learner would bin each feature on whichever worker's rows it was given, so a
Dask fit drifts from a local one; here every numeric feature's bin bounds are fixed beforehand from
Dask's approximate quantiles over all partitions (``forcedbins_filename``, written beside the export,
which the workers read anyway), and the local fit it is compared with uses the same bounds.
``tests/test_distributed.py`` holds the Dask fit within 0.005 AUC of the local one on the same rows.
"""
from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from creditgrade.features.distributed import map_partitions_lazily, partition_training_set
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.export import read_manifest

PARAMS = dict(objective="binary", n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
              subsample=1.0, colsample_bytree=1.0, reg_lambda=1.0, verbose=-1, random_state=0)
"""Fixed parameters: the Dask path trains the size chosen on one machine, it does not search."""


def training_set(client, out, segment: str, horizon: int = 12):
    """The export's training set as a Dask DataFrame, one partition per export partition, kept on the workers."""
    dates = read_manifest(out, segment).get("outcome_dates", {}).get(str(horizon))
    if not dates:
        raise CreditgradeError(f"the {segment} export has no outcomes with a {horizon}-month horizon: ingest "
                               f"outcomes, then export again")
    return map_partitions_lazily(client, out, segment, partition_training_set,
                                 [pd.Timestamp(d) for d in dates], horizon).persist()


def forced_bins(train, features: list[str], path: Path, max_bin: int = 255) -> dict:
    """Bin upper bounds of each numeric feature from approximate quantiles over every partition, written
    to ``path`` in LightGBM's forced-bins format; returns the parameters that use them."""
    numeric = [f for f in features if not isinstance(train[f].dtype, pd.CategoricalDtype)]
    quantiles = train[numeric].quantile(np.linspace(0, 1, max_bin)[1:-1]).compute()
    bounds = [{"feature": features.index(f), "bin_upper_bound": sorted(set(quantiles[f].dropna().tolist()))}
              for f in numeric]
    path.write_text(json.dumps([b for b in bounds if b["bin_upper_bound"]]))
    return {"forcedbins_filename": str(path), "max_bin": max_bin}


def fit_lightgbm(client, train, features: list[str], **params) -> lgb.LGBMClassifier:
    """A LightGBM classifier fitted on the cluster (``train``: :func:`training_set` or a slice of it);
    ``params`` over :data:`PARAMS` (pass :func:`forced_bins`'s to fix the bins)."""
    from lightgbm.dask import DaskLGBMClassifier

    model = DaskLGBMClassifier(client=client, **{**PARAMS, **params})
    model.fit(train[features], train["defaulted"])
    return model.to_local()
