"""Train, evaluate and register a segment's models on a Dask cluster from an export (``creditgrade train
--scheduler``): the segment pipeline (``training.pipeline``) for populations past one machine. No feature row
is gathered but the sample of subjects; the workers send back a label and a few values per row.

- **Dates.** The export's outcome dates split as ``split_by_date`` splits them: the last 4 the out-of-time
  test, the 4 before the validation dates, the rest the training dates (the same error with too few). Rows in
  default at their as-of date are left out on the workers (``training.distributed.partition_rows``).
- **LightGBM** is fitted on the cluster (``lightgbm.dask``, ``training.distributed``) on every training date,
  with the catalogue's monotone constraints as ``LGBMPD.configured`` reads them (method "intermediate"), at the
  fixed size of ``training.distributed.PARAMS``: ``lightgbm.dask`` takes an eval set but has no early stopping
  (lightgbm-org/LightGBM#4189; with ``early_stopping_rounds`` its workers hang, #6351), so no size is chosen
  here. It is Platt-calibrated on its margins on the validation dates, computed on the workers, and becomes an
  ``LGBMPD`` (``LGBMPD.from_booster``) that explains, saves and serves as a locally fitted one. Its levels
  against peers (``models.peers``) take each training date's medians from the sample of subjects below.
- **Every other family** (the scorecard, the EBM: ``models.families.DATA_PARALLEL`` names the one fitted on
  the cluster) fits on one machine (``fit_grade_model``, holding out subjects of its own) on the training
  dates of a random sample of subjects, built on the workers: in every partition, the subjects whose key
  hashes into the sample (``training.distributed.in_sample``; not the first partitions: a partition is a
  range of keys, and credit codes and household numbers begin with their region), a share that keeps
  subjects x as-of dates within ``sample_rows`` (``training/cluster.toml``). The command prints how many
  subjects and rows it used.
- **Choice.** Each family's PD on every validation row, on the workers; the family is chosen by
  ``training.choose.pick`` on that one fold (validation AUC, preference order, paired bootstrap; then the blend
  of the best two, LightGBM's PD calibrated, if it clearly beats the family), as the pipeline chooses on its
  folds; the blend (``models.blend``) is made of those members and graded on the workers like them.
- **Out-of-time evaluation** on the test dates: graded on the workers (PD, score, model grade, label come
  back), the current champion too on the same rows; ``training.evaluate.evaluate`` takes the PSI's feature
  samples from the sample of subjects (its training rows against its test rows) and the score PSI from the
  sample's training scores against every test row's.
- **Registration** with ``training.pipeline.register`` (input example: a few of the sample's test rows), each
  version tagged with the choice (``training.choose.record``); the champion alias moves only to the chosen
  family, only if it beats the current champion's AUC on the test rows.

Not done on the cluster: no training window is chosen (every training date is used), one validation fold
instead of the pipeline's choice folds, no size search for LightGBM. When several workers hold rows,
two LightGBM fits of the same export can differ slightly (their bin bounds differed between runs on a small
export), so a re-run may register a new version; with one worker it registers nothing new.
"""
from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from creditgrade.features.distributed import map_partitions
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.export import read_manifest
from creditgrade.models.blend import FAMILY as BLEND
from creditgrade.models.bundle import GradeModel
from creditgrade.models.families import DATA_PARALLEL
from creditgrade.models.grades import Scale, config
from creditgrade.models.lgbm import LGBMPD
from creditgrade.models.peers import PeerLevels
from creditgrade.models.registry import CHAMPION, configure, load_version
from creditgrade.training.choose import Choice, pick, record
from creditgrade.training.choose import config as choice_config
from creditgrade.training.distributed import (PARAMS, fit_lightgbm, model_inputs, outcome_dates, partition_rows,
                                              training_matrix)
from creditgrade.training.evaluate import auc, evaluate
from creditgrade.training.pipeline import (KINDS, Split, TrainResult, blend_model, fit_grade_model, promote,
                                           register, split_by_date, with_peer_levels)


CONFIG_FILE = Path(__file__).with_name("cluster.toml")


@cache
def settings() -> dict:
    """``training/cluster.toml``: the scorecard's sample and the input example."""
    return tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Dates:
    train: list[pd.Timestamp]
    valid: list[pd.Timestamp]
    test: list[pd.Timestamp]


