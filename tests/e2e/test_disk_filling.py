"""Disk filling, against real servers: the PushAuditMessage quota (per client, shared by
every worker through the store), the free-space watermark (changes refused, reads go
on), a store that is really full (SQLite's SQLITE_FULL by max_page_count; PostgreSQL's
disk_full) and a log file that cannot be written (ENOSPC: /dev/full) — each a precise
fault, never a 500 — and a log file rotated under the running workers."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from kms_ws.client import KmsClient, KmsFault

from ..conftest import make_client
from ..support import db
from ..support.postgres import PostgresCluster
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e

QUOTA = {"push_audit_messages_per_minute": 30, "push_audit_bytes_per_minute": 4000}
STORAGE_FULL = ("wsa:EndpointUnavailable", "E_STORAGE_FULL")


def fault_of(call) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    with pytest.raises(KmsFault) as caught:
        call()
    return caught.value.subcode, caught.value.error_code


def until_full(call) -> int:  # type: ignore[no-untyped-def]
    """Repeat `call` (which returns True when it worked) until it gets the storage fault;
    how many times it worked. Any other outcome fails the test."""
    for done in range(3000):
        try:
            assert call()
        except KmsFault as fault:
            assert (fault.subcode, fault.error_code) == STORAGE_FULL, fault
            return done
    raise AssertionError("the store never filled")


def reference_client(admin: KmsClient, realm: str = "realm://localhost/default"
                     ) -> tuple[str, str, str]:
    """A client with only the Reference right: (id, name, password)."""
    name, password = f"ref-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    made = admin.admin_create("Client", {
        "Name": name, "RealmAssociations": {"RealmAssociation": [
            {"Realm": realm, "Right": ["Reference"]}]}}, password=password)
    return made["ClientId"], name, password


def stored_pushes(data_dir: Path, client_id: str) -> int:
    return db.count(data_dir, "audit", actor_id=client_id, operation="PushAuditMessage",
                    result="Reported")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("quota") / "data", security=QUOTA) as srv:
        yield srv


def test_a_call_beyond_the_quota_is_refused_whole(server: ServerProcess,
                                                  admin: KmsClient) -> None:
    client_id, name, password = reference_client(admin)
    with make_client(server.url, name, password, ValidatingPlugin()) as c:
        assert fault_of(lambda: c.push_audit_messages(
            [{"event": "Flood"}] * 31)) == ("wsman:QuotaLimit", "E_AUDIT_QUOTA_EXCEEDED")
        assert fault_of(lambda: c.push_audit_messages(
            [{"event": "Big", "message": "x" * 4001}])) == \
            ("wsman:QuotaLimit", "E_AUDIT_QUOTA_EXCEEDED")
        assert stored_pushes(server.data_dir, client_id) == 0  # nothing of them stored
        refusals = db.rows(server.data_dir, "SELECT result, message FROM audit WHERE "
                           "actor_id = ? AND event = 'E_AUDIT_QUOTA_EXCEEDED'", (client_id,))
        assert refusals and all(r == "Denied" for r, _ in refusals)
        assert "at most 30 messages" in refusals[0][1]


def test_the_quota_is_shared_by_every_worker_and_node_and_refusals_are_recorded_once(
        server: ServerProcess, admin: KmsClient) -> None:
    """Two nodes on one store (a second `kms-ws serve` on the same data directory), eight
    connections pushing 5 messages each at once, alternately to each node: 30 a minute go
    in, whichever process serves them. A quota minute that begins meanwhile would let more
    in: then the test tries again."""
    b = ServerProcess(server.data_dir, log_name="node-b.stderr")
    b.start()
    try:
        for _ in range(3):
            client_id, name, password = reference_client(admin)
            minute = datetime.now(UTC).replace(second=0, microsecond=0)

            def push(i: int, name: str = name, password: str = password) -> str:
                url = (server.url, b.url)[i % 2]
                with make_client(url, name, password, ValidatingPlugin()) as c:
                    try:
                        c.push_audit_messages([{"event": "Used", "message": "m"}] * 5)
                        return "stored"
                    except KmsFault as fault:
                        return f"{fault.subcode} {fault.error_code}"
            with ThreadPoolExecutor(max_workers=8) as pool:
                outcomes = list(pool.map(push, range(8)))
            late = []
            for url in (b.url, server.url):
                with make_client(url, name, password, ValidatingPlugin()) as c:
                    late.append(fault_of(lambda: c.push_audit_messages([{"event": "Late"}])))
            if datetime.now(UTC).replace(second=0, microsecond=0) == minute:
                break
    finally:
        assert b.stop() == 0, b.stderr_text()
    assert sorted(outcomes) == ["stored"] * 6 + ["wsman:QuotaLimit E_AUDIT_QUOTA_EXCEEDED"] * 2
    assert late == [("wsman:QuotaLimit", "E_AUDIT_QUOTA_EXCEEDED")] * 2
    assert stored_pushes(server.data_dir, client_id) == 30
    # four refusals in the minute: the first is a record, the others are counted
    assert db.count(server.data_dir, "audit", actor_id=client_id,
                    event="E_AUDIT_QUOTA_EXCEEDED") == 1
    assert db.rows(server.data_dir, "SELECT messages, refused FROM audit_quota WHERE "
                   "endpoint_id = ?", (client_id,)) == [(30, 4)]


class Served:
    """A test's server, which the test may restart with another configuration."""

    def __init__(self, srv: ServerProcess) -> None:
        self.srv = srv

    def restart_with(self, **config: object) -> ServerProcess:
        """Stop it (if running) and serve its data directory again with `config` added
        to its kms-ws.json."""
        if self.srv.proc is not None and self.srv.proc.poll() is None:
            assert self.srv.stop() == 0, self.srv.stderr_text()
        path = self.srv.data_dir / "kms-ws.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
        self.srv = ServerProcess(self.srv.data_dir, workers=1,
                                 log_name=f"serve-{uuid.uuid4().hex[:6]}.stderr")
        self.srv.start()
        return self.srv


