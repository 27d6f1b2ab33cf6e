"""Bulk ingestion: the whole-column checks change nothing but speed. For random mixes of good and bad records,
subjects and outcomes, as CSV or as Parquet text, ingesting with the fast column checks (rows that fail them
validated row by row) and with every row validated by the row model gives the same stored rows, the same
quarantine (line, field, rule, raw) and the same report, after a first file that the second repeats,
contradicts or extends."""
from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from creditgrade.features import bulk, ids, ingest, reading
from creditgrade.features.ingest import ingest_file
from creditgrade.features.schemas import kinds
from creditgrade.features.store import Store, outcomes, quarantine, records, subjects
from test_ingest import RECORD_COLS, RIC, SUBJECT_COLS, USCC, household, practitioner, record, sme, write_csv
from tests.helpers import database

PERSON_IN_TEXT = f"CASE {RIC[2]} REF"
KINDS = sorted(kinds())


def _cell(good: list, bad: list):
    return st.one_of(st.sampled_from(good), st.sampled_from(bad)) if bad else st.sampled_from(good)


@st.composite
def record_rows(draw) -> dict:
    kind = draw(st.sampled_from(KINDS))
    spec = kinds()[kind]
    segment, subject = draw(st.sampled_from([("sme", USCC[0]), ("sme", USCC[1].lower()), ("practitioner", RIC[0]),
                                             ("sme", USCC[4]), ("SME", USCC[0]), ("practitioner", USCC[0])]))
    return dict(
        segment=segment, subject_id=subject, kind=kind,
        source=draw(_cell([spec["source"]], ["weather", "tax", "lists"])),
        start_date=draw(_cell(["2022-01-01", "2023-03-31"], ["2023-02-30", "1900-01-01", "2023/01/01", None])),
        end_date=draw(_cell([None, "2023-06-30"], ["2021-01-01", "2999-12-31", "2023-6-30"])),
        reported_date=draw(_cell(["2023-04-15"], ["2999-01-01", "2021-12-31", None])),
        severity=draw(_cell([None, "minor", "serious"], ["grave", "Serious"])),
        amount=draw(_cell([None, "12000.5", "0", "7"], ["-5", "1e3", "abc", "1e12", "100000000001"])),
        value=draw(_cell([None, "3", "24", "0.5"], ["-1", "99999999999", "nan", "inf"])),
        category=draw(_cell([None, *spec.get("categories", ["misc"])], ["x" * 50, PERSON_IN_TEXT, "bad\x01cat"])),
        account=draw(_cell([None, "ACC-1"], [PERSON_IN_TEXT, "a" * 70])),
        doc_ref=draw(_cell([f"D{i}" for i in range(8)], [PERSON_IN_TEXT, None, "ctl\x02ref", " spaced"])),
        repaired_date=draw(_cell([None], ["2024-06-01", "2022-02-01"])),
    )


SUBJECT_BASES = [sme(USCC[0]), sme(USCC[1].lower()), practitioner(RIC[0]), household(1, RIC[1])]
SUBJECT_CELLS = {  # field: values the row model takes, values it refuses or that need its row-by-row rules
    "segment": ([], ["SME", "bank"]), "subject_id": ([], [USCC[2][:-1] + "0", "H4101050010020001", None]),
    "name": (["李记"], [PERSON_IN_TEXT, None, " spaced", "x" * 201]), "district": (["350102"], ["35010", "３５０１０２"]),
    "size": ([], ["huge", "Small"]), "founded": ([], ["2999-01-01", "2015-02-30", "1900-01-01"]),
    "village_code": ([], ["410105001003", "41010500100"]), "head_id": ([], [RIC[0][:-1] + "0", "n/a"]),
    "members": (["6"], ["0", "31", "4.5", "two"]), "labour_force": (["4"], ["5", "-1"]),
    "land_mu": (["0"], ["-2", "1e9"]), "agri_insurance": (["TRUE", "0"], ["maybe", "yes"]),
    "licensed_since": ([], ["2999-01-01", "None"])}
