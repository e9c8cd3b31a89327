"""The tamper-evident audit chain.

Every audit record takes the next place in the store's one chain (1, 2, ...) and carries
    MAC_n = HMAC-SHA256(K, "kms-ws/audit-record/1" | n | MAC_(n-1) | content_n)
with MAC_0 = HMAC-SHA256(K, "kms-ws/audit-genesis/1" | started_after), content the
record's fields (store.audit_log.covered: CONTENT, then the later fields it sets) as
canonical JSON. The chain's head row holds the last place and MAC with
TAG = HMAC-SHA256(K, "kms-ws/audit-head/1" | started_after | n | MAC_n). K is 32 random
bytes sealed under the master key (AES-256-GCM, bound to the chain) and re-sealed by
master-key rotation like every sealed value, so records written under a master key since
destroyed still verify.

Without K nobody can edit, insert, delete, reorder or truncate records (or move the
chain's start) unnoticed: `verify` finds it. Whoever holds K — the master key and the
store — could write a whole new consistent chain; the head sent to syslog every
`audit_head_seconds` (the deliverer) is the anchor that catches that: `kms-ws audit verify
--anchor SEQ:MAC` checks the chain still holds that MAC at that place.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..crypto import sealing
from ..crypto.master_key import Keyring
from ..crypto.random import random_bytes
from ..domain.records import ChainHead
from ..store.audit_log import CONTENT, OPTIONAL_CONTENT, covered
from ..store.engine import Database
from ..store.tables import AUDIT_CHAIN
from .events import AuditEvent
from .syslog import SyslogSink

_RECORD = b"kms-ws/audit-record/1"
_GENESIS = b"kms-ws/audit-genesis/1"
_HEAD = b"kms-ws/audit-head/1"


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, b"".join(parts), "sha256")


def _utc(value: Any) -> Any:
    """Times as the store keeps them: naive UTC (an aware time would not come back)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def content(values: Sequence[Any]) -> bytes:
    """A record's CONTENT values, canonical: a JSON array, times in ISO 8601 with
    microseconds (the precision both stores keep)."""
    return _JSON.encode([v.isoformat(timespec="microseconds") if isinstance(v, datetime)
                         else v for v in values]).encode("utf-8")


def genesis(key: bytes, started_after: int) -> bytes:
    return _mac(key, _GENESIS, _u64(started_after))


def record_mac(key: bytes, seq: int, prev: bytes, values: Sequence[Any]) -> bytes:
    return _mac(key, _RECORD, _u64(seq), prev, content(values))


def head_tag(key: bytes, started_after: int, seq: int, mac: bytes) -> bytes:
    return _mac(key, _HEAD, _u64(started_after), _u64(seq), mac)


