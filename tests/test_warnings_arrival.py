"""Warnings raised on arrival: ingesting a record that trips a trigger raises its warning in the same
transaction, with the record as evidence; what is not news (back-filled history) raises nothing; a process
killed after the warning is written but before the commit leaves neither the record nor the warning."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from creditgrade.features.ingest import ingest_file, ingest_files
from creditgrade.features.store import records
from creditgrade.serving.tables import warnings
from creditgrade.serving.warnings import raise_on_arrival
from tests.test_ingest import RECORD_COLS, USCC, count, record, subjects_file, write_csv  # noqa: F401


def _status(uscc, month, dpd, doc):
    return record(uscc, doc, source="finance", kind="finance.loan_status", start_date=f"2024-{month:02d}-01",
                  end_date=f"2024-{month:02d}-28", reported_date=f"2024-{month:02d}-10", amount="100000",
                  value=str(dpd), account="L-1")


def _headcount(uscc, month, people):
    return record(uscc, f"SI-{month}", source="labor", kind="labor.social_insurance", start_date=f"2024-{month:02d}-01",
                  end_date=f"2024-{month:02d}-28", reported_date=f"2024-{month:02d}-12", amount="5000",
                  value=str(people))


def _stored_warnings(store) -> list[dict]:
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(warnings).order_by(warnings.c.warning_id)).mappings()]
    return [{**r, "evidence": json.loads(r["evidence"])} for r in rows]


def test_tripping_records_raise_their_warnings_as_they_land(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    rows = [_status(USCC[0], 4, 0, "S-4"), _status(USCC[0], 5, 35, "S-5"), _status(USCC[0], 6, 65, "S-6"),
            *(_headcount(USCC[1], m, n) for m, n in ((2, 20), (3, 22), (4, 19), (5, 12))),  # -40 %
            _status(USCC[2], 1, 40, "OLD-1"),  # more than 90 days before the newest record: history, not news
            _status(USCC[2], 6, 0, "S-OK")]
    path = write_csv(tmp_path / "records.csv", rows, RECORD_COLS)
    report = ingest_files(store, [path], on_records=raise_on_arrival)[0]
    assert report.stored == len(rows)
    found = {(w["trigger"], w["as_of"].isoformat()): w for w in _stored_warnings(store)}
    assert set(found) == {("past_due_30", "2024-05-10"), ("past_due_30", "2024-06-10"),
                          ("past_due_60", "2024-06-10"), ("headcount_collapsing", "2024-05-12")}
    red = found[("past_due_60", "2024-06-10")]
    assert red["level"] == "orange" and red["evidence"]["origin"] == "arrival"
    assert [r["doc_ref"] for r in red["evidence"]["records"]] == ["S-6"]
    assert red["evidence"]["records"][0]["value"] == 65
    with store.engine.connect() as conn:
        assert red["evidence"]["records"][0]["record_id"] == conn.execute(
            select(records.c.record_id).where(records.c.doc_ref == "S-6")).scalar_one()
    assert found[("headcount_collapsing", "2024-05-12")]["evidence"]["records"][0]["value"] == 12

    again = ingest_files(store, [path], on_records=raise_on_arrival)[0]
    assert again.stored == 0 and len(_stored_warnings(store)) == 4  # re-ingesting raises nothing new


KILLED = """
import sys, time
from pathlib import Path
from sqlalchemy import func, select
from creditgrade.features.ingest import ingest_files
from creditgrade.serving.tables import open_store, warnings
from creditgrade.serving.warnings import raise_on_arrival

marker = Path(sys.argv[2])

def raise_then_hang(conn, rows):  # test only: the warning is written, then the process waits to be killed
    raise_on_arrival(conn, rows)
    marker.write_text(str(conn.execute(select(func.count()).select_from(warnings)).scalar_one()))
    time.sleep(120)

ingest_files(open_store(), [sys.argv[1]], on_records=raise_then_hang)
"""


def test_killed_before_commit_leaves_neither_record_nor_warning(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    path = write_csv(tmp_path / "records.csv", [_status(USCC[0], 6, 65, "KILL-1")], RECORD_COLS)
    marker = tmp_path / "written"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path), str(marker)], env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    assert marker.exists() and int(marker.read_text()) == 2, "the warnings were not written inside the ingest"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert count(store, records) == 0
    assert count(store, warnings) == 0
    with store.engine.connect() as conn:  # the same file, run to the end, stores both
        assert conn.execute(select(func.count()).select_from(records)).scalar_one() == 0
    ingest_files(store, [path], on_records=raise_on_arrival)
    assert count(store, records) == 1 and {w["trigger"] for w in _stored_warnings(store)} == {"past_due_60",
                                                                                              "past_due_30"}


def _link(uscc, partner, category, doc):
    return record(uscc, doc, source="finance", kind="finance.link", start_date="2023-01-01", end_date="",
                  reported_date="2023-01-10", amount="", category=category, account=partner)


def test_a_linked_firm_gets_a_yellow_warning_when_its_partner_is_warned_or_defaults(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    links = write_csv(tmp_path / "links.csv", [_link(USCC[0], USCC[1], "guarantee", "LINK-1"),
                                               _link(USCC[2], USCC[0], "legal_representative", "LINK-2")], RECORD_COLS)
    assert ingest_files(store, [links], on_records=raise_on_arrival)[0].stored == 2
    red = write_csv(tmp_path / "red.csv", [_status(USCC[1], 6, 65, "R-1")], RECORD_COLS)
    ingest_files(store, [red], on_records=raise_on_arrival)
    spread = [w for w in _stored_warnings(store) if w["trigger"] == "linked_firm"]
    assert [(w["subject_key"], w["level"], w["as_of"].isoformat()) for w in spread] == [
        (USCC[0], "yellow", "2024-06-10")]
    assert spread[0]["evidence"]["linked"] == [USCC[1]]
    assert spread[0]["evidence"]["cause"] in ("past_due_60 (orange)", "past_due_30 (orange)")
    assert [r["doc_ref"] for r in spread[0]["evidence"]["records"]] == ["LINK-1"]

    gone = write_csv(tmp_path / "default.csv", [record(USCC[2], "WO-1", source="finance", kind="finance.write_off",
                                                       start_date="2024-07-01", end_date="", reported_date="2024-07-05",
                                                       amount="50000", account="L-9")], RECORD_COLS)
    ingest_files(store, [gone], on_records=raise_on_arrival)
    spread = {(w["subject_key"], w["evidence"]["cause"]) for w in _stored_warnings(store)
              if w["trigger"] == "linked_firm"}
    assert (USCC[0], "default (finance.write_off)") in spread  # the shared representative's other firm defaulted
    assert all(key != USCC[2] for key, _ in spread)  # the defaulter itself is not warned as its own link


def test_a_link_names_a_valid_firm_code(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    bad = write_csv(tmp_path / "bad.csv", [_link(USCC[0], "91350100M000100XXX", "guarantee", "LINK-X")], RECORD_COLS)
    report = ingest_files(store, [bad], on_records=raise_on_arrival)[0]
    assert report.stored == 0 and report.quarantined == 1
    assert any("unified social credit code" in reason for reason in report.reasons)
