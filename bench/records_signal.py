"""How much of the oracle's signal the records carry: oracle AUC vs out-of-time model AUC per segment.

    python bench/records_signal.py --sample                       # the committed sample in data/sample
    python bench/records_signal.py --smes 2000 --households 1500 --practitioners 800 --seed 20250101
    python bench/records_signal.py --smes 800 --segments sme --no-scorecard     # a quick loop

Per segment: outcome rows, 12-month default rate, the oracle's AUC (true PD) on all rows and on the
out-of-time test dates (the last 4 as-of dates, 2024), LightGBM and scorecard AUC on those test rows
(trained on the earlier dates by training.pipeline), the gap oracle(test) - LightGBM, and diagnostics:
the best single feature's AUC in time (train + validation dates) and out of time, and the best
negative-event count feature out of time. Target (the issue): oracle 0.75-0.88 and LightGBM
oracle - 0.10 .. oracle - 0.04 out of time. (Not named signal.py: a bench/signal.py would shadow the
standard library's ``signal`` module for every script in bench/.)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-signal")

from sklearn.metrics import roc_auc_score  # noqa: E402

from creditgrade.data.sample.generator import generate  # noqa: E402
from creditgrade.features import ids  # noqa: E402
from creditgrade.features.build import build_training_set  # noqa: E402
from creditgrade.features.catalog import catalog  # noqa: E402
from creditgrade.features.frames import Frames  # noqa: E402
from creditgrade.training.pipeline import fit_grade_model, split_by_date  # noqa: E402

SEGMENTS = ("sme", "household", "practitioner")
SAMPLE = ROOT / "data" / "sample"


def read_sample(directory: Path = SAMPLE) -> dict:
    read = lambda name: pd.read_parquet(directory / f"{name}.parquet")  # noqa: E731
    return {"subjects": read("subjects"), "records": read("records"), "outcomes": read("outcomes"),
            "oracle": read("oracle/true_pd")}


def _auc(y, score) -> float:
    y = np.asarray(y)
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def _feature_auc(df: pd.DataFrame, name: str) -> float:
    """Direction-free AUC of one numeric feature (missing values as the median)."""
    x = pd.to_numeric(df[name], errors="coerce")
    if x.notna().sum() == 0 or x.nunique() < 2:
        return 0.5
    a = _auc(df["defaulted"], x.fillna(x.median()))
    return max(a, 1 - a)


def measure(pop: dict, segment: str, scorecard: bool = True) -> dict:
    sub = {k: v[v.segment == segment] for k, v in pop.items()}
    frames = Frames.from_population({k: sub[k] for k in ("subjects", "records", "outcomes")})
    data = build_training_set(frames, segment)
    split = split_by_date(data)
    oracle = sub["oracle"].assign(subject_key=[ids.subject_key(segment, s) for s in sub["oracle"].subject_id])
    oracle["as_of"] = pd.to_datetime(oracle["as_of"])
    pd_of = oracle.set_index(["subject_key", "as_of"])["true_pd"]

    def oracle_pd(rows: pd.DataFrame) -> np.ndarray:
        return pd_of.reindex(pd.MultiIndex.from_arrays([rows.index, rows["as_of"]])).to_numpy()

    test = split.test
    out = {"segment": segment, "rows": len(data), "default_rate": data.defaulted.mean(),
           "test_default_rate": test.defaulted.mean(),
           "oracle_all": _auc(data.defaulted, oracle_pd(data)), "oracle_test": _auc(test.defaulted, oracle_pd(test))}
    model = fit_grade_model("lightgbm", segment, split)
    out["lgbm_test"] = _auc(test.defaulted, model.pd(test))
    out["scorecard_test"] = (_auc(test.defaulted, fit_grade_model("scorecard", segment, split).pd(test))
                             if scorecard else float("nan"))
    out["gap"] = out["oracle_test"] - out["lgbm_test"]
    numeric = [s.name for s in catalog(segment) if pd.api.types.is_numeric_dtype(data[s.name])]
    early = pd.concat([split.train, split.valid])
    in_time = {c: _feature_auc(early, c) for c in numeric}
    oot = {c: _feature_auc(test, c) for c in numeric}
    best_in = max(in_time, key=in_time.get)
    best_oot = max(oot, key=oot.get)
    negs = [c for c in numeric if "negatives_12m" in c]
    best_neg = max(negs, key=oot.get) if negs else None
    out.update(best_feature_in=f"{best_in} {in_time[best_in]:.3f}", best_feature_oot=f"{best_oot} {oot[best_oot]:.3f}",
               best_negatives_oot=f"{best_neg} {oot[best_neg]:.3f}" if best_neg else "-")
    out["top_oot"] = sorted(oot.items(), key=lambda kv: -kv[1])[:8]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", action="store_true", help="measure the committed sample in data/sample")
    ap.add_argument("--smes", type=int, default=2000)
    ap.add_argument("--households", type=int, default=1500)
    ap.add_argument("--practitioners", type=int, default=800)
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--segments", nargs="+", default=list(SEGMENTS), choices=SEGMENTS)
    ap.add_argument("--no-scorecard", action="store_true", help="skip the scorecard (faster)")
    ap.add_argument("--top", action="store_true", help="also print the 8 best single features out of time")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.sample:
        pop, what = read_sample(), f"committed sample {SAMPLE}"
    else:
        sizes = dict(n_smes=args.smes if "sme" in args.segments else 0,
                     n_households=args.households if "household" in args.segments else 0,
                     n_practitioners=args.practitioners if "practitioner" in args.segments else 0)
        pop = generate(**sizes, seed=args.seed)
        what = f"generate({', '.join(f'{k}={v}' for k, v in sizes.items())}, seed={args.seed})"
    print(f"# {what}")
    head = ("segment", "rows", "dflt%", "test%", "oracle", "or.test", "lgbm", "scorecard", "gap")
    print("{:<13}{:>7}{:>7}{:>7}{:>8}{:>8}{:>8}{:>10}{:>7}   best feature in-time / out-of-time / negatives OOT"
          .format(*head))
    for seg in args.segments:
        r = measure(pop, seg, scorecard=not args.no_scorecard)
        print(f"{seg:<13}{r['rows']:>7,}{100 * r['default_rate']:>7.2f}{100 * r['test_default_rate']:>7.2f}"
              f"{r['oracle_all']:>8.3f}{r['oracle_test']:>8.3f}{r['lgbm_test']:>8.3f}{r['scorecard_test']:>10.3f}"
              f"{r['gap']:>7.3f}   {r['best_feature_in']} / {r['best_feature_oot']} / {r['best_negatives_oot']}",
              flush=True)
        if args.top:
            print("    " + ", ".join(f"{k} {v:.3f}" for k, v in r["top_oot"]))
    print(f"# {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
