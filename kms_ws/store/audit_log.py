"""The audit table: records are appended to the store's one audit
chain, in the transaction that makes them, and never changed afterwards; and each
client's PushAuditMessage quota.

Each record carries its place in the chain and a MAC over that place, the previous
record's MAC and its content, computed by the unit of work's `AuditSigner` (the
Database's `audit`, kms_ws/audit/chain.py: the store holds no key). The chain's head — the
last place, its MAC and a tag over both — is updated with every record, so records
removed from the end are noticed too. One chain per database: audit records are written
only in write units of work, which run one at a time per database (SQLite's write lock,
PostgreSQL's advisory lock: store/postgresql.py), across every worker and node."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    and_,
    func,
    select,
)

from ..domain.model import (
    AuditMessage,
    Endpoint,
)
from ..domain.records import ChainHead, QuotaUse
from . import tables as t
from .bounds import fit
from .part import MASTER_KEY_CURRENT, Part

# What a record's MAC covers, in this order (besides its place and the previous MAC).
CONTENT = ("at", "actor_id", "actor_name", "operation", "event", "result", "key_id",
           "pep_id", "reported_at", "message")
# Covered too where set, after CONTENT as one {name: value} object: fields later than the
# chain, so a record without them has the MAC it had before they existed. count (schema
# 15): the events an aggregated record stands for (service.refusals).
OPTIONAL_CONTENT = ("count",)


def covered(values: Sequence[Any]) -> list[Any]:
    """What a record's MAC covers, from its CONTENT values followed by its
    OPTIONAL_CONTENT values."""
    base, extra = list(values[:len(CONTENT)]), values[len(CONTENT):]
    optional = {name: v for name, v in zip(OPTIONAL_CONTENT, extra, strict=False) if v is not None}
    return base + [optional] if optional else base




class AuditSigner(Protocol):
    """Makes the chain's key and links records into it (kms_ws.audit.chain.AuditChain).
    `sealed` reads the chain's sealed key, for a signer that has not opened it yet."""

    def new_key(self, master_key_id: str) -> bytes: ...

    def link(self, head: ChainHead, rows: list[dict[str, Any]],
             sealed: Callable[[], bytes | None]) -> ChainHead: ...


class AuditChainMissing(RuntimeError):
    """A unit of work without an audit signer, or not a write one, tried to audit."""