OUTCOME_BASES = [dict(segment=segment, subject_id=subject, as_of="2023-06-30", horizon_months="12", defaulted="0")
                 for segment, subject in (("sme", USCC[0]), ("sme", USCC[2].lower()), ("practitioner", RIC[0]),
                                          ("sme", USCC[4]), ("household", "H4101050010020001"))]
OUTCOME_CELLS = {"segment": ([], ["SME"]), "as_of": (["2022-12-31"], ["2999-01-01", "2023-02-30", None]),
                 "horizon_months": (["6", None], ["0", "61", "1.5", "x"]), "defaulted": (["1"], ["2", "yes", "00"])}


def _variants(bases: list[dict], cells: dict) -> list[dict]:
    """Each base row as it is, then with each field set to each listed value in turn."""
    return [*bases, *(dict(base, **{name: value}) for base in bases for name, (good, bad) in cells.items()
                      for value in good + bad)]


OUTCOME_COLS = ["segment", "subject_id", "as_of", "horizon_months", "defaulted"]
TABLE = {"records": (records, RECORD_COLS, (records.c.source, records.c.doc_ref)),
         "subjects": (subjects, SUBJECT_COLS, (subjects.c.subject_key,)),
         "outcomes": (outcomes, OUTCOME_COLS, (outcomes.c.subject_key, outcomes.c.as_of, outcomes.c.horizon_months))}


def _write(folder, name: str, rows: list[dict], parquet: bool, columns=RECORD_COLS):
    if parquet:
        path = folder / f"{name}.parquet"
        pd.DataFrame(rows, columns=columns).astype("string").to_parquet(path)
        return path
    return write_csv(folder / f"{name}.csv", rows, columns)


def _outcome(folder, files, fast: bool, monkeypatch, table: str = "records") -> tuple:
    """Ingest the subjects and both files of ``table`` into a new store; return what it holds and reports."""
    monkeypatch.setattr(ingest, "FAST", ingest.FAST if fast else {})
    store = Store(database(folder / ("fast" if fast else "rows")))
    target, _, order = TABLE[table]
    try:
        reports = [ingest_file(store, path) for path in files]
        stored = store.frame(select(*[c for c in target.c if c.name not in ("record_id", "batch_id")])
                             .order_by(*order))
        held = store.frame(select(quarantine.c.file_name, quarantine.c.line, quarantine.c.field, quarantine.c.rule,
                                  quarantine.c.raw).order_by(quarantine.c.quarantine_id))
    finally:
        store.dispose()
    summary = [(r.read, r.stored, r.duplicates, r.quarantined, dict(r.reasons)) for r in reports]
    return stored, held, summary


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(record_rows(), max_size=6), second=st.lists(record_rows(), min_size=1, max_size=25),
       parquet=st.booleans())
def test_fast_column_checks_store_and_quarantine_exactly_what_the_row_model_does(tmp_path_factory, monkeypatch, home,
                                                                                   first, second, parquet):
    folder = tmp_path_factory.mktemp("bulk")
    subjects = write_csv(folder / "subjects.csv", [sme(u) for u in USCC[:3]] + [practitioner(RIC[0])], SUBJECT_COLS)
    files = [subjects, _write(folder, "first", first, parquet), _write(folder, "second", second, parquet)]
    fast, rows = _outcome(folder, files, True, monkeypatch), _outcome(folder, files, False, monkeypatch)
    pd.testing.assert_frame_equal(fast[0], rows[0])
    pd.testing.assert_frame_equal(fast[1], rows[1])
    assert fast[2] == rows[2]


@pytest.mark.parametrize("table, parquet", [("subjects", False), ("outcomes", True)])
def test_fast_subject_and_outcome_checks_store_and_quarantine_exactly_what_the_row_model_does(tmp_path, monkeypatch,
                                                                                              home, table, parquet):
    """Every base row with each field good or bad in turn; the second file repeats the first, changes some
    and adds the rest."""
    rows = _variants(SUBJECT_BASES, SUBJECT_CELLS) if table == "subjects" else _variants(OUTCOME_BASES, OUTCOME_CELLS)
    columns = TABLE[table][1]
    files = [_write(tmp_path, "first", rows[::7], parquet, columns), _write(tmp_path, "second", rows, parquet, columns)]
    if table == "outcomes":
        files.insert(0, write_csv(tmp_path / "subjects.csv", [sme(u) for u in USCC[:3]] + [practitioner(RIC[0])],
                                  SUBJECT_COLS))
    fast = _outcome(tmp_path, files, True, monkeypatch, table)
    slow = _outcome(tmp_path, files, False, monkeypatch, table)
    pd.testing.assert_frame_equal(fast[0], slow[0])
    pd.testing.assert_frame_equal(fast[1], slow[1])
    assert fast[2] == slow[2] and len(fast[0]) > 1 and len(fast[1]) > 10


