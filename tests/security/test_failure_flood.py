"""Issue 12.7 (first part): a flood of refused unauthenticated requests does not fill the
disk. Each used to cost a synced audit row and an audit log line (5 KB user names: ~10
MB/s). Now the failures from one source are aggregated: per source and reason and per
interval, one record at once (the first failure) and one when the interval closes,
carrying the count and a bounded sample of the names tried — never a password.

In process (real store, crypto and XML; the test moves the clock), and against a real
server whose background process closes the intervals."""

from __future__ import annotations

import base64
import http.client
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kms_ws.audit.chain import verify_store
from kms_ws.service import refusals
from kms_ws.store import tables as t
from kms_ws.xmlns import KMS

from ..support.db import rows as db_rows
from ..support.inprocess import InProcessServer, random_bytes_request, session_request
from ..support.schema_check import validate_envelope
from ..support.server import running_server
from ..support.validating import CT

SOURCE = "203.0.113.7"
SECRET = "flood-password-Zq8"  # must never reach the audit trail or the log


@pytest.fixture()
def kms(tmp_path: Path) -> Iterator[InProcessServer]:
    srv = InProcessServer(tmp_path / "data")
    srv.add_client("alice", "alice-password-1")
    yield srv
    srv.close()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture()
def audit_log() -> Iterator[Lines]:
    lines, logger = Lines(), logging.getLogger("kms_ws.audit")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def _refusals(kms: InProcessServer) -> list[dict]:  # type: ignore[type-arg]
    with kms.db.transaction() as conn:
        rows = conn.execute(select(t.audit).where(t.audit.c.result == "Denied")
                            .order_by(t.audit.c.id)).mappings().all()
    return [dict(r) for r in rows]


def _count(row: dict) -> int:  # type: ignore[type-arg]
    return row.get("count") or 1


def _flood(kms: InProcessServer, n: int) -> None:
    """n refusals from one address, of four kinds: long unknown user names, wrong
    passwords, no credential, unknown session tokens."""
    kinds = [lambda i: kms.random_bytes((f"u{i}-" + "x" * 5000, SECRET), SOURCE),
             lambda i: kms.random_bytes(("alice", SECRET), SOURCE),
             lambda i: kms.random_bytes(None, SOURCE),
             lambda i: kms.post(session_request(secrets.token_urlsafe(32)), addr=SOURCE)]
    for i in range(n):
        assert not kinds[i % 4](i).ok


def test_a_flood_from_one_source_is_a_bounded_number_of_records(
        kms: InProcessServer, audit_log: Lines) -> None:
    n = 200
    _flood(kms, n)
    rows = _refusals(kms)
    # the first failure of each reason is recorded at once; the rest is being counted
    assert 1 <= len(rows) <= 4 and all(_count(r) == 1 for r in rows)
    assert len([line for line in audit_log.lines if '"Denied"' in line]) == len(rows)


def test_the_counts_sum_to_the_failures_when_the_interval_closes(
        kms: InProcessServer, audit_log: Lines) -> None:
    n = 200
    _flood(kms, n)
    kms.clock.now += timedelta(minutes=1)
    refusals.close_due(kms.db, kms.config.security, kms.clock())
    rows = _refusals(kms)
    assert len(rows) <= 8 and sum(_count(r) for r in rows) == n
    assert len([line for line in audit_log.lines if '"Denied"' in line]) == len(rows)
    text = " ".join(str(v) for r in rows for v in r.values()) + " ".join(audit_log.lines)
    assert SECRET not in text
    assert all(len(r["message"] or "") <= 2000 and len(r["actor_name"] or "") <= 256
               for r in rows)
    closing = [r for r in rows if _count(r) > 1]
    assert closing and all(SOURCE in r["message"] for r in closing)
    # nothing is left to close, and closing again records nothing twice
    assert refusals.close_due(kms.db, kms.config.security, kms.clock()) == 0
    assert len(_refusals(kms)) == len(rows)


def test_each_interval_starts_with_a_record_at_once(kms: InProcessServer) -> None:
    for minute in range(3):
        for _ in range(5):
            kms.random_bytes(None, SOURCE)
        assert len(_refusals(kms)) == 1 + 2 * minute  # the first of this interval, at once
        kms.clock.now += timedelta(minutes=1)
        refusals.close_due(kms.db, kms.config.security, kms.clock())
    assert sum(_count(r) for r in _refusals(kms)) == 15


def test_a_flood_against_a_real_server_is_counted_not_written_per_request(
        tmp_path: Path) -> None:
    """Unauthenticated requests with 5 KB user names, on one kept-alive connection, to
    a server whose background process closes each one-second interval."""
    n = 60
    with running_server(tmp_path / "data",
                        security={"failure_audit_interval_seconds": 1}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        for _ in range(n):
            name = f"{uuid.uuid4().hex}-" + "y" * 5000
            token = base64.b64encode(f"{name}:{SECRET}".encode()).decode()
            conn.request("POST", "/wsman", body=random_bytes_request(),
                         headers={"Content-Type": CT, "Authorization": f"Basic {token}"})
            env = validate_envelope(conn.getresponse().read())
            assert env.findtext(f".//{{{KMS}}}ErrorCode") == "E_INVALID_CREDENTIALS"
        conn.close()

        def rows() -> list[dict]:  # type: ignore[type-arg]
            return [{"at": str(at)[:19], "count": count, "message": message}
                    for at, count, message in db_rows(srv.data_dir, (
                        "SELECT at, count, message FROM audit "
                        "WHERE event = 'AuthenticationFailed'"))]

        assert _eventually(lambda: sum(_count(r) for r in rows()) == n)
        found = rows()
        log = (srv.data_dir / "kms-ws.log").read_text()
    # per one-second interval: the first failure at once, the rest in one closing record
    firsts = [r for r in found if "first refusal" in r["message"]]
    assert len({r["at"] for r in firsts}) == len(firsts)
    assert len(found) - len(firsts) <= len(firsts) < n
    assert log.count("AuthenticationFailed") == len(found)
    assert SECRET not in log and "y" * 300 not in log


def _eventually(check, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_an_aggregated_count_is_covered_by_the_audit_chain(kms: InProcessServer) -> None:
    """The count an aggregated record carries is part of what its chain MAC covers: a
    count changed in the store (to hide how many guesses were made) is found."""
    _flood(kms, 40)
    kms.clock.now += timedelta(minutes=1)
    refusals.close_due(kms.db, kms.config.security, kms.clock())
    assert verify_store(kms.db, kms.service.master).intact
    with kms.db.transaction(write=True) as conn:
        changed = conn.execute(update(t.audit).where(t.audit.c.count > 1)
                               .values(count=1)).rowcount
    verdict = verify_store(kms.db, kms.service.master)
    assert changed and not verdict.intact and "does not match its MAC" in verdict.findings[0]
