"""The synthetic population generator: determinism, the input contract, timing of defaults, the oracle."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from stdnum.cn import ric, uscc

from creditgrade.data.sample import identity
from creditgrade.data.sample.aftermath import Aftermath
from creditgrade.data.sample.chunks import NULL
from creditgrade.data.sample.generator import generate, generate_tables, populations
from creditgrade.data.sample.timeline import Timeline
from creditgrade.features import ids
from creditgrade.features.build import build_features
from creditgrade.features.frames import Frames
from creditgrade.features.schemas import OutcomeRow, RecordRow, SubjectRow
from creditgrade.models.grades import scales

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
SAMPLE_ARGS = dict(n_smes=2000, n_households=1500, n_practitioners=800, seed=20250101)
SMALL = dict(n_smes=200, n_households=200, n_practitioners=200)
END = pd.Timestamp("2025-12-31").date()
AS_OF_2024 = ("2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31")


@pytest.fixture(scope="module")
def small():
    return generate_tables(**SMALL, seed=3)


@pytest.fixture(scope="module")
def sample():
    read = lambda name: pd.read_parquet(SAMPLE / f"{name}.parquet")  # noqa: E731
    return {"subjects": read("subjects"), "records": read("records"), "outcomes": read("outcomes"),
            "oracle": read("oracle/true_pd")}


def test_same_seed_same_frames_and_other_seed_differs():
    a, b, c = (generate(n_smes=60, n_households=60, n_practitioners=60, seed=s) for s in (7, 7, 8))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["records"].equals(c["records"])
    assert not a["subjects"]["subject_id"].equals(c["subjects"]["subject_id"])


def test_rows_validate_against_the_schemas(small):
    TypeAdapter(list[SubjectRow]).validate_python(small["subjects"].to_pylist())
    TypeAdapter(list[RecordRow]).validate_python(small["records"].to_pylist())
    TypeAdapter(list[OutcomeRow]).validate_python(small["outcomes"].to_pylist())


def test_identifiers_match_stdnum(small):
    s = small["subjects"].to_pandas()
    for sid in s.loc[s.segment == "sme", "subject_id"]:
        assert uscc.validate(sid) == ids.make_uscc(sid[:17])
    for col, seg in (("subject_id", "practitioner"), ("head_id", "household")):
        for number in s.loc[s.segment == seg, col]:
            assert ric.validate(number) == ids.make_ric(number[:17])
    assert s.subject_id.is_unique
    assert len(identity.uscc(np.array(["410102"]), np.array([12345678]))[0]) == 18


def test_doc_ref_unique_per_source_and_nothing_reported_after_the_end(sample):
    r = sample["records"]
    assert not r.duplicated(["source", "doc_ref"]).any()
    assert (r.reported_date <= END).all()
    assert (r.reported_date >= r.start_date).all()
    persons = set(sample["subjects"].query("segment == 'practitioner'").subject_id)
    persons |= set(sample["subjects"].head_id.dropna())
    assert not set(r.doc_ref.str.split("-").explode()) & persons  # no identity number in a reference
    links = r.kind == "finance.link"
    assert r.account[~links].dropna().str.fullmatch(r"LN[SHP]\d{10}").all()
    firms = set(sample["subjects"].query("segment == 'sme'").subject_id)
    assert set(r.loc[links, "account"]) <= firms and set(r.loc[links, "subject_id"]) <= firms  # links join firms
    assert (r.loc[links, "account"] != r.loc[links, "subject_id"]).all()


def _default_markers(r: pd.DataFrame) -> pd.DataFrame:
    """First record putting a subject in default: 90+ dpd, write-off, bankruptcy, a practitioner's serious sanction."""
    marker = (((r.kind == "finance.loan_status") & (r.value >= 90)) | r.kind.isin(["finance.write_off", "finance.bankruptcy"])
              | ((r.kind == "quality.sanction") & (r.severity == "serious")))
    return r[marker].groupby("subject_id").start_date.min()


def test_defaults_show_in_records_only_after_they_happen(sample):
    r, o = sample["records"], sample["outcomes"]
    first = _default_markers(r)
    o = o.assign(marker=o.subject_id.map(first))
    # no trace of a default on or before an as-of date at which the subject was not yet defaulted
    assert not (o.marker <= o.as_of).any()
    # every default within a horizon leaves its trace within it (when reported before the end)
    hit = o[o.defaulted == 1]
    horizon_end = (pd.to_datetime(hit.as_of) + pd.DateOffset(months=12)).dt.date
    early = hit[horizon_end <= pd.Timestamp("2025-09-30").date()]
    assert early.marker.notna().all()
    assert (early.marker <= horizon_end[early.index]).all()
    # and subjects never defaulted have no marker
    never = set(o.subject_id) - set(o.loc[o.defaulted == 1, "subject_id"])
    late = set(o.loc[o.as_of == o.as_of.max(), "subject_id"])
    assert not (never & late) & set(first.index)