def test_the_fast_checks_take_plain_subjects_and_outcomes(store, tmp_path, monkeypatch):
    """Not a vacuous equality: ordinary subjects and outcomes pass the column checks and never reach the row
    model; a bad one does."""
    checked = []
    real = ingest._validate
    monkeypatch.setattr(ingest, "_validate", lambda model, rows, *a: checked.extend(rows) or real(model, rows, *a))
    people = [sme(u) for u in USCC[:3]] + [practitioner(RIC[0]), household(1, RIC[1]), dict(sme(USCC[3]), size="x")]
    report = ingest_file(store, write_csv(tmp_path / "s.csv", people, SUBJECT_COLS))
    assert (report.stored, report.quarantined) == (5, 1) and [r["size"] for r in checked] == ["x"]
    rows = [dict(segment="sme", subject_id=USCC[0], as_of="2023-06-30", horizon_months="12", defaulted="0"),
            dict(segment="practitioner", subject_id=RIC[0], as_of="2023-06-30", horizon_months="6", defaulted="1"),
            dict(segment="sme", subject_id=USCC[1], as_of="2023-06-30", horizon_months="12", defaulted="2")]
    report = ingest_file(store, write_csv(tmp_path / "o.csv", rows, OUTCOME_COLS))
    assert (report.stored, report.quarantined) == (2, 1) and [r["defaulted"] for r in checked[1:]] == ["2"]


def test_the_fast_checks_take_the_plain_rows(store, tmp_path, monkeypatch):
    """Not a vacuous equality: ordinary rows pass the column checks and never reach the row model."""
    ingest_file(store, write_csv(tmp_path / "s.csv", [sme(u) for u in USCC[:3]], SUBJECT_COLS))
    checked = []
    real = ingest._validate
    monkeypatch.setattr(ingest, "_validate", lambda model, rows, *a: checked.extend(rows) or real(model, rows, *a))
    plain = [dict(segment="sme", subject_id=USCC[0], source="tax", kind="tax.payment", start_date="2023-01-01",
                  reported_date="2023-04-15", amount="10", doc_ref=f"P{i}") for i in range(50)]
    odd = dict(plain[0], doc_ref="P-odd", amount="-1")
    report = ingest_file(store, write_csv(tmp_path / "r.csv", plain + [odd], RECORD_COLS))
    assert (report.stored, report.quarantined) == (50, 1)
    assert [r["doc_ref"] for r in checked] == ["P-odd"]


@pytest.mark.parametrize("parquet", [False, True])
def test_rows_are_read_as_columns_in_both_formats(tmp_path, parquet):
    from creditgrade.features.reading import open_table
    rows = [dict(segment="sme", subject_id=USCC[0], kind="tax.payment", doc_ref="A", amount=None),
            dict(segment="sme", subject_id=USCC[1], kind="tax.payment", doc_ref="B", amount="5")]
    path = _write(tmp_path, "r", rows, parquet)
    chunk = next(open_table(path).chunks)
    assert chunk.lines == ([1, 2] if parquet else [2, 3])
    assert chunk.rows([1])[0]["doc_ref"] == "B" and chunk.rows()[0]["amount"] is None


def _indexes(conn) -> set[str]:
    return {ix["name"] for ix in inspect(conn).get_indexes("records")}


