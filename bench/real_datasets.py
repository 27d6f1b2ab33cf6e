"""5-fold stratified CV AUC of creditgrade's Scorecard beside optbinning's Scorecard
(BinningProcess with default settings + the same sklearn LogisticRegression) on public data.

    .venv/bin/python bench/real_datasets.py [german taiwan polish]
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).parent))
from datasets import LOADERS  # noqa: E402

from creditgrade.models.scorecard import Scorecard  # noqa: E402


def ours(X, y):
    card = Scorecard().fit(X, y)
    return lambda Z: card.predict_proba(Z)[:, 1]


def peer(X, y):
    from optbinning import BinningProcess
    from optbinning import Scorecard as OptScorecard

    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    bp = BinningProcess(list(X.columns), categorical_variables=categorical)
    card = OptScorecard(binning_process=bp, estimator=Scorecard()._lr()).fit(X, y)
    return lambda Z: card.predict_proba(Z)[:, 1]


def cross_validate(fit, X, y):
    aucs, seconds = [], 0.0
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        start = time.perf_counter()
        score = fit(X.iloc[train], y[train])
        seconds += time.perf_counter() - start
        aucs.append(roc_auc_score(y[test], score(X.iloc[test])))
    return np.mean(aucs), np.std(aucs), seconds / 5


def main(names):
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"{'dataset':8} {'rows':>6} {'feat':>4}  {'creditgrade AUC':>17} {'fit s':>6}"
          f"  {'optbinning AUC':>17} {'fit s':>6}")
    for name in names:
        data = LOADERS[name]()
        a, sa, ta = cross_validate(ours, data.X, data.y)
        b, sb, tb = cross_validate(peer, data.X, data.y)
        print(f"{name:8} {len(data.y):6d} {data.X.shape[1]:4d}  {a:.4f} +- {sa:.4f} {ta:6.2f}"
              f"  {b:.4f} +- {sb:.4f} {tb:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(LOADERS))
