"""The `creditgrade` command line: one sub-command per job, each importing only the stage it runs.

Errors a user can act on (``CreditgradeError``) print one line naming the problem and exit 2; no traceback.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from importlib.metadata import version
from pathlib import Path

from creditgrade.progress import steps
from creditgrade.features.errors import CreditgradeError


def _cmd_init_key(args) -> int:
    from creditgrade.features.ids import ensure_key_file

    path = ensure_key_file()
    print("identity-hash key: " + ("CREDITGRADE_ID_KEY (environment)" if os.environ.get("CREDITGRADE_ID_KEY")
                                   else str(path)))
    return 0


def _cmd_export(args) -> int:
    from creditgrade.features.export import PARTITION_SUBJECTS, export
    from creditgrade.features.store import Store

    with steps(f"exporting {args.segment} 导出", args.quiet):
        manifest = export(Store(), args.segment, args.out,
                          PARTITION_SUBJECTS if args.partition_subjects is None else args.partition_subjects)
    rows = sum(p["rows"]["records"] for p in manifest["partitions"])
    print(f"{args.out / args.segment}: {manifest['subjects']} subjects, {rows} records in "
          f"{len(manifest['partitions'])} partitions")
    return 0


def _cmd_grade(args) -> int:
    from creditgrade.features.distributed import connect
    from creditgrade.serving.batch import grade_all
    from creditgrade.serving.tables import open_store

    with steps(f"grading every {args.segment} subject as of {args.as_of} on Dask 批量评级", args.quiet):
        client = connect(args.scheduler)
        try:
            r = grade_all(open_store(), client, args.export, args.segment, args.as_of)
        finally:
            client.close()
    stale = f"; stale sources: {', '.join(r.stale_sources)}" if r.stale_sources else ""
    print(f"{r.segment} as of {r.as_of} with {r.model}: {r.subjects} subjects graded, {r.stored} grades "
          f"stored{stale}")
    return 0


def _cmd_generate(args) -> int:
    from creditgrade.data.sample.generator import write_population

    with steps(f"generating {args.smes + args.households + args.practitioners} subjects and their records "
               f"生成样本", args.quiet):
        paths = write_population(args.out, fmt=args.format, n_smes=args.smes, n_households=args.households,
                                 n_practitioners=args.practitioners, seed=args.seed, start=args.start, end=args.end)
    for name, path in paths.items():
        print(f"{name:10s} {path}")
    return 0


def _cmd_ingest(args) -> int:
    from creditgrade.features.ingest import ingest_files
    from creditgrade.serving.tables import open_store
    from creditgrade.serving.warnings import raise_on_arrival

    missing = [p for p in args.files if not Path(p).is_file()]
    if missing:
        raise CreditgradeError(f"no such file: {', '.join(missing)}")
    store = open_store()  # with the warnings table: a record that trips a trigger raises its warning as it lands
    reports = []
    with steps("ingesting 导入", args.quiet or args.verbose) as say:
        show = (lambda message: print(message, file=sys.stderr, flush=True)) if args.verbose else say
        for file in args.files:
            tell = show and (lambda message, name=Path(file).name: show(f"{name}: {message}"))
            reports += ingest_files(store, [file], allow_bad_check=args.allow_bad_check_digit, progress=tell,
                                    on_records=raise_on_arrival)
    for r in reports:
        if r.refused:
            print(f"{r.file}: refused / 拒收: {r.refused}", file=sys.stderr)
            continue
        print(f"{r.file}: table={r.table} encoding={r.encoding} read={r.read} stored={r.stored} "
              f"already-stored={r.duplicates} quarantined={r.quarantined}")
        if r.ignored_columns:
            print(f"  ignored columns: {', '.join(r.ignored_columns)}")
        for reason, n in r.reasons.most_common():
            print(f"  {n:8d}  {reason}")
    return 0 if any(r.valid for r in reports) and not any(r.refused for r in reports) else 1


def _cmd_summary(args) -> int:
    from creditgrade.features import freshness
    from creditgrade.features.store import Store
    from creditgrade.features.summary import summary

    store = Store()
    print(summary(store).to_string())
    marks = freshness.table(store)
    if len(marks):
        print("\nwatermarks (last month of data per source) / 各来源数据截至:")
        print(marks.to_string(na_rep="-"))
    return 0


def _cmd_features(args) -> int:
    from creditgrade.features.build import write_features
    from creditgrade.features.store import Store

    if args.scheduler:
        return _features_on_dask(args)
    rows = write_features(Store(), args.segment, args.as_of, Path(args.out))
    print(f"wrote {rows} {args.segment} feature rows as of {args.as_of} to {args.out}")
    return 0


def _dask_client(args):
    """A client of ``--scheduler``, which needs ``--export``."""
    from creditgrade.features.distributed import connect

    if not args.export:
        raise CreditgradeError("--scheduler needs --export DIR (made by `creditgrade export`) / "
                               "--scheduler 须配合 --export 目录（由 `creditgrade export` 生成）")
    return connect(args.scheduler)


def _features_on_dask(args) -> int:
    from creditgrade.features.distributed import build_features

    client = _dask_client(args)
    try:
        features = build_features(client, args.export, args.segment, args.as_of)
    finally:
        client.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    features.reset_index().to_parquet(args.out, index=False)
    print(f"wrote {len(features)} {args.segment} feature rows as of {args.as_of} to {args.out} (Dask)")
    return 0


def _cmd_train(args) -> int:
    if args.table and args.scheduler:
        raise CreditgradeError("--table trains on one machine: it cannot be used with --scheduler / "
                               "--table 仅在单机上训练，不能与 --scheduler 同用")
    if args.table:
        return _train_table(args)
    if not args.segment:
        raise CreditgradeError("give --segment sme|household|practitioner, or --table FILE --target COLUMN")
    if args.scheduler:
        return _train_on_dask(args)
    from creditgrade.features.store import Store
    from creditgrade.training.evaluate import read_oracle
    from creditgrade.training.pipeline import KINDS, train_segment

    kinds = KINDS if args.model == "both" else (args.model,)
    oracle = read_oracle(args.oracle, args.segment) if args.oracle else None
    with steps(f"{args.segment}: training 训练", args.quiet) as say:
        results = train_segment(Store(), args.segment, kinds, oracle=oracle, progress=say)
    for r in results:
        extra = f" oracle AUC {r.metrics['oracle_auc']:.4f}" if r.metrics.get("oracle_auc") else ""
        window = r.metrics["window"]
        window = ("each member's 各成员的训练窗口" if window is None
                  else f"{window} as-of dates 训练窗口{window}个基准日" if window else "every as-of date 训练窗口为全部基准日")
        print(f"{r.segment:12s} {r.kind:9s} version {r.version}: validation AUC {r.metrics['valid_auc']:.4f}"
              f"{' (chosen 选定)' if r.chosen else ''}, training window {window}, out-of-time AUC {r.metrics['auc']:.4f} "
              f"KS {r.metrics['ks']:.4f}{extra}{'' if r.new else '  (unchanged: nothing registered 未变，未登记)'}"
              f"{'  -> champion' if r.champion else ''}")
    return 0


def _train_on_dask(args) -> int:
    from creditgrade.training.cluster import KINDS, train_on_cluster

    kinds = KINDS if args.model == "both" else (args.model,)
    if args.oracle:
        raise CreditgradeError("--oracle is not read with --scheduler / --scheduler 模式不读取 --oracle")
    client = _dask_client(args)
    try:
        with steps(f"{args.segment}: training on Dask 在 Dask 上训练", args.quiet) as say:
            results = train_on_cluster(client, args.export, args.segment, kinds, seed=args.seed, progress=say)
    finally:
        client.close()
    for r in results:
        m = r.metrics
        sample = (f" (a sample of {m['sample']['subjects']} subjects, {m['sample']['share']:.1%} of them "
                  f"主体抽样{m['sample']['subjects']}个)" if "sample" in m else "")
        print(f"{r.segment:12s} {r.kind:9s} version {r.version}: trained on {m['rows']} rows 训练{m['rows']}行{sample}, "
              f"validation AUC {m['valid_auc']:.4f}{' (chosen 选定)' if r.chosen else ''}, out-of-time AUC "
              f"{m['auc']:.4f} KS {m['ks']:.4f}{'' if r.new else '  (unchanged: nothing registered 未变，未登记)'}"
              f"{'  -> champion' if r.champion else ''}")
    return 0


def _train_table(args) -> int:
    from creditgrade.training.table import CHOSEN, cross_validate

    if not args.target:
        raise CreditgradeError("--table needs --target COLUMN")
    result = cross_validate(Path(args.table), args.target, bad=args.bad, exclude=args.exclude or (),
                            protected=args.protected or (), dictionary=args.dictionary, header=not args.no_header,
                            special=args.special or (), folds=args.folds, seed=args.seed, keep=args.keep or (),
                            **({"budget": args.budget} if args.budget is not None else {}))
    print(f"{args.table}: {result.rows} rows, bad rate {result.bad_rate:.3f}, {len(result.features)} features")
    if result.encoding:
        print(f"  read as 编码: {result.encoding}")
    if result.sheet:
        print(f"  sheet read 读取的工作表: {result.sheet}")
    for column, why in result.excluded.items():
        print(f"  not used 未使用: {column}: {why}")
    for column, how in result.read.items():
        print(f"  text read as numbers 文本读作数值: {column}: {how}")
    if result.copies and result.distinct is not None:
        print(f"  {_rows_repeat(result.copies)} (every feature and the target), but the rarer class has only "
              f"{result.distinct} distinct rows, too few to keep each set of copies on one side of {args.folds} folds: "
              f"they are split as any rows (features of few values repeat by nature) / {result.copies} 行与其他行完全相同，"
              f"但较少的类别仅 {result.distinct} 种不同的行，不足以让每组副本在 {args.folds} 折中留在同一侧：按普通行划分")
    elif result.copies:
        print(f"  {_rows_repeat(result.copies)} (every feature and the target): each set of copies stays on "
              f"one side of every split / {result.copies} 行与其他行完全相同（全部特征与目标）：每组副本在每次划分中都在同一侧")
    print(f"  {result.only_check}")
    print(f"  outer {args.folds}-fold stratified CV AUC 外层交叉验证 AUC (each fold chooses on its training rows):")
    for kind, aucs in result.auc.items():
        print(f"  {kind:9s} {result.mean(kind):.4f} (folds {', '.join(f'{a:.3f}' for a in aucs)})")
    print(f"  {CHOSEN} per fold 每折选择: {', '.join(result.chosen)}; {result.seconds:.0f} s")
    if result.folds < args.folds:
        print(f"  the budget ran out: {result.folds} of {args.folds} folds measured (--budget) / "
              f"预算用尽：{args.folds} 折中仅测量 {result.folds} 折")
    for k, notes in enumerate(result.notes, 1):
        print(f"  fold {k} 第 {k} 折: " + "; ".join(f"{kind} {note}" for kind, note in notes.items()))
    return 0


def _cmd_report(args) -> int:
    from creditgrade.features.store import Store
    from creditgrade.training.review import log_review_pack

    out = Path(args.out or f"review-{args.segment}.html")
    with steps(f"{args.segment}: review pack 审查报告", args.quiet) as say:
        path = log_review_pack(Store(), args.segment, out, progress=say)
    print(f"wrote the {args.segment} review pack to {path} and logged it with the champion's MLflow run")
    return 0


def _cmd_warnings(args) -> int:
    from creditgrade.features.schemas import SEGMENTS
    from creditgrade.features.store import Store

    store = Store()
    segments = [args.segment] if args.segment else list(SEGMENTS)
    if args.action == "scan":
        from creditgrade.serving.tables import create_tables
        from creditgrade.serving.batch import scan_all
        from creditgrade.serving.warnings import scan

        create_tables(store)
        client = _dask_client(args) if args.scheduler else None
        try:
            for segment in segments:
                with steps(f"{segment}: grading every subject as of {args.as_of} and scanning for warnings "
                           f"评级与预警扫描", args.quiet):
                    r = scan(store, segment, args.as_of) if client is None else scan_all(
                        store, client, args.export, segment, args.as_of)
                levels = ", ".join(f"{k} {v}" for k, v in r.by_level.items()) or "none"
                print(f"{segment:12s} as of {r.as_of}: {r.subjects} subjects graded with {r.model}, "
                      f"{r.grades_stored} grades stored, {r.warnings_new} new warnings ({levels})")
        finally:
            if client is not None:
                client.close()
        return 0
    from creditgrade.models.registry import load_champion
    from creditgrade.training.backtest import backtest, display

    if args.action == "train":
        from creditgrade.features.frames import Frames
        from creditgrade.training.warning_model import train_warning_model, warning_model_name

        for segment in segments:
            with steps(f"{segment}: training the warning model 训练预警模型", args.quiet):
                _, tables, version = train_warning_model(Frames.from_store(store, segment), segment,
                                                         load_champion(segment).model)
            print(f"== {segment}: {warning_model_name(segment)} version {version}, beside the rules, out of time")
            print("\n".join(display(t) for t in tables.values()))
        return 0
    for segment in segments:
        tables = backtest(store, segment, load_champion(segment).model, periods_wanted=args.period)
        print(f"== {segment}: warnings backtest, out of time (logged to MLflow experiment creditgrade-warnings)")
        print("\n".join(display(t) for t in tables.values()))
    return 0


def _cmd_monitor(args) -> int:
    import pandas as pd

    from creditgrade.features.store import Store
    from creditgrade.training.monitor import LEGEND, LEVELS, display_table, monitor, worst_level, write_monitor_report

    with steps(f"{args.segment}: monitoring 监测", args.quiet) as say:
        result = monitor(Store(), args.segment, progress=say)
    print(LEGEND)
    with pd.option_context("display.width", 10_000, "display.max_columns", 50):
        print(display_table(result).to_string(index=False, na_rep="-"))
    for alert in result["alerts"]:
        print(f"ALERT {alert}")
    out = write_monitor_report([result], Path(args.out or f"monitor-{args.segment}.html"))
    print(f"wrote {out} and logged it to MLflow (experiment creditgrade-monitor)")
    worst = worst_level(result)
    if args.fail_on != "never" and LEVELS.index(worst) >= LEVELS.index(args.fail_on):
        print(f"latest quarter at {worst!r}, at or above --fail-on {args.fail_on}: exit 1 / 最新季度达到{args.fail_on}级别",
              file=sys.stderr)
        return 1
    return 0


def _cmd_validate(args) -> int:
    import pandas as pd

    from creditgrade.features.store import Store
    from creditgrade.training.evaluate import read_oracle
    from creditgrade.training.policy_check import policy_check
    from creditgrade.training.validate import display_shares, display_table, findings, validate, write_validation

    oracle = read_oracle(args.oracle, args.segment) if args.oracle else None
    store = Store()
    result = validate(store, args.segment, oracle=oracle)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(display_table(result).to_string(index=False, na_rep=""))
        if oracle is not None:
            print("\nthe oracle (true PD) on the same bands 真实PD同区间检验")
            print(display_table(result, "oracle_table").to_string(index=False, na_rep=""))
        print("\nshares per as-of date 各基准日占比 (final grades 最终等级)")
        print(display_shares(result).to_string(index=False))
    print("\n".join(findings(result)))
    policy = policy_check(store, args.segment)
    policy["held / better"] = policy["subjects"].astype(str) + " / " + policy["graded_better"].astype(str)
    print(f"\npolicy: subjects a rule holds for / graded better than its grade (must be 0) "
          f"政策规则：适用主体数 / 评级优于规则等级数（应为0）, all {args.segment} subjects at each date")
    print(policy.pivot(index=["rule", "action", "grade"], columns="as_of", values="held / better").to_string())
    out = write_validation(result, Path(args.out or f"validate-{args.segment}.html"))
    print(f"wrote {out} and logged it to MLflow (experiment creditgrade-validation)")
    return 0


def _cmd_keys(args) -> int:
    from creditgrade.serving.keys import create_key, list_keys, revoke_key
    from creditgrade.serving.tables import open_store

    if args.action == "list":
        keys = list_keys(open_store())
        for when in ("created", "last_used", "revoked"):
            keys[when] = [t.strftime("%Y-%m-%d %H:%M") if t is not None and t == t else "-" for t in keys[when]]
        print(keys.to_string(index=False) if len(keys) else "no keys / 尚无密钥")
        return 0
    if args.action == "revoke":
        print(f"revoked {revoke_key(open_store(), args.name)} key(s) named {args.name!r}")
        return 0
    key = create_key(open_store(), args.role, args.name, townships=args.townships, subject_id=args.subject_id,
                     segment=args.segment)
    print(f"created a {args.role} key named {args.name!r}; it is shown once and cannot be shown again:",
          file=sys.stderr)
    print(key)
    return 0


def _cmd_townships(args) -> int:
    from creditgrade.features.store import Store
    from creditgrade.serving.keys import townships

    table = townships(Store())
    if table.empty:
        raise CreditgradeError("no households in the store: ingest the subjects file first (creditgrade ingest)")
    print(table.rename(columns={"township_code": "code 代码", "township_name": "name 名称",
                                "villages": "villages 村数", "households": "households 户数"})
          .to_string(index=False))
    return 0


def _cmd_serve(args) -> int:
    cmd = [str(Path(sys.executable).with_name("bentoml")), "serve", "creditgrade.serving.service:CreditGrade",
           "--host", args.host, "--port", str(args.port)]
    os.execv(cmd[0], cmd)


def _whole(lo: int, hi: int):
    """An argparse type: a whole number from ``lo`` to ``hi``, else a clear error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number / 不是整数") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not between {lo} and {hi} / 不在 {lo} 到 {hi} 之间")
        return value
    return parse


