"""Band validation: every grade's PD back-tested at every out-of-time as-of date of a registered model.

What is validated, and why: the model's grade (``model_grade``) against the PD the model gave its subjects.
Policy rules move subjects without claiming a PD (a cap says "no better than CC", not "PD within CC's
band"), so back-testing the final grade would judge the rules, not the bands. Subjects already in default
at the as-of date (a default rule of the model's policy holds: ``Scale.in_default``) are left out of the
test: the policy grades them with the scale's ``default_grade`` (``D``) whatever the model says, training
leaves them out, and their default within the horizon is a fact, not a prediction. Beside each grade the
final grade's subjects, defaults and default rate are reported, defaulters included (in ``D``).

Per out-of-time as-of date (the model's ``info`` test period) and grade: subjects, defaults, observed
default rate, the band's PD range, the grade's PD (the mean model PD of its subjects), the ECB's Jeffreys
p-value ``beta.cdf(PD, D + 1/2, N - D + 1/2)`` and a traffic light (thresholds and the minimum number of
subjects to test in ``training/validation.toml``); whether default rates rise monotonically across grades
with enough subjects, and which inversions are significant (a one-sided Fisher exact test that the better
grade defaulted more: with a handful of defaults per grade and date, an inversion is often chance, as the
oracle's own table shows); and the shares the scale produces (grade shares, and for households the rated share
and the villages and townships that qualify as credit villages and townships), so that a threshold that
qualifies nearly everyone shows. Given the generator's true PD (``oracle``), the same table is made for it on
the same bands: what the data allow, beside what the model achieves. Written as HTML, logged to MLflow (experiment "creditgrade-validation")
and shown in the review pack.
"""
from __future__ import annotations

import html
import tomllib
from functools import cache
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from scipy import stats

from creditgrade.features.build import build_training_set
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames
from creditgrade.models.bundle import GradeModel
from creditgrade.models.credit_villages import household_flags, rate_townships, rate_villages
from creditgrade.models.grades import Scale
from creditgrade.models.registry import Loaded, configure, experiment_id, load_champion
from creditgrade.training import evaluate as ev

CONFIG_FILE = Path(__file__).with_name("validation.toml")
EXPERIMENT = "creditgrade-validation"


@cache
def config(path: Path = CONFIG_FILE) -> dict:
    with Path(path).open("rb") as fh:
        return tomllib.load(fh)


def jeffreys_p_value(defaults, subjects, pd_):
    """The ECB's Jeffreys test: the CDF at the PD of the Beta(D + 1/2, N - D + 1/2) posterior of the
    default rate. Small when the defaults are too many for the PD."""
    defaults, subjects = np.asarray(defaults, float), np.asarray(subjects, float)
    return stats.beta.cdf(pd_, defaults + 0.5, subjects - defaults + 0.5)


def traffic_light(p_value, subjects) -> np.ndarray:
    """"untested" under the minimum number of subjects, else red / amber / green by the p-value."""
    j = config()["jeffreys"]
    p_value, subjects = np.asarray(p_value, float), np.asarray(subjects)
    return np.select([subjects < j["min_subjects"], p_value < j["red_below"], p_value < j["amber_below"]],
                     ["untested", "red", "amber"], "green")


def band_ranges(scale: Scale) -> pd.DataFrame:
    """Each band's PD range [pd_low, pd_high), best grade first. A score-banded scale's score bounds are
    mapped through its PD scaling (scores are rounded to whole points)."""
    if scale.by == "pd":
        high = [min(b["pd_below"], 1.0) for b in scale.bands]
    else:
        high = [1.0 if b["score_from"] <= scale.min_score else scale.pd_at_score(b["score_from"] - 0.5)
                for b in scale.bands]
    return pd.DataFrame({"pd_low": [0.0, *high[:-1]], "pd_high": high},
                        index=pd.Index([b["grade"] for b in scale.bands], name="grade"))