@pytest.fixture()
def fresh(tmp_path: Path) -> Iterator[Served]:
    srv = ServerProcess(tmp_path / "data", workers=1)
    srv.bootstrap()
    srv.start()
    served = Served(srv)
    yield served
    assert served.srv.stop() == 0, served.srv.stderr_text()


def test_below_the_free_space_watermark_changes_are_refused_and_reads_go_on(fresh: Served) -> None:
    with KmsClient(fresh.srv.url, *ADMIN) as admin:
        key = admin.create_key(friendly_name="before-the-disk-filled")
        ref_id, name, password = reference_client(admin)
    # a reserve larger than any disk: the server is below its watermark from the start
    srv = fresh.restart_with(min_free_disk_mb=10**12)
    keys, delivered = db.count(srv.data_dir, "keys"), \
        db.count(srv.data_dir, "audit", event="KeyDelivered")
    v = ValidatingPlugin()
    with make_client(srv.url, *ADMIN, v) as admin, make_client(srv.url, name, password, v) as ref:
        assert fault_of(lambda: admin.create_key(friendly_name="no-room")) == STORAGE_FULL
        assert fault_of(lambda: ref.push_audit_messages([{"event": "x"}])) == STORAGE_FULL
        assert fault_of(lambda: admin.admin_create(
            "Realm", {"RealmId": "realm://example.com/full"})) == STORAGE_FULL
        assert db.count(srv.data_dir, "keys") == keys  # nothing changed
        # reads go on: a delivery (audited), random bytes, listings, sessions
        assert admin.get_key(key.key_id).value == key.value
        assert len(admin.get_random_bytes(16)) == 16
        assert any(k["KeyId"] == key.key_id for k in admin.admin_list("Key")[0])
        admin.login()
        assert admin.get_key(key.key_id).value == key.value
        admin.logout()
    assert db.count(srv.data_dir, "audit", event="KeyDelivered") == delivered + 2
    assert db.count(srv.data_dir, "audit", event="E_STORAGE_FULL", result="Failed") == 3
    log = (srv.data_dir / "kms-ws.log").read_text()
    assert "storage: free space on the server's storage" in log and "Traceback" not in log


