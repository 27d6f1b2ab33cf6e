"""Policy before the model (models/grades.toml): defaulters are graded D, capping rules bind, the binding rule
is the first reason with its record, authority and date, and a fitted model keeps the rules it was made with.

The property tests draw random subjects with random records (loan status, write-offs, bankruptcies, list
entries and removals, court enforcements, tax levels, sanctions) and random model PDs, build their features
from the records and grade them through ``GradeModel.grade`` as every caller does. What each subject should
get is worked out from the drawn records, not from the rules' feature columns.
"""
from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditgrade.features.build import build_features
from creditgrade.features.catalog import catalog, model_feature_names
from creditgrade.features.frames import Frames
from creditgrade.features.schemas import contract, kinds
from creditgrade.models import grades
from creditgrade.models.bundle import GradeModel
from creditgrade.models.estimator import Walk
from creditgrade.models.explain import reasons
from creditgrade.training.pipeline import without_defaulters
from creditgrade.training.policy_check import policy_check

AS_OF = pd.Timestamp("2024-06-30")
STATES = ("none", "ongoing", "ended")
NEGATIVE_LISTS = [k for k, v in kinds().items() if v.get("list") and not v.get("red")]
CALM = {"dpd": 0, "old_dpd": 0, "write_off": "none", "bankruptcy": "none", "court": "none", "sanction": "none",
        "tax_level": None, "lists": dict.fromkeys(NEGATIVE_LISTS, "none"), "pd": 0.0005}  # no rule holds


class GivenPD:
    """An estimator whose PDs are given: the policy layer is what is under test, not a model."""

    def __init__(self, pd_: np.ndarray):
        self.pd_ = np.asarray(pd_, dtype=float)

    def predict_pd(self, X):
        return self.pd_[: len(X)]

    def own_score(self, X):
        return None


def _day(days_before: int) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days_before)


def _record(kind: str, start: int, end: int | None = None, **fields) -> dict:
    """A record of ``kind`` that started ``start`` days before the as-of date (and ended ``end`` days
    before it), reported the day after it started."""
    return {"kind": kind, "source": kinds()[kind]["source"], "start_date": _day(start),
            "end_date": None if end is None else _day(end), "reported_date": _day(start - 1), **fields}


def _with_state(kind: str, state: str, **fields) -> list[dict]:
    if state == "none":
        return []
    return [_record(kind, 400, 100 if state == "ended" else None, **fields)]


subject = st.fixed_dictionaries({
    "dpd": st.sampled_from([0, 15, 29, 30, 45, 59, 60, 89, 90, 120, 365]),
    "old_dpd": st.sampled_from([0, 120]),             # a past status: no longer current
    "write_off": st.sampled_from(STATES),
    "bankruptcy": st.sampled_from(STATES),
    "court": st.sampled_from(STATES),
    "sanction": st.sampled_from(STATES),
    "tax_level": st.sampled_from([None, "A", "B", "M", "C", "D"]),
    "lists": st.fixed_dictionaries({k: st.sampled_from(STATES) for k in NEGATIVE_LISTS}),
    "pd": st.floats(0.0, 0.999),
})


def _records(segment: str, s: dict) -> list[dict]:
    recs = [_record("finance.loan_status", 20, amount=1000.0, value=float(s["dpd"]), account="L1"),
            _record("finance.loan_status", 200, amount=1000.0, value=float(s["old_dpd"]), account="L2")]
    if segment in ("sme", "household"):
        recs += _with_state("finance.write_off", s["write_off"], amount=5000.0, account="L3")
        recs += _with_state("finance.bankruptcy", s["bankruptcy"], severity="serious")
    recs += _with_state("finance.court_enforcement", s["court"], amount=800.0, severity="general")
    if segment == "practitioner":
        recs += _with_state("quality.sanction", s["sanction"], severity="serious")
    if segment == "sme" and s["tax_level"]:
        recs.append(_record("tax.credit_level", 150, category=s["tax_level"]))
    for kind, state in s["lists"].items():
        allowed = kinds()[kind].get("segments", [segment])
        if segment in allowed:
            recs += _with_state(kind, state, category=kinds()[kind]["categories"][0], value=36.0)
    return recs


