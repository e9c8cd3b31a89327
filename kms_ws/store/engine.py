"""Engine creation and the unit of work.

SQLite: WAL journal, synchronous=FULL (a commit survives power loss), foreign keys on,
a busy timeout, and BEGIN IMMEDIATE for write transactions so two worker processes never
deadlock on a lock upgrade. PostgreSQL: the same semantics by other means, in
store/postgresql.py (one writer at a time, one snapshot per transaction).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from ..domain.errors import StorageFull, ValueTooLong
from ..domain.records import WriteNeeded
from . import migrations, postgresql
from .audit_log import AuditSigner
from .unit_of_work import SqlUnitOfWork
from .urls import sqlite_url as sqlite_url  # where it lived: tests and tools import it here

BUSY_TIMEOUT_MS = 15000


def _begin_immediate(dbapi_conn: Any, info: dict[str, Any]) -> None:
    """Take SQLite's write lock, retrying every ~0.1-2 ms: SQLite's own busy handler
    sleeps 1, 2, 5, 10 ... ms, which leaves the other worker idle after short writes.
    The connection's busy timeout is 0 from here on (`info` notes it): once the write
    lock is held (WAL), nothing in the transaction waits on SQLite's busy handler (the
    commit's checkpoint is a passive one), so it stays 0 for the connection's next
    write transaction and is set back only before a transaction of another kind."""
    _busy_timeout(dbapi_conn, info, 0)
    delay, deadline = 0.0001, time.monotonic() + 15
    while True:
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def _busy_timeout(dbapi_conn: Any, info: dict[str, Any], ms: int) -> None:
    """Set the connection's busy timeout where it differs (a round trip saved per
    transaction)."""
    if info.get("busy_timeout", BUSY_TIMEOUT_MS) != ms:
        dbapi_conn.execute(f"PRAGMA busy_timeout={ms}")
        info["busy_timeout"] = ms


SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def restrict_sqlite_files(url: str) -> None:
    """The database holds sealed keys, credential hashes and the audit trail: its files
    are the owner's alone (0600). A new database file is created 0600 under umask 077
    (SQLite gives its -wal/-shm the mode of the database file); existing ones, made by an
    older kms-ws or a lax umask, are narrowed at every start."""
    path = sqlite_path(url)
    if path is None:
        return
    old = os.umask(0o077)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    finally:
        os.umask(old)
    for suffix in SQLITE_SUFFIXES:
        with suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def make_engine(url: str, query_only: bool = False, max_bytes: int | None = None) -> Engine:
    """query_only: an engine for read-only units of work, whose SQLite connections refuse
    every write (PRAGMA query_only, set once per connection: switching it per transaction
    makes SQLite prepare its statements again). max_bytes: SQLite's database file may not
    grow beyond it (PRAGMA max_page_count; a write past it fails as a full disk does)."""
    if url.startswith("postgresql"):
        return postgresql.make_engine(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    # One pool per process (engines are built after the fork): connections, their
    # pragmas and the WAL persist across requests.
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # per write transaction: see _on_begin
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _record.info["busy_timeout"] = BUSY_TIMEOUT_MS
        cur.execute("PRAGMA secure_delete=ON")
        if query_only:
            cur.execute("PRAGMA query_only=ON")
        if max_bytes is not None:
            page = cur.execute("PRAGMA page_size").fetchone()[0]
            cur.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // int(page))}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        opts = conn.get_execution_options()
        info = conn.connection.info
        dbapi_conn: Any = conn.connection.dbapi_connection  # sqlite3's, with execute()
        if not opts.get("kms_write", False):
            _busy_timeout(dbapi_conn, info, BUSY_TIMEOUT_MS)  # a deferred write waits
            dbapi_conn.execute("BEGIN")
            return
        # FULL: the commit is on disk before we answer (keys, policies, credentials).
        # NORMAL: survives a crash of the process, not of the machine; the next FULL
        # commit syncs it (delivery audit and use tracking of GetKey).
        level = "FULL" if opts.get("kms_durable", True) else "NORMAL"
        if info.get("synchronous") != level:
            dbapi_conn.execute(f"PRAGMA synchronous={level}")
            info["synchronous"] = level
        _begin_immediate(dbapi_conn, info)

    return engine


SQLITE_FULL = 13


def _full(exc: BaseException) -> StorageFull | None:
    """The database could not grow — SQLite's SQLITE_FULL (disk full, or max_page_count),
    PostgreSQL's disk_full (SQLSTATE 53100) — as the storage fault."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL \
            or getattr(orig, "sqlstate", None) == postgresql.DISK_FULL_SQLSTATE:
        return StorageFull("the database is full: changes are refused until space is "
                           "freed")
    return None