def inversions(rates: pd.DataFrame, min_n: int) -> list[dict]:
    """Adjacent grades (among those with at least ``min_n`` subjects, best first) whose default rate falls,
    each with the one-sided Fisher exact p-value that the better grade's default odds are higher."""
    held = rates[rates["n"] >= min_n]
    found = []
    for a, b in zip(held.itertuples(), held.iloc[1:].itertuples()):
        if b.rate < a.rate:
            table = [[a.defaults, a.n - a.defaults], [b.defaults, b.n - b.defaults]]
            found.append({"better": a.grade, "worse": b.grade, "better_rate": a.rate, "worse_rate": b.rate,
                          "p_value": float(stats.fisher_exact(table, alternative="greater").pvalue)})
    return found


def date_table(graded: pd.DataFrame, y: np.ndarray, in_default: np.ndarray, scale: Scale) -> tuple[pd.DataFrame, list]:
    """One as-of date: the back-test per grade of the scale (see the module docstring) and the inversions
    of the model grades' default rates (empty: monotone)."""
    tested = ~in_default
    model_grade = graded["model_grade"].to_numpy()[tested]
    rates = ev.default_rate_by_grade(y[tested], model_grade, scale.order)
    final = ev.default_rate_by_grade(y, graded["grade"].to_numpy(), scale.order).set_index("grade")
    t = band_ranges(scale).reindex(scale.order)
    t["subjects"] = rates["n"].to_numpy()
    t["defaults"] = rates["defaults"].to_numpy()
    t["default_rate"] = rates["rate"].to_numpy()
    t["mean_pd"] = pd.Series(graded["pd"].to_numpy()[tested]).groupby(model_grade).mean().reindex(t.index)
    t["p_value"] = jeffreys_p_value(t["defaults"], t["subjects"], t["mean_pd"])
    t["light"] = np.where(t["pd_high"].isna(), "", traffic_light(t["p_value"], t["subjects"]))  # no band: D
    t["position"] = np.select([t["subjects"] == 0, t["default_rate"] < t["pd_low"],
                               t["default_rate"] >= t["pd_high"]], ["", "below", "above"], "within")
    t["final_subjects"], t["final_defaults"] = final["n"], final["defaults"]
    t["final_default_rate"] = final["rate"]
    return t.reset_index(), inversions(rates, config()["monotone"]["min_subjects"])


def shares(graded: pd.DataFrame, X: pd.DataFrame, scale: Scale, subjects: pd.DataFrame | None) -> dict:
    """Share of subjects per final grade; for households with village and township codes, the shares of
    households rated, and of villages and townships that qualify."""
    row = graded["grade"].value_counts(normalize=True).reindex(scale.order, fill_value=0.0).to_dict()
    if subjects is not None and "village_code" in subjects and subjects["village_code"].notna().any():
        h = subjects[["village_code", "township_code"]].reindex(X.index).join(household_flags(graded["grade"], X))
        villages = rate_villages(h)
        row.update(rated=h["rated"].mean(), credit_villages=villages["credit_village"].mean(),
                   credit_townships=rate_townships(villages)["credit_township"].mean())
    return row


