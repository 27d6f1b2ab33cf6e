"""The ingest pipeline: the next chunk is read, checked and made store rows by a worker thread while the
current one is written. Chunks of 4 rows here, so a small file crosses many chunk boundaries."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import inspect, select

from creditgrade.features import ingest, reading
from creditgrade.features.ingest import ingest_file
from creditgrade.features.store import ingest_batches, records
from test_ingest import RECORD_COLS, SUBJECT_COLS, USCC, count, quarantined, record, sme, write_csv


@pytest.fixture
def firms(store, tmp_path, monkeypatch):
    ingest_file(store, write_csv(tmp_path / "firms.csv", [sme(u) for u in USCC[:2]], SUBJECT_COLS))
    monkeypatch.setattr(reading, "CHUNK_ROWS", 4)
    return store


def _workers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ingest")]


def _settled(store) -> tuple:
    """What the file's transaction may change and must leave as it was: the records' indexes and foreign keys
    and, on SQLite, the pooled connection's foreign-key switch and page cache."""
    with store.engine.connect() as conn:
        pragmas = ()
        if conn.dialect.name == "sqlite":
            driver = conn.connection.driver_connection
            pragmas = tuple(driver.execute(f"PRAGMA {p}").fetchone()[0] for p in ("foreign_keys", "cache_size"))
        found = inspect(conn)
        return (pragmas, sorted(ix["name"] for ix in found.get_indexes("records")),
                sorted(fk["referred_table"] for fk in found.get_foreign_keys("records")))


def test_quarantine_lines_stay_true_across_chunk_boundaries(firms, tmp_path):
    """Bad rows at the edges of chunks, a quoted newline shifting the lines after it, a line with too few
    fields, a key sent again chunks later (same and other content) and an unknown subject: each quarantined
    with its own line, field and rule, the rest stored."""
    rows = [record(USCC[0], f"D{i}") for i in range(16)]
    rows[3] = record(USCC[0], "D3", amount="-5")                              # line 5: last of chunk 1
    rows[4] = record(USCC[0], "D4", category="two\nlines", amount="abc")      # lines 6-7: first of chunk 2
    rows[8] = record(USCC[0], "D1")                                           # line 12: D1 again, same content
    rows[11] = record(USCC[0], "D2", amount="7")                              # line 15: D2 again, other content
    rows[12] = record(USCC[3], "D12")                                         # line 16: unknown subject
    path = write_csv(tmp_path / "r.csv", rows, RECORD_COLS)
    text = path.read_text().splitlines(keepends=True)
    text.insert(9, "sme,short\n")                                             # line 10, the last of chunk 2
    path.write_text("".join(text))
    report = ingest_file(firms, path)
    assert (report.read, report.stored, report.quarantined) == (17, 11, 6)
    assert sorted(quarantined(firms)) == [
        (5, "amount", "Input should be greater than or equal to 0"),
        (6, "amount", "Input should be a valid number, unable to parse string as a number"),
        (10, None, "line has 2 fields but the header has 14"),
        (12, None, "duplicate row: same as an earlier line of this file"),
        (15, "doc_ref", "same doc_ref as an earlier line of this file with different content"),
        (16, "subject_id", f"unknown sme subject {USCC[3]}: ingest its subjects file first")]
    assert count(firms, records) == 11 and not _workers()


def test_an_error_while_the_next_chunk_is_prepared_leaves_nothing_of_the_file(firms, tmp_path, monkeypatch):
    """The worker fails on the fourth chunk, while the third is written: the same exception reaches the caller,
    nothing of the file is stored (its first chunks neither), the connection is settled and the worker joined."""
    before = _settled(firms)
    checked, real = [], ingest._Batch._checked

    def failing(batch, chunk, problems):
        checked.append(chunk.lines[0])
        if len(checked) == 4:
            raise RuntimeError("worker failed")
        return real(batch, chunk, problems)

    monkeypatch.setattr(ingest._Batch, "_checked", failing)
    with pytest.raises(RuntimeError, match="worker failed"):
        ingest_file(firms, write_csv(tmp_path / "r.csv", [record(USCC[0], f"D{i}") for i in range(30)], RECORD_COLS))
    assert checked == [2, 6, 10, 14] and not _workers()
    assert count(firms, records) == 0 and _settled(firms) == before


def test_a_failing_write_joins_the_worker_busy_with_the_next_chunk(firms, tmp_path, monkeypatch):
    """The writer fails on the second chunk while the worker prepares the third: the writer's exception, once
    the worker is done and joined; nothing stored, the connection settled."""
    before = _settled(firms)
    started, done, written, real = threading.Event(), [], [], ingest._Batch.prepare

    def prepare(batch, chunk):
        if chunk.lines[0] == 10:
            started.set()
            time.sleep(0.2)
        done.append(chunk.lines[0])
        return real(batch, chunk)

    def fail(conn, rows):
        written.append(rows.num_rows)
        if len(written) == 2 and started.wait(5):
            raise RuntimeError("write failed")

    monkeypatch.setattr(ingest._Batch, "prepare", prepare)
    with pytest.raises(RuntimeError, match="write failed"):
        ingest_file(firms, write_csv(tmp_path / "r.csv", [record(USCC[0], f"D{i}") for i in range(30)], RECORD_COLS),
                    on_records=fail)
    assert done == [2, 6, 10] and not _workers()
    assert count(firms, records) == 0 and _settled(firms) == before


def test_a_line_the_worker_cannot_read_deep_in_the_file_refuses_the_file_whole(firms, tmp_path):
    """A field past the CSV limit on line 27 (the seventh chunk, read by the worker while the sixth is
    written): the file is refused naming the line, as when it comes first (the command prints the refusal, no
    traceback: tests/test_ingest_hostile.py); nothing of the file is stored, the connection is settled."""
    before = _settled(firms)
    rows = [record(USCC[0], f"D{i}") for i in range(40)]
    rows[25] = record(USCC[0], "HUGE", category="x" * 2_000_000)
    report = ingest_file(firms, write_csv(tmp_path / "r.csv", rows, RECORD_COLS))
    assert report.refused.startswith("line 27:") and "CSV limit" in report.refused and report.stored == 0
    assert count(firms, records) == 0 and not _workers() and _settled(firms) == before
    with firms.engine.connect() as conn:  # the refusal alone is recorded
        assert conn.execute(select(ingest_batches.c.rows_read).where(ingest_batches.c.table_name == "records")
                            ).scalars().all() == [0]
