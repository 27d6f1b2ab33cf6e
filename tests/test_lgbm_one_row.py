"""One row's TreeSHAP through LightGBM's single-row C API equals ``predict(pred_contrib=True)``, also when
serving threads walk the same booster at once."""
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np

from creditgrade.models.lgbm import _one_row_contributions


def test_one_row_contributions_equal_the_batch_walk_from_concurrent_threads():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 12))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (X[:, 0] + np.nan_to_num(X[:, 1]) * X[:, 2] + rng.normal(size=2000) > 0).astype(int)
    booster = lgb.train(dict(objective="binary", num_leaves=15, verbose=-1, num_threads=1),
                        lgb.Dataset(X, y), num_boost_round=40)
    expected = booster.predict(X[:400], pred_contrib=True, num_threads=1)

    def walk(start: int) -> np.ndarray:
        return np.vstack([_one_row_contributions(booster, X[i:i + 1]) for i in range(start, 400, 4)])

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(walk, range(4)))
    for start, part in enumerate(parts):
        np.testing.assert_array_equal(part, expected[start::4])