class AuditRecords:
    """The two ways an audit record is made — one event of the server, or the messages
    a client pushed — built once, on the `append_audit` of whichever store has it (the
    SQL store here, the in-memory fake of the handler tests)."""

    def append_audit(self, records: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def insert_audit(self, *, at: datetime, actor_id: str | None, actor_name: str | None,
                     operation: str, event: str, result: str, key_id: str | None = None,
                     pep_id: str | None = None, reported_at: datetime | None = None,
                     message: str | None = None) -> None:
        self.append_audit([{
            "at": at, "actor_id": actor_id, "actor_name": actor_name, "operation": operation,
            "event": event, "result": result, "key_id": key_id, "pep_id": pep_id,
            "reported_at": reported_at, "message": message}])

    def insert_audit_messages(self, actor: Endpoint, msgs: Sequence[AuditMessage],
                              now: datetime) -> None:
        self.append_audit([
            {"at": now, "actor_id": actor.endpoint_id, "actor_name": actor.name,
             "operation": "PushAuditMessage", "event": m.event, "result": "Reported",
             "key_id": m.key_id, "pep_id": m.pep_id, "reported_at": m.time,
             "message": m.message} for m in msgs])


class SqlAudit(AuditRecords, Part):
    """The audit trail and the PushAuditMessage quotas in one unit of work
    (service.ports.AuditTrail)."""

    def audit_query(self, *, key_id: str | None = None, actor_id: str | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
        a = t.audit.c
        q = select(t.audit)
        for col, value in ((a.key_id, key_id), (a.actor_id, actor_id)):
            if value is not None:
                q = q.where(col == value)
        if since is not None:
            q = q.where(a.at >= since)
        if until is not None:
            q = q.where(a.at < until)
        return [dict(r) for r in self.conn.execute(
            q.order_by(a.at, a.id).limit(limit)).mappings().all()]

    def append_audit(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records (dicts of CONTENT) to the chain, in this unit of work. An audit
        record is never refused: its strings are cut to their columns (store.bounds)
        before its MAC is made, so the MAC covers what is stored."""
        if not records:
            return
        rows = [fit(t.audit, r) for r in records]
        opts = self.conn.get_execution_options()
        signer: AuditSigner | None = opts.get("kms_audit")
        if signer is None:
            raise AuditChainMissing("audit records are chained: this unit of work's "
                                    "Database has no audit signer")
        if not opts.get("kms_write"):
            raise AuditChainMissing("audit records are written in write units of work only "
                                    "(one writer of the chain at a time)")
        found = self._run("audit_link", {})  # (the hot path reads no more than it needs)
        if not found:
            raise AuditChainMissing("the store has no audit chain (schema 14)")
        head = ChainHead(*found[0])
        if head.master_key_id is None:  # the chain's first record: its key is made now
            master = self._meta(MASTER_KEY_CURRENT)
            if master is None:
                raise AuditChainMissing("the store records no master key")
            head = head._replace(master_key_id=master, sealed_key=signer.new_key(master))
            self.conn.execute(t.audit_chain.update().where(
                t.audit_chain.c.name == t.AUDIT_CHAIN).values(
                sealed_key=head.sealed_key, master_key_id=master))
        new = signer.link(head, rows, self._sealed_audit_key)
        moved = {"new_seq": new.seq, "new_mac": new.mac, "new_tag": new.tag}
        if len(rows) == 1 and self.conn.dialect.name == "postgresql":
            self._write("insert_audit_linked", {**rows[0], **moved})  # one round trip
            return
        if len(rows) == 1:
            self._write("insert_audit", rows[0])
        else:
            self.conn.execute(t.audit.insert(), rows)
        self._write("update_audit_head", moved)

    def _sealed_audit_key(self) -> bytes | None:
        c = t.audit_chain.c
        return self.conn.execute(select(c.sealed_key).where(
            c.name == t.AUDIT_CHAIN)).scalar_one_or_none()

    def audit_head(self) -> ChainHead | None:
        """The chain's head row, whole."""
        c = t.audit_chain.c
        row = self.conn.execute(select(c.started_after, c.master_key_id, c.seq, c.mac, c.tag,
                                       c.sealed_key, c.started_at).where(
            c.name == t.AUDIT_CHAIN)).first()
        return ChainHead(*row) if row else None

    def audit_chain_rows(self, batch: int = 2000) -> Iterator[Any]:
        """Chained records in chain order: (id, chain_seq, mac, *CONTENT,
        *OPTIONAL_CONTENT), streamed."""
        a = t.audit.c
        q = select(a.id, a.chain_seq, a.mac, *(a[c] for c in CONTENT + OPTIONAL_CONTENT)).where(
            a.chain_seq.is_not(None)).order_by(a.chain_seq).execution_options(yield_per=batch)
        yield from self.conn.execute(q)

    def unchained_audit(self, started_after: int) -> tuple[int, list[int]]:
        """(how many records are older than the chain, ids of records newer than its
        start that carry no place in it — up to 10)."""
        a = t.audit.c
        older = self.conn.execute(select(func.count()).select_from(t.audit).where(and_(
            a.chain_seq.is_(None), a.id <= started_after))).scalar_one()
        stray = list(self.conn.execute(select(a.id).where(and_(
            a.chain_seq.is_(None), a.id > started_after)).order_by(a.id).limit(10)).scalars())
        return int(older), stray

    def audit_records(self, key_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(t.audit)
        if key_id is not None:
            q = q.where(t.audit.c.key_id == key_id)
        rows = self.conn.execute(q.order_by(t.audit.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def audit_quota(self, endpoint_id: str) -> QuotaUse | None:
        q = t.audit_quota.c
        row = self.conn.execute(select(q.window_start, q.messages, q.bytes, q.refused).where(
            q.endpoint_id == endpoint_id)).first()
        return QuotaUse(*row) if row else None

    def set_audit_quota(self, endpoint_id: str, use: QuotaUse) -> None:
        q = t.audit_quota.c
        values = dict(window_start=use.window_start, messages=use.messages, bytes=use.bytes,
                      refused=use.refused)
        if not self.conn.execute(t.audit_quota.update().where(
                q.endpoint_id == endpoint_id).values(**values)).rowcount:
            self.conn.execute(t.audit_quota.insert().values(endpoint_id=endpoint_id, **values))