def test_loans_roll_30_60_90_before_default_and_some_cure(sample):
    st = sample["records"].query("kind == 'finance.loan_status'").sort_values(["account", "start_date"])
    st = st.assign(prev=st.groupby("account").value.shift(1), prev2=st.groupby("account").value.shift(2))
    first90 = st[(st.value >= 90) & (st.prev < 90)]
    assert len(first90) > 300
    # every loan reaching 90+ was 60-89 the month before and 30-59 the month before that
    assert first90.prev.between(60, 89).all() and first90.prev2.between(30, 59).all()
    cured_at_60 = st[(st.prev >= 60) & (st.prev < 90) & (st.value == 0)]
    cured_at_30 = st[(st.prev >= 30) & (st.prev < 60) & (st.value == 0)]
    assert len(cured_at_60) > 100 and len(cured_at_30) > 100
    # a write-off follows 90+ on the same account
    w = sample["records"].query("kind == 'finance.write_off'")
    assert w.account.isin(first90.account).all()


def test_defaults_end_and_a_subject_that_leaves_has_nothing_after(small):
    """Write-offs end when settled, bankruptcies when proceedings close, serious sanctions with their period;
    a firm deregistered (or a practitioner leaving) has no record starting and no outcome row from then."""
    records, outcomes = small["records"].to_pandas(), small["outcomes"].to_pandas()
    tl = Timeline("2019-01", "2025-12")
    exits = 0
    for pop, lat in populations(**SMALL, seed=3, tl=tl):
        after = Aftermath.of(pop, lat, tl, 3)
        left = after.exit_day != NULL
        exits += left.sum()
        exit_day = pd.Series(pd.to_datetime(after.exit_day[left], unit="D").date, index=pop.subject_id[left])
        r = records[records.subject_id.isin(exit_day.index)]
        assert (r.start_date < r.subject_id.map(exit_day)).all(), pop.segment
        assert not (r.end_date > r.subject_id.map(exit_day)).any(), pop.segment  # nothing goes on after it
        d = _default_records(r)
        assert (d.end_date.notna() | (d.subject_id.map(exit_day) > END)).all(), pop.segment
        o = outcomes[outcomes.subject_id.isin(exit_day.index)]
        assert (o.as_of < o.subject_id.map(exit_day)).all(), pop.segment
    assert exits > 10
    d = _default_records(records)
    days = (pd.to_datetime(d.end_date) - pd.to_datetime(d.start_date)).dt.days
    assert days.notna().mean() > 0.7 and days.max() < 3 * 366  # open ones started near the end


def _default_records(r: pd.DataFrame) -> pd.DataFrame:
    """Write-offs, bankruptcies and serious sanctions: the records that hold a subject in default while ongoing."""
    return r[r.kind.isin(["finance.write_off", "finance.bankruptcy"])
             | ((r.kind == "quality.sanction") & (r.severity == "serious"))]


@pytest.fixture(scope="module")
def sample_features(sample):
    frames = Frames.from_population(sample)
    return {(seg, day): build_features(frames, seg, day) for seg in ("sme", "household", "practitioner")
            for day in AS_OF_2024}


def test_in_default_at_an_as_of_date_is_a_realistic_minority(sample_features):
    """Subjects the policy's default rules (models/grades.toml) put in default at each 2024 as-of date, of
    the order of published NPL ratios (commercial banks 1.8 %, small business 3-4 %, public_figures.toml)."""
    bounds = {"sme": (0.01, 0.05), "household": (0.005, 0.03), "practitioner": (0.002, 0.02)}
    for (seg, day), x in sample_features.items():
        share = scales()[seg].in_default(x).mean()
        assert bounds[seg][0] <= share <= bounds[seg][1], (seg, day, share)


def test_tax_level_d_and_abnormal_operations_stay_a_small_minority(sample_features):
    for day in AS_OF_2024:
        x = sample_features["sme", day]
        assert (x.tax_credit_level == 5).mean() < 0.06, day  # D (1 = A .. 5 = D), exited firms' last level too
        assert 0.005 < (x.list_abnormal_operations >= 1).mean() < 0.04, day


