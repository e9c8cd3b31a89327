"""Queries for failed authentications and refused unauthenticated requests (schema 15):
the backoff counts per user name and source (domain.backoff) and the refusal tallies
(service.refusals)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    or_,
    select,
    update,
)

from ..domain.backoff import Strikes
from . import tables as t
from .generations import STRIKES, STRIKES_CACHE
from .part import Part


class SqlRefusals(Part):
    """Backoff counts and refusal tallies in one unit of work (service.ports.Refusals)."""

    def strikes(self, name_key: str, source_key: str) -> dict[str, Strikes]:
        """The counts of a user name and of a source, by key (absent: none)."""
        generation = self._strikes_generation()
        if generation is None:
            return self._load_strikes(name_key, source_key)
        return STRIKES_CACHE.lookup(generation, (name_key, source_key),  # type: ignore[no-any-return]
                                    lambda: self._load_strikes(name_key, source_key))

    def _load_strikes(self, name_key: str, source_key: str) -> dict[str, Strikes]:
        return {row[0]: Strikes(row[1], row[2], row[3])
                for row in self._run("auth_strikes", {"name": name_key, "source": source_key})}

    def set_strikes(self, key: str, strikes: Strikes) -> None:
        s = t.auth_strikes.c
        values = {"failures": strikes.failures, "last_at": strikes.last_at,
                  "barred_until": strikes.barred_until}
        if not self.conn.execute(update(t.auth_strikes).where(s.key == key)
                                 .values(**values)).rowcount:
            self.conn.execute(t.auth_strikes.insert().values(key=key, **values))
        self._bump_generation(STRIKES)

    def clear_strikes(self, key: str) -> None:
        if self.conn.execute(delete(t.auth_strikes).where(t.auth_strikes.c.key == key)).rowcount:
            self._bump_generation(STRIKES)

    def stale_strikes(self, last_before: datetime, now: datetime) -> bool:
        """Are there counts nothing needs any more (no bar running, last failure old)?"""
        return self.conn.execute(select(t.auth_strikes.c.key).where(
            _stale(last_before, now)).limit(1)).first() is not None

    def forget_strikes(self, last_before: datetime, now: datetime) -> int:
        """Drop the counts nothing needs any more."""
        gone = int(self.conn.execute(delete(t.auth_strikes).where(
            _stale(last_before, now))).rowcount)
        if gone:
            self._bump_generation(STRIKES)
        return gone

    def tally(self, source: str, reason: str, started_at: datetime) -> Any:
        r = t.refusal_tallies.c
        return self.conn.execute(select(t.refusal_tallies).where(and_(
            r.source == source, r.reason == reason, r.started_at == started_at))).first()

    def insert_tally(self, *, source: str, reason: str, started_at: datetime, operation: str,
                     at: datetime, detail: str) -> None:
        self.conn.execute(t.refusal_tallies.insert().values(
            source=source, reason=reason, started_at=started_at, operation=operation,
            count=1, last_at=at, detail=detail))

    def update_tally(self, source: str, reason: str, started_at: datetime, *, count: int,
                     at: datetime, detail: str) -> None:
        r = t.refusal_tallies.c
        self.conn.execute(update(t.refusal_tallies).where(and_(
            r.source == source, r.reason == reason, r.started_at == started_at))
            .values(count=count, last_at=at, detail=detail))

    def due_tallies(self, started_before: datetime, limit: int) -> list[Any]:
        r = t.refusal_tallies.c
        return list(self.conn.execute(select(t.refusal_tallies)
                                      .where(r.started_at < started_before)
                                      .order_by(r.started_at, r.source, r.reason)
                                      .limit(limit)).all())

    def take_tally(self, source: str, reason: str, started_at: datetime) -> bool:
        """Remove a closed tally; False when another process took it first."""
        r = t.refusal_tallies.c
        return bool(self.conn.execute(delete(t.refusal_tallies).where(and_(
            r.source == source, r.reason == reason, r.started_at == started_at))).rowcount)


def _stale(last_before: datetime, now: datetime) -> Any:
    s = t.auth_strikes.c
    return and_(s.last_at < last_before, or_(s.barred_until.is_(None), s.barred_until <= now))