def validate_snapshots(data: pd.DataFrame, model: GradeModel, subjects: pd.DataFrame | None = None,
                       label: str = "", oracle: np.ndarray | None = None) -> dict:
    """Band validation of stacked out-of-time snapshots (features, ``as_of``, ``defaulted``); ``subjects``
    indexed by subject_key (households: village and township codes); ``oracle`` the true PD of each row
    of ``data`` (same order), if known. Returns ``segment, model, table`` (one row per as-of date and grade),
    ``monotone``, ``inversions`` and ``in_default`` (per as-of date), ``shares`` (one row per as-of date)
    and, with ``oracle``, the same table and inversions for the true PD as ``oracle_table`` and
    ``oracle_inversions``."""
    scale = model.scale
    tables, oracle_tables, found, oracle_found, in_default, share_rows = [], [], {}, {}, {}, {}
    for day, rows in sorted(data.groupby("as_of").indices.items()):
        part = data.iloc[rows]
        graded = model.grade(part)
        defaulter = scale.in_default(part)
        y = part["defaulted"].to_numpy(float)
        table, found[day] = date_table(graded, y, defaulter, scale)
        tables.append(table.assign(as_of=day))
        if oracle is not None:
            true_grade = scale.grade(oracle[rows])
            graded_true = pd.DataFrame({"pd": oracle[rows], "model_grade": true_grade, "grade": true_grade})
            t, oracle_found[day] = date_table(graded_true, y, defaulter, scale)
            oracle_tables.append(t.assign(as_of=day))
        in_default[day] = int(defaulter.sum())
        share_rows[day] = shares(graded, part, scale, subjects)
    stacked = [pd.concat(t, ignore_index=True) for t in (tables, oracle_tables) if t]
    result = {"segment": model.segment, "model": label or model.kind,
              "table": stacked[0][["as_of", *stacked[0].columns[:-1]]],
              "monotone": {day: not f for day, f in found.items()}, "inversions": found,
              "in_default": in_default, "shares": pd.DataFrame(share_rows).T.rename_axis("as_of")}
    if oracle is not None:
        result.update(oracle_table=stacked[1][["as_of", *stacked[1].columns[:-1]]], oracle_inversions=oracle_found)
    return result


def validate(source, segment: str, model: GradeModel | Loaded | None = None,
             oracle: pd.DataFrame | None = None) -> dict:
    """Band validation of a segment's model (default: the champion) at the out-of-time as-of dates its
    ``info`` records, over a Store or Frames (see :func:`validate_snapshots`); ``oracle`` the generator's
    true PD (``subject_key, as_of, true_pd``) for the table the data allow."""
    loaded = model if model is not None else load_champion(segment)
    label = f"{loaded.name} v{loaded.version}" if isinstance(loaded, Loaded) else ""
    model = loaded.model if isinstance(loaded, Loaded) else loaded
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    data = build_training_set(frames, segment)
    lo, hi = pd.Timestamp(model.info["test_from"]), pd.Timestamp(model.info["test_to"])
    data = data[(data["as_of"] >= lo) & (data["as_of"] <= hi)]
    if data.empty:
        raise CreditgradeError(f"no {segment} outcomes in the model's out-of-time period {lo.date()}..{hi.date()}: "
                               "ingest the outcomes it was trained with")
    subjects = frames.subjects[frames.subjects["segment"] == segment].set_index("subject_key")
    true_pd = None
    if oracle is not None:
        keyed = data[["as_of"]].rename_axis("subject_key").reset_index()
        true_pd = keyed.merge(oracle, on=["subject_key", "as_of"], how="left")["true_pd"].to_numpy(float)
        if np.isnan(true_pd).any():
            raise CreditgradeError(f"the oracle has no true PD for {int(np.isnan(true_pd).sum())} of the "
                                   f"{len(true_pd)} out-of-time {segment} rows: pass the oracle of this sample")
    return validate_snapshots(data, model, subjects, label, true_pd)


# ---------------------------------------------------------------- report

def _text(group: str, key: str) -> str:
    t = config()[group].get(key)
    return f"{t['en']} {t['zh']}" if t else key


def _headers(frame: pd.DataFrame) -> pd.DataFrame:
    """Two header rows, English over Chinese."""
    names = config()["columns"]
    return frame.set_axis(pd.MultiIndex.from_tuples([(names[c]["en"], names[c]["zh"]) if c in names else (c, "")
                                                     for c in frame.columns]), axis=1)


def significant(found: list[dict]) -> list[dict]:
    return [f for f in found if f["p_value"] < config()["monotone"]["significant_below"]]