class AuditChain:
    """The store's AuditSigner (store.audit_log): makes the chain's key and links records,
    with the chain key opened through the process's keyring (remembered per master key
    sealing it: a rotation re-seals it, the key itself stays)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._keys: dict[str, bytes] = {}  # by the master key sealing it
        self._lock = threading.Lock()

    def new_key(self, master_key_id: str) -> bytes:
        return sealing.seal_with(self.keyring.aead_for(master_key_id),
                                 sealing.audit_key_aad(AUDIT_CHAIN), random_bytes(32))

    def key(self, head: ChainHead, sealed: Callable[[], bytes | None] | None = None) -> bytes:
        """The chain's key, opened with the master key its head names (the sealed key
        from the head, or read by `sealed`, when this process has not opened it yet)."""
        mk = head.master_key_id
        if mk is None:
            raise sealing.SealError("the audit chain has no key")
        with self._lock:
            found = self._keys.get(mk)
        if found is None:
            blob = head.sealed_key if head.sealed_key is not None else \
                sealed() if sealed is not None else None
            if blob is None:
                raise sealing.SealError("the audit chain's key is missing")
            found = sealing.unseal_with(self.keyring.aead_for(mk),
                                        sealing.audit_key_aad(AUDIT_CHAIN), bytes(blob),
                                        "the audit chain key")
            with self._lock:
                if len(self._keys) > 8:
                    self._keys.clear()
                self._keys[mk] = found
        return found

    def link(self, head: ChainHead, rows: list[dict[str, Any]],
             sealed: Callable[[], bytes | None] | None = None) -> ChainHead:
        """Give each row (a dict of CONTENT) its place and MAC; the new head."""
        key = self.key(head, sealed)
        prev = bytes.fromhex(head.mac) if head.mac else genesis(key, head.started_after)
        seq = head.seq
        for row in rows:
            for name in ("at", "reported_at"):
                row[name] = _utc(row.get(name))
            seq += 1
            prev = record_mac(key, seq, prev,
                              covered([row.get(c) for c in CONTENT + OPTIONAL_CONTENT]))
            row["chain_seq"], row["mac"] = seq, prev.hex()
        return ChainHead(head.started_after, head.master_key_id, seq, prev.hex(),
                         head_tag(key, head.started_after, seq, prev).hex())


# ---- verification ------------------------------------------------------------------------

@dataclass
class Verdict:
    records: int = 0  # chained records read
    first_seq: int | None = None
    last_seq: int = 0
    pre_chain: int = 0  # records older than the chain (not covered)
    findings: list[str] = field(default_factory=list)
    head: ChainHead | None = None

    @property
    def intact(self) -> bool:
        return not self.findings

    def line(self) -> str:
        """One line: the verdict, and where the chain first breaks."""
        if self.findings:
            more = len(self.findings) - 1
            return ("audit chain BROKEN: " + self.findings[0]
                    + (f" (and {more} more finding{'s' if more > 1 else ''}; --all lists them)"
                       if more else ""))
        head = self.head
        assert head is not None
        if not self.records:
            return (f"audit chain intact: no record since the chain began "
                    f"{head.started_at:%Y-%m-%d %H:%M:%S}Z"
                    + (f"; {self.pre_chain} older record(s) are not covered"
                       if self.pre_chain else ""))
        return (f"audit chain intact: records {self.first_seq} to {self.last_seq} since "
                f"{head.started_at:%Y-%m-%d %H:%M:%S}Z"
                + (f"; {self.pre_chain} older record(s) are not covered" if self.pre_chain
                   else "") + f"; head {head.seq}:{head.mac}")


def _hex(text: str | None) -> bytes | None:
    try:
        return bytes.fromhex(text) if text is not None else None
    except ValueError:
        return None


def verify(key: bytes | None, head: ChainHead | None, rows: Iterable[Sequence[Any]],
           pre_chain: int = 0, stray: Sequence[int] = (),
           anchors: dict[int, str] | None = None) -> Verdict:
    """Check the chain: rows are (id, chain_seq, mac, *CONTENT, *OPTIONAL_CONTENT) in
    chain order; stray,
    ids of records newer than the chain's start without a place in it; anchors, heads
    seen elsewhere (syslog): place -> MAC (hex)."""
    v = Verdict(pre_chain=pre_chain, head=head)
    anchors = dict(anchors or {})
    if head is None:
        v.findings.append("the audit chain's head row is missing (deleted)")
        return v
    if key is None:  # no record was ever chained (the first one makes the key)
        if head.seq or head.mac or head.tag or stray or any(True for _ in rows):
            v.findings.append("the audit chain's key is missing from its head row: the head "
                              "row was altered")
        return v
    for row_id in stray:
        v.findings.append(f"row id {row_id} carries no place in the chain: it was inserted "
                          "outside kms-ws")
    expected, prev, last_id, last_seq = 1, genesis(key, head.started_after), \
        head.started_after, 0
    for row in rows:
        row_id, seq, stored_hex = row[0], row[1], row[2]
        stored = _hex(stored_hex)
        v.records += 1
        v.first_seq = seq if v.first_seq is None else v.first_seq
        linked = True
        if seq < expected:
            v.findings.append(f"record {seq} (row id {row_id}) appears more than once")
            continue
        if seq > expected:
            v.findings.append(f"record{'s' if seq - expected > 1 else ''} {expected}"
                              + (f" to {seq - 1}" if seq - expected > 1 else "")
                              + f" {'are' if seq - expected > 1 else 'is'} missing (deleted)")
            linked = False  # the link to the missing record cannot be checked
        if row_id <= last_id:
            v.findings.append(f"record {seq} (row id {row_id}) is stored before "
                              + (f"record {last_seq} (row id {last_id})" if last_seq
                                 else "the chain's start")
                              + ": records were reordered")
        if linked and (stored is None or not hmac.compare_digest(
                record_mac(key, seq, prev, covered(row[3:])), stored)):
            v.findings.append(f"record {seq} (row id {row_id}) does not match its MAC: it "
                              "was altered (or a record before it was replaced)")
        got = anchors.pop(seq, None)
        if got is not None and (stored_hex or "").lower() != got.lower():
            v.findings.append(f"record {seq} differs from the head {seq}:{got[:16]}... seen "
                              "in syslog: the audit table was rewritten")
        prev, expected, last_id, last_seq = stored or b"", seq + 1, row_id, seq
    v.last_seq = last_seq
    tag = _hex(head.tag)
    # (the key is made with the first record: a keyed head names at least one)
    if not head.seq or tag is None or _hex(head.mac) is None or not hmac.compare_digest(
            head_tag(key, head.started_after, head.seq, _hex(head.mac) or b""), tag):
        v.findings.append("the chain's head does not match its tag: the head row was altered")
    elif head.seq > last_seq:
        n = head.seq - last_seq
        v.findings.append(f"the last {n} record{'s' if n > 1 else ''} ({last_seq + 1}"
                          + (f" to {head.seq}" if n > 1 else "") + ") "
                          + ("are" if n > 1 else "is") + " missing: the table was truncated")
    elif head.seq < last_seq:
        v.findings.append(f"records {head.seq + 1} to {last_seq} lie beyond the chain's head: "
                          "they were added outside kms-ws")
    elif head.seq and (head.mac or "") != (prev.hex() if prev else ""):
        v.findings.append(f"record {last_seq} is not the one the chain's head names: it was "
                          "replaced")
    for seq, mac in sorted(anchors.items()):
        v.findings.append(f"the head {seq}:{mac[:16]}... seen in syslog is not in the chain "
                          f"(it ends at {last_seq}): records were removed or the audit table "
                          "was rewritten")
    return v


def verify_store(db: Database, keyring: Keyring, anchors: dict[int, str] | None = None
                 ) -> Verdict:
    """Verify the store's audit chain in one read-only snapshot (safe while the server
    runs). Raises SealError when the chain's key does not open under its master key."""
    with db.unit_of_work(read_only=True) as uow:
        head = uow.audit.audit_head()
        if head is None:
            return verify(None, None, ())
        pre_chain, stray = uow.audit.unchained_audit(head.started_after)
        key = AuditChain(keyring).key(head) if head.master_key_id is not None else None
        return verify(key, head, uow.audit.audit_chain_rows(), pre_chain, stray, anchors)


class HeadToSyslog:
    """The chain's head, sent to syslog by the deliverer (one per server) every
    `every_seconds` when it moved since the last one sent (first after one interval), as
    an RFC 5424 message whose text is `head=SEQ:MAC`: the anchor an administrator gives
    `kms-ws audit verify --anchor`. Several nodes on one store send the same chain's head."""

    def __init__(self, db: Database, sink: SyslogSink, every_seconds: float) -> None:
        self.db, self.sink, self.every = db, sink, every_seconds
        self.due = time.monotonic() + every_seconds
        self.sent: tuple[int, str | None] | None = None

    def tick(self) -> bool:
        """Send the head if due and moved; True when one was sent."""
        if time.monotonic() < self.due:
            return False
        self.due = time.monotonic() + self.every
        with self.db.unit_of_work(read_only=True) as uow:
            head = uow.audit.audit_head()
        if head is None or not head.seq or (head.seq, head.mac) == self.sent:
            return False
        self.sink.send(AuditEvent(datetime.now(UTC).replace(tzinfo=None), "AuditChain",
                                  "ChainHead", "Reported",
                                  message=f"head={head.seq}:{head.mac}"))
        self.sent = (head.seq, head.mac)
        return True
