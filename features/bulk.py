"""Storing a chunk of rows in bulk inside the caller's transaction, skipping rows whose key is stored already.

SQLite: ``INSERT ... ON CONFLICT DO NOTHING`` of ``SQLITE_ROWS`` rows a statement, their values made beforehand
(``Writer.values``, which a worker thread can run for the next chunk); the rows it skipped are found by their
keys only when fewer rows were inserted than sent (a new row's rowid is past the table's largest before the
insert, SQLite having one writer). PostgreSQL: the rows are ``COPY``-ed straight into the table (ids from its
sequence, when wanted; columns all missing left out), after one indexed join finds the chunk's keys stored
already, which is done only for the first chunk and after a chunk that met one; a key stored meanwhile, by
an earlier file or another transaction, sends the chunk through a temporary table and ``INSERT ... SELECT
... ON CONFLICT DO NOTHING RETURNING`` instead. Either way the caller learns, per row, whether it was inserted
and (for a table with an autoincrement key, on SQLite always) its id.

A large file (a back-fill: at least ``rebuild_indexes_share`` as many rows as the table holds) goes in
without what makes each row dear (``bench/ingest.py --costs``), all inside its one transaction, so no other
transaction sees the table without them and a failure leaves them as they were:
- the secondary (non-unique) indexes, dropped once a chunk adds rows and built again before commit (sorted:
  about a third of the cost of inserting all over them); those the transaction reads by (``read_by``) stay;
- the foreign keys. The ingest checks that every row's subject is stored and its batch is its own, so the
  database's per-row check repeats it. SQLite does not check them on the file's connection (set before the
  transaction's first write; ``settle`` sets them again after it). PostgreSQL drops them with the
  indexes and adds them again before commit, each checked by one join of the whole table.
The cost on PostgreSQL is locking: from the first chunk to the commit, dropping them holds ACCESS EXCLUSIVE
locks on the table and on the tables its keys refer to (records: subjects and ingest_batches). Nothing can
read them meanwhile: not grading, not another ingest. So this belongs to back-fills in a quiet window, which
is what the share rule keeps it to. A small file, or one that adds nothing, locks only its rows.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Boolean, Date, Float, Integer, Table

from creditgrade.features.schemas import contract

LOOKUP = 5_000  # keys per query (bound parameters stay under SQLite's limit)
SQLITE_ROWS = 100  # rows per INSERT statement on SQLite (see ``Writer._sqlite``)
_ARROW = ((Boolean, pa.bool_()), (Date, pa.date32()), (Float, pa.float64()), (Integer, pa.int64()))


def arrow_schema(columns) -> pa.Schema:
    """The Arrow schema of store columns (text for any other type)."""
    return pa.schema([(c.name, next((t for sql, t in _ARROW if isinstance(c.type, sql)), pa.string()))
                      for c in columns])


@dataclass
class Values:
    """Rows' values as the SQLite driver binds them (dates as text): a row of ``rows`` a row, holding the
    writer's columns at ``columns`` (those not all missing)."""

    columns: list[int]
    rows: np.ndarray

    def __getitem__(self, which) -> Values:
        return Values(self.columns, self.rows[which])


def settle(conn) -> None:
    """After a file's transaction, committed or not, the connection as the store set it before it returns to
    the pool (SQLite: foreign keys checked, which a ``Writer`` of a large file turned off before the transaction
    began, and the page cache the ``Writer`` found)."""
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        driver.execute("PRAGMA foreign_keys = ON")
        if "cache_size" in conn.info:
            driver.execute(f"PRAGMA cache_size = {conn.info.pop('cache_size')}")