def _day_findings(table: pd.DataFrame, found: dict, who: str, in_default: dict | None = None) -> list[str]:
    least, alpha = config()["monotone"]["min_subjects"], config()["monotone"]["significant_below"]
    lines = []
    for day, part in table.groupby("as_of"):
        counts = part["light"].value_counts()
        lights = ", ".join(f"{_text('lights', k)} {counts.get(k, 0)}" for k in ("red", "amber", "green"))
        falls = "; ".join(f"{f['better']} {f['better_rate']:.2%} > {f['worse']} {f['worse_rate']:.2%} "
                          f"(p {f['p_value']:.2f})" for f in found[day])
        mono = "yes 是" if not found[day] else f"NO 否 ({falls})"
        sig = len(significant(found[day]))
        held_out = f"; {_text('columns', 'in_default')}: {in_default[day]}" if in_default is not None else ""
        lines.append(f"{who}{pd.Timestamp(day).date()}: {lights}; {_text('columns', 'monotone')} (≥ {least}): "
                     f"{mono}; significant inversions 显著倒挂 (p < {alpha}): {sig}{held_out}")
    return lines


def findings(result: dict) -> list[str]:
    """Bilingual one-line findings per as-of date: lights counted, inversions (significant ones counted) and
    defaulters left out; the oracle's beside, when given."""
    lines = _day_findings(result["table"], result["inversions"], "", result["in_default"])
    if "oracle_table" in result:
        lines += _day_findings(result["oracle_table"], result["oracle_inversions"], "oracle (true PD) 真实PD ")
    return lines


def display_table(result: dict, which: str = "table") -> pd.DataFrame:
    """The back-test table (or ``oracle_table``) with bilingual column headers and texts, for people."""
    t = result[which].assign(
        as_of=lambda d: d["as_of"].dt.date,
        light=lambda d: d["light"].map(lambda v: _text("lights", v)),
        position=lambda d: d["position"].map(lambda v: _text("band_position", v)))
    return _headers(t)


def display_shares(result: dict) -> pd.DataFrame:
    s = result["shares"].reset_index()
    s["as_of"] = s["as_of"].dt.date
    return _headers(s)


def validation_html(result: dict) -> str:
    """The validation as an HTML fragment: findings, the back-test table and the shares."""
    fmt = {"float_format": lambda v: f"{v:.4g}", "na_rep": "", "border": 0, "index": False}
    items = "".join(f"<li>{html.escape(line)}</li>" for line in findings(result))
    oracle = ""
    if "oracle_table" in result:
        oracle = (f"<h3>The oracle (the generator's true PD) on the same bands 真实PD同区间检验</h3>"
                  f"{display_table(result, 'oracle_table').to_html(**fmt)}")
    return (f"<ul>{items}</ul>{display_table(result).to_html(**fmt)}{oracle}"
            f"<h3>Shares per as-of date 各基准日占比</h3>{display_shares(result).to_html(**fmt)}")


def write_validation(result: dict, out_html, log: bool = True) -> Path:
    """Write the HTML report and, with ``log``, an MLflow run in experiment "creditgrade-validation" (counts
    of lights, monotonicity, tables and the report)."""
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"Band validation 等级PD回溯检验: {result['segment']} — {result['model']}"
    out.write_text(f'<!DOCTYPE html><html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}'
                   f"</title></head><body><h1>{html.escape(title)}</h1>{validation_html(result)}</body></html>",
                   encoding="utf-8")
    if log:
        configure()
        with mlflow.start_run(experiment_id=experiment_id(EXPERIMENT), run_name=f"{result['segment']}-validate"):
            mlflow.log_params({"segment": result["segment"], "model": result["model"]})
            lights = result["table"]["light"].value_counts()
            mlflow.log_metrics({f"lights_{k}": float(lights.get(k, 0)) for k in ("red", "amber", "green", "untested")}
                               | {"monotone_all_dates": float(all(result["monotone"].values())),
                                  "significant_inversions": float(sum(len(significant(f))
                                                                      for f in result["inversions"].values()))})
            mlflow.log_text(result["table"].to_csv(index=False), "validation.csv")
            mlflow.log_text(result["shares"].to_csv(), "shares.csv")
            mlflow.log_artifact(str(out))
    return out
