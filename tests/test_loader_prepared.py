"""The hot path's statements on the driver's cursor (``features.store.Prepared``) read and write what
SQLAlchemy's own execution does: one subject's row and records in one statement equal the two-statement
reads (dates, booleans and numbers of the row typed as SQLAlchemy types them; a subject without records,
void, late and disputed records included; an unknown key is None), and an insert binds dates, times and
booleans as SQLAlchemy does and returns the new id."""
from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import insert, select

from creditgrade.features import loader
from creditgrade.features.store import Prepared, objections, records, subjects

DAY = dt.date(2024, 6, 30)


def _record(rid: int, key: str, start: dt.date, reported: dt.date, **more) -> dict:
    return dict(record_id=rid, subject_key=key, segment="sme", source="tax", kind="tax.arrears", start_date=start,
                end_date=None, reported_date=reported, severity="general", amount=100.0 * rid, value=None,
                category=None, account=None, doc_ref=f"D{rid}", repaired_date=None, voided_at=None) | more


def test_one_statement_equals_the_two_statement_reads_and_inserts_bind_as_sqlalchemy(store):
    with store.engine.begin() as conn:
        conn.execute(insert(subjects), [
            dict(subject_key=k, segment="sme", display_id=k, name="n", founded=dt.date(2010, 1, 1), sector="retail",
                 coop_member=None if k == "K2" else True, land_mu=2.0 if k == "K1" else None, members=3,
                 bad_check_override=False) for k in ("K1", "K2")])
        conn.execute(insert(records), [
            _record(1, "K1", dt.date(2023, 1, 5), dt.date(2023, 2, 1), end_date=dt.date(2023, 3, 1)),
            _record(2, "K1", dt.date(2024, 1, 5), dt.date(2024, 2, 1), amount=None),
            _record(3, "K1", dt.date(2024, 1, 5), dt.date(2024, 2, 1), voided_at=dt.datetime(2024, 3, 1)),
            _record(4, "K1", dt.date(2024, 6, 1), DAY)])  # reported on the date: not before it
        conn.execute(insert(objections), [dict(record_id=2, subject_key="K1", filed_at=dt.datetime(2024, 3, 1),
                                               due_date=dt.date(2024, 3, 21), status="open", reason="wrong")])
    with store.engine.connect() as conn:
        for key, ids in (("K1", [1, 2]), ("K2", [])):
            row, recs = loader.subject_and_records(conn, key, DAY)
            assert row == loader.subject_rows(conn, [key])[0]._asdict()
            apart = loader.subject_records(conn, key, DAY)
            assert recs["record_id"].tolist() == ids and recs["disputed"].tolist() == [i == 2 for i in ids]
            for name, values in apart.items():
                assert values.dtype == recs[name].dtype, name
                if values.dtype.kind == "M":
                    values, mine = values.view("i8"), recs[name].view("i8")
                else:
                    mine = recs[name]
                assert np.array_equal(values, mine, equal_nan=values.dtype.kind == "f"), name
        row, recs = loader.subject_and_records(conn, "nobody", DAY)
        assert row is None and recs["record_id"].size == 0
    insert_subject = Prepared(insert(subjects).returning(subjects.c.subject_key),
                              keys=["subject_key", "segment", "display_id", "name", "founded",
                                    "coop_member", "bad_check_override"])
    values = dict(subject_key="K3", segment="household", display_id="K3", name="n", founded=dt.date(2011, 2, 3),
                  coop_member=True, bad_check_override=False)
    with store.engine.begin() as conn:
        cursor = insert_subject.run(conn, values)
        assert cursor.fetchone()[0] == "K3"
        cursor.close()
    with store.engine.connect() as conn:
        stored = conn.execute(select(*(subjects.c[k] for k in values)).where(subjects.c.subject_key == "K3")).one()
    assert stored._asdict() == values
