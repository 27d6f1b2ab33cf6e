"""Vectorised identifiers and names: unified social credit codes, resident identity numbers.

The check characters are computed for whole arrays at once; they agree with ``features.ids.make_uscc``
and ``features.ids.make_ric`` (python-stdnum), which the tests verify.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])  # GB 11714 organisation code
RIC_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)])


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the decimal digits of non-negative integers."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (np.asarray(values, dtype=np.int64)[:, None] // powers) % 10


def _join(codes: np.ndarray, alphabet: str) -> np.ndarray:
    """Rows of alphabet indices -> array of strings."""
    chars = np.array(list(alphabet))[codes]
    return np.ascontiguousarray(chars).view(f"<U{codes.shape[1]}").ravel()


def uscc(districts: np.ndarray, org_numbers: np.ndarray) -> np.ndarray:
    """Unified social credit codes '91' + district + organisation code (8 digits + check) + check."""
    org = _digits(org_numbers, 8)
    org_check = (11 - (org @ ORG_WEIGHTS) % 11) % 11  # 10 is written 'X'
    org_check = np.where(org_check == 10, USCC_ALPHABET.index("X"), org_check)
    head = np.column_stack([np.full(len(org), 9), np.ones(len(org), int), _digits(districts.astype(np.int64), 6)])
    body = np.column_stack([head, org, org_check])
    check = (31 - (body @ USCC_WEIGHTS) % 31) % 31
    return _join(np.column_stack([body, check]), USCC_ALPHABET)


def ric(places: np.ndarray, birth_days: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Resident identity numbers: 6-digit place, YYYYMMDD birth date, 3-digit sequence, check digit."""
    ymd = np.datetime_as_string(np.asarray(birth_days).astype("datetime64[D]")).astype("U10")
    ymd = np.char.replace(ymd, "-", "").astype(np.int64)
    body = np.column_stack([_digits(places.astype(np.int64), 6), _digits(ymd, 8), _digits(sequence, 3)])
    check = (12 - (body @ RIC_WEIGHTS) % 11) % 11
    return _join(np.column_stack([body, check]), "0123456789X")


def persons(gen: np.random.Generator, n: int, born: list[int], places: list, taken: set | None = None):
    """Birth days and identity numbers of n distinct people born in the years ``born``."""
    lo = np.datetime64(f"{born[0]}-01-01").astype(np.int64)
    hi = np.datetime64(f"{born[1]}-12-31").astype(np.int64)
    days = gen.integers(lo, hi + 1, n)
    year = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    codes = np.array([int(p[0]) for p in places])
    valid = (year[:, None] >= np.array([p[1] for p in places])) & (year[:, None] <= np.array([p[2] for p in places]))
    place = codes[np.argmax(gen.random((n, len(places))) * valid, axis=1)]
    seq = gen.integers(0, 1000, n)
    ids = ric(place, days, seq)
    taken = set() if taken is None else taken
    while True:  # redraw the sequence of the rare duplicates
        _, first = np.unique(ids, return_index=True)
        dup = np.setdiff1d(np.arange(n), first)
        dup = np.union1d(dup, np.flatnonzero(np.isin(ids, list(taken)))) if taken else dup
        if len(dup) == 0:
            return days, ids
        seq[dup] = gen.integers(0, 1000, len(dup))
        ids[dup] = ric(place[dup], days[dup], seq[dup])


def pick(gen: np.random.Generator, words: list[str], n: int) -> pa.Array:
    return pa.array(np.array(words)[gen.integers(0, len(words), n)])


def concat(*parts, sep: str = "") -> np.ndarray:
    """Element-wise string concatenation of arrays (or scalars) as a numpy array of str."""
    arrays = [p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(p) if isinstance(p, str) else pa.array(p)
              for p in parts]
    return np.asarray(pc.binary_join_element_wise(*arrays, sep).to_numpy(zero_copy_only=False), dtype=str)


def person_names(gen: np.random.Generator, names: dict, n: int) -> np.ndarray:
    return concat(pick(gen, names["surnames"], n), pick(gen, names["given"], n))
