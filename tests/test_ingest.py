"""Ingestion: every valid row stored, every bad row quarantined with a reason, transactions, idempotence."""
from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from creditgrade.features import ids
from creditgrade.features.ingest import ingest_file, ingest_files
from creditgrade.features.store import ingest_batches, quarantine, records, subjects

USCC = [ids.make_uscc(f"913501{i:02d}M00010{i:02d}X"[:17]) for i in range(1, 6)]
RIC = [ids.make_ric(f"41010519900101{i:03d}") for i in range(1, 4)]
SUBJECT_COLS = ["segment", "subject_id", "name", "district", "sector", "size", "founded", "village_code",
                "township_code", "head_id", "members", "labour_force", "land_mu", "agri_insurance",
                "coop_member", "profession", "licensed_since"]
RECORD_COLS = ["segment", "subject_id", "source", "kind", "start_date", "end_date", "reported_date", "severity",
               "amount", "value", "category", "account", "doc_ref", "repaired_date"]


def sme(uscc, name="Firm"):
    return dict(segment="sme", subject_id=uscc, name=name, district="350102", sector="manufacturing",
                size="small", founded="2015-03-01")


def practitioner(ric):
    return dict(segment="practitioner", subject_id=ric, name="Li", district="410105", profession="lawyer",
                licensed_since="2010-07-01")


def household(serial, head):
    return dict(segment="household", subject_id=f"H410105001002{serial:04d}", name="Wang",
                village_code="410105001002", township_code="410105001", head_id=head, members=4,
                labour_force=2, land_mu=6.5, agri_insurance="true", coop_member="false")


def record(subject_id, doc, segment="sme", **kw):
    row = dict(segment=segment, subject_id=subject_id, source="tax", kind="tax.payment", start_date="2023-01-01",
               end_date="2023-03-31", reported_date="2023-04-15", amount="12000.5", doc_ref=doc)
    row.update(kw)
    return row


