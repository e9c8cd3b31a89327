"""Schema 15 on a store made before it: the backoff counts, refusal tallies, the audit
count and the lockout time are added; a client Locked before (for ever, then) is locked
from the upgrade on, so its lockout runs out like any other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select

from kms_ws.domain.backoff import may_authenticate
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.unit_of_work import SqlUnitOfWork

LOCKED_ID = "00000000-0000-0000-0000-000000000001"


def test_a_schema_14_store_is_upgraded_and_its_lockouts_run_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    with db.transaction(write=True) as conn:  # back to what schema 14 left on disk
        for sql in ("DROP TABLE auth_strikes", "DROP TABLE refusal_tallies",
                    "ALTER TABLE audit DROP COLUMN count",
                    "ALTER TABLE endpoints DROP COLUMN locked_at"):
            conn.exec_driver_sql(sql)
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version")
                     .values(value="14"))
        conn.exec_driver_sql(
            "INSERT INTO endpoints (id, kind, name, state, credential_type, is_admin, "
            "failed_auth, version, created_at, edit_datetime, change_seq) VALUES "
            f"('{LOCKED_ID}', 'Client', 'old', 'Locked', 'UsernamePassword', 1, 10, 1, "
            "'2026-01-01', '2026-01-01', 0)")
    before = datetime.now(UTC).replace(tzinfo=None)
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        assert {"auth_strikes", "refusal_tallies"} <= set(inspect(conn).get_table_names())
        assert "count" in {c["name"] for c in inspect(conn).get_columns("audit")}
        locked_at = conn.execute(select(t.endpoints.c.locked_at)).scalar_one()
        ep = SqlUnitOfWork(conn).endpoints.get_endpoint(LOCKED_ID)
    assert ep is not None and locked_at is not None and locked_at >= before
    assert not may_authenticate(ep, locked_at + timedelta(seconds=899), 900)
    assert may_authenticate(ep, locked_at + timedelta(seconds=901), 900)
    db.dispose()
