"""The tamper-evident audit chain, against real servers on SQLite and on PostgreSQL.

A server writes a chain (keys created and delivered, pushed audit messages, a refusal)
and sends its head to a syslog listener the test runs; then each kind of tampering — an
edited row, a deleted row, two rows swapped, the tail truncated, the whole table
rewritten (without the key, and with it: caught only by the head seen in syslog) — is
done to a copy of the store, and `kms-ws audit verify` must exit 1 with one line naming
what it found. An untouched chain verifies (exit 0), also after a master-key rotation
that destroyed the master key the chain's key was sealed under, and across two nodes
writing to one PostgreSQL store at once."""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from kms_ws.app import open_keyring
from kms_ws.audit.chain import AuditChain, genesis, head_tag, record_mac
from kms_ws.client import KmsClient, KmsFault
from kms_ws.config import load
from kms_ws.store.audit_log import CONTENT
from kms_ws.store.engine import Database

from ..support import db
from ..support.postgres import PostgresCluster
from ..support.server import ADMIN, ServerProcess, kms, running_server
from ..support.validating import ValidatingPlugin
from .test_audit_syslog import RFC5424

pytestmark = pytest.mark.e2e

HEAD_EVERY = {"audit_head_seconds": 0.2}  # the deliverer's interval, for the test's pace


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def syslog_config(sock: socket.socket) -> dict[str, object]:
    return {"audit_syslog": f"udp://127.0.0.1:{sock.getsockname()[1]}", **HEAD_EVERY}


def head_from_syslog(sock: socket.socket, data_dir: Path) -> str:
    """The `SEQ:MAC` of the chain's current head, as the deliverer sent it to syslog."""
    (seq, mac), = db.rows(data_dir, "SELECT seq, mac FROM audit_chain")
    for _ in range(1000):  # audit events arrive there too
        m = RFC5424.match(sock.recvfrom(65536)[0])
        assert m is not None
        if m.group(5) == b"AuditChain" and m.group(7) == f"head={seq}:{mac}".encode():
            return f"{seq}:{mac}"
    raise AssertionError("the chain's head never reached syslog")


def verify(data_dir: Path, *options: str) -> tuple[int, list[str]]:
    done = kms("audit", "verify", "--data-dir", str(data_dir), *options, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def write_a_chain(url: str) -> None:
    """Audit records of several kinds: a creation, deliveries, pushed messages, a
    refusal, an administrative change."""
    v = ValidatingPlugin()
    with KmsClient(url, *ADMIN, plugins=[v]) as admin:
        key = admin.create_key(friendly_name=f"chained-{uuid.uuid4().hex[:6]}")
        for _ in range(4):
            admin.get_key(key.key_id)
        admin.push_audit_messages([{"event": "TapeMounted", "key_id": key.key_id,
                                    "message": f"drive {i}"} for i in range(3)])
        with pytest.raises(KmsFault):
            admin.get_key(str(uuid.uuid4()))
        admin.admin_create("Realm", {"RealmId": f"realm://example.com/{uuid.uuid4().hex[:8]}"})
        admin.get_key(key.key_id)


@dataclass
class Chained:
    data_dir: Path  # the stopped server's data directory
    anchor: str  # the head the deliverer sent to syslog: SEQ:MAC
    records: int
    clone: Callable[[Path], Path]  # a copy of the store, to tamper with


def _pg_admin(url: str) -> tuple[str, str]:
    """(a libpq DSN of the cluster's maintenance database, the store's database name)."""
    base, name = url.replace("+psycopg", "", 1).rsplit("/", 1)
    return f"{base}/postgres", name


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def chained(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chained]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    config = syslog_config(sock)
    if request.param == "postgresql":
        postgres: PostgresCluster = request.getfixturevalue("postgres")
        config["database_url"] = postgres.create_database()
    data = tmp_path_factory.mktemp(f"chain-{request.param}") / "data"
    try:
        with running_server(data, config=config) as srv:
            write_a_chain(srv.url)
            anchor = head_from_syslog(sock, data)
    finally:
        sock.close()
    records = int(anchor.split(":")[0])

    def clone(into: Path) -> Path:
        shutil.copytree(data, into)
        url = db.database_url(data)
        if url:  # PostgreSQL: a copy of the database, named in the copy's kms-ws.json
            maintenance, name = _pg_admin(url)
            copy = f"kms_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(maintenance, autocommit=True) as pg:
                pg.execute(f"CREATE DATABASE {copy} TEMPLATE {name}")
            doc = json.loads((into / "kms-ws.json").read_text())
            doc["database_url"] = url.rsplit("/", 1)[0] + "/" + copy
            (into / "kms-ws.json").write_text(json.dumps(doc))
        return into

    yield Chained(data, anchor, records, clone)


def test_an_untouched_chain_verifies_with_its_syslog_head(chained: Chained) -> None:
    code, lines = verify(chained.data_dir, "--anchor", chained.anchor)
    assert code == 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"audit chain intact: records 1 to {chained.records} since ")
    assert lines[0].endswith(f"; head {chained.anchor}")
    assert db.count(chained.data_dir, "audit") == chained.records  # every record chained