def test_households_carry_village_and_township_names(sample):
    h = sample["subjects"].query("segment == 'household'")
    assert h.village_name.str.fullmatch(r"[\u4e00-\u9fff]{2,4}村").all()
    assert h.township_name.str.fullmatch(r"[\u4e00-\u9fff]{2,4}镇").all()
    assert (h.groupby("village_code").village_name.nunique() == 1).all()
    assert h.drop_duplicates("village_code").village_name.is_unique
    assert h.drop_duplicates("township_code").township_name.is_unique
    assert sample["subjects"].query("segment != 'household'").village_name.isna().all()


def test_tax_levels_follow_the_tax_records(sample):
    r = sample["records"]
    lv = r[r.kind == "tax.credit_level"]
    assert set(lv.segment) == {"sme"}
    shares = lv.category.value_counts(normalize=True)
    assert shares["C"] + shares["D"] < 0.15 and shares["A"] > 0.2
    # D in the year of a major-tax-violator listing
    listed = r[r.kind == "lists.major_tax_violator"]
    listed = listed.assign(year=pd.to_datetime(listed.start_date).dt.year)
    lv = lv.assign(year=pd.to_datetime(lv.end_date).dt.year)
    m = listed.merge(lv, on=["subject_id", "year"], suffixes=("", "_level"))
    assert len(m) > 10 and (m.category_level == "D").all()
    # A-level firms and only they enter the A-taxpayer red list, on the day the level is published
    a = lv[lv.category == "A"]
    red = r[r.kind == "lists.a_taxpayer"]
    assert len(red) == len(a)
    assert set(zip(red.subject_id, red.start_date)) == set(zip(a.subject_id, a.reported_date))


def test_list_entries_follow_their_causes_at_rare_rates(sample):
    r, s = sample["records"], sample["subjects"]
    lists = r[r.source == "lists"]
    assert (lists.end_date.isna() | (lists.end_date >= lists.start_date)).all()
    court = r[r.kind == "finance.court_enforcement"].groupby("subject_id").start_date.min()
    dd = lists[lists.kind == "lists.dishonest_debtor"]
    assert (dd.subject_id.map(court) < dd.start_date).all()
    evasion = r[r.kind == "tax.evasion"].groupby("subject_id").start_date.min()
    mtv = lists[lists.kind == "lists.major_tax_violator"]
    assert (mtv.subject_id.map(evasion) < mtv.start_date).all()
    n_smes = (s.segment == "sme").sum()
    rare = ["lists.dishonest_debtor", "lists.major_tax_violator", "lists.safety_blacklist", "lists.quality_blacklist"]
    sme = lists[(lists.segment == "sme") & lists.kind.isin(rare)]
    per_year = sme.groupby([sme.kind, pd.to_datetime(sme.start_date).dt.year]).size() / n_smes
    assert per_year.max() < 0.01, per_year.idxmax()
    assert {"lists.a_taxpayer", "lists.contract_honoring", "lists.harmonious_labour", "lists.abnormal_operations",
            "lists.serious_violation"} <= set(lists.kind)


def test_practitioner_sanctions_follow_conduct_not_tax_paid(sample):
    r, o = sample["records"], sample["outcomes"]
    f = _aggregates(r[r.segment == "practitioner"], o[o.segment == "practitioner"])
    auc = {c: max(a := roc_auc_score(f.defaulted, f[c]), 1 - a) for c in ("log_tax", "neg12")}
    # the margin is sampling noise over ~300 defaults: 0.03 to 0.11 for seeds 20250101, 11, 12, 13
    assert auc["log_tax"] < 0.62 and auc["neg12"] > auc["log_tax"] + 0.03, auc


def test_oracle_auc_and_default_rates(sample):
    m = sample["outcomes"].merge(sample["oracle"], on=["segment", "subject_id", "as_of"])
    assert len(m) == len(sample["outcomes"])
    rates = {"sme": (0.02, 0.07), "household": (0.015, 0.05), "practitioner": (0.008, 0.04)}
    for seg, g in m.groupby("segment"):
        auc = roc_auc_score(g.defaulted, g.true_pd)
        assert 0.75 <= auc <= 0.88, (seg, auc)
        late = g[pd.to_datetime(g.as_of) >= "2024-01-01"]  # the out-of-time test dates
        late_auc = roc_auc_score(late.defaulted, late.true_pd)
        assert 0.75 <= late_auc <= 0.88, (seg, late_auc)
        assert rates[seg][0] <= g.defaulted.mean() <= rates[seg][1], seg
        assert abs(g.true_pd.mean() - g.defaulted.mean()) < 0.01  # the oracle is calibrated
        assert g.defaulted.sum() >= 200