def _frames(segment: str, drawn: list[dict]) -> tuple[Frames, pd.DataFrame]:
    return _frames_of(segment, [_records(segment, s) for s in drawn])


def _frames_of(segment: str, per_subject: list[list[dict]]) -> tuple[Frames, pd.DataFrame]:
    """Subjects S0, S1... with their records, and filler records that keep every source's data current."""
    keys = [f"S{i}" for i in range(len(per_subject))]
    subjects = pd.DataFrame({"subject_key": keys, "segment": segment, "sector": "manufacturing", "size": "small",
                             "founded": "2000-01-01", "licensed_since": "2000-01-01", "members": 4,
                             "labour_force": 2, "land_mu": 5.0, "agri_insurance": True, "coop_member": False,
                             "profession": "lawyer"})
    rows = [{"subject_key": key, "segment": segment, **r} for key, recs in zip(keys, per_subject) for r in recs]
    for source in ("tax", "finance", "quality"):  # every source has data up to the as-of date (watermarks)
        for when in ("2010-01-05", str((AS_OF - pd.Timedelta(days=3)).date())):
            rows.append({"subject_key": "ZZ", "segment": segment, "kind": f"{source}.filing" if source == "tax"
                         else "finance.loan" if source == "finance" else "quality.complaint", "source": source,
                         "start_date": when, "reported_date": when, "value": 0.0, "amount": 1.0,
                         "account": "Z", "severity": "minor"})
    records = pd.DataFrame(rows)
    records.insert(0, "record_id", range(1, len(records) + 1))
    return Frames(subjects, records, pd.DataFrame()), records


def test_list_features_follow_entry_removal_and_the_five_year_rule():
    entry = {"category": "court", "value": 36.0}
    removed = _record("lists.dishonest_debtor", 400, 100, **entry)
    expired = _record("lists.dishonest_debtor", 2300, 1860, **entry)  # removed 61 months before the as-of date
    frames, records = _frames_of("sme", [[removed], [expired], []])
    ids = records.set_index("subject_key")["record_id"]
    cols = ["list_dishonest_debtor", "list_dishonest_debtor_months_since_entry",
            "list_dishonest_debtor_months_since_removal", "list_dishonest_debtor_record"]
    now = build_features(frames, "sme", AS_OF)[cols]
    np.testing.assert_allclose(now.loc["S0"].to_numpy(), [0, 400 / 30.4375, 100 / 30.4375, np.nan])
    np.testing.assert_allclose(now.loc["S1"].to_numpy(), [0, 60, 60, np.nan])  # no longer counts at all
    np.testing.assert_allclose(now.loc["S2"].to_numpy(), [0, 60, 60, np.nan])
    listed = build_features(frames, "sme", _day(150))[cols]
    np.testing.assert_allclose(listed.loc["S0"].to_numpy(), [1, 250 / 30.4375, 60, ids["S0"]])


def _truth(segment: str, s: dict) -> tuple[bool, dict[str, bool]]:
    """In default, and for each cap rule's condition whether it holds, from the drawn records alone."""
    if segment == "practitioner":
        default = s["sanction"] == "ongoing"
    else:
        default = s["dpd"] >= 90 or "ongoing" in (s["write_off"], s["bankruptcy"])
    listed = {f"list_{k.split('.', 1)[1]}": st_ == "ongoing" for k, st_ in s["lists"].items()}
    return default, {**listed, "fin_court_enforcements_open": s["court"] == "ongoing",
                     "tax_credit_level": s["tax_level"] == "D",
                     "quality_sanctions_serious": s["sanction"] != "none"}


