"""Cost of explanations: grades + top-4 reasons against the bare TreeSHAP floor, and TreeSHAP cost
against model size with each size's out-of-time AUC, on a generated SME population.

    .venv/bin/python -m bench.explain                       # 5,000 SMEs, 100,000 subjects scored
    .venv/bin/python -m bench.explain --smes 2000 --subjects 20000 --leaves 4 16

Goals (issue 6): grades + reasons <= 1.25 x bare ``Booster.predict(pred_contrib=True)`` on the same
rows; a model size explained in <= 0.2 ms per subject on one core with an AUC within 0.002 of the best.
"""
import argparse
import os
import time

from sklearn.metrics import roc_auc_score

from creditgrade.data.sample.generator import generate
from creditgrade.features.build import build_training_set
from creditgrade.features.catalog import catalog, model_feature_names
from creditgrade.features.frames import Frames
from creditgrade.models.bundle import GradeModel
from creditgrade.models.explain import explain
from creditgrade.models.lgbm import LGBMPD
from creditgrade.training.pipeline import split_by_date

SEGMENT = "sme"


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(fns, repeat=5):
    """Best time of each function, run in turns (fair on a shared, noisy machine)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], best_of(fn, 1))
    return best


def fit_size(split, columns, leaves, seed):
    monotone = {s.name: s.monotone for s in catalog(SEGMENT)}
    est = LGBMPD(monotone=monotone, leaves_grid=(leaves,), seed=seed)
    est.fit(split.train[columns], split.train["defaulted"], split.valid[columns], split.valid["defaulted"])
    return est


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smes", type=int, default=5000)
    ap.add_argument("--subjects", type=int, default=100_000)
    ap.add_argument("--leaves", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="LightGBM threads for the 100,000-subject run")
    args = ap.parse_args()
    os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-only-key-not-secret")

    start = time.perf_counter()
    frames = Frames.from_population(generate(n_smes=args.smes, n_households=1, n_practitioners=1, seed=args.seed))
    data = build_training_set(frames, SEGMENT)
    split = split_by_date(data)
    columns = model_feature_names(SEGMENT)
    print(f"{args.smes} SMEs: {len(split.train)} train, {len(split.valid)} validation, {len(split.test)} "
          f"out-of-time rows, {len(columns)} features ({time.perf_counter() - start:.0f} s to build)")

    print("\nTreeSHAP cost against model size (one core, out-of-time rows)")
    print(f"{'leaves/tree':>11} {'trees':>6} {'leaves':>7} {'OOT AUC':>8} {'contrib/s':>10} {'ms/subject':>10}")
    X_test, y_test = split.test[columns], split.test["defaulted"].to_numpy()
    sizes = []
    for leaves in args.leaves:
        est = fit_size(split, columns, leaves, args.seed)
        auc = roc_auc_score(y_test, est.decision_function(X_test))
        secs = best_of(lambda: est.booster_.predict(X_test, pred_contrib=True, num_threads=1))
        sizes.append(dict(leaves_per_tree=leaves, **est.size, auc=auc, ms=1000 * secs / len(X_test), est=est))
        s = sizes[-1]
        print(f"{leaves:>11} {s['trees']:>6} {s['leaves']:>7} {auc:>8.4f} {len(X_test) / secs:>10,.0f} {s['ms']:>10.4f}")
    best_auc = max(s["auc"] for s in sizes)
    ok = [s for s in sizes if s["auc"] >= best_auc - 0.002]
    chosen = min(ok, key=lambda s: s["trees"] * s["leaves"])
    print(f"smallest size within 0.002 of the best AUC ({best_auc:.4f}): {chosen['leaves_per_tree']} leaves/tree, "
          f"{chosen['trees']} trees, AUC {chosen['auc']:.4f}, {chosen['ms']:.4f} ms/subject on one core "
          f"(goal <= 0.2: {'met' if chosen['ms'] <= 0.2 else 'NOT met'})")

    est = chosen.pop("est")
    train = split.train[columns]
    model = GradeModel(SEGMENT, "lightgbm", est, columns, reference=train.select_dtypes("number").median().to_dict())
    X = X_test.sample(args.subjects, replace=True, random_state=args.seed).reset_index(drop=True)
    threads = est.num_threads = args.threads
    bare, full = interleaved([lambda: est.booster_.predict(X, pred_contrib=True, num_threads=threads),
                              lambda: explain(model, X, k=4)])
    print(f"\n{args.subjects:,} subjects, the chosen model, {threads} thread(s), best of 5 interleaved runs")
    print(f"  bare Booster.predict(pred_contrib=True): {bare:.3f} s  {args.subjects / bare:>10,.0f} subjects/s")
    print(f"  grades + top-4 reasons (explain):        {full:.3f} s  {args.subjects / full:>10,.0f} subjects/s")
    print(f"  ratio {full / bare:.3f} (goal <= 1.25: {'met' if full / bare <= 1.25 else 'NOT met'})")
    one = X.iloc[[0]]
    single = best_of(lambda: explain(model, one, k=4), repeat=20)
    print(f"  one subject per call (grade + reasons, pandas overhead included): {1000 * single:.2f} ms")


if __name__ == "__main__":
    main()