def write_csv(path: Path, rows: list[dict], columns: list[str], encoding="utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


@pytest.fixture
def subjects_file(tmp_path):
    rows = [sme(u) for u in USCC[:3]] + [practitioner(RIC[0]), household(1, RIC[1])]
    return write_csv(tmp_path / "subjects.csv", rows, SUBJECT_COLS)


def count(store, table):
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def quarantined(store):
    with store.engine.connect() as conn:
        return conn.execute(select(quarantine.c.line, quarantine.c.field, quarantine.c.rule)
                            .order_by(quarantine.c.quarantine_id)).all()


def test_subjects_stored_with_identity_numbers_hashed(store, subjects_file):
    report = ingest_file(store, subjects_file)
    assert (report.stored, report.quarantined) == (5, 0)
    df = store.subjects()
    person = df[df.segment == "practitioner"].iloc[0]
    assert person.subject_key == ids.hash_ric(RIC[0])
    assert person.display_id == ids.mask_ric(RIC[0])
    hh = df[df.segment == "household"].iloc[0]
    assert hh.head_id_hash == ids.hash_ric(RIC[1]) and hh.head_id_masked == ids.mask_ric(RIC[1])


def test_every_kind_of_bad_row_quarantined_and_valid_rows_kept(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    rows = [
        record(USCC[0], "D1"),                                                   # 2 valid
        record(USCC[1], "D2", amount="-5"),                                      # 3 negative amount
        record(USCC[0], "D3", start_date="2023-02-30"),                          # 4 impossible date
        record(USCC[0], "D4", source="weather"),                                 # 5 unknown source
        record(USCC[0], "D5", kind="tax.lottery"),                               # 6 unknown kind
        record(USCC[0], "D1"),                                                   # 7 duplicate of line 2
        record(USCC[0], "D1", amount="1"),                                       # 8 same doc, other content
        record(USCC[0][:-1] + "0" if USCC[0][-1] != "0" else USCC[0][:-1] + "1", "D6"),  # 9 unknown subject
        record(USCC[3], "D7"),                                                   # 10 valid code, never ingested
        record(RIC[0], "D8", segment="practitioner"),                            # 11 valid, practitioner
        record(USCC[2], "D9", kind="tax.penalty", severity="serious", amount="",
               start_date="2023-01-10", end_date="", reported_date="2023-01-20",
               repaired_date="2023-06-01"),                                      # 12 repaired too early
        record(USCC[2], "D10", reported_date="2022-12-01"),                      # 13 reported before start
        record(USCC[2], "D11", start_date="1900-01-01"),                         # 14 implausible date
    ]
    path = write_csv(tmp_path / "records.csv", rows, RECORD_COLS)
    report = ingest_file(store, path)
    assert report.stored == 2 and report.read == 13 and report.quarantined == 11
    by_line = {}
    for line, field, rule in quarantined(store):
        by_line.setdefault(line, []).append((field, rule))
    assert set(by_line) == {3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14}
    assert by_line[3][0][0] == "amount" and "greater than or equal to 0" in by_line[3][0][1]
    assert by_line[4][0][0] == "start_date"
    assert by_line[5][0][0] == "source"
    assert "not a known kind" in by_line[6][0][1]
    assert by_line[7][0][1] == "duplicate row: same as line 2"
    assert "different content" in by_line[8][0][1]
    assert "unknown sme subject" in by_line[9][0][1] and by_line[10][0][0] == "subject_id"
    assert "minimum publication period of 12 months" in by_line[12][0][1]
    assert by_line[13][0][0] == "reported_date"
    assert by_line[14][0][0] == "start_date" and "1949-10-01" in by_line[14][0][1]


def test_reingesting_adds_nothing(store, subjects_file, tmp_path):
    path = write_csv(tmp_path / "r.csv", [record(USCC[0], f"D{i}") for i in range(50)], RECORD_COLS)
    first = ingest_files(store, [path, subjects_file])  # order fixed by content: subjects first
    assert [r.table for r in first] == ["subjects", "records"]
    again = ingest_files(store, [subjects_file, path])
    assert [r.stored for r in again] == [0, 0] and [r.duplicates for r in again] == [5, 50]
    assert count(store, records) == 50 and count(store, subjects) == 5


def test_on_records_sees_new_records_inside_the_files_transaction(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    path = write_csv(tmp_path / "r.csv", [record(USCC[0], "H1"), record(USCC[0], "H2", amount="-1"),
                                          record(USCC[1], "H3")], RECORD_COLS)
    seen = []
    report = ingest_file(store, path, on_records=lambda conn, rows: seen.extend(rows.to_pylist()))
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(records.c.doc_ref, records.c.record_id)).all())
    assert report.stored == 2 and sorted(r["doc_ref"] for r in seen) == ["H1", "H3"]
    assert all(r["record_id"] == stored[r["doc_ref"]] for r in seen)
    assert ingest_file(store, path, on_records=lambda conn, rows: seen.extend(rows.to_pylist())).stored == 0 \
        and len(seen) == 2

    def fail(conn, rows):
        raise RuntimeError("warning could not be written")
    late = write_csv(tmp_path / "late.csv", [record(USCC[2], "H4")], RECORD_COLS)
    with pytest.raises(RuntimeError):
        ingest_files(store, [late], on_records=fail)
    assert count(store, records) == 2  # the hook's failure rolled the file back


def test_missing_column_quarantines_every_row(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    cols = [c for c in RECORD_COLS if c != "reported_date"]
    path = write_csv(tmp_path / "r.csv", [record(USCC[0], "A"), record(USCC[0], "B")], cols)
    report = ingest_file(store, path)
    assert report.stored == 0 and report.quarantined == 2
    assert any("reported_date" in r and "missing" in r for r in report.reasons)


def test_prohibited_fields_refused_by_name_and_not_stored(store, tmp_path):
    rows = [{**sme(USCC[0]), "religion": "secret-faith", "blood_type": "AB"}]
    path = write_csv(tmp_path / "s.csv", rows, SUBJECT_COLS + ["religion", "blood_type"])
    report = ingest_file(store, path)
    assert report.stored == 0 and report.refused and count(store, subjects) == 0  # the whole file is refused
    assert "religion" in report.refused and "blood_type" in report.refused
    with store.engine.connect() as conn:
        raws = conn.execute(select(quarantine.c.raw)).scalars().all()
    assert not any(r and "secret-faith" in r for r in raws)


def test_gb18030_file_is_read(store, tmp_path):
    path = write_csv(tmp_path / "s.csv", [sme(USCC[0], name="福州市某某制造有限公司")], SUBJECT_COLS,
                     encoding="gb18030")
    report = ingest_file(store, path)
    assert report.stored == 1 and report.encoding == "gb18030"
    assert store.subjects().name.iloc[0] == "福州市某某制造有限公司"


def test_undecodable_line_quarantined_rest_kept(store, tmp_path):
    path = write_csv(tmp_path / "s.csv", [sme(USCC[0]), sme(USCC[1])], SUBJECT_COLS)
    data = path.read_bytes().splitlines()
    data.insert(2, b"sme,\xff\xfe\xfa\xfb,bad")
    path.write_bytes(b"\n".join(data) + b"\n")
    report = ingest_file(store, path)
    assert report.stored == 2 and report.quarantined == 1
    assert "not valid UTF-8" in quarantined(store)[0][2]


def test_bad_check_digit_needs_explicit_override(store, tmp_path):
    bad = USCC[0][:-1] + ("0" if USCC[0][-1] != "0" else "1")
    path = write_csv(tmp_path / "s.csv", [sme(bad)], SUBJECT_COLS)
    assert ingest_file(store, path).stored == 0
    report = ingest_file(store, path, allow_bad_check=True)
    assert report.stored == 1 and store.subjects().bad_check_override.iloc[0]


def test_identity_numbers_never_in_clear(store, tmp_path, home):
    bad_ric = RIC[2][:-1] + ("0" if RIC[2][-1] != "0" else "1")
    rows = [practitioner(RIC[0]), practitioner(bad_ric), household(1, RIC[1]), household(2, bad_ric)]
    path = write_csv(tmp_path / "s.csv", rows, SUBJECT_COLS)
    rec = write_csv(tmp_path / "r.csv", [record(RIC[0], "P1", segment="practitioner"),
                                        record(RIC[2], "P2", segment="practitioner")], RECORD_COLS)
    out = subprocess.run([sys.executable, "-m", "creditgrade.cli", "ingest", str(path), str(rec)],
                         capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    dumped = out.stdout + out.stderr
    for table in ("subjects", "records", "quarantine", "ingest_batches"):
        dumped += store.frame(select(store_table(table))).to_csv()
    for db_file in home.glob("creditgrade.db*"):
        dumped += db_file.read_bytes().decode("latin-1")
    for number in (RIC[0], RIC[1], RIC[2], bad_ric):
        assert number not in dumped
    assert re.search(r"\d{4}\*{10}[\dX]{4}", dumped)


def store_table(name):
    from creditgrade.features.store import metadata
    return metadata.tables[name]


def test_cli_exit_code_only_fails_when_nothing_readable(store, tmp_path, subjects_file):
    cli = [sys.executable, "-m", "creditgrade.cli", "ingest"]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert subprocess.run(cli + [str(empty)], capture_output=True).returncode == 1
    mixed = write_csv(tmp_path / "m.csv", [sme(USCC[3]), {**sme(USCC[4]), "founded": "2020-13-01"}],
                      SUBJECT_COLS)
    out = subprocess.run(cli + [str(mixed)], capture_output=True, text=True)
    assert out.returncode == 0 and "stored=1" in out.stdout and "quarantined=1" in out.stdout
    missing = subprocess.run(cli + [str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_killed_ingest_leaves_nothing_and_rerun_equals_clean_run(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    n = 120_000
    big = pd.DataFrame([record(USCC[i % 3], f"K{i}") for i in range(n)])
    path = tmp_path / "big.parquet"
    big.to_parquet(path)
    proc = subprocess.Popen([sys.executable, "-m", "creditgrade.cli", "ingest", "-v", str(path)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    while line and "inserting rows 40001" not in line:
        line = proc.stderr.readline()
    assert line, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    assert count(store, records) == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ingest_batches)
                            .where(ingest_batches.c.table_name == "records")).scalar_one() == 0
    report = ingest_file(store, path)
    assert report.stored == n and count(store, records) == n
    stored = store.records().sort_values("doc_ref").reset_index(drop=True)
    assert sorted(stored.doc_ref) == sorted(big.doc_ref)
    assert (stored.amount == 12000.5).all()
