"""Hot-path statements, compiled once per process and run on the driver's cursor.

SQLAlchemy Core builds them (portable SQL, the dialect's parameter style and type
conversions); but running even a cached compiled statement through Connection.execute
costs ~65 µs of Python, several times what SQLite takes to answer, and a key delivery
runs about ten. A Prepared statement runs on the DBAPI connection of the same unit of
work (same transaction), converting parameters and results with the dialect's own bind
and result processors, so values look exactly as through Connection.execute.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
_CALLER = object()  # a parameter whose value the caller gives


class Prepared:
    def __init__(self, stmt: ClauseElement, dialect: Dialect,
                 column_keys: Sequence[str] | None = None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys)
                                if column_keys is not None else None)
        assert isinstance(compiled, SQLCompiler)  # a query or a data change, not DDL
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        binds = compiled.binds
        # name -> (fixed value or None for a caller's parameter, bind processor)
        self.order: list[str] = list(compiled.positiontup or binds)
        self.fixed = {name: bp.value for name, bp in binds.items()
                      if not bp.required and bp.callable is None and name not in
                      (column_keys or ())}
        binders = {name: _bind(bp.type, dialect) for name, bp in binds.items()}
        if not self.positional:
            self.order = list(binds)
        # per parameter, in order: where its value comes from, and its bind processor
        self.sources = [(name, self.fixed.get(name, _CALLER)) for name in self.order]
        self.binders_in_order: list[Processor] = [binders[name] for name in self.order]
        columns = [] if isinstance(stmt, UpdateBase) else list(stmt.selected_columns)  # type: ignore[attr-defined]
        self.readers: list[Processor] = [c.type.dialect_impl(dialect).result_processor(
            dialect, None) for c in columns]
        # a tuple type made at run time, with the statement's column names
        self.row: Any = namedtuple("Row", [c.key or f"c{i}" for i, c in enumerate(columns)],
                                   rename=True) if columns else None
        self.any_reader = any(r is not None for r in self.readers)

    def _params(self, params: Mapping[str, Any]) -> Any:
        values = [params[name] if fixed is _CALLER else fixed for name, fixed in self.sources]
        values = [v if f is None else f(v)
                  for f, v in zip(self.binders_in_order, values, strict=True)]
        return tuple(values) if self.positional else dict(zip(self.order, values, strict=True))

    def write(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a data change in conn's transaction; the number of rows it changed."""
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(self.sql, self._params(params))
            return int(cur.rowcount)
        finally:
            cur.close()

    def run(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Execute in conn's transaction; the rows (named tuples) of a query, [] else."""
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(self.sql, self._params(params))
            if self.row is None:
                return []
            rows = cur.fetchall()
        finally:
            cur.close()
        make = self.row._make
        if not self.any_reader:
            return [make(r) for r in rows]
        readers = self.readers
        return [make(v if f is None else f(v) for f, v in zip(readers, r, strict=True))
                for r in rows]


def _bind(type_: Any, dialect: Dialect) -> Processor:
    return type_.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]