def split_dates(dates) -> Dates:
    """``training.pipeline.split_by_date``'s split of the as-of dates themselves."""
    split = split_by_date(pd.DataFrame({"as_of": sorted(dates)}))
    return Dates(*(list(part["as_of"]) for part in (split.train, split.valid, split.test)))


def sample_share(subjects: int, dates: int, rows: int) -> float:
    """The share of ``subjects`` whose rows at ``dates`` as-of dates stay within ``rows`` (1: every subject)."""
    return min(1.0, rows / max(1, subjects * dates))


def _partition_frame(folder: Path, entry: dict, segment: str, dates, horizon: int, policy: dict,
                     share: float) -> pd.DataFrame:
    """One partition's training rows at ``dates`` of its subjects in the sample, every feature
    (``partition_rows``), in one frame."""
    return pd.concat(list(partition_rows(folder, entry, segment, dates, horizon, policy, share)))


def _graded(folder: Path, entry: dict, segment: str, dates, horizon: int, policy: dict,
            models: dict[str, tuple[GradeModel, tuple[str, ...]]]) -> pd.DataFrame:
    """One partition's rows at ``dates`` (``partition_rows``): ``defaulted`` and, for each named model, the
    columns asked of its grade (``name:column``); NaN for a model that cannot grade them (trained on other
    features, as ``training.pipeline.champion_auc`` treats it)."""
    parts = []
    for rows in partition_rows(folder, entry, segment, dates, horizon, policy):
        if rows.empty:
            continue
        part = {"defaulted": rows["defaulted"].to_numpy()}
        for name, (model, columns) in models.items():
            try:
                graded = model.grade(rows)
            except KeyError:
                graded = pd.DataFrame(np.nan, index=rows.index, columns=list(columns))
            part |= {f"{name}:{c}": graded[c].to_numpy() for c in columns}
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _grade_all(client, out, segment: str, dates, horizon: int, policy: dict, models: dict) -> pd.DataFrame:
    """:func:`_graded` of every partition, the models sent to the workers once."""
    [sent] = client.scatter([models], broadcast=True)
    parts = [p for p in map_partitions(client, out, segment, _graded, dates, horizon, policy, sent) if len(p)]
    return pd.concat(parts, ignore_index=True)


def _both_classes(defaults: int, rows: int, en: str, zh: str) -> None:
    if not 0 < defaults < rows:
        raise CreditgradeError(f"{en} need defaulted and non-defaulted subjects / {zh}须同时包含违约与未违约主体")


def _sample(client, out, segment: str, dates: Dates, horizon: int, policy: dict) -> tuple[Split, dict]:
    """The sample of subjects the families other than the data-parallel one fit on (module docstring), as a
    split by date, and what it holds."""
    every = [*dates.train, *dates.valid, *dates.test]
    share = sample_share(read_manifest(out, segment)["subjects"], len(every), settings()["sample_rows"])
    rows = pd.concat(map_partitions(client, out, segment, _partition_frame, every, horizon, policy, share))
    split = Split(*(rows[rows["as_of"].isin(d)] for d in (dates.train, dates.valid, dates.test)))
    return split, {"subjects": int(split.train.index.nunique()), "share": share}