def _aggregates(r: pd.DataFrame, o: pd.DataFrame) -> pd.DataFrame:
    """Plain point-in-time aggregates per outcome row: negatives, dpd, tax and headcount trends."""
    rows = []
    neg = r.severity.notna()
    for as_of, keys in o.groupby("as_of"):
        seen = r[r.reported_date < as_of]
        recent = seen[seen.start_date > (pd.Timestamp(as_of) - pd.DateOffset(months=12)).date()]
        f = pd.DataFrame(index=keys.subject_id)
        f["neg12"] = recent[neg.loc[recent.index]].groupby("subject_id").size()
        f["neg_all"] = seen[neg.loc[seen.index]].groupby("subject_id").size()
        f["dpd12"] = recent[recent.kind == "finance.loan_status"].groupby("subject_id").value.max()
        f["has_loan"] = seen[seen.source == "finance"].groupby("subject_id").size() > 0
        tax = recent[recent.kind == "tax.payment"].groupby("subject_id").amount.sum()
        f["log_tax"] = np.log1p(tax)
        si = recent[recent.kind == "labor.social_insurance"].sort_values("start_date").groupby("subject_id").value
        f["hc_trend"] = np.log(si.last() / si.first())
        level = seen[seen.kind == "tax.credit_level"].sort_values("start_date").groupby("subject_id").category.last()
        f["level"] = level.map({"A": 0, "B": 1, "M": 1.5, "C": 2, "D": 3})
        f["defaulted"] = keys.set_index("subject_id").defaulted
        rows.append(f)
    return pd.concat(rows).astype(float).fillna(0.0)


def test_records_carry_the_signal_only_noisily(sample):
    r, o = sample["records"], sample["outcomes"]
    orc = o.merge(sample["oracle"], on=["segment", "subject_id", "as_of"])
    # records carry the signal usefully but noisily: a plain logistic regression on a few aggregates gets
    # well above chance (sme 0.74, household 0.65 on the committed sample) yet below the oracle
    floor = {"sme": 0.68, "household": 0.60}
    for seg in ("sme", "household"):
        f = _aggregates(r[r.segment == seg], o[o.segment == seg])
        x, y = f.drop(columns="defaulted"), f.defaulted
        fit = LogisticRegression(max_iter=2000).fit((x - x.mean()) / (x.std() + 1e-9), y)
        auc = roc_auc_score(y, fit.decision_function((x - x.mean()) / (x.std() + 1e-9)))
        oracle = roc_auc_score(orc[orc.segment == seg].defaulted, orc[orc.segment == seg].true_pd)
        assert floor[seg] < auc < oracle - 0.03, (seg, auc, oracle)


def test_thin_files_exist(sample):
    s, r = sample["subjects"], sample["records"]
    with_source = r.groupby(["segment", "source"]).subject_id.unique()
    smes = s[s.segment == "sme"].subject_id
    households = s[s.segment == "household"].subject_id
    assert (~smes.isin(with_source["sme", "finance"])).mean() > 0.3
    assert (~households.isin(with_source["household", "tax"])).mean() > 0.5
    assert (~smes.isin(with_source["sme", "labor"])).mean() > 0.1


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(df.astype(str), index=False).values.tobytes()).hexdigest()


def test_committed_sample_is_a_fresh_generation_of_its_seed(sample):
    fresh = generate_tables(**SAMPLE_ARGS)
    for name, table in fresh.items():
        committed = sample[name]
        assert table.num_rows == len(committed), name
        fresh_df = table.to_pandas()
        assert _digest(fresh_df) == _digest(committed), name


@pytest.mark.parametrize("smes", [1, 3, 30])
def test_tiny_populations_generate(tmp_path, smes):
    """A district with a single firm has no link partner: no link, no crash; empty tables keep their types."""
    from creditgrade.data.sample.generator import write_population

    paths = write_population(tmp_path, n_smes=smes, n_households=2, n_practitioners=1, seed=3)
    records = pd.read_parquet(paths["records"])
    assert set(records["segment"]) <= {"sme", "household", "practitioner"} and len(records) > 0