class Database:
    """Owns the engine; hands out transactions. Built per process (after fork).

    `audit`: the process's audit signer (kms_ws.audit.chain.AuditChain), handed to every
    unit of work (execution option kms_audit): audit records are chained in the
    transaction that writes them (store.audit_log); without it nothing can be audited.
    max_bytes: see make_engine."""

    def __init__(self, url: str, max_bytes: int | None = None) -> None:
        self.url = url
        self.audit: AuditSigner | None = None
        restrict_sqlite_files(url)
        self.engine = make_engine(url, max_bytes=max_bytes)
        self.read_engine = make_engine(url, query_only=True) if url.startswith("sqlite") \
            else self.engine
        self._local = threading.local()  # per thread: its open connection to each engine

    def migrate(self) -> int:
        with self.transaction(write=True) as conn:
            return migrations.upgrade(conn)

    @contextmanager
    def transaction(self, write: bool = False, durable: bool = True,
                    read_only: bool = False) -> Iterator[Connection]:
        """A unit of work. write: takes the write lock up front. durable=False: a write
        whose loss in a power failure (not a process crash) is acceptable. read_only: any
        write raises WriteNeeded (SQLite and PostgreSQL; elsewhere the unit of work is an
        ordinary one). PostgreSQL: see store/postgresql.py."""
        read_only = read_only and not write
        conn, own = self._connection(self.read_engine if read_only else self.engine)
        try:
            opts = conn.get_execution_options()
            if (opts.get("kms_write"), opts.get("kms_durable"), opts.get("kms_read_only"),
                    opts.get("kms_audit")) != (write, durable, read_only, self.audit):
                # (setting them costs more than comparing)
                conn.execution_options(kms_write=write, kms_durable=durable,
                                       kms_read_only=read_only, kms_audit=self.audit)
            with conn.begin():
                yield conn
        except (OperationalError, sqlite3.OperationalError) as exc:
            # SQLAlchemy wraps the driver's error; prepared statements raise it as is
            if read_only and "readonly database" in str(getattr(exc, "orig", exc)):
                raise WriteNeeded() from None
            full = _full(exc)
            if full is not None:
                raise full from None
            raise
        except Exception as exc:  # noqa: BLE001 - PostgreSQL's, raw or wrapped
            if read_only and postgresql.read_only_violation(exc):
                raise WriteNeeded() from None
            if isinstance(getattr(exc, "orig", None), ValueTooLong):
                raise exc.orig from None  # type: ignore[attr-defined]  # bounds.py's fault
            full = _full(exc)
            if full is not None:
                raise full from None
            raise
        finally:
            if own:
                conn.close()

    @contextmanager
    def unit_of_work(self, write: bool = False, durable: bool = True,
                     read_only: bool = False) -> Iterator[SqlUnitOfWork]:
        """A unit of work with its repositories (service.ports.Store): see transaction."""
        with self.transaction(write=write, durable=durable, read_only=read_only) as conn:
            yield SqlUnitOfWork(conn)

    def _connection(self, engine: Engine) -> tuple[Connection, bool]:
        """The thread's open connection to `engine` (kept between units of work: taking
        one from the pool and resetting it costs more than a short query), or a
        connection of its own (True) when the thread's is inside a unit of work."""
        kept: dict[int, Connection] = self._local.__dict__.setdefault("kept", {})
        conn = kept.get(id(engine))
        if conn is None or conn.closed or conn.invalidated:
            conn = kept[id(engine)] = engine.connect()
        if conn.in_transaction():
            return engine.connect(), True
        return conn, False

    def dispose(self) -> None:
        for conn in self._local.__dict__.pop("kept", {}).values():
            conn.close()
        self.engine.dispose()
        self.read_engine.dispose()
