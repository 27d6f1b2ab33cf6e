"""Exact boundaries of the point-in-time, retention, repair and window rules; objections; thin files."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from creditgrade.features.build import build_features
from creditgrade.features.frames import Frames
from creditgrade.features.snapshot import retention_cutoff

# records of a subject not in the subjects table: they only span the data's dates (2010 to 2024)
FILLERS = [{"subject_key": "ZZ", "kind": "tax.payment", "source": "tax", "start_date": day, "reported_date": day,
            "amount": 100.0} for day in ("2010-01-01", "2024-12-31")]


def frames(*records: dict, segment: str = "sme", keys=("S1",), open_ids=()) -> Frames:
    """Subjects ``keys`` founded in 2000 and the given records of S1; as-of dates from 2010-01-02 to
    2025-12-31 are within the data."""
    subjects = pd.DataFrame({"subject_key": list(keys), "segment": segment, "sector": "manufacturing",
                             "size": "small", "founded": "2000-01-01", "licensed_since": "2000-01-01",
                             "members": 4, "labour_force": 2})
    rows = [{"subject_key": "S1", "segment": segment, **r} for r in (*records, *FILLERS)]
    df = pd.DataFrame(rows)
    df.insert(0, "record_id", range(1, len(df) + 1))
    return Frames(subjects, df, pd.DataFrame(), frozenset(open_ids))


def feature(frames_: Frames, name: str, as_of, key: str = "S1", segment: str = "sme"):
    return build_features(frames_, segment, as_of).loc[key, name]


EVASION = {"kind": "tax.evasion", "source": "tax", "start_date": "2017-01-10", "end_date": "2018-06-15",
           "reported_date": "2017-02-01", "severity": "serious", "amount": 5000.0}


def test_negative_record_counts_until_five_years_after_its_end():
    f = frames(EVASION)
    assert feature(f, "tax_evasion_cases", "2023-06-14") == 1  # the day before add_months(end, 60)
    assert feature(f, "tax_evasion_cases", "2023-06-15") == 0  # on the day: never again


def test_without_end_date_retention_runs_from_start_date():
    f = frames({**EVASION, "start_date": "2018-06-15", "end_date": None, "reported_date": "2018-07-01"})
    assert feature(f, "tax_evasion_cases", "2023-06-14") == 1
    assert feature(f, "tax_evasion_cases", "2023-06-15") == 0


def test_retention_of_a_29_february_end_is_clamped_to_28_february():
    f = frames({**EVASION, "start_date": "2019-05-01", "end_date": "2020-02-29", "reported_date": "2019-06-01"})
    assert retention_cutoff(dt.date(2025, 2, 28)) == dt.date(2020, 2, 29)
    assert feature(f, "tax_evasion_cases", "2025-02-27") == 1
    assert feature(f, "tax_evasion_cases", "2025-02-28") == 0


def test_repaired_penalty_stops_counting_on_its_repair_date():
    penalty = {"kind": "tax.penalty", "source": "tax", "start_date": "2022-01-10", "reported_date": "2022-02-01",
               "severity": "general", "repaired_date": "2022-09-01"}
    f = frames(penalty)
    assert feature(f, "tax_penalties_36m", "2022-08-31") == 1
    assert feature(f, "tax_penalties_36m", "2022-09-01") == 0
    assert feature(f, "tax_penalties_36m", "2022-09-02") == 0


def test_record_counts_only_if_reported_strictly_before_as_of():
    arrears = {"kind": "tax.arrears", "source": "tax", "start_date": "2023-01-05", "reported_date": "2023-03-01",
               "severity": "minor", "amount": 700.0}
    f = frames(arrears)
    assert feature(f, "tax_arrears_open_amount", "2023-03-01") == 0
    assert feature(f, "tax_arrears_open_amount", "2023-03-02") == 700.0


def test_window_starts_exactly_the_calendar_months_back():
    violation = {"kind": "safety.violation", "source": "safety", "start_date": "2023-03-31",
                 "reported_date": "2023-04-10", "severity": "minor"}
    f = frames(violation)
    assert feature(f, "safety_violations_12m", "2024-03-31") == 1  # start == as_of - 12 months
    assert feature(f, "safety_violations_12m", "2024-04-01") == 0


def test_end_date_after_as_of_is_not_yet_known():
    arrears = {"kind": "tax.arrears", "source": "tax", "start_date": "2023-01-05", "end_date": "2023-06-30",
               "reported_date": "2023-02-01", "severity": "minor", "amount": 700.0}
    f = frames(arrears)
    assert feature(f, "tax_arrears_open", "2023-06-30") == 1  # cleared on the as-of date: still open at it
    assert feature(f, "tax_arrears_open", "2023-07-01") == 0


def test_open_objections_name_the_records_used_and_the_features_they_change():
    arrears = {"kind": "tax.arrears", "source": "tax", "start_date": "2023-01-05", "reported_date": "2023-02-01",
               "severity": "serious", "amount": 700.0}
    late = {**arrears, "reported_date": "2024-01-01"}  # disputed, but not yet reported at the as-of date
    f = frames(arrears, EVASION, late, open_ids={1, 2, 3})
    features, disputed = build_features(f, "sme", "2023-06-01", with_disputed=True)
    assert set(disputed) == {"S1"}
    used = dict(disputed["S1"])
    assert set(used) == {1, 2}
    assert {"tax_arrears_12m", "tax_arrears_open_amount", "tax_negatives_12m",
            "tax_negative_severity_36m", "tax_months_since_negative"} <= set(used[1])
    # outside every window: it counts through retention only, in the cases and the recency-weighted negatives
    assert set(used[2]) == {"tax_evasion_cases", "tax_negatives_recency"}
    assert not set(used[1]) - set(features.columns)
    assert build_features(f, "sme", "2023-06-01").equals(features)
    assert dict(build_features(f, "sme", "2023-06-15", with_disputed=True)[1]["S1"]).keys() == {1}  # 2 expired


def test_thin_files_are_flagged_and_still_get_a_row():
    loan = {"kind": "finance.loan", "source": "finance", "start_date": "2023-01-05", "reported_date": "2023-01-06",
            "amount": 10000.0, "account": "L1"}
    f = frames(loan, keys=("S1", "S2"))
    features = build_features(f, "sme", "2023-03-31")
    assert features.loc["S1", ["has_finance", "has_tax", "has_safety", "has_quality", "has_labor"]].tolist() == [
        1, 0, 0, 0, 0]
    assert features.loc["S2", ["has_finance", "has_tax"]].tolist() == [0, 0]
    assert features.loc["S2", "tax_months_since_negative"] == 60


def test_subjects_exist_from_the_day_after_founding():
    f = frames(keys=("S1", "S2"))
    f.subjects.loc[1, "founded"] = pd.Timestamp("2023-06-30")
    assert list(build_features(f, "sme", "2023-06-30").index) == ["S1"]
    assert list(build_features(f, "sme", "2023-07-01").index) == ["S1", "S2"]