def _row_id(data_dir: Path, seq: int) -> int:
    (row_id,), = db.rows(data_dir, "SELECT id FROM audit WHERE chain_seq = ?", (seq,))
    return int(row_id)


def _edit(d: Path, n: int) -> str:
    db.execute(d, "UPDATE audit SET message = 'nothing happened' WHERE chain_seq = 3")
    return f"audit chain BROKEN: record 3 (row id {_row_id(d, 3)}) does not match its MAC: " \
        "it was altered"


def _delete(d: Path, n: int) -> str:
    db.execute(d, "DELETE FROM audit WHERE chain_seq = 4")
    return "audit chain BROKEN: record 4 is missing (deleted)"


def _swap(d: Path, n: int) -> str:
    """Two records exchange their places in the table (each keeps its MAC)."""
    five, six = _row_id(d, 5), _row_id(d, 6)
    db.execute(d, f"UPDATE audit SET id = -1 WHERE id = {five}",
               f"UPDATE audit SET id = {five} WHERE id = {six}",
               f"UPDATE audit SET id = {six} WHERE id = -1")
    return f"audit chain BROKEN: record 6 (row id {five}) is stored before record 5 " \
        f"(row id {six}): records were reordered"


def _truncate(d: Path, n: int) -> str:
    db.execute(d, f"DELETE FROM audit WHERE chain_seq > {n - 3}")
    return f"audit chain BROKEN: the last 3 records ({n - 2} to {n}) are missing: the " \
        "table was truncated"


def _rewrite(d: Path, n: int) -> str:
    """Every record rewritten by someone without the chain's key."""
    db.execute(d, "UPDATE audit SET actor_name = 'someone else', "
                  "operation = 'GetRandomBytes', event = 'GetRandomBytes'")
    return f"audit chain BROKEN: record 1 (row id {_row_id(d, 1)}) does not match its MAC: " \
        f"it was altered (or a record before it was replaced) (and {n - 1} more findings"


@pytest.mark.parametrize("tamper", [_edit, _delete, _swap, _truncate, _rewrite],
                         ids=["edit", "delete", "swap", "truncate", "rewrite"])
def test_tampering_is_found(chained: Chained, tmp_path: Path,
                            tamper: Callable[[Path, int], str]) -> None:
    copy = chained.clone(tmp_path / "copy")  # (a copy verifies: the test below)
    expected = tamper(copy, chained.records)
    code, lines = verify(copy)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(expected), lines
    code, every = verify(copy, "--all")  # every finding, the first one first
    assert code == 1 and every[0] == lines[0], every
    assert all(line.startswith("  also: ") for line in every[1:]), every
    if tamper is _rewrite:  # every record was altered
        assert len(every) == chained.records, every


def test_a_consistent_rewrite_with_the_key_is_caught_by_the_syslog_head(
        chained: Chained, tmp_path: Path) -> None:
    """Someone holding the master key and the store writes a new, self-consistent chain:
    only the head sent off the machine tells."""
    copy = chained.clone(tmp_path / "copy")
    _rewrite_with_the_key(copy)
    code, lines = verify(copy)
    assert code == 0, lines  # the chain alone cannot tell
    code, lines = verify(copy, "--anchor", chained.anchor)
    seq = chained.anchor.split(":")[0]
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"audit chain BROKEN: record {seq} differs from the head "
                               f"{seq}:{chained.anchor.split(':')[1][:16]}... seen in syslog: "
                               "the audit table was rewritten"), lines
    # an older copy put back in place (records removed, the chain consistent again)
    db.execute(copy, f"DELETE FROM audit WHERE chain_seq > {int(seq) - 2}")
    _rewrite_with_the_key(copy)
    code, lines = verify(copy, "--anchor", chained.anchor)
    assert code == 1 and "seen in syslog is not in the chain" in lines[0], lines


def _rewrite_with_the_key(data_dir: Path) -> None:
    """As an attacker with the data directory would: open the chain's key with the
    master key and re-link every record (the actor's name changed), head included."""
    cfg = load(data_dir)
    store = Database(cfg.db_url)
    try:
        with store.unit_of_work(write=True) as uow:
            head = uow.audit.audit_head()
            assert head is not None and head.sealed_key is not None
            key = AuditChain(open_keyring(cfg, store)).key(head)
            rows = [dict(r._mapping) for r in uow.audit.audit_chain_rows()]
            prev = None
            for row in rows:
                row["actor_name"] = "someone else"
                prev = record_mac(key, row["chain_seq"], prev or genesis(key, head.started_after),
                                  [row[c] for c in CONTENT])
                uow.conn.exec_driver_sql("UPDATE audit SET actor_name = 'someone else', mac = "
                                         f"'{prev.hex()}' WHERE id = {row['id']}")
            assert prev is not None
            last = rows[-1]["chain_seq"]
            uow.conn.exec_driver_sql(
                f"UPDATE audit_chain SET seq = {last}, mac = '{prev.hex()}', tag = "
                f"'{head_tag(key, head.started_after, last, prev).hex()}'")
    finally:
        store.dispose()


