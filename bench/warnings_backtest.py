"""Did the warnings work? Backtest the configured triggers (models/warnings.toml) on the committed sample,
beside the naive anchor (PD above a fixed cut-off), and monitor a pre-shock model over the macro shock.

    python bench/warnings_backtest.py [--segments sme household] [--kind lightgbm] [--model [--tune]]
                                      [--monitor out.html] [--no-backtest]

Per segment: fit a model out of time (training.pipeline.split_by_date), then report precision, recall,
lead time and warned share per level, per trigger and for the naive anchor at the same warned share, over
the development dates (where thresholds are tuned) and the out-of-time test dates (see
training.backtest.backtest for the definitions), and the triggers the development dates' rule removes
(``training.backtest.weak_triggers``). With ``--tune``: the warning model's level thresholds tuned on the
development dates (``training.warning_model.tune_levels``: red's hazard; the others are shares of a scan),
printed for ``[model.levels]``. Logged to MLflow
(experiment "creditgrade-warnings"). Beside the naive anchor, the ceiling: the generator's true PD
(data/sample/oracle/true_pd.parquet) above a cut-off matched on the same warned share (``oracle_*``). With
``--monitor``: PSI per quarter of a model trained on the snapshots
2020-03-31..2021-03-31 (after the first as-of date, whose year-on-year features are all missing, and with
outcomes matured before the 2022Q2-2023Q1 shock), written to an HTML report.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-only-key")

from creditgrade.features.build import build_training_set  # noqa: E402
from creditgrade.features.frames import Frames, keyed  # noqa: E402
from creditgrade.models.warnings import triggers  # noqa: E402
from creditgrade.training.backtest import backtest, display, weak_triggers  # noqa: E402
from creditgrade.training.monitor import monitor, write_monitor_report  # noqa: E402
from creditgrade.training.pipeline import fit_grade_model, split_by_date  # noqa: E402
from creditgrade.training.warning_model import train_warning_model  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
PRE_SHOCK = (pd.Timestamp("2020-03-31"), pd.Timestamp("2021-03-31"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", nargs="+", default=["sme", "household"])
    ap.add_argument("--kind", default="lightgbm", choices=["lightgbm", "scorecard"])
    ap.add_argument("--monitor", metavar="HTML", help="also monitor a pre-shock model; write the report here")
    ap.add_argument("--no-backtest", action="store_true")
    ap.add_argument("--model", action="store_true", help="also fit the warning model and measure its levels")
    ap.add_argument("--tune", action="store_true", help="with --model: tune its level thresholds on the dev dates")
    args = ap.parse_args()
    frames = Frames.from_population({k: pd.read_parquet(SAMPLE / f"{k}.parquet")
                                     for k in ("subjects", "records", "outcomes")})
    oracle = keyed(pd.read_parquet(SAMPLE / "oracle" / "true_pd.parquet"))
    for segment in [] if args.no_backtest else args.segments:
        t = time.perf_counter()
        data = build_training_set(frames, segment)
        split = split_by_date(data)
        model = fit_grade_model(args.kind, segment, split)
        fitted = time.perf_counter() - t
        t = time.perf_counter()
        if args.model:  # the warning model beside the rules, fitted before the dev dates (not registered)
            warning, tables, _ = train_warning_model(frames, segment, model, data, register=False, tune=args.tune,
                                                     oracle=oracle)
        else:
            tables = backtest(frames, segment, model, data=data, oracle=oracle)
        print(f"\n{segment} {args.kind}: fit {fitted:.0f} s, backtest {time.perf_counter() - t:.1f} s")
        for table in tables.values():
            print(display(table))
        weak = weak_triggers(tables["dev"], {t.name: t.level for t in triggers()})
        print(f"{segment}: triggers the dev rule removes / 开发期规则剔除的触发器: {', '.join(weak) or '-'}")
        if args.tune:
            print(f"[model.levels.{segment}]  # tuned on the dev dates\n" + "\n".join(
                f"{lv} = {{ horizon = {r['horizon']}, min_hazard = {math.floor(r['min_hazard'] * 1e6) / 1e6:.6f} }}"
                if "min_hazard" in r else f"{lv} = {{ {', '.join(f'{k} = {v}' for k, v in r.items())} }}"
                for lv, r in warning.info["levels"].items()))
    if args.monitor:
        results = []
        for segment in args.segments:
            data = build_training_set(frames, segment)
            pre = data[data["as_of"].between(*PRE_SHOCK)]
            model = fit_grade_model(args.kind, segment, split_by_date(pre, test_dates=1, val_dates=2))
            results.append(monitor(frames, segment, model))
            q = results[-1]["quarters"]
            print(f"\n{segment} monitor, model trained {model.info['train_from']}..{model.info['train_to']}:")
            print(q[["as_of", "period", "psi_score", "flag", "max_feature_psi", "max_feature", "features_watch",
                     "default_rate", "auc"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("report:", write_monitor_report(results, args.monitor))


if __name__ == "__main__":
    main()