class Writer:
    """Inserts chunks of ``columns`` of ``table``; ``keys`` are the columns of its unique key."""

    def __init__(self, conn, table: Table, columns, keys: tuple[str, ...], rows: int = 0,
                 read_by: frozenset[str] = frozenset(), want_ids: bool = True):
        """``rows``: how many rows the file holds (estimated); ``read_by``: columns the caller's transaction
        looks rows up by while inserting (an index that starts with one is never dropped); ``want_ids``: whether
        the caller needs the new rows' ids (PostgreSQL draws them from the sequence beforehand)."""
        self.conn, self.table, self.keys, self.want_ids = conn, table, keys, want_ids
        self.meets_stored = True  # PostgreSQL: look the first chunk's keys up
        self.names = [c.name for c in columns]
        self.schema = arrow_schema(columns)
        self.ident = table.autoincrement_column
        self.driver = conn.connection.driver_connection
        self.sqlite = conn.dialect.name == "sqlite"
        quote = conn.dialect.identifier_preparer.quote
        self.quoted = ", ".join(quote(n) for n in self.names)
        self.temp = None
        self.deferred, self.dropped = [], []  # indexes to drop once a chunk adds rows; those dropped
        self.deferred_keys, self.dropped_keys = [], []  # PostgreSQL: foreign keys (name, definition), likewise
        share = contract()["files"]["rebuild_indexes_share"]
        if self.sqlite:  # a file's rows land all over the indexes: SQLite's default 2 MB cache would spill each page
            conn.info.setdefault("cache_size", self.driver.execute("PRAGMA cache_size").fetchone()[0])  # ``settle``
            self.driver.execute(f"PRAGMA cache_size = -{contract()['files']['sqlite_cache_mb'] * 1024}")
            held = self.driver.execute(f"SELECT coalesce(max(rowid), 0) FROM {self._name}").fetchone()[0]
        else:  # rows counted up to the file's own bound: cost in proportion to the file, exact for the rule
            held = self.driver.execute(f"SELECT count(*) FROM (SELECT 1 FROM {self._name} LIMIT %s) t",
                                       [int(rows / share) + 1]).fetchone()[0]
        if rows >= share * held:
            self.deferred = [ix for ix in table.indexes
                             if not ix.unique and next(iter(ix.columns)).name not in read_by]
            if self.sqlite:  # before the transaction's first write, else a no-op; ``settle`` turns them on
                self.driver.execute("PRAGMA foreign_keys = OFF")
            else:
                self.deferred_keys = self.driver.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                    "AND contype = 'f' ORDER BY conname", [self._name]).fetchall()

    @property
    def _name(self) -> str:
        return self.conn.dialect.identifier_preparer.format_table(self.table)

    def _quote(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def close(self) -> None:
        """Build the dropped indexes again (after: SQLite with a page cache of ``sqlite_sort_mb`` in sources.toml,
        which its sorter also keeps up to in memory, spilling sorted runs to temporary files: the full cache and a
        sort of up to as much again put the peak of a million-row file 35 MB higher for no faster build;
        PostgreSQL with ``postgresql_maintenance_work_mem_mb`` for this transaction) and add the dropped foreign keys
        again (PostgreSQL checks each by one join of the whole table; a row breaking one fails the file)."""
        if self.sqlite and self.dropped:  # ``settle`` gives the connection its own cache size back
            self.driver.execute(f"PRAGMA cache_size = -{contract()['files']['sqlite_sort_mb'] * 1024}")
        elif self.dropped:
            memory = contract()["files"]["postgresql_maintenance_work_mem_mb"]
            self.driver.execute(f"SET LOCAL maintenance_work_mem = '{memory}MB'")
        for index in self.dropped:
            index.create(self.conn)
        for name, definition in self.dropped_keys:
            self.driver.execute(f"ALTER TABLE {self._name} ADD CONSTRAINT {self._quote(name)} {definition}")
        self.dropped = self.dropped_keys = []

    def _defer(self) -> None:
        """Drop the indexes (and foreign keys) put off for this file: called once a chunk added rows, so a file
        that adds nothing never rebuilds them."""
        for index in self.deferred:
            index.drop(self.conn)
        for name, _ in self.deferred_keys:
            self.driver.execute(f"ALTER TABLE {self._name} DROP CONSTRAINT {self._quote(name)}")
        self.dropped, self.deferred = self.dropped + self.deferred, []
        self.dropped_keys, self.deferred_keys = self.dropped_keys + self.deferred_keys, []

    def values(self, rows: pa.Table) -> Values | None:
        """SQLite: the rows' values for ``insert`` (a column all missing is left out); None on PostgreSQL, whose
        COPY takes Arrow's CSV. No database work: a pipeline's worker makes the next chunk's while this one is
        written."""
        if not self.sqlite:
            return None
        n = rows.num_rows
        columns = [i for i, col in enumerate(rows.columns) if col.null_count < n]
        values = np.empty((n, len(columns)), object)
        for j, i in enumerate(columns):
            col = rows.column(i).combine_chunks()
            coded = col.dictionary_encode()
            if len(coded.dictionary) * 2 <= n:  # a value made once, shared by its rows (less memory and GIL)
                distinct = coded.dictionary.cast(pa.string()) if pa.types.is_date32(col.type) else coded.dictionary
                lookup = np.array([*distinct.to_pylist(), None], object)
                values[:, j] = lookup[coded.indices.fill_null(len(lookup) - 1).to_numpy()]
            else:
                values[:, j] = (col.cast(pa.string()) if pa.types.is_date32(col.type) else col).to_pylist()
        return Values(columns, values)

    def insert(self, rows: pa.Table, values: Values | None = None) -> tuple[np.ndarray, np.ndarray | None,
                                                                         pa.Table]:
        """Insert ``rows`` (columns in order, keys unique among them; ``values``: theirs, made by ``values``
        when not given); return whether each row was inserted, their ids (None for a table without an
        autoincrement key, or on PostgreSQL when not wanted) and the stored rows that kept the others out, in
        their order."""
        if rows.num_rows == 0:
            return np.zeros(0, bool), None, self._table([])[1]
        if not self.sqlite:
            return self._postgresql(rows)
        return self._sqlite(rows, self.values(rows) if values is None else values)

    def _sqlite(self, rows: pa.Table, values: Values) -> tuple[np.ndarray, np.ndarray, pa.Table]:
        """Multi-row ``INSERT ... ON CONFLICT DO NOTHING`` statements of ``SQLITE_ROWS`` rows: 2.0-2.2 s of
        ``executemany`` CPU per million records against 3.5-3.7 s one row a statement (loaded), and the driver
        lets go of the GIL once a statement rather than once a row, so a pipeline's worker takes it between
        statements instead of stalling every row."""
        cur = self.driver.cursor()
        before = cur.execute(f"SELECT coalesce(max(rowid), 0) FROM {self._name}").fetchone()[0]
        n, sent, flat = rows.num_rows, values.columns, values.rows
        insert = (f"INSERT INTO {self._name} ({', '.join(self._quote(self.names[i]) for i in sent)}) VALUES "
                  "{} ON CONFLICT DO NOTHING")
        one, whole, added = f"({', '.join('?' * len(sent))})", n - n % SQLITE_ROWS, 0
        for each, params in ((", ".join([one] * SQLITE_ROWS), flat[:whole].reshape(-1, SQLITE_ROWS * len(sent))),
                             (one, flat[whole:])):
            if len(params):
                added += cur.executemany(insert.format(each), params.tolist()).rowcount
        if added:  # the file adds rows: the next chunks go in without the indexes put off
            self._defer()
        inserted = np.ones(n, bool)
        kept_out, stored = self._table([])
        if added < n:  # the rows kept out are those whose key was stored before (rowid up to ``before``)
            keys = flat[:, [sent.index(self.names.index(k)) for k in self.keys]].tolist()
            kept_out, stored = self._table(self._stored(cur, keys, before))
            inserted[kept_out] = False
        ids = np.zeros(n, np.int64)
        ids[inserted] = np.arange(before + 1, before + 1 + inserted.sum())  # SQLite's next rowid is the largest + 1
        return inserted, ids, stored

    def _stored(self, cur, keys: list[tuple], before: int) -> list[tuple]:
        """(position, stored row's ``names``) of the ``keys`` (at their positions) stored with a rowid up to
        ``before``, by position."""
        found, one = [], f"({', '.join('?' * (len(self.keys) + 1))})"
        names = ", ".join(f"k{i}" for i in range(len(self.keys)))
        on = " AND ".join(f"t.{k} = k.k{i}" for i, k in enumerate(self.keys))
        select = ", ".join(f"t.{n}" for n in self.names)
        for start in range(0, len(keys), LOOKUP):  # CROSS JOIN: the keys outside, each a probe of the unique index
            part = keys[start:start + LOOKUP]
            found += cur.execute(f"WITH k(position, {names}) AS (VALUES {', '.join([one] * len(part))}) SELECT "
                                 f"k.position, {select} FROM k CROSS JOIN {self._name} t ON {on} WHERE t.rowid <= ? "
                                 "ORDER BY k.position", [*(v for i, k in enumerate(part, start) for v in (i, *k)),
                                                         before]).fetchall()
        return found

    def _table(self, found: list[tuple]) -> tuple[np.ndarray, pa.Table]:
        """The positions and the stored rows (as Arrow, the written columns' types) of (position, row) tuples."""
        columns = list(zip(*found)) if found else [[]] * (len(self.names) + 1)
        return np.array(columns[0], np.int64), pa.table(
            [pa.array(c).cast(t) for c, t in zip(columns[1:], self.schema.types)], names=self.names)

    def _postgresql(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray | None, pa.Table]:
        """``COPY`` the rows not stored yet straight into the table, with ids drawn from its sequence when the
        caller wants them. The stored keys are looked up first (one indexed join on the keys sent as arrays)
        only after a chunk of this file met one; otherwise the chunk is copied whole, and should a key be
        stored already (by an earlier file, or by another transaction meanwhile), the chunk goes through
        ``ON CONFLICT DO NOTHING`` instead and the next chunks are looked up first."""
        cur = self.driver.cursor()
        kept_out, stored = self._lookup(cur, rows) if self.meets_stored else self._table([])
        self.meets_stored = len(kept_out) > 0
        inserted = np.ones(rows.num_rows, bool)
        inserted[kept_out] = False
        fresh, ids = rows.filter(pa.array(inserted)), None
        if self.ident is not None and self.want_ids:
            cur.execute(f"SELECT nextval(pg_get_serial_sequence('{self._name}', '{self.ident.name}')) "
                        "FROM generate_series(1, %s)", [fresh.num_rows])
            ids = np.zeros(rows.num_rows, np.int64)
            ids[inserted] = [r[0] for r in cur.fetchall()]
            fresh = fresh.add_column(0, self.ident.name, pa.array(ids[inserted]))
        if not fresh.num_rows:
            return inserted, ids, stored
        try:
            with self.driver.transaction():  # a savepoint
                self._copy(cur, self._name, fresh)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != "23505":  # unique_violation
                raise
            self.meets_stored = True
            result = self._upsert(rows)
            if result[0].any():
                self._defer()
            return result
        self._defer()
        return inserted, ids, stored

    def _lookup(self, cur, rows: pa.Table) -> tuple[np.ndarray, pa.Table]:
        """The positions of the rows whose key is stored, and the stored rows."""
        arrays = ", ".join(f"%s::{self.table.c[k].type.compile(self.conn.dialect)}[]" for k in self.keys)
        on = " AND ".join(f"t.{k} = k.k{i}" for i, k in enumerate(self.keys))
        cur.execute(f"SELECT k.position - 1, {', '.join('t.' + n for n in self.names)} FROM unnest({arrays}) WITH "
                    f"ORDINALITY AS k({', '.join(f'k{i}' for i in range(len(self.keys)))}, position) JOIN "
                    f"{self._name} t ON {on} ORDER BY k.position", [rows.column(k).to_pylist() for k in self.keys])
        return self._table(cur.fetchall())

    def _copy(self, cur, table: str, rows: pa.Table) -> None:
        """``COPY`` the rows (as CSV) into the columns of the same names, leaving out a column all missing (the
        server need not parse it: it is missing anyway, no store column having a server default)."""
        rows = rows.select([n for n in rows.column_names if rows.column(n).null_count < rows.num_rows])
        text = io.BytesIO()
        pacsv.write_csv(rows, text, pacsv.WriteOptions(include_header=False))
        columns = ", ".join(self._quote(n) for n in rows.column_names)
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(text.getbuffer())

    def _upsert(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray | None, pa.Table]:
        """``COPY`` into a temporary table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``."""
        name = self._name
        cur = self.driver.cursor()
        if self.temp is None:
            self.temp = f"creditgrade_bulk_{self.table.name}"
            cur.execute(f"CREATE TEMPORARY TABLE {self.temp} ON COMMIT DROP AS SELECT 0 AS position, "
                        f"{self.quoted} FROM {name} WITH NO DATA")
        else:
            cur.execute(f"TRUNCATE {self.temp}")
        self._copy(cur, self.temp, rows.add_column(0, "position", pa.array(np.arange(rows.num_rows))))
        ident = self.ident.name if self.ident is not None else None
        returned = ", ".join(self.keys + ((ident,) if ident else ()))
        on = " AND ".join(f"t.{k} = {{0}}.{k}" for k in self.keys)
        cur.execute(f"WITH i AS (INSERT INTO {name} ({self.quoted}) SELECT {self.quoted} FROM {self.temp} "
                    f"ON CONFLICT DO NOTHING RETURNING {returned}) SELECT i.{self.keys[0]} IS NOT NULL, "
                    f"{'i.' + ident if ident else 'NULL'} FROM {self.temp} t LEFT JOIN i ON {on.format('i')} "
                    "ORDER BY t.position")
        result = cur.fetchall()
        inserted = np.array([r[0] for r in result], bool)
        _, stored = self._table([])
        if not inserted.all():  # the rows that kept these out (stored before: their keys were not inserted now)
            cur.execute(f"SELECT t.position, {', '.join('r.' + n for n in self.names)} FROM {self.temp} t "
                        f"JOIN {name} r ON {on.format('r')} WHERE t.position = ANY(%s) ORDER BY t.position",
                        [np.flatnonzero(~inserted).tolist()])
            _, stored = self._table(cur.fetchall())
        return inserted, (np.array([r[1] for r in result]) if ident else None), stored