def _holds(rule: grades.Rule, s: dict, facts: dict) -> bool:
    if rule.feature == "fin_dpd_current":
        return s["dpd"] >= rule.value
    if rule.feature not in facts:
        raise AssertionError(f"test does not know how records make {rule.feature} hold: extend _truth")
    return facts[rule.feature]


def _graded(segment: str, drawn: list[dict]):
    frames, records = _frames(segment, drawn)
    X = build_features(frames, segment, AS_OF)
    model = GradeModel(segment, "lightgbm", GivenPD([s["pd"] for s in drawn]), model_feature_names(segment))
    return model, X, model.grade(X), records


@pytest.mark.parametrize("segment", ["sme", "household", "practitioner"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=st.lists(subject, min_size=1, max_size=8))
def test_every_defaulter_is_graded_default_and_no_one_beats_a_cap(segment, drawn):
    """Defaulters are graded default, no one beats a cap, and the one-subject path (``Scale.outcome_one``,
    plain floats) grades each subject as the batch does."""
    model, X, out, records = _graded(segment, drawn)
    scale = model.scale
    rank = {g: i for i, g in enumerate(scale.order)}
    for key, s in zip(X.index, drawn):
        default, facts = _truth(segment, s)
        row = out.loc[key]
        one = scale.outcome_one(row["pd"], {n: float(X.at[key, n]) for n in scale.inputs})
        assert [one[c] for c in ("score", "model_grade", "grade")] == row[["score", "model_grade", "grade"]].tolist()
        assert one["override"] is row["override"] and np.allclose([one["record"], one["since"]],
                                                                  [row["record"], row["since"]], equal_nan=True)
        if default:
            assert row["grade"] == scale.default_grade and row["override"].action == "default"
            shown = records.loc[records["record_id"] == row["record"]].iloc[0]
            assert shown["subject_key"] == key and kinds()[shown["kind"]]["source"] in ("finance", "quality")
            continue
        holding = [r for r in scale.caps if _holds(r, s, facts)]
        for rule in holding:
            assert rank[row["grade"]] >= rank[rule.cap], (rule.feature, row["grade"], rule.cap)
        if not holding:
            assert row["grade"] == row["model_grade"] and row["override"] is None
        elif row["override"] is not None:
            assert row["override"] in holding and rank[row["grade"]] == rank[row["override"].cap]
            shown = records.loc[records["record_id"] == row["record"]].iloc[0]
            assert shown["subject_key"] == key


def test_default_date_record_and_authority_lead_the_reasons_in_both_languages():
    calm = CALM
    drawn = [{**calm, "dpd": 120}, {**calm, "lists": {**calm["lists"], "lists.dishonest_debtor": "ongoing"}}, calm]
    model, X, out, records = _graded("sme", drawn)
    assert list(out["grade"]) == ["D", "CC", "AAA"] and list(out["model_grade"]) == ["AAA"] * 3
    default_day = (_day(20) - pd.Timedelta(days=120 - 90)).date().isoformat()  # the day it reached 90 days
    assert dt.date.fromisoformat(default_day) == (AS_OF - pd.Timedelta(days=50)).date()
    status = int(records.loc[(records.subject_key == "S0") & (records.account == "L1"), "record_id"].iloc[0])
    listed = int(records.loc[(records.subject_key == "S1") & (records.kind == "lists.dishonest_debtor"),
                             "record_id"].iloc[0])
    model.estimator = _Explainable(model.estimator)
    why = reasons(model, X, out)
    first = why[0][0]
    assert first["override"] and first["policy"] == "default" and first["cap"] == "D"
    assert first["record_id"] == status and first["since"] == default_day
    assert first["en"].startswith(f"In default since {default_day}") and f"record {status}" in first["en"]
    assert first["zh"].startswith(f"自{default_day}起违约") and f"记录 {status}" in first["zh"]
    assert "the grade is policy" in first["en"]
    cap = why[1][0]
    court = contract()["authorities"]["court"]
    assert cap["policy"] == "cap" and cap["cap"] == "CC" and cap["record_id"] == listed
    assert cap["authority"] == court and court["en"] in cap["en"] and court["zh"] in cap["zh"]
    assert "失信被执行人" in cap["zh"] and "dishonest judgment debtors" in cap["en"]
    assert not any(r.get("override") for r in why[2])


class _Explainable(GivenPD):
    """GivenPD with the parts of an estimator that reasons() reads: every feature used, none contributing."""

    unit = "log-odds"

    def __init__(self, given: GivenPD):
        super().__init__(given.pd_)
        self.used_features_ = model_feature_names("sme")

    def walk(self, X, table=None):
        return Walk(np.zeros((len(X), len(self.used_features_) + 1)), self.predict_pd(X), None)


def test_a_fitted_model_keeps_the_rules_it_was_made_with(tmp_path, monkeypatch):
    calm = CALM
    drawn = [{**calm, "lists": {**calm["lists"], "lists.dishonest_debtor": "ongoing"}}, {**calm, "pd": 0.003}]
    model, X, before, _ = _graded("sme", drawn)
    restored = pickle.loads(pickle.dumps(model))  # as MLflow stores and serving loads it
    edited = grades.GRADES_FILE.read_text(encoding="utf-8")
    edited = edited.replace('cap = "CC"', 'cap = "C"').replace('pd_below = 0.0050', 'pd_below = 0.0025001')
    path = tmp_path / "grades.toml"
    path.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(grades, "GRADES_FILE", path)
    fresh = GradeModel("sme", "lightgbm", model.estimator, model.features)  # made after the edit
    assert list(fresh.grade(X)["grade"]) == ["C", "BBB"]  # the edit is real
    for kept in (model, restored):
        pd.testing.assert_frame_equal(kept.grade(X).drop(columns="override"), before.drop(columns="override"))
        assert list(kept.grade(X)["grade"]) == ["CC", "A"]


def test_training_rows_leave_out_defaulters_and_models_never_see_policy_inputs():
    calm = {**CALM, "pd": 0.1}
    drawn = [{**calm, "dpd": 90}, {**calm, "write_off": "ongoing"}, {**calm, "write_off": "ended"}, calm]
    model, X, _, _ = _graded("household", drawn)
    assert list(without_defaulters(X, model.scale).index) == ["S2", "S3"]
    policy_only = {s.name for s in catalog("household") if not s.model}
    assert policy_only and not policy_only & set(model_feature_names("household"))
    assert {s.unit for s in catalog() if not s.model} <= {"record", "date", "count"}


def test_policy_check_counts_defaulters_and_listed_subjects_and_catches_a_grade_above_its_cap(monkeypatch):
    listed = {**CALM["lists"], "lists.dishonest_debtor": "ongoing"}
    drawn = [{**CALM, "dpd": 120}, {**CALM, "write_off": "ongoing", "lists": listed}, {**CALM, "lists": listed},
             {**CALM, "dpd": 45}, CALM]
    model, X, _, _ = _graded("sme", drawn)
    frames, _ = _frames("sme", drawn)
    got = policy_check(frames, "sme", model, as_of_dates=[AS_OF]).set_index("rule")
    assert got.loc["in default (any default rule)", ["subjects", "graded_at_or_below", "graded_better"]].tolist() \
        == [2, 2, 0]
    assert got.loc["list_dishonest_debtor >= 1", ["grade", "subjects", "graded_better"]].tolist() == ["CC", 2, 0]
    assert got.loc["fin_dpd_current >= 30", ["subjects", "graded_better"]].tolist() == [2, 0]
    assert got["graded_better"].sum() == 0
    monkeypatch.setattr(model, "grade", lambda X: model.scale.apply(model.pd(X)))  # rules left out
    broken = policy_check(frames, "sme", model, as_of_dates=[AS_OF]).set_index("rule")
    assert broken.loc["in default (any default rule)", "graded_better"] == 2
    assert broken.loc["list_dishonest_debtor >= 1", "graded_better"] == 2
