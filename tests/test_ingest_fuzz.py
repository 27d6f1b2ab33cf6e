"""Issue 19: the ingester under fuzz — corrupted variants of small slices of the committed sample.

For every variant, either the file is refused whole with a rule, or every row read is accounted for:
stored + already stored + quarantined == read. No variant may raise. Run as a script for the figures of the
closing note (kinds tried, rows read, stored, quarantined, refused, tracebacks):

    CREDITGRADE_ID_KEY=fuzz .venv/bin/python tests/test_ingest_fuzz.py
"""
from __future__ import annotations

import io
import os
import random
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("CREDITGRADE_ID_KEY", "fuzz-only-key")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creditgrade.features import ids  # noqa: E402
from creditgrade.features.ingest import ingest_file  # noqa: E402
from creditgrade.features.store import Store  # noqa: E402
from test_ingest_hostile import stored_text  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
PER_SEGMENT, RECORDS, OUTCOMES = 8, 120, 40
PERSON = ids.make_ric("41010519850505123")


def sample_slices() -> dict[str, pd.DataFrame]:
    """A few subjects of each segment, and some of their records and outcomes (counts never assumed)."""
    subjects = pd.read_parquet(SAMPLE / "subjects.parquet").groupby("segment").head(PER_SEGMENT)
    for col in ("members", "labour_force"):
        subjects[col] = subjects[col].astype("Int64")
    ids_ = set(subjects.subject_id)
    records = pq.read_table(SAMPLE / "records.parquet").to_pandas()
    outcomes = pd.read_parquet(SAMPLE / "outcomes.parquet")
    return dict(subjects=subjects.reset_index(drop=True),
                records=records[records.subject_id.isin(ids_)].head(RECORDS).reset_index(drop=True),
                outcomes=outcomes[outcomes.subject_id.isin(ids_)].head(OUTCOMES).reset_index(drop=True))


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n")


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _set(df: pd.DataFrame, column: str, value, rows=(0, 3)) -> pd.DataFrame:
    df = df.copy().astype({column: object})
    for r in rows:
        df.loc[r, column] = value
    return df


def _replace_line(text: str, at: int, make) -> str:
    lines = _lines(text)
    lines[at] = make(lines[at])
    return "\n".join(lines)


