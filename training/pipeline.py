"""Train a segment's models out of time, evaluate, log to MLflow, register, and move the champion.

As-of snapshots are split by date: the latest ``test_dates`` as-of dates are the out-of-time test, the
``val_dates`` before them the validation dates on which each family and its training window are chosen
(``training.choose``, never on the test dates), the rest the training set. Each family is then fitted as the
choice folds were: on its window of the latest dates whose outcomes are known at the test's first date (before
the dates held out, if ``training/choice.toml`` holds out any; otherwise the family holds out subjects of its
own for early stopping, tree size and calibration). Rows in default at their as-of date (a default rule of
``models/grades.toml`` holds) are left out: a defaulter is graded by policy, not predicted. Models are fitted
on the catalogue's model inputs only (never the ``model = false`` policy inputs), with rows in an order that
does not depend on subject keys (:func:`key_free_order`), and each carries the scale, rules and reason texts
it was trained with. A model kind is a family of ``models.families``. The ``champion`` alias moves only after
every step succeeded, only to the chosen family's model, and only if it beats the current champion's AUC on
the same out-of-time rows.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from creditgrade.features.build import build_training_set
from creditgrade.features.catalog import catalog, model_feature_names, peer_levels, peer_min_rows
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames
from creditgrade.models.blend import Blend
from creditgrade.models.bundle import GradeModel
from creditgrade.models.families import family
from creditgrade.models.grades import Scale, config
from creditgrade.models.peers import PeerLevels
from creditgrade.models.registry import (CHAMPION, code_version, configure, experiment_id, fingerprint, load_version,
                                         log_grade_model, model_name, register_version, registered_as)
from creditgrade.training.choose import choose, fitting_split, record
from creditgrade.training.evaluate import auc, evaluate
from creditgrade.training.evaluate_report import report_markdown

HORIZON = 12  # months of the outcomes trained on (``build_training_set``'s horizon)

KINDS = ("scorecard", "lightgbm", "ebm")
"""The families trained when none is named (``train --model both``: every candidate); any name of
``models.families`` can be."""


@dataclass
class TrainResult:
    segment: str
    kind: str
    version: str
    run_id: str
    metrics: dict
    champion: bool = False
    new: bool = True  # False: identical to the version already registered, nothing registered
    chosen: bool = False  # the family chosen on the validation dates (training.choose)


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    horizon: int = HORIZON  # months: a row's outcome is known this long after its as-of date


def without_defaulters(data: pd.DataFrame, scale: Scale) -> pd.DataFrame:
    """The rows not in default at their own as-of date (by the scale's default rules)."""
    return scale.not_in_default(data)


def split_by_date(data: pd.DataFrame, test_dates: int = 4, val_dates: int = 4) -> Split:
    dates = sorted(data["as_of"].unique())
    if len(dates) < test_dates + val_dates + 2:
        raise CreditgradeError(f"{len(dates)} as-of dates with outcomes; out-of-time training needs at least "
                               f"{test_dates + val_dates + 2}")
    test_from, val_from = dates[-test_dates], dates[-test_dates - val_dates]
    return Split(data[data.as_of < val_from], data[(data.as_of >= val_from) & (data.as_of < test_from)],
                 data[data.as_of >= test_from])


def key_free_order(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``rows`` by as-of date, then by a hash of their ``columns`` and outcome: an order that does not depend
    on subject keys (keyed hashes of identity numbers, which differ between installations), so the same
    records train the same model anywhere. Rows equal in both are interchangeable to a model."""
    return rows.iloc[np.lexsort((_content(rows, columns), rows["as_of"].to_numpy()))]


def _content(rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A hash per row of its ``columns`` and outcome, not of its subject key."""
    return pd.util.hash_pandas_object(rows[[*columns, "defaulted"]], index=False).to_numpy()


def subject_groups(rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A label per row, shared by one subject's rows (``rows`` indexed by subject key, in date order) and free
    of keys: the content hash of the subject's earliest row. Families that hold out rows of their own hold
    out subjects by it, and the same records hold out the same subjects anywhere (see :func:`key_free_order`)."""
    content = pd.Series(_content(rows, columns))
    return content.groupby(rows.index.to_numpy(), sort=False).transform("first").to_numpy()


def make_estimator(kind: str, segment: str, columns: list[str], seed: int = 0, scale: Scale | None = None):
    """A fresh estimator of that family, configured from the feature catalogue and the grade scale (the
    segment's scale in ``models/grades.toml`` if none is given)."""
    specs = {s.name: s for s in catalog(segment) + peer_levels(segment)}
    return family(kind).configured([specs[c] for c in columns], scale or Scale.from_config(config(segment)), seed)


def with_peer_levels(kind: str, segment: str, columns: list[str], seed: int, scale: Scale):
    """:func:`make_estimator`, fed as well the segment's levels against peers whose inputs are among
    ``columns`` (``models.peers``), if it has any."""
    levels = [s for s in peer_levels(segment) if {s.peer_of, *s.peer_by} <= set(columns)]
    est = make_estimator(kind, segment, [*columns, *(s.name for s in levels)], seed, scale)
    return PeerLevels.around(est, levels, peer_min_rows()) if levels else est


def fit_grade_model(kind: str, segment: str, split: Split, seed: int = 0, policy: dict | None = None) -> GradeModel:
    """Fit one family on the model inputs (training rows, and the validation rows it uses as it will, if any:
    without, it holds out subjects of its own, :func:`subject_groups`); the model keeps ``policy`` (default:
    the grades file's, now)."""
    policy = policy or config(segment)
    columns = model_feature_names(segment)
    est = with_peer_levels(kind, segment, columns, seed, Scale.from_config(policy))
    train, valid = key_free_order(split.train, columns), key_free_order(split.valid, columns)
    held_out = (valid[columns], valid["defaulted"].to_numpy()) if len(valid) else (None, None)
    dated = {"dates": (train["as_of"].to_numpy(), valid["as_of"].to_numpy())} if est.dated else {}
    est.fit(train[columns], train["defaulted"].to_numpy(), *held_out, groups=subject_groups(train, columns), **dated)
    numeric = train[columns].select_dtypes("number")
    info = dict(train_from=str(split.train.as_of.min().date()),
                train_to=str(pd.concat([split.train.as_of, split.valid.as_of]).max().date()),
                test_from=str(split.test.as_of.min().date()), test_to=str(split.test.as_of.max().date()),
                rows_train=len(split.train) + len(split.valid), rows_test=len(split.test))
    return GradeModel(segment, kind, est, columns, reference=numeric.median().to_dict(), info=info, policy=policy)


def evaluate_model(model: GradeModel, split: Split) -> dict:
    """The out-of-time evaluation; calibration and default rate per grade use the model's grade, before
    policy rules (caps that do not claim a PD) move a subject."""
    graded = model.grade(split.test)
    train_graded = model.grade(split.train)
    return evaluate(split.test["defaulted"].to_numpy(), graded["pd"].to_numpy(), grade=graded["model_grade"].to_numpy(),
                    grade_order=model.scale.order, features_train=split.train[model.features],
                    features_test=split.test[model.features], score_train=train_graded["score"].to_numpy(),
                    score_test=graded["score"].to_numpy())


def register(model: GradeModel, report: dict, example: pd.DataFrame,
             oracle_auc: float | None = None) -> tuple[str, str, bool]:
    """Log one fitted model and its evaluation to MLflow and register it, with a signature and input example
    from ``example`` (rows of the feature matrix), a description and tags; return (version, run id, new).
    A model identical to a registered version is not logged again: that version is returned, new False."""
    name = model_name(model.segment)
    digest = fingerprint(model, example)
    same = registered_as(model.segment, digest)
    if same is not None:
        return str(same.version), same.run_id, False
    with mlflow.start_run(experiment_id=experiment_id(name), run_name=f"{model.segment}-{model.kind}") as run:
        described = model.estimator.describe()
        params = {k: v for k, v in model.estimator.get_params().items() if np.isscalar(v) or v is None}
        mlflow.log_params({"kind": model.kind, "segment": model.segment, "features": len(model.features),
                           **model.info, **described["size"], **{f"est.{k}": v for k, v in params.items()}})
        mlflow.log_dict(json.loads(json.dumps(described, default=str)), "estimator_description.json")
        metrics = {k: report[k] for k in ("auc", "gini", "ks", "brier", "log_loss") if k in report}
        metrics["psi_score"] = report.get("psi_score", float("nan"))
        metrics["default_rate_monotone"] = float(bool(report.get("default_rate_monotone")))
        if oracle_auc is not None:
            metrics["oracle_auc"] = oracle_auc
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.log_dict(json.loads(json.dumps(report, default=str)), "evaluation.json")
        mlflow.log_text(report_markdown(report), "evaluation.md")
        logged, digests = log_grade_model(model, example)
        hashes = {f"{name}_sha256": value for name, value in digests.items()}
        mlflow.log_params(hashes)
        tags, description = version_notes(model, report, digest)
        version = register_version(model.segment, logged, run.info.run_id, {**tags, **hashes}, description)
    return version, run.info.run_id, True


def version_notes(model: GradeModel, report: dict, digest: str) -> tuple[dict[str, str], str]:
    """A registered version's tags (segment, kind, data period, out-of-time AUC and KS, fingerprint, code
    version) and its bilingual description."""
    i, auc_, ks_ = model.info, report["auc"], report["ks"]
    tags = {"segment": model.segment, "kind": model.kind, "data_period": f"{i['train_from']}..{i['test_to']}",
            "oot_auc": f"{auc_:.6f}", "oot_ks": f"{ks_:.6f}", "fingerprint": digest, "code_version": code_version()}
    return tags, (f"{model.segment} {model.kind}: trained on {i['train_from']}..{i['train_to']}, tested out of time "
                  f"on {i['test_from']}..{i['test_to']} (AUC {auc_:.4f}, KS {ks_:.4f}); {len(model.features)} "
                  f"features.\n{model.segment} {model.kind} 模型：训练期 {i['train_from']}..{i['train_to']}，"
                  f"跨时间检验期 {i['test_from']}..{i['test_to']}（AUC {auc_:.4f}，KS {ks_:.4f}）；"
                  f"特征 {len(model.features)} 个。")


def _oracle_auc(oracle: pd.DataFrame | None, test: pd.DataFrame) -> float | None:
    if oracle is None:
        return None
    keyed = test[["as_of", "defaulted"]].rename_axis("subject_key").reset_index()
    joined = keyed.merge(oracle, on=["subject_key", "as_of"], how="inner")
    if joined.empty or joined.defaulted.nunique() < 2:
        return None
    return auc(joined.defaulted, joined.true_pd)


def champion_auc(segment: str, split: Split) -> tuple[str | None, float]:
    """The current champion's version and its AUC on these out-of-time rows (-inf if it cannot score them)."""
    try:
        loaded = load_version(segment, alias=CHAMPION)
    except CreditgradeError:
        return None, float("-inf")
    try:
        pd_ = loaded.model.pd(split.test)
    except KeyError:  # trained on other features: it cannot score today's rows
        return loaded.version, float("-inf")
    return loaded.version, auc(split.test["defaulted"], pd_)


def train_segment(source, segment: str, kinds=KINDS, oracle: pd.DataFrame | None = None,
                  seed: int = 0, progress: Callable[[str], None] | None = None) -> list[TrainResult]:
    """Train, evaluate, log and register each kind; then move the champion alias if one beats it.
    ``progress(message)`` hears of each step."""
    say = progress or (lambda message: None)
    configure()
    say(f"{segment}: loading records 读取记录")
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    say(f"{segment}: building features at every as-of date 构建各基准日特征")
    policy = config(segment)  # one copy for the exclusion of defaulters and every model of this run
    data = without_defaulters(build_training_set(frames, segment, horizon=HORIZON), Scale.from_config(policy))
    split = split_by_date(data)
    if split.test["defaulted"].nunique() < 2 or split.train["defaulted"].nunique() < 2:
        raise CreditgradeError(f"{segment}: train and test periods both need defaulted and non-defaulted subjects")
    oracle_auc = _oracle_auc(oracle, split.test)
    say(f"{segment}: choosing a family on the validation dates 按验证期选择模型族")
    choice = choose(kinds, split, lambda kind, inner: fit_grade_model(kind, segment, inner, seed, policy))
    results, models = [], {}
    for kind in kinds:
        say(f"{segment}: fitting {kind} 训练模型")
        fitted = fitting_split(split, choice.windows[kind])
        models[kind] = fit_grade_model(kind, segment, fitted, seed, policy)
        results.append(_registered(models[kind], fitted, choice, oracle_auc, say))
    if choice.blend:
        say(f"{segment}: blending {' + '.join(choice.blend)} 融合模型")
        model = blend_model([models[k] for k in choice.blend])
        results.append(_registered(model, fitting_split(split, choice.windows[choice.blend[0]]), choice, oracle_auc,
                                   say))
    record(choice, segment, {r.kind: r.version for r in results})
    _, champ_auc = champion_auc(segment, split)
    best = next(r for r in results if r.chosen)
    if best.metrics["auc"] > champ_auc:
        promote(segment, best.version)
        best.champion = True
    return results


def blend_model(models: list[GradeModel]) -> GradeModel:
    """The fitted ``models`` (one segment's, same features) mixed with equal weights in log-odds
    (``models.blend``): provenance from the first, its training period from the earliest start."""
    first = models[0]
    est = Blend([m.estimator for m in models], [1 / len(models)] * len(models))
    info = {**first.info, "train_from": min(m.info["train_from"] for m in models),
            "blend": ",".join(m.kind for m in models)}
    return GradeModel(first.segment, est.family, est, first.features, reference=first.reference, info=info,
                      policy=first.policy, texts=first.texts)


def _registered(model: GradeModel, fitted: Split, choice, oracle_auc: float | None, say) -> TrainResult:
    """Evaluate ``model`` out of time on ``fitted`` (its training split), register it, and report it."""
    kind, segment = model.kind, model.segment
    say(f"{segment}: evaluating {kind} out of time 跨时间评估")
    report = evaluate_model(model, fitted)
    say(f"{segment}: logging {kind} to MLflow 登记模型")
    version, run_id, new = register(model, report, fitted.test, oracle_auc)
    return TrainResult(segment, kind, version, run_id,
                       {"auc": report["auc"], "ks": report["ks"], "oracle_auc": oracle_auc,
                        "valid_auc": choice.valid_auc[kind], "window": choice.windows.get(kind),
                        "default_rate_monotone": report.get("default_rate_monotone")}, new=new,
                       chosen=choice.chose(kind))


def promote(segment: str, version: str) -> None:
    """Give a registered version the champion alias (what serving loads at start-up)."""
    configure().set_registered_model_alias(model_name(segment), CHAMPION, version)
