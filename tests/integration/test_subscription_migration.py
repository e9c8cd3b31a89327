"""Schema 9 on a store made before it: the SubscriptionEnd columns and outbox are added,
subscriptions stored earlier keep working (no EndTo, no recorded realms), and existing
key templates are given their place on the change sequence. Schema 16: delivery modes
and SubscriptionEnd statuses stored by name, not by URI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect, select

from kms_ws.service.subscription_end import EndStatus
from kms_ws.service.ws_messages import DeliveryMode
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.unit_of_work import SqlUnitOfWork
from kms_ws.wsman.delivery import END_STATUSES


def test_a_schema_8_store_is_upgraded_with_its_subscriptions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.transaction(write=True) as conn:  # back to what schema 8 left on disk
        for sql in ("ALTER TABLE subscriptions DROP COLUMN end_to",
                    "ALTER TABLE subscriptions DROP COLUMN realms",
                    "ALTER TABLE pending_updates DROP COLUMN failing_since",
                    "DROP TABLE subscription_ends", "DROP INDEX ix_objects_change_seq",
                    "DROP INDEX ix_key_templates_change_seq",
                    "ALTER TABLE key_templates DROP COLUMN change_seq"):
            conn.exec_driver_sql(sql)
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="8"))
        conn.exec_driver_sql(
            "INSERT INTO endpoints (id, kind, name, state, credential_type, is_admin, "
            "failed_auth, version, created_at, edit_datetime, change_seq) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'Client', 'old', 'Active', "
            "'UsernamePassword', 0, 0, 1, '2026-01-01', '2026-01-01', 0)")
        conn.exec_driver_sql(
            "INSERT INTO key_templates (id, friendly_name, cipher_type, length_bits, t_cached, "
            "version, edit_datetime) VALUES ('00000000-0000-0000-0000-0000000000aa', 'old', "
            "'2.16.840.1.101.3.4.1.46', 256, 3600, 3, '2026-01-01')")
        conn.exec_driver_sql(
            "INSERT INTO subscriptions (id, endpoint_id, notify_to, mode, update_type, "
            "expires_at, created_at, origin) VALUES ('uuid:old', "
            "'00000000-0000-0000-0000-000000000001', 'http://127.0.0.1:9/x', 'm', "
            f"'AllKeys', '{(now + timedelta(hours=1)).isoformat(sep=' ')}', "
            f"'{now.isoformat(sep=' ')}', '127.0.0.1')")
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        cols = {c["name"] for c in inspect(conn).get_columns("subscriptions")}
        assert {"end_to", "realms"} <= cols
        assert "failing_since" in {c["name"] for c in inspect(conn).get_columns(
            "pending_updates")}
        assert "ix_objects_change_seq" in {i["name"] for i in inspect(conn).get_indexes(
            "objects")}
        uow = SqlUnitOfWork(conn)
        sub = uow.subscriptions.get_subscription("uuid:old")
        assert sub is not None and sub.end_to is None and sub.realms == ()
        assert uow.subscriptions.subscription_ends() == []
        seq = conn.execute(select(t.templates.c.change_seq)).scalar_one()
        assert seq is not None and seq <= uow.changes.high_water()  # numbered on upgrade
    db.dispose()


def test_schema_16_stores_delivery_modes_and_end_statuses_by_name(tmp_path: Path) -> None:
    """A store of schema 15 held the wire's URIs; after the upgrade the subscription's
    mode and the queued SubscriptionEnd's status are names, and the deliverer sends the
    same URI as before (kms_ws.wsman.delivery.END_STATUSES)."""
    eventing = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
    wsman_base = "http://schemas.dmtf.org/wbem/wsman/1/wsman"
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.transaction(write=True) as conn:
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="15"))
        conn.exec_driver_sql(
            "INSERT INTO endpoints (id, kind, name, state, credential_type, is_admin, "
            "failed_auth, version, created_at, edit_datetime, change_seq) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'Client', 'old', 'Active', "
            "'UsernamePassword', 0, 0, 1, '2026-01-01', '2026-01-01', 0)")
        for sid, mode in (("uuid:push", f"{eventing}/DeliveryModes/Push"),
                          ("uuid:ack", f"{wsman_base}/PushWithAck")):
            conn.execute(t.subscriptions.insert().values(
                id=sid, endpoint_id="00000000-0000-0000-0000-000000000001",
                notify_to="http://127.0.0.1:9/x", mode=mode, update_type="AllKeys",
                expires_at=now + timedelta(hours=1), created_at=now, origin="127.0.0.1"))
        for status in ("SourceCancelling", "DeliveryFailure"):
            conn.execute(t.subscription_ends.insert().values(
                subscription_id="uuid:gone", end_to="http://127.0.0.1:9/end",
                status=f"{eventing}/{status}", reason="r", at=now))
    assert db.migrate() == migrations.LATEST
    with db.unit_of_work() as uow:
        modes = {sid: uow.subscriptions.get_subscription(sid).mode  # type: ignore[union-attr]
                 for sid in ("uuid:push", "uuid:ack")}
        assert modes == {"uuid:push": DeliveryMode.PUSH.value,
                         "uuid:ack": DeliveryMode.PUSH_WITH_ACK.value}
        statuses = [e.status for e in uow.subscriptions.subscription_ends()]
        assert statuses == ["SourceCancelling", "DeliveryFailure"]
        assert [END_STATUSES[EndStatus(s)] for s in statuses] == [
            f"{eventing}/SourceCancelling", f"{eventing}/DeliveryFailure"]
    db.dispose()


def test_schema_18_keeps_queued_subscription_ends_and_makes_them_due(tmp_path: Path) -> None:
    """A SubscriptionEnd queued by schema 17 (sent once, never retried) is kept by the
    upgrade and due at once, with no attempt counted; a failed attempt then puts it off."""
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.transaction(write=True) as conn:  # back to what schema 17 left on disk
        for sql in ("ALTER TABLE subscription_ends DROP COLUMN attempts",
                    "ALTER TABLE subscription_ends DROP COLUMN next_attempt_at"):
            conn.exec_driver_sql(sql)
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="17"))
        conn.exec_driver_sql(
            "INSERT INTO subscription_ends (subscription_id, end_to, status, reason, at) "
            f"VALUES ('uuid:gone', 'http://127.0.0.1:9/end', 'SourceCancelling', 'r', "
            f"'{now.isoformat(sep=' ')}')")
    assert db.migrate() == migrations.LATEST
    with db.unit_of_work(write=True) as uow:
        [end] = uow.subscriptions.subscription_ends(now)
        assert (end.subscription_id, end.attempts, end.at) == ("uuid:gone", 0, now)
        uow.subscriptions.retry_subscription_end(end.end_id, 1, now + timedelta(seconds=5))
    with db.unit_of_work() as uow:
        assert uow.subscriptions.subscription_ends(now) == []  # not due yet
        [later] = uow.subscriptions.subscription_ends(now + timedelta(seconds=5))
        assert later.attempts == 1
    db.dispose()