def _lightgbm(client, out, segment: str, dates: Dates, horizon: int, policy: dict, seed: int,
              sample: pd.DataFrame) -> tuple[dict, int]:
    """LightGBM fitted on the cluster on the training dates (module docstring): what
    :func:`_lightgbm_model` takes, and the rows it was fitted on. Levels against peers (``models.peers``)
    take each date's medians from the ``sample`` of subjects' training rows."""
    columns, categories = model_inputs(segment)
    est = with_peer_levels(DATA_PARALLEL, segment, columns, seed, Scale.from_config(policy))
    levels = est if isinstance(est, PeerLevels) else None
    if levels is not None:
        levels.learn(sample[columns], sample["as_of"].to_numpy())
        est = levels.estimator
    X, y = training_matrix(client, out, segment, horizon, dates.train, policy, levels)
    rows = len(X)
    _both_classes(int(y.sum().compute()), rows, "the training dates", "训练期")
    fit_columns = [*columns, *([] if levels is None else levels.level_names)]
    fitted = fit_lightgbm(client, X, y, fit_columns, categories, random_state=seed,
                          monotone_constraints=[int(est.monotone.get(c, 0)) for c in fit_columns],
                          monotone_constraints_method=est.monotone_method)
    params = dict(leaves_grid=(PARAMS["num_leaves"],), learning_rate=PARAMS["learning_rate"],
                  max_rounds=PARAMS["n_estimators"], early_stopping=0, min_child_samples=PARAMS["min_child_samples"],
                  reg_lambda=PARAMS["reg_lambda"], feature_fraction=PARAMS["colsample_bytree"],
                  monotone_method=est.monotone_method, seed=seed)  # LGBMPD's names for what it was fitted with
    return dict(segment=segment, booster=_without_addresses(fitted.booster_), columns=columns, fit_columns=fit_columns,
                monotone=est.monotone, params=params, levels=levels), rows


def _without_addresses(booster: lgb.Booster) -> lgb.Booster:
    """The booster without the run's network parameters in its model string (``machines``,
    ``local_listen_port``: the workers' addresses and random ports, no part of the model), so the same trees
    are the same model to ``models.registry.fingerprint``."""
    kept = [line for line in booster.model_to_string().splitlines()
            if not line.startswith(("[machines:", "[local_listen_port:"))]
    return lgb.Booster(model_str="\n".join(kept) + "\n")


def _lightgbm_model(fitted: dict, calibration: tuple[float, float], policy: dict, **provenance) -> GradeModel:
    """The segment's LightGBM model from :func:`_lightgbm`'s booster and a Platt calibration (a, b), inside its
    levels against peers if it was fitted with them."""
    est = LGBMPD.from_booster(fitted["booster"], fitted["fit_columns"], calibration, fitted["monotone"],
                              **fitted["params"])
    if fitted["levels"] is not None:  # a copy each: the uncalibrated model and the calibrated one differ
        wrapped = copy.copy(fitted["levels"])
        wrapped.estimator = est
        est = wrapped
    return GradeModel(fitted["segment"], DATA_PARALLEL, est, fitted["columns"], policy=policy, **provenance)


