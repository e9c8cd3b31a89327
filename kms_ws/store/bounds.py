"""Every string the store keeps has a bound: a String(n) column refuses a longer value
with a precise fault (domain ValueTooLong) before it reaches the database, on SQLite
(which would keep it) as on PostgreSQL (which fails the whole transaction with a
DataError). Comparisons are not bounded: looking up a longer value finds nothing.

Audit records are never refused: `fit` truncates their strings to the columns, so the
record of a request carrying an overlong value (a 5 KB user name) is still written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import MetaData, String, Table
from sqlalchemy.types import TypeDecorator

from ..domain.errors import ValueTooLong


class BoundedString(TypeDecorator):  # type: ignore[type-arg]
    """String(length) whose bound values are checked (the column's `field` names it)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int, field: str) -> None:
        super().__init__(length)
        self.length = length
        self.field = field

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, str) and len(value) > self.length:
            raise ValueTooLong(f"a value of {len(value)} characters is longer than the "
                               f"{self.length} kept for {self.field}")
        return value

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return String()


def bound_strings(metadata: MetaData) -> None:
    """Make every String(n) column of `metadata` a BoundedString (at import, before any
    statement is built from the tables)."""
    for table in metadata.tables.values():
        for column in table.columns:
            if type(column.type) is String and column.type.length:
                column.type = BoundedString(column.type.length, f"{table.name}.{column.name}")


def fit(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with each string cut to its column's bound (for rows that must be written)."""
    out = dict(row)
    for name, value in row.items():
        bound = getattr(table.c[name].type, "length", None)
        if isinstance(value, str) and bound and len(value) > bound:
            out[name] = value[:bound]
    return out
