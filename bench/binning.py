"""Scorecard fit time and held-out AUC: creditgrade's Scorecard vs optbinning's BinningProcess +
the same sklearn LogisticRegression, on one synthetic table, in the same run.

    .venv/bin/python bench/binning.py                 # 100,000 rows x 20 features
    .venv/bin/python bench/binning.py --rows 1000000 --no-peer
"""

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from creditgrade.models.scorecard import Scorecard

SPECIAL = -999.0


def synthetic(rows, features=20, seed=0):
    """Monotone, non-linear and noise features; 5 % missing in every third, 2 % specials in every
    fifth; 15 features carry signal."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    shapes = [np.tanh, np.exp, lambda v: np.log1p(np.abs(v)), lambda v: v]
    weights = np.r_[rng.uniform(0.1, 0.5, 15) * rng.choice([-1, 1], 15), np.zeros(features - 15)]
    lp = -2.0 + sum(w * shapes[j % 4](X[:, j]) for j, w in enumerate(weights))
    y = (rng.random(rows) < 1 / (1 + np.exp(-lp))).astype(int)
    for j in range(0, features, 3):
        X[rng.random(rows) < 0.05, j] = np.nan
    for j in range(0, features, 5):
        X[rng.random(rows) < 0.02, j] = SPECIAL
    return pd.DataFrame(X, columns=[f"f{j:02d}" for j in range(features)]), y


def timed(fit):
    start = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - start


def ours(X, y):
    card = Scorecard(special_values=[SPECIAL]).fit(X, y)
    return lambda Z: card.predict_proba(Z)[:, 1]


def peer(X, y, lr):
    from optbinning import BinningProcess

    bp = BinningProcess(list(X.columns), special_codes=[SPECIAL]).fit(X, y)
    model = lr.fit(bp.transform(X, metric="woe"), y)
    return lambda Z: model.predict_proba(bp.transform(Z, metric="woe"))[:, 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-peer", action="store_true", help="time only creditgrade")
    args = parser.parse_args()
    X, y = synthetic(args.rows)
    X_fit, X_test, y_fit, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
    print(f"{len(X_fit):,} fit rows x {X.shape[1]} features, {len(X_test):,} held out, "
          f"bad rate {y.mean():.3f}")
    score, t_ours = timed(lambda: ours(X_fit, y_fit))
    auc_ours = roc_auc_score(y_test, score(X_test))
    print(f"creditgrade Scorecard      fit {t_ours:8.2f} s   held-out AUC {auc_ours:.4f}")
    if args.no_peer:
        return
    score, t_peer = timed(lambda: peer(X_fit, y_fit, Scorecard()._lr()))
    auc_peer = roc_auc_score(y_test, score(X_test))
    print(f"optbinning BinningProcess  fit {t_peer:8.2f} s   held-out AUC {auc_peer:.4f}")
    print(f"speed-up {t_peer / t_ours:.1f}x   AUC difference {auc_ours - auc_peer:+.4f}")


if __name__ == "__main__":
    main()