def test_secondary_indexes_are_built_again_and_the_one_the_hook_reads_by_is_kept(store, tmp_path, monkeypatch):
    """A file larger than its table goes in without the records' secondary indexes and leaves them built; the
    index by subject, which the warnings hook reads by, stays while the file goes in; a file rolled back leaves
    the indexes as they were."""
    monkeypatch.setattr(reading, "CHUNK_ROWS", 4)
    ingest_file(store, write_csv(tmp_path / "s.csv", [sme(u) for u in USCC[:3]], SUBJECT_COLS))
    both = {"ix_records_subject", "ix_records_segment_reported"}
    seen = []
    report = ingest_file(store, write_csv(tmp_path / "r.csv", [record(USCC[0], f"D{i}") for i in range(12)],
                                          RECORD_COLS), on_records=lambda conn, rows: seen.append(_indexes(conn)))
    assert report.stored == 12 and len(seen) == 3
    assert all("ix_records_subject" in names for names in seen)
    assert "ix_records_segment_reported" not in seen[-1]  # dropped once the first chunk went in
    with store.engine.connect() as conn:
        assert both <= _indexes(conn)

    def fail_late(conn, rows):
        seen.append(_indexes(conn))
        if len(seen) == 5:
            raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError):
        ingest_file(store, write_csv(tmp_path / "r2.csv", [record(USCC[1], f"E{i}") for i in range(30)],
                                     RECORD_COLS), on_records=fail_late)
    assert "ix_records_segment_reported" not in seen[-1]
    with store.engine.connect() as conn:
        assert both <= _indexes(conn)
        assert conn.execute(select(func.count()).select_from(records)).scalar_one() == 12


def _foreign_keys(conn) -> set[tuple]:
    """The records' foreign keys the database enforces on this connection."""
    if conn.dialect.name == "sqlite" and not conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one():
        return set()
    return {(*fk["constrained_columns"], fk["referred_table"]) for fk in inspect(conn).get_foreign_keys("records")}


def test_a_bulk_file_quarantines_unknown_subjects_and_leaves_keys_and_indexes_in_place(store, tmp_path, monkeypatch):
    """A file larger than its table goes in without the records' secondary indexes and foreign keys (SQLite:
    not enforced on its connection; PostgreSQL: dropped): a record of an unknown subject is still quarantined by
    the ingest itself, and after the commit, or a failure, the indexes and keys are back and the keys hold."""
    monkeypatch.setattr(reading, "CHUNK_ROWS", 4)
    ingest_file(store, write_csv(tmp_path / "s.csv", [sme(u) for u in USCC[:2]], SUBJECT_COLS))
    with store.engine.connect() as conn:
        whole = _indexes(conn), _foreign_keys(conn)
    assert {("subject_key", "subjects"), ("batch_id", "ingest_batches")} <= whole[1]
    during = []
    close = bulk.Writer.close
    monkeypatch.setattr(bulk.Writer, "close", lambda self: during.append(
        (_indexes(self.conn), _foreign_keys(self.conn))) or close(self))
    rows = [record(USCC[i % 2], f"D{i}") for i in range(10)] + [record(USCC[3], "U"), record(USCC[0], "D10")]
    report = ingest_file(store, write_csv(tmp_path / "r.csv", rows, RECORD_COLS))
    assert (report.stored, report.quarantined) == (11, 1)
    assert during == [(whole[0] - {"ix_records_segment_reported", "ix_records_subject"}, set())]
    with store.engine.connect() as conn:
        assert (_indexes(conn), _foreign_keys(conn)) == whole
        held = conn.execute(select(quarantine.c.line, quarantine.c.field, quarantine.c.rule)
                            .where(quarantine.c.file_name == "r.csv")).one()
    assert held[:2] == (12, "subject_id") and held[2].startswith("unknown sme subject")

    def fail(conn, rows):  # after the first chunk, which dropped them
        during.append((_indexes(conn), _foreign_keys(conn)))
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError):
        ingest_file(store, write_csv(tmp_path / "r2.csv", [record(USCC[1], f"E{i}") for i in range(30)],
                                     RECORD_COLS), on_records=fail)
    assert during[-1] == (whole[0] - {"ix_records_segment_reported"}, set())  # the hook reads by subject
    with store.engine.connect() as conn:
        assert (_indexes(conn), _foreign_keys(conn)) == whole
        assert conn.execute(select(func.count()).select_from(records)).scalar_one() == 11
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # the key holds again
        conn.execute(insert(records).values(subject_key="NOBODY", segment="sme", source="tax", kind="tax.payment",
                                            start_date=dt.date(2023, 1, 1), reported_date=dt.date(2023, 4, 15),
                                            doc_ref="X"))