def test_the_chain_verifies_after_a_master_key_rotation(tmp_path: Path) -> None:
    """Rotation destroys the master key the chain's key was sealed under; the records
    written before it still verify, and the chain goes on under the new one."""
    with running_server(tmp_path / "data") as srv:
        write_a_chain(srv.url)
        before = set((srv.data_dir).glob("master*.key"))
        done = kms("master-key", "rotate", "--data-dir", str(srv.data_dir))
        assert "done:" in done.stdout
        after = set((srv.data_dir).glob("master*.key"))
        assert len(after) == 1 and not after & before  # the old master key is gone
        write_a_chain(srv.url)
        code, lines = verify(srv.data_dir)  # while the server runs
    assert code == 0 and lines[0].startswith("audit chain intact: records 1 to "), lines
    (current,), = db.rows(srv.data_dir, "SELECT value FROM kms_meta WHERE name = ?",
                          ("master_key_current",))
    assert db.rows(srv.data_dir, "SELECT master_key_id FROM audit_chain") == [(current,)]
    code, lines = verify(srv.data_dir)
    assert code == 0, lines


def test_two_nodes_write_one_chain_on_postgresql(postgres: PostgresCluster,
                                                  tmp_path: Path) -> None:
    """Two nodes (each its own data directory, one database) audit at once: their
    records form one chain, which either node's data directory verifies."""
    config = {"database_url": postgres.create_database()}
    with running_server(tmp_path / "node-a", config=config) as a:
        (tmp_path / "node-b").mkdir(mode=0o700)
        for name in ("master.key", "server-signing.key", "server-signing.pem"):
            shutil.copy2(a.data_dir / name, tmp_path / "node-b" / name)
        b = ServerProcess(tmp_path / "node-b", config=config)
        b.start()
        try:
            with KmsClient(a.url, *ADMIN) as admin:
                key = admin.create_key(friendly_name="two-nodes").key_id

            def deliveries(url: str) -> int:
                with KmsClient(url, *ADMIN) as c:
                    for i in range(15):
                        c.get_key(key)
                        c.push_audit_messages([{"event": "Used", "message": str(i)}])
                return 30
            with ThreadPoolExecutor(max_workers=4) as pool:
                written = sum(pool.map(deliveries, [a.url, b.url, a.url, b.url]))
            code, lines = verify(b.data_dir)  # while both serve
        finally:
            assert b.stop() == 0, b.stderr_text()
    assert code == 0, lines
    total = db.count(a.data_dir, "audit")
    assert total >= written + 1
    assert lines[0].startswith(f"audit chain intact: records 1 to {total} since "), lines
    code, lines = verify(a.data_dir)
    assert code == 0, lines


def test_records_older_than_the_chain_are_reported_not_covered(tmp_path: Path) -> None:
    """A store upgraded from schema 13 with audit records: the chain starts at the
    migration; the older records are counted as not covered, a record slipped in
    afterwards without a place in the chain is found."""
    data = tmp_path / "data"
    with running_server(data) as srv:
        write_a_chain(srv.url)
    # back to what schema 13 left: no chain, records without places
    db.execute(data, "DROP TABLE audit_chain", "DROP TABLE audit_quota",
               "DROP INDEX ix_audit_chain_seq",
               "UPDATE audit SET chain_seq = NULL, mac = NULL",
               "UPDATE kms_meta SET value = '13' WHERE name = 'schema_version'")
    old = db.count(data, "audit")
    code, lines = verify(data)
    assert code == 2 and lines == []  # not migrated yet: nothing to verify
    srv = ServerProcess(data)
    srv.start()  # migrates: the chain starts after the old records
    try:
        write_a_chain(srv.url)
    finally:
        assert srv.stop() == 0, srv.stderr_text()
    code, lines = verify(data)
    assert code == 0 and f"; {old} older record(s) are not covered" in lines[0], lines
    db.execute(data, "INSERT INTO audit (at, operation, event, result) VALUES "
                     "('2026-01-01 00:00:00.000000', 'GetKey', 'KeyDelivered', 'Success')")
    code, lines = verify(data)
    assert code == 1 and lines[0].startswith("audit chain BROKEN: row id "), lines
    assert lines[0].endswith("carries no place in the chain: it was inserted outside kms-ws")


def test_verify_refuses_what_it_cannot_check(tmp_path: Path) -> None:
    missing = kms("audit", "verify", "--data-dir", str(tmp_path / "none"), check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("kms-ws: no data directory ")
    assert not (tmp_path / "none" / "kms.db").exists()  # and made none
    bad = kms("audit", "verify", "--data-dir", str(tmp_path), "--anchor", "12:xyz",
              check=False)
    assert bad.returncode == 2 and "expected SEQ:MAC" in bad.stderr
    assert "Traceback" not in bad.stderr + missing.stderr
