"""Record chunks: the columns of one kind's records for one segment, and their assembly into a table."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditgrade.features.schemas import kinds

SEVERITIES = pa.array([None, "minor", "general", "serious"], pa.string())
SEGMENT_CODE = {"sme": "S", "household": "H", "practitioner": "P"}
NULL = -1  # a missing date


def join(*parts, sep: str = "-") -> pa.Array:
    """Element-wise join of string arrays and scalars."""
    arrays = [p if isinstance(p, (pa.Array, pa.ChunkedArray, pa.Scalar)) else pa.scalar(p) for p in parts]
    return pc.binary_join_element_wise(*arrays, sep)


def padded(numbers: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64).ravel()), pa.string()), width, "0")


def take(values: np.ndarray, idx: np.ndarray) -> pa.Array:
    return pa.array(values).take(pa.array(idx))


@dataclass
class Chunk:
    kind: str
    row: np.ndarray
    start: np.ndarray
    reported: np.ndarray
    doc_ref: pa.Array
    end: np.ndarray | None = None
    severity: np.ndarray | None = None   # 1 minor, 2 general, 3 serious
    amount: np.ndarray | None = None
    value: np.ndarray | None = None
    category: pa.Array | None = None
    account: pa.Array | None = None
    repaired: np.ndarray | None = None

    def clipped(self, end_day: int) -> "Chunk":
        """Only what is reported by the end of the simulation; later end/repair dates are not known yet."""
        out = self._rows(self.reported <= end_day)
        for name in ("end", "repaired"):
            if getattr(out, name) is not None:
                setattr(out, name, np.where(getattr(out, name) > end_day, NULL, getattr(out, name)))
        return out

    def until(self, exit_day: np.ndarray) -> "Chunk":
        """Only records starting before their subject leaves (``exit_day`` per subject row, NULL: it stays);
        those still ongoing then end on that day (its proceedings, listings and loans end with it)."""
        leaves = exit_day[self.row] != NULL
        out = self._rows(~leaves | (self.start < exit_day[self.row]))
        if out.end is not None:
            last = exit_day[out.row]
            out.end = np.where((last != NULL) & ((out.end == NULL) | (out.end > last)), last, out.end)
        return out

    def _rows(self, keep: np.ndarray) -> "Chunk":
        out = {}
        for name, v in vars(self).items():
            if name == "kind" or v is None:
                out[name] = v
            elif isinstance(v, pa.Array):
                out[name] = v.filter(pa.array(keep))
            else:
                out[name] = v[keep]
        return Chunk(**out)


def assemble(segment: str, subject_id: np.ndarray, chunks: list[Chunk]) -> pa.Table:
    """One segment's records as an Arrow table sorted by subject, start date and kind."""
    names = sorted({c.kind for c in chunks})
    kind_idx = np.concatenate([np.full(len(c.row), names.index(c.kind)) for c in chunks])

    def cat(attr, fill):
        return np.concatenate([np.full(len(c.row), fill) if getattr(c, attr) is None else getattr(c, attr)
                               for c in chunks])

    def strings(attr):
        return pa.concat_arrays([pa.nulls(len(c.row), pa.string()) if getattr(c, attr) is None
                                 else getattr(c, attr).cast(pa.string()) for c in chunks])

    row, start = cat("row", 0), cat("start", 0)
    order = pa.array(np.lexsort((kind_idx, start, row)))

    def date(values):
        values = np.asarray(values)
        return pa.array(values.astype(np.int32), pa.date32(), mask=values == NULL).take(order)

    kidx = pa.array(kind_idx.astype(np.int32)).take(order)
    n = len(row)
    columns = {
        "segment": pa.array([segment]).take(pa.array(np.zeros(n, np.int32))),
        "subject_id": take(subject_id, row).take(order),
        "source": pa.array([kinds()[k]["source"] for k in names]).take(kidx),
        "kind": pa.array(names).take(kidx),
        "start_date": date(start),
        "end_date": date(cat("end", NULL)),
        "reported_date": date(cat("reported", 0)),
        "severity": SEVERITIES.take(pa.array(cat("severity", 0).astype(np.int8))).take(order),
        "amount": pa.array(cat("amount", np.nan).astype(float), from_pandas=True).take(order),
        "value": pa.array(cat("value", np.nan).astype(float), from_pandas=True).take(order),
        "category": strings("category").take(order),
        "account": strings("account").take(order),
        "doc_ref": strings("doc_ref").take(order),
        "repaired_date": date(cat("repaired", NULL)),
    }
    return pa.table(columns)


def gather(chunks: list[Chunk], kind: str) -> Chunk:
    """All records of one kind (from several chunks) as one chunk; fields missing from some are left out."""
    parts = [c for c in chunks if c.kind == kind]
    if not parts:
        empty = np.zeros(0, np.int64)
        return Chunk(kind, empty, empty, empty, pa.array([], pa.string()), end=empty, severity=empty.astype(np.int8),
                     amount=empty.astype(float), value=empty.astype(float))
    fields = {}
    for name in vars(parts[0]):
        values = [getattr(c, name) for c in parts]
        if name == "kind" or any(v is None for v in values):
            fields[name] = kind if name == "kind" else None
        elif isinstance(values[0], pa.Array):
            fields[name] = pa.concat_arrays(values)
        else:
            fields[name] = np.concatenate(values)
    return Chunk(**fields)
