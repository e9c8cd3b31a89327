"""The replay cache: signed messages seen, until they expire (WS-Security)."""

from __future__ import annotations

from datetime import datetime

from . import tables as t
from .part import Part


class SqlReplayCache(Part):
    """The replay cache of one unit of work (service.ports.ReplayCache)."""

    def remember_message(self, signer_id: str, digest: str, expires_at: datetime,
                         now: datetime) -> bool:
        """Record a signed message; False when it was seen before (a replay)."""
        added = self._write("insert_seen_message", {
            "signer_id": signer_id, "digest": digest, "expires_at": expires_at})
        if digest[:2] == "00":  # about one insert in 256 prunes what has expired
            self.conn.execute(t.seen_messages.delete().where(t.seen_messages.c.expires_at < now))
        return added == 1