def test_rows_already_stored_are_counted_and_conflicts_named_by_column(store, tmp_path):
    """Re-ingest compares whole chunks with the stored rows: equal rows count as already stored, a changed row
    is quarantined naming the columns that differ."""
    ingest_file(store, write_csv(tmp_path / "s.csv", [sme(u) for u in USCC[:3]], SUBJECT_COLS))
    rows = [record(USCC[0], f"D{i}") for i in range(5)] + [record(USCC[0], "N", amount=None, kind="tax.filing",
                                                                  value="3")]
    ingest_file(store, write_csv(tmp_path / "r.csv", rows, RECORD_COLS))
    changed = [dict(rows[0], amount="1.5"), dict(rows[1], end_date=""), *rows[2:]]
    report = ingest_file(store, write_csv(tmp_path / "r2.csv", changed, RECORD_COLS))
    assert (report.stored, report.duplicates, report.quarantined) == (0, 4, 2)
    with store.engine.connect() as conn:
        rules = conn.execute(select(quarantine.c.line, quarantine.c.rule).order_by(quarantine.c.line)).all()
    assert [line for line, _ in rules] == [2, 3]
    assert "differs in amount;" in rules[0][1] and "differs in end_date;" in rules[1][1]


def test_a_key_stored_meanwhile_by_another_transaction_is_counted_not_failed(store, tmp_path):
    """PostgreSQL copies a chunk's new rows straight into the table; a key another transaction stores between
    the look-up and the copy sends the chunk through ON CONFLICT DO NOTHING instead of failing the file."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    ingest_file(store, write_csv(tmp_path / "s.csv", [sme(u) for u in USCC[:3]], SUBJECT_COLS))
    day = dt.date
    row = dict(subject_key=ids.subject_key("sme", USCC[0]), segment="sme", source="tax", kind="tax.payment",
               start_date=day(2023, 1, 1), end_date=day(2023, 3, 31), reported_date=day(2023, 4, 15),
               amount=12000.5, doc_ref="D1")
    with store.engine.connect() as other:
        other.execute(insert(records).values(row))  # uncommitted: the ingest's look-up does not see it
        threading.Timer(1.0, other.commit).start()  # the ingest's copy waits on its key, then finds it stored
        report = ingest_file(store, write_csv(tmp_path / "r.csv", [record(USCC[0], "D0"), record(USCC[0], "D1")],
                                              RECORD_COLS))
    assert (report.stored, report.duplicates, report.quarantined) == (1, 1, 0)


def test_a_failed_large_file_gives_the_connection_back_as_the_store_set_it(store, tmp_path, monkeypatch):
    """SQLite: the ingest's large page cache and its unchecked foreign keys end with the file's transaction,
    failed or not, on the very connection that returns to the pool."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's connection settings")
    ingest_file(store, write_csv(tmp_path / "s.csv", [sme(u) for u in USCC[:2]], SUBJECT_COLS))
    with store.engine.connect() as conn:
        driver = conn.connection.driver_connection
        before = driver.execute("PRAGMA cache_size").fetchone()[0]
    settled, settle = [], bulk.settle
    monkeypatch.setattr(bulk, "settle", lambda conn: settled.append(
        (conn.connection.driver_connection, conn.connection.driver_connection.execute(
            "PRAGMA cache_size").fetchone()[0])) or settle(conn))

    def fail(conn, rows):
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError):
        ingest_file(store, write_csv(tmp_path / "r.csv", [record(USCC[1], f"E{i}") for i in range(5)], RECORD_COLS),
                    on_records=fail)
    assert settled[0][0] is driver and settled[0][1] != before  # the ingest's own cache, until settled
    assert driver.execute("PRAGMA cache_size").fetchone()[0] == before
    assert driver.execute("PRAGMA foreign_keys").fetchone()[0] == 1