def test_a_full_sqlite_store_refuses_with_the_fault_and_delivers_nothing_unaudited(
        fresh: Served) -> None:
    with KmsClient(fresh.srv.url, *ADMIN) as admin:
        key = admin.create_key(friendly_name="kept")
    assert fresh.srv.stop() == 0
    con = sqlite3.connect(fresh.srv.data_dir / "kms.db")
    pages, size = con.execute("PRAGMA page_count").fetchone()[0], \
        con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    # the database may grow by 24 pages more: SQLITE_FULL after some deliveries
    srv = fresh.restart_with(database_max_mb=(pages + 24) * size / 2**20)
    before = db.count(srv.data_dir, "audit", event="KeyDelivered")
    with make_client(srv.url, *ADMIN, ValidatingPlugin()) as admin:
        # deliveries until the store is full: each one made is audited; then the fault
        delivered = until_full(lambda: admin.get_key(key.key_id).value == key.value)
        assert delivered > 0
        assert db.count(srv.data_dir, "audit", event="KeyDelivered") == before + delivered
        until_full(lambda: admin.create_key(friendly_name="no-room").value is not None)
        assert len(admin.get_random_bytes(8)) == 8  # what writes nothing goes on
        # the refused deliveries delivered nothing, and nothing unaudited
        assert db.count(srv.data_dir, "audit", event="KeyDelivered") == before + delivered
    assert "Traceback" not in (srv.data_dir / "kms-ws.log").read_text()


def test_a_log_file_without_space_refuses_changes_not_reads(fresh: Served) -> None:
    """ENOSPC on every write of the log file (/dev/full): changes get the fault, key
    deliveries go on (audited in the store), one line on stderr says why, no traces."""
    with KmsClient(fresh.srv.url, *ADMIN) as admin:
        key = admin.create_key(friendly_name="logged")
    srv = fresh.restart_with(log_file="/dev/full")
    delivered = db.count(srv.data_dir, "audit", event="KeyDelivered")
    with make_client(srv.url, *ADMIN, ValidatingPlugin()) as admin:
        assert len(admin.get_random_bytes(8)) == 8
        assert fault_of(lambda: admin.create_key(friendly_name="unlogged")) == STORAGE_FULL
        assert admin.get_key(key.key_id).value == key.value
    assert db.count(srv.data_dir, "audit", event="KeyDelivered") == delivered + 1
    stderr = srv.stderr_text()
    assert "the log file /dev/full cannot be written (No space left on device)" in stderr
    assert "Traceback" not in stderr and "Logging error" not in stderr


def test_a_full_postgresql_store_refuses_with_the_fault(postgres: PostgresCluster,
                                                        tmp_path: Path) -> None:
    """PostgreSQL's own disk_full error (SQLSTATE 53100), raised for real by the database
    server on inserts into the key table, is the storage fault, not an internal error."""
    url = postgres.create_database()
    with (
        running_server(tmp_path / "data", config={"database_url": url}) as srv,
        make_client(srv.url, *ADMIN, ValidatingPlugin()) as admin,
    ):
        key = admin.create_key(friendly_name="before")
        with psycopg.connect(url.replace("+psycopg", "", 1), autocommit=True) as pg:
            pg.execute("CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'could not extend file' "
                       "USING ERRCODE = 'disk_full'; END $$")
            pg.execute("CREATE TRIGGER full_disk BEFORE INSERT ON keys "
                       "FOR EACH ROW EXECUTE FUNCTION disk_full()")
        assert fault_of(lambda: admin.create_key(friendly_name="no-room")) == STORAGE_FULL
        assert admin.get_key(key.key_id).value == key.value
        with psycopg.connect(url.replace("+psycopg", "", 1), autocommit=True) as pg:
            pg.execute("DROP TRIGGER full_disk ON keys")
        assert admin.create_key(friendly_name="room-again").value is not None


def test_the_log_file_is_rotated_under_the_running_workers(server: ServerProcess) -> None:
    """logrotate's `create` (the file moved away) and `copytruncate` (emptied in place):
    every worker writes to the file at the configured path afterwards, created 0600."""
    log = server.data_dir / "kms-ws.log"

    def requests() -> None:
        def one(_: int) -> None:
            with KmsClient(server.url, *ADMIN) as c:
                c.get_random_bytes(4)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(48)))

    requests()
    moved = log.with_name("kms-ws.log.1")
    os.rename(log, moved)
    size = moved.stat().st_size
    requests()
    assert moved.stat().st_size == size  # nobody writes to the moved file any more
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    lines = [x for x in log.read_text().splitlines() if "GetRandomBytes 200" in x]
    assert len(lines) >= 48 and len({x.split()[2] for x in lines}) == 2  # both workers
    with open(log, "r+b") as f:  # copytruncate
        f.truncate(0)
    requests()
    data = log.read_bytes()
    assert data and not data.startswith(b"\0")  # appended at the new end, no hole
    assert data.count(b"GetRandomBytes 200") >= 48
