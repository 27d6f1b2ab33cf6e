"""Storing a chunk of rows in bulk inside the caller's transaction, skipping rows whose key is stored already.

SQLite: one ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``; the rows it skipped are found by their
keys only when fewer rows were inserted than sent (a new row's rowid is past the table's largest before the
insert, SQLite having one writer). PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... SELECT
... ON CONFLICT DO NOTHING`` whose ``RETURNING`` tells which rows went in. Either way the caller learns, per
row, whether it was inserted and (for a table with an autoincrement key) its id.
"""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Boolean, Date, Float, Integer, Table, literal_column, select, tuple_

from creditgrade.features.schemas import contract

LOOKUP = 5_000  # keys per query (bound parameters stay under SQLite's limit)
_ARROW = ((Boolean, pa.bool_()), (Date, pa.date32()), (Float, pa.float64()), (Integer, pa.int64()))


def arrow_schema(columns) -> pa.Schema:
    """The Arrow schema of store columns (text for any other type)."""
    return pa.schema([(c.name, next((t for sql, t in _ARROW if isinstance(c.type, sql)), pa.string()))
                      for c in columns])


class Writer:
    """Inserts chunks of ``columns`` of ``table``; ``keys`` are the columns of its unique key."""

    def __init__(self, conn, table: Table, columns, keys: tuple[str, ...]):
        self.conn, self.table, self.keys = conn, table, keys
        self.names = [c.name for c in columns]
        self.ident = table.autoincrement_column
        self.driver = conn.connection.driver_connection
        self.sqlite = conn.dialect.name == "sqlite"
        quote = conn.dialect.identifier_preparer.quote
        self.quoted = ", ".join(quote(n) for n in self.names)
        self.temp = None
        if self.sqlite:  # a file's rows land all over the indexes: SQLite's default 2 MB cache would spill each page
            self.cache = self.driver.execute("PRAGMA cache_size").fetchone()[0]
            self.driver.execute(f"PRAGMA cache_size = -{contract()['files']['sqlite_cache_mb'] * 1024}")

    def close(self) -> None:
        """Give the connection its page cache back (it returns to the pool)."""
        if self.sqlite:
            self.driver.execute(f"PRAGMA cache_size = {self.cache}")

    def insert(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray | None, dict[tuple, dict]]:
        """Insert ``rows`` (columns in order, keys unique among them); return whether each row was inserted,
        their ids (None for a table without an autoincrement key) and, by key, the stored rows that were not."""
        if rows.num_rows == 0:
            return np.zeros(0, bool), None, {}
        return self._sqlite(rows) if self.sqlite else self._postgresql(rows)

    def _sqlite(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray | None, dict[tuple, dict]]:
        name = self.conn.dialect.identifier_preparer.format_table(self.table)
        cur = self.driver.cursor()
        before = cur.execute(f"SELECT coalesce(max(rowid), 0) FROM {name}").fetchone()[0]
        columns = [(col.cast(pa.string()) if pa.types.is_date32(col.type) else col).to_pylist()
                   for col in rows.columns]
        cur.executemany(f"INSERT INTO {name} ({self.quoted}) VALUES ({', '.join('?' * len(self.names))}) "
                        "ON CONFLICT DO NOTHING", zip(*columns))
        n = rows.num_rows
        if cur.rowcount == n:
            return np.ones(n, bool), np.arange(before + 1, before + n + 1), {}
        keys = list(zip(*(rows.column(k).to_pylist() for k in self.keys)))
        found = self._rows(keys)
        ids = np.array([found[k]["rowid"] for k in keys])
        return ids > before, ids, {k: row for k, row in found.items() if row["rowid"] <= before}

    def _rows(self, keys: list[tuple]) -> dict[tuple, dict]:
        cols = [self.table.c[k] for k in self.keys]
        found = {}
        for start in range(0, len(keys), LOOKUP):
            part = keys[start:start + LOOKUP]
            where = cols[0].in_([k[0] for k in part]) if len(cols) == 1 else tuple_(*cols).in_(part)
            for row in self.conn.execute(select(self.table, literal_column("rowid")).where(where)).mappings():
                found[tuple(row[k] for k in self.keys)] = dict(row)
        return found

    def _postgresql(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray | None, dict[tuple, dict]]:
        name = self.conn.dialect.identifier_preparer.format_table(self.table)
        cur = self.driver.cursor()
        if self.temp is None:
            self.temp = f"creditgrade_bulk_{self.table.name}"
            cur.execute(f"CREATE TEMPORARY TABLE {self.temp} ON COMMIT DROP AS SELECT 0 AS position, "
                        f"{self.quoted} FROM {name} WITH NO DATA")
        else:
            cur.execute(f"TRUNCATE {self.temp}")
        text = io.BytesIO()
        pacsv.write_csv(rows.add_column(0, "position", pa.array(np.arange(rows.num_rows))), text,
                        pacsv.WriteOptions(include_header=False))
        with cur.copy(f"COPY {self.temp} (position, {self.quoted}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(text.getbuffer())
        ident = self.ident.name if self.ident is not None else None
        returned = ", ".join(self.keys + ((ident,) if ident else ()))
        on = " AND ".join(f"t.{k} = {{0}}.{k}" for k in self.keys)
        cur.execute(f"WITH i AS (INSERT INTO {name} ({self.quoted}) SELECT {self.quoted} FROM {self.temp} "
                    f"ON CONFLICT DO NOTHING RETURNING {returned}) SELECT i.{self.keys[0]} IS NOT NULL, "
                    f"{'i.' + ident if ident else 'NULL'} FROM {self.temp} t LEFT JOIN i ON {on.format('i')} "
                    "ORDER BY t.position")
        result = cur.fetchall()
        inserted = np.array([r[0] for r in result], bool)
        stored = {}
        if not inserted.all():  # the rows that kept these out (stored before: their keys were not inserted now)
            cur.execute(f"SELECT r.* FROM {self.temp} t JOIN {name} r ON {on.format('r')} "
                        "WHERE t.position = ANY(%s)", [np.flatnonzero(~inserted).tolist()])
            names = [d.name for d in cur.description]
            for old in cur.fetchall():
                row = dict(zip(names, old))
                stored[tuple(row[k] for k in self.keys)] = row
        return inserted, (np.array([r[1] for r in result]) if ident else None), stored