def _platt(pd_: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt calibration (a, b) of the margins of PDs ``pd_`` (the logistic of a margin) on labels ``y``."""
    platt = LogisticRegression(C=1e6).fit(logit(pd_).reshape(-1, 1), y)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _champion(segment: str) -> GradeModel | None:
    """The current champion's model, if there is one."""
    try:
        return load_version(segment, alias=CHAMPION).model
    except CreditgradeError:
        return None


def train_on_cluster(client, out, segment: str, kinds=KINDS, horizon: int = 12, seed: int = 0,
                     progress: Callable[[str], None] | None = None) -> list[TrainResult]:
    """Train, evaluate, log and register each kind of ``kinds`` (of :data:`KINDS`) from the export of ``segment``
    under ``out`` on the cluster of ``client`` (module docstring); then move the champion alias if the chosen
    family beats it. ``metrics`` of each result: ``rows`` (trained on), ``valid_auc``, ``auc`` and ``ks`` (out of
    time), ``default_rate_monotone``, and the scorecard's ``sample`` (subjects, share)."""
    say = progress or (lambda message: None)
    configure()
    policy = config(segment)  # one copy for the exclusion of defaulters and every model of this run
    dates = split_dates(outcome_dates(out, segment, horizon))
    say(f"{segment}: building the sample of subjects 构建主体样本")
    sample, held = _sample(client, out, segment, dates, horizon, policy)
    models, rows, lightgbm = {}, {}, None
    for kind in kinds:
        if kind == DATA_PARALLEL:
            say(f"{segment}: fitting {kind} on the cluster 在集群上训练")
            lightgbm, rows[kind] = _lightgbm(client, out, segment, dates, horizon, policy, seed, sample.train)
            models[kind] = _lightgbm_model(lightgbm, (1.0, 0.0), policy)  # uncalibrated: its margins
            continue
        say(f"{segment}: fitting {kind} on the sample 用样本训练")
        _both_classes(int(sample.train["defaulted"].sum()), len(sample.train), "the training dates", "训练期")
        models[kind] = fit_grade_model(kind, segment, Split(sample.train, sample.train.iloc[:0], sample.test), seed,
                                       policy)
        models[kind].info.update(sample_subjects=held["subjects"], sample_share=held["share"])
        rows[kind] = len(sample.train)
    say(f"{segment}: scoring the validation dates 验证期评分")
    valid = _grade_all(client, out, segment, dates.valid, horizon, policy,
                       {kind: (model, ("pd",)) for kind, model in models.items()})
    y_valid = valid["defaulted"].to_numpy()
    _both_classes(int(y_valid.sum()), len(y_valid), "the validation dates", "验证期")
    if lightgbm is not None:
        info = dict(train_from=str(dates.train[0].date()), train_to=str(dates.valid[-1].date()),
                    test_from=str(dates.test[0].date()), test_to=str(dates.test[-1].date()),
                    rows_train=rows[DATA_PARALLEL] + len(valid))  # as the pipeline counts the rows it calibrates on
        reference = sample.train[lightgbm["columns"]].select_dtypes("number").median().to_dict()
        a, b = _platt(valid[f"{DATA_PARALLEL}:pd"].to_numpy(), y_valid)
        models[DATA_PARALLEL] = _lightgbm_model(lightgbm, (a, b), policy, info=info, reference=reference)
        valid[f"{DATA_PARALLEL}:pd"] = expit(a * logit(valid[f"{DATA_PARALLEL}:pd"].to_numpy()) + b)  # as it grades
    choice = _choice(valid, list(models), dates)
    if choice.blend:
        models[BLEND] = blend_model([models[k] for k in choice.blend])
        rows[BLEND] = max(rows[k] for k in choice.blend)
    say(f"{segment}: grading the test dates 跨时间检验期评级")
    champion = _champion(segment)
    graded = {kind: (model, ("pd", "score", "model_grade")) for kind, model in models.items()}
    test = _grade_all(client, out, segment, dates.test, horizon, policy,
                      graded | ({"champion": (champion, ("pd",))} if champion is not None else {}))
    y_test = test["defaulted"].to_numpy()
    _both_classes(int(y_test.sum()), len(y_test), "the test dates", "检验期")
    results = []
    for kind, model in models.items():
        model.info.update(rows_test=len(test))
        say(f"{segment}: logging {kind} to MLflow 登记模型")
        report = evaluate(y_test, test[f"{kind}:pd"].to_numpy(), grade=test[f"{kind}:model_grade"].to_numpy(),
                          grade_order=model.scale.order, features_train=sample.train[model.features],
                          features_test=sample.test[model.features],
                          score_train=model.grade(sample.train)["score"].to_numpy(),
                          score_test=test[f"{kind}:score"].to_numpy())
        version, run_id, new = register(model, report, sample.test.head(settings()["example_rows"]))
        metrics = {"auc": report["auc"], "ks": report["ks"], "valid_auc": choice.valid_auc[kind], "rows": rows[kind],
                   "default_rate_monotone": report.get("default_rate_monotone")}
        if kind != DATA_PARALLEL:
            metrics["sample"] = held
        results.append(TrainResult(segment, kind, version, run_id, metrics, new=new, chosen=choice.chose(kind)))
    record(choice, segment, {r.kind: r.version for r in results})
    champ = test["champion:pd"] if champion is not None else None
    champ_auc = float("-inf") if champ is None or champ.isna().any() else auc(y_test, champ)
    best = next(r for r in results if r.chosen)
    if best.metrics["auc"] > champ_auc:
        promote(segment, best.version)
        best.champion = True
    return results


def _choice(valid: pd.DataFrame, kinds: list[str], dates: Dates) -> Choice:
    """The family chosen on the validation rows by ``training.choose.pick`` (one fold)."""
    cfg = choice_config()
    y = valid["defaulted"].to_numpy()
    picked = pick([y], {kind: [valid[f"{kind}:pd"].to_numpy()] for kind in kinds}, cfg)
    return Choice(picked.kind, picked.scores, str(dates.valid[0].date()), str(dates.valid[-1].date()), picked.shares,
                  {k: 0 for k in kinds}, picked.members, picked.blend_beats)