def corruptions(s: dict[str, pd.DataFrame]) -> dict[str, tuple[str, bytes]]:
    """Kind of corruption -> (file name, file bytes)."""
    rec, subj, out = s["records"], s["subjects"], s["outcomes"]
    text = _csv(rec)
    data = text.encode()
    pq_bytes = _parquet(rec)
    rng = random.Random(19)
    header = _lines(text)[0]
    k = {
        "truncated line": _replace_line(text, 3, lambda ln: ln[: len(ln) // 2]),
        "truncated file": text[: int(len(text) * 0.6)],
        "wrong type amount": _csv(_set(rec, "amount", "twelve")),
        "wrong type date": _csv(_set(rec, "start_date", "yesterday")),
        "impossible date": _csv(_set(rec, "start_date", "2023-02-30")),
        "reported in 2099": _csv(_set(rec, "reported_date", "2099-06-30")),
        "date in 1800": _csv(_set(rec, "start_date", "1800-01-01")),
        "date beyond pandas range": _csv(_set(rec, "end_date", "9999-12-31")),
        "negative amount": _csv(_set(rec, "amount", "-5")),
        "amount 1e308": _csv(_set(rec, "amount", "1e308")),
        "amount inf": _csv(_set(rec, "amount", "inf")),
        "value nan": _csv(_set(rec, "value", "nan")),
        "value -1e9": _csv(_set(rec, "value", "-1e9")),
        "extra column": _csv(rec.assign(remarks="note")),
        "missing required column": _csv(rec.drop(columns=["reported_date"])),
        "extra field in a row": _replace_line(text, 2, lambda ln: ln + ",surplus"),
        "missing field in a row": _replace_line(text, 4, lambda ln: ln.rsplit(",", 1)[0]),
        "shuffled columns": _csv(rec[list(reversed(rec.columns))]),
        "upper-case header": "\n".join([header.upper()] + _lines(text)[1:]),
        "padded values": _csv(rec.map(lambda v: f"  {v}  " if isinstance(v, str) else v)),
        "duplicate rows": _csv(pd.concat([rec, rec.head(10)])),
        "same doc_ref other content": _csv(pd.concat([rec, _set(rec.head(5), "amount", "77", rows=range(5))])),
        "unknown subject": _csv(_set(rec, "subject_id", ids.make_uscc("91410100MA0000001"))),
        "unknown kind": _csv(_set(rec, "kind", "tax.lottery")),
        "unknown source": _csv(_set(rec, "source", "weather")),
        "wrong segment": _csv(_set(rec, "segment", "household")),
        "bad severity": _csv(_set(rec, "severity", "catastrophic")),
        "quoted newline": _csv(_set(rec, "account", "line one\nline two")),
        "unbalanced quote": _replace_line(text, 5, lambda ln: ln.replace(",", ',"', 1)),
        "NUL byte": _csv(_set(rec, "category", "A\x00B")),
        "control character": _csv(_set(rec, "doc_ref", "REF\x07X")),
        "field over 131072 characters": _csv(_set(rec, "category", "x" * 140_000, rows=(1,))),
        "field over the CSV limit": _csv(_set(rec, "category", "x" * 1_100_000, rows=(1,))),
        "100 KB doc_ref": _csv(_set(rec, "doc_ref", "D" * 100_000, rows=(2,))),
        "identity number in doc_ref": _csv(rec.assign(doc_ref=rec.doc_ref + f"-{PERSON}")),
        "identity number in account": _csv(_set(rec, "account", f"ACC {PERSON}")),
        "prohibited column zh": _csv(rec.assign(宗教="x")),
        "prohibited column en": _csv(rec.assign(**{"blood type": "AB"})),
        "prohibited column camelCase": _csv(rec.assign(religiousAffiliation="x")),
        "duplicate columns by case": _csv(rec.assign(AMOUNT=1.0)),
        "unknown table": "alpha,beta\n1,2\n",
        "header only": header + "\n",
        "blank lines only": "\n\n  \n",
        "blank lines between rows": text.replace("\n", "\n\n", 20),
        "empty csv": "",
        "CRLF": text.replace("\n", "\r\n"),
        "CR only": text.replace("\n", "\r"),
        "utf-8 BOM": "\ufeff" + text,
    }
    files = {name: ("records.csv", body.encode()) for name, body in k.items()}
    files.update({
        "latin-1 bytes": ("records.csv", _csv(_set(rec, "category", "Müller")).encode("latin-1")),
        "gb18030 Chinese": ("records.csv", _csv(_set(rec, "account", "郑州银行贷款")).encode("gb18030")),
        "utf-16": ("records.csv", text.encode("utf-16")),
        "invalid utf-8 bytes": ("records.csv", data.replace(b"\n", b"\n\xff\xfe", 1)),
        "binary garbage csv": ("records.csv", bytes(rng.randrange(256) for _ in range(4000))),
        "garbage parquet": ("records.parquet", bytes(rng.randrange(256) for _ in range(4000))),
        "empty parquet": ("records.parquet", b""),
        "truncated parquet": ("records.parquet", pq_bytes[: len(pq_bytes) // 2]),
        "parquet footer only": ("records.parquet", b"PAR1" + pq_bytes[-200:]),
        "parquet text amounts": ("records.parquet", _parquet(rec.astype({"amount": str}))),
        "parquet zero rows": ("records.parquet", _parquet(rec.head(0))),
        "parquet prohibited column": ("records.parquet", _parquet(rec.assign(性别="x"))),
        "parquet time of day": ("records.parquet", _parquet(rec.assign(start_date=pd.Timestamp("2023-01-01 13:45"))
                                                            .astype({"start_date": "datetime64[ns]"}))),
        "subjects bad check digit": ("subjects.csv", _csv(_set(subj, "subject_id", subj.subject_id[0][:-1] + "0",
                                                                rows=(0,))).encode()),
        "subjects founded in 2099": ("subjects.csv", _csv(_set(subj, "founded", "2099-01-01")).encode()),
        "subjects changed name": ("subjects.csv", _csv(_set(subj, "name", "Renamed Co")).encode()),
        "subjects 100 KB sector": ("subjects.csv", _csv(_set(subj, "sector", "s" * 100_000)).encode()),
        "subjects identity number in name": ("subjects.csv", _csv(_set(subj, "name", f"Shop {PERSON}")).encode()),
        "outcomes defaulted 2": ("outcomes.csv", _csv(_set(out, "defaulted", 2)).encode()),
        "outcomes unknown subject": ("outcomes.csv", _csv(_set(out, "subject_id", PERSON)).encode()),
        "outcomes horizon 0": ("outcomes.csv", _csv(_set(out, "horizon_months", 0)).encode()),
    })
    return files


@dataclass
class Tally:
    kinds: int = 0
    read: int = 0
    stored: int = 0
    already: int = 0
    quarantined: int = 0
    refused: int = 0
    tracebacks: list[str] = field(default_factory=list)
    unbalanced: list[str] = field(default_factory=list)


def fuzz(workdir: Path, store: Store) -> Tally:
    """Ingest the clean slices, then every corrupted variant, into ``store``; tally what happened."""
    slices = sample_slices()
    for name in ("subjects", "records", "outcomes"):
        path = workdir / f"clean-{name}.parquet"
        slices[name].to_parquet(path)
        ingest_file(store, path)
    tally = Tally()
    for i, (kind, (name, body)) in enumerate(corruptions(slices).items()):
        path = workdir / f"{i:02d}-{name}"
        path.write_bytes(body)
        tally.kinds += 1
        try:
            report = ingest_file(store, path)
        except Exception:  # noqa: BLE001 - counting them is the point
            tally.tracebacks.append(f"{kind}: {traceback.format_exc()}")
            continue
        tally.refused += bool(report.refused)
        tally.read += report.read
        tally.stored += report.stored
        tally.already += report.duplicates
        tally.quarantined += report.quarantined
        if not report.refused and report.stored + report.duplicates + report.quarantined != report.read:
            tally.unbalanced.append(f"{kind}: {report}")
    return tally


@pytest.mark.slow
def test_every_corrupted_file_is_refused_or_fully_accounted_for(store, home, tmp_path):
    tally = fuzz(tmp_path, store)
    assert tally.kinds >= 40
    assert tally.tracebacks == []
    assert tally.unbalanced == []
    assert tally.refused > 0 and tally.quarantined > 0 and tally.stored + tally.already > 0
    everything = stored_text(store, home)
    assert PERSON not in everything and ids.mask_ric(PERSON) in everything
    assert "宗教" in everything  # the refusal names the column (its values were never read)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tally = fuzz(Path(d), Store(f"sqlite:///{Path(d) / 'fuzz.db'}"))
    print(f"kinds tried {tally.kinds}  rows read {tally.read}  stored {tally.stored}  "
          f"already stored {tally.already}  quarantined {tally.quarantined}  files refused {tally.refused}  "
          f"unbalanced {len(tally.unbalanced)}  tracebacks {len(tally.tracebacks)}")
    for problem in tally.tracebacks + tally.unbalanced:
        print(problem)


if __name__ == "__main__":
    main()
