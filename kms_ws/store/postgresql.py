"""PostgreSQL units of work with SQLite's semantics, which the service is written for.

SQLite runs one write transaction at a time (BEGIN IMMEDIATE takes the write lock up
front) and gives every transaction one snapshot. PostgreSQL, left at its defaults, runs
writers concurrently and gives each statement of a READ COMMITTED transaction a snapshot
of its own. Across nodes that would break what the store promises:

* the change sequence: two writers take numbers 10 and 11 and 11 commits first; a
  GetUpdateList page then hands out token 11, and change 10, committed a moment later,
  is never listed to that client. Writers that take their numbers one at a time, in
  commit order, keep the sequence gap-free for readers;
* read-then-write decisions (a GetKey by data set that creates the data set's key, name
  checks, versions) made by two nodes at once.

So: a write unit of work takes one transaction-scoped advisory lock first (the same lock
on every node and worker: one writer at a time per database, like SQLite), and reads at
READ COMMITTED after it (everything committed before it is visible); a read-only unit of
work is REPEATABLE READ, READ ONLY (one snapshot; a write in it fails with SQLSTATE 25006,
which the caller turns into WriteNeeded and runs again as a writer, as SQLite's
query_only does); any other unit of work is REPEATABLE READ (one snapshot, as SQLite's
deferred transactions have). psycopg sends the isolation level and access mode with its
BEGIN: only the writer's lock costs a round trip. A write that need not be durable
(durable=False: SQLite's synchronous=NORMAL) commits with synchronous_commit off: it
survives a crash of kms-ws, and is lost only if the database server fails within a
fraction of a second.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

# pg_advisory_xact_lock key of the store's write lock (any fixed bigint; advisory locks
# are per database): "kms-ws w" in ASCII.
WRITE_LOCK = 0x6B6D732D77732077
READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction
DISK_FULL_SQLSTATE = "53100"  # disk_full


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        opts = conn.get_execution_options()
        write = opts.get("kms_write", False)
        read_only = opts.get("kms_read_only", False) and not write
        dbapi_conn: Any = conn.connection.dbapi_connection
        import psycopg  # noqa: PLC0415 - the optional [postgresql] extra; SQLite needs none
        level = (psycopg.IsolationLevel.READ_COMMITTED if write
                 else psycopg.IsolationLevel.REPEATABLE_READ)
        if dbapi_conn.isolation_level != level:  # sent with psycopg's BEGIN
            dbapi_conn.isolation_level = level
        if dbapi_conn.read_only != read_only:
            dbapi_conn.read_only = read_only
        if write:  # durable=False: the commit does not wait for the WAL flush
            durable = "on" if opts.get("kms_durable", True) else "off"
            dbapi_conn.execute("SELECT pg_advisory_xact_lock(%s), "
                               "set_config('synchronous_commit', %s, true)",
                               (WRITE_LOCK, durable))

    return engine


def read_only_violation(exc: BaseException) -> bool:
    """The error PostgreSQL raises for a write in a READ ONLY transaction."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == READ_ONLY_SQLSTATE