def _rows_repeat(copies: int) -> str:
    return "1 row repeats another row" if copies == 1 else f"{copies} rows repeat another row"


def _number(text: str) -> float:
    """An argparse type: a finite number (a special code)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number / 不是数值") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number / 不是有限数值")
    return value


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds / 不是秒数") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0 / 须为大于 0 的秒数")
    return value


SEED = _whole(0, 2**32 - 1)  # numpy's and LightGBM's seed range
COUNT = _whole(0, 10**8)


def build_parser() -> argparse.ArgumentParser:
    from creditgrade.features.schemas import SEGMENTS
    from creditgrade.serving.keys import ROLES

    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true",
                       help="no progress display (it shows only on a terminal anyway)")
    parser = argparse.ArgumentParser(prog="creditgrade", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('creditgrade')}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-key", help="create the identity-hash key file in the home directory")
    p.set_defaults(func=_cmd_init_key)

    p = sub.add_parser("generate", parents=[quiet], help="generate a synthetic population")
    p.add_argument("--smes", type=COUNT, default=2000)
    p.add_argument("--households", type=COUNT, default=1500)
    p.add_argument("--practitioners", type=COUNT, default=800)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--start", default="2019-01")
    p.add_argument("--end", default="2025-12")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("ingest", parents=[quiet], help="ingest subjects, records and outcomes files (CSV or Parquet)")
    p.add_argument("files", nargs="+")
    p.add_argument("--allow-bad-check-digit", action="store_true",
                   help="accept pilot-era unified social credit codes whose check character fails")
    p.add_argument("-v", "--verbose", action="store_true", help="print progress to stderr")
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser("summary", help="records stored per segment and source")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("features", help="write the feature matrix of a segment as of a date")
    p.add_argument("--segment", required=True, choices=SEGMENTS)
    p.add_argument("--as-of", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--scheduler", help="build on Dask: a scheduler address, or `local` for a LocalCluster")
    p.add_argument("--export", type=Path, help="with --scheduler: the folder given to `creditgrade export --out`")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("export", parents=[quiet], help="a segment's inputs as Parquet partitioned by subject "
                                                       "(for the Dask paths: --scheduler)")
    p.add_argument("--segment", required=True, choices=SEGMENTS)
    p.add_argument("--out", required=True, type=Path, help="folder; the export goes to OUT/SEGMENT")
    p.add_argument("--partition-subjects", type=_whole(1, 10**8), default=None, help="subjects per partition")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("grade", parents=[quiet], help="grade every subject of a segment on a Dask cluster from an "
                                                      "export, and store the grades")
    p.add_argument("--segment", required=True, choices=SEGMENTS)
    p.add_argument("--as-of", required=True, help="the date to grade as of (YYYY-MM-DD)")
    p.add_argument("--export", required=True, type=Path, help="the folder given to `creditgrade export --out`")
    p.add_argument("--scheduler", default="local", help="a Dask scheduler address, or `local` for a LocalCluster")
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser("train", parents=[quiet], help="train a segment's models (or CV on any table with --table)")
    p.add_argument("--segment", choices=SEGMENTS)
    p.add_argument("--model", choices=["scorecard", "lightgbm", "ebm", "both"], default="both",
                   help="both: every family (with --scheduler, LightGBM on the cluster, the others on a sample)")
    p.add_argument("--scheduler", help="train on Dask: a scheduler address, or `local` for a LocalCluster "
                                       "(LightGBM on the cluster, the other families on a sample; docs/DEPLOYMENT.md)")
    p.add_argument("--export", type=Path, help="with --scheduler: the folder given to `creditgrade export --out`")
    p.add_argument("--oracle", help="the generator's true-PD file, to report the oracle's AUC beside the models")
    p.add_argument("--table", help="generic mode: a table with a binary target (delimited text, ARFF, Excel, "
                                   "Parquet; text and ARFF also .gz, .bz2, .xz, .zip)")
    p.add_argument("--target", help="generic mode: the target column")
    p.add_argument("--bad", help="generic mode: the target value meaning bad, if not 0/1")
    p.add_argument("--exclude", nargs="*", help="generic mode: columns never to use as features")
    p.add_argument("--protected", nargs="*", help="generic mode: protected attributes, never features")
    p.add_argument("--keep", nargs="*", help="generic mode: columns to use although alone they all but separate "
                   "the target (by default left out as a leak of it)")
    p.add_argument("--dictionary", help="generic mode: data dictionary (CSV: column, meaning); protected by meaning")
    p.add_argument("--no-header", action="store_true", help="generic mode: the file has no header line (A1, A2...)")
    p.add_argument("--special", nargs="*", type=_number, help="generic mode: special codes (e.g. -7 -8 -9), own bins")
    p.add_argument("--budget", type=_seconds, help="generic mode: seconds for the whole search (default: a "
                   "150,000-row table within 10 minutes on 2 cores)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--folds", type=_whole(2, 100), default=5, help="generic mode: outer folds (2 to 100)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("report", parents=[quiet],
                       help="write the regulator's review pack (HTML) for a segment's champion")
    p.add_argument("--segment", required=True, choices=SEGMENTS)
    p.add_argument("--out", help="HTML file to write (default review-SEGMENT.html)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("warnings", help="early warnings: scan as of a date, backtest the triggers, train the model")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("scan", parents=[quiet], help="grade every subject as of a date and store new warnings")
    a.add_argument("--as-of", required=True, help="the date to grade as of (YYYY-MM-DD)")
    a.add_argument("--segment", choices=SEGMENTS, help="one segment (default: all)")
    a.add_argument("--scheduler", help="grade on Dask: a scheduler address, or `local` for a LocalCluster")
    a.add_argument("--export", type=Path, help="with --scheduler: the folder given to `creditgrade export --out` "
                                               "(an export of each segment scanned)")
    a = actions.add_parser("train", parents=[quiet], help="train the warning model (hazard of default in 3, 6 and 12 "
                                                          "months from the trajectory), backtest it beside the "
                                                          "rules and register it in MLflow")
    a.add_argument("--segment", choices=SEGMENTS, help="one segment (default: all)")
    a = actions.add_parser("backtest", help="precision, recall, lead time and warned share of the warnings out of "
                                            "time, beside the naive PD anchor at the same warned share")
    a.add_argument("--segment", choices=SEGMENTS, help="one segment (default: all)")
    a.add_argument("--period", nargs="+", choices=["dev", "test", "all"], default=["dev", "test"],
                   help="dev: the four as-of dates before the grade model's test dates (tune there); test: its "
                        "out-of-time test dates")
    p.set_defaults(func=_cmd_warnings)

    p = sub.add_parser("monitor", parents=[quiet], help="PSI against the training reference, default rate per "
                                                        "grade and out-of-time AUC per quarter for a segment's champion")
    p.add_argument("--segment", required=True, choices=SEGMENTS)
    p.add_argument("--out", help="HTML file to write (default monitor-SEGMENT.html)")
    p.add_argument("--fail-on", choices=["act", "watch", "never"], default="never",
                   help="exit 1 when the latest quarter has a column at this level or above (for schedulers)")
    p.set_defaults(func=_cmd_monitor)

    p = sub.add_parser("validate", help="back-test each grade's PD out of time (Jeffreys test, traffic lights)")
    p.add_argument("--segment", required=True, choices=SEGMENTS)
    p.add_argument("--out", help="HTML file to write (default validate-SEGMENT.html)")
    p.add_argument("--oracle", help="the generator's true-PD file: the same back-test of the true PD beside")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("keys", help="create, list or revoke API keys")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("create", help="a new key, shown once")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--name", required=True, help="a unique name, e.g. the institution and desk")
    a.add_argument("--townships", help="evaluator: comma-separated 9-digit township codes (creditgrade townships)")
    a.add_argument("--subject-id", help="subject: its own id")
    a.add_argument("--segment", choices=SEGMENTS, help="subject: its segment")
    actions.add_parser("list", help="every key: name, role, scope, created, last used, revoked")
    a = actions.add_parser("revoke", help="revoke the key of that name")
    a.add_argument("--name", required=True)
    p.set_defaults(func=_cmd_keys)

    p = sub.add_parser("townships", help="township codes and names of the stored households, with village counts")
    p.set_defaults(func=_cmd_townships)

    p = sub.add_parser("serve", help="serve grades over HTTP (BentoML) with each segment's champion")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_whole(1, 65535), default=3000)
    p.set_defaults(func=_cmd_serve)
    return parser


QUIET_LIBRARIES = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "BENTOML_DO_NOT_TRACK": "true",
                   "MLFLOW_LOGGING_LEVEL": "ERROR", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
"""Every library's usage reporting off, and MLflow's notices (which drown the command's own report) too,
unless the environment says otherwise; set before any library is imported."""


def main(argv: list[str] | None = None) -> int:
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CreditgradeError as exc:
        print(f"creditgrade: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
