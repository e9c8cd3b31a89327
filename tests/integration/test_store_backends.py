"""The store on both of its backends, SQLite and PostgreSQL (a private cluster of the test
run, a fresh database per test): a store made under schema 1, holding data, is migrated
to the latest schema with the same result on both; the replay cache admits a signed
message once when two nodes (two engines) remember it at the same moment; and the units
of work behave alike: one writer at a time, read-only ones refuse writes, and every one
reads a single snapshot."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select

from kms_ws.audit.chain import AuditChain, verify_store
from kms_ws.crypto.master_key import FileProvider, Keyring
from kms_ws.crypto.passwords import hash_password
from kms_ws.domain.errors import ValueTooLong
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind
from kms_ws.domain.records import WriteNeeded
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.migrations import ALL_RIGHTS_TEXT
from kms_ws.store.unit_of_work import SqlUnitOfWork
from kms_ws.store.updates import ATTRIBUTES

from ..support.postgres import PostgresCluster

NOW = datetime.now(UTC).replace(tzinfo=None).replace(microsecond=0)
REALM = "realm://example.com/old"
EP, PEP, TPL, KEY = (str(uuid.UUID(int=i)) for i in (1, 2, 3, 4))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


@pytest.fixture()
def store(url: str) -> Iterator[Database]:
    db = Database(url)
    yield db
    db.dispose()


def _schema_1_with_data(db: Database) -> None:
    """What release 0.1 left: a client and a PEP in a realm (endpoint_realms), a key
    template and a key, in the realm, with an attribute."""
    with db.transaction(write=True) as conn:
        migrations.current_version(conn)  # kms_meta
        migrations.MIGRATIONS[0](conn)
        conn.execute(t.meta.insert().values(name="schema_version", value="1"))
        for seq, (eid, kind, cred) in enumerate(((EP, "Client", "UsernamePassword"),
                                                 (PEP, "Pep", "AsymmetricKey")), 1):
            conn.execute(t.changes.insert().values(object_kind="endpoint", object_id=eid,
                                                   version=1, at=NOW))
            conn.execute(t.endpoints.insert().values(
                id=eid, kind=kind, name=f"old-{kind}", state="Active", credential_type=cred,
                is_admin=False, failed_auth=0, version=1, created_at=NOW, edit_datetime=NOW,
                change_seq=seq))
            conn.execute(t.endpoint_realms.insert().values(endpoint_id=eid, realm=REALM))
        conn.execute(t.templates.insert().values(
            id=TPL, friendly_name="old", cipher_type="2.16.840.1.101.3.4.1.46",
            length_bits=256, t_cached=0, version=2, edit_datetime=NOW))
        conn.execute(t.template_realms.insert().values(template_id=TPL, realm=REALM))
        conn.execute(t.changes.insert().values(object_kind="key", object_id=KEY, version=1,
                                               at=NOW))
        conn.execute(t.keys.insert().values(
            id=KEY, state="Active", cipher_type="2.16.840.1.101.3.4.1.46", length_bits=256,
            t_cached=0, source_kind="Client", source_id=EP, version=1, created_at=NOW,
            edit_datetime=NOW, change_seq=3))
        conn.execute(t.key_realms.insert().values(key_id=KEY, realm=REALM))
        conn.execute(t.key_attributes.insert().values(key_id=KEY, name="a", value="1"))


def test_a_schema_1_store_with_data_is_migrated_to_the_latest(store: Database) -> None:
    _schema_1_with_data(store)
    assert store.migrate() == migrations.LATEST
    assert store.migrate() == migrations.LATEST  # nothing left to do
    with store.transaction() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
        tables = set(inspect(conn).get_table_names())
        g = t.realm_grants.c
        grants = conn.execute(select(g.endpoint_id, g.realm, g.rights)
                              .order_by(g.endpoint_id)).all()
        realms = conn.execute(select(t.objects.c.kind, t.objects.c.name)).all()
        policy = conn.execute(select(t.endpoints.c.id, t.endpoints.c.authentication_policy)
                              .order_by(t.endpoints.c.id)).all()
        tpl_seq = conn.execute(select(t.templates.c.change_seq)).scalar_one()
        key = conn.execute(select(t.keys.c.realms, t.keys.c.facets)).one()
        indexes = {i["name"] for i in inspect(conn).get_indexes("keys")}
    assert tables == set(t.metadata.tables) - {"endpoint_realms"}
    assert grants == [(EP, REALM, ALL_RIGHTS_TEXT), (PEP, REALM, ALL_RIGHTS_TEXT)]
    assert realms == [("Realm", REALM)]
    assert policy == [(EP, None), (PEP, "AsymmetricKey")]
    assert tpl_seq == 4  # after the three changes of schema 1
    assert key == (REALM, ATTRIBUTES)
    assert "ix_keys_master_key_id" in indexes


def test_two_nodes_remembering_one_message_at_once_admit_it_once(url: str) -> None:
    """The replay cache's INSERT ... ON CONFLICT DO NOTHING, from two engines (two nodes)
    in two threads, eight times over: exactly one of each pair is the first."""
    first, second = Database(url), Database(url)
    first.migrate()
    try:
        for _ in range(8):
            digest = uuid.uuid4().hex * 2
            admitted: list[bool] = []
            start = threading.Barrier(2)

            def remember(db: Database, start: threading.Barrier = start,
                         admitted: list[bool] = admitted, digest: str = digest) -> None:
                start.wait()
                with db.unit_of_work(write=True, durable=False) as uow:
                    admitted.append(uow.replay.remember_message(
                        EP, digest, NOW + timedelta(minutes=5), NOW))

            threads = [threading.Thread(target=remember, args=(db,)) for db in (first, second)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert sorted(admitted) == [False, True]
            with first.transaction() as conn:
                c = t.seen_messages.c
                assert conn.execute(select(c.signer_id).where(c.digest == digest)).all() \
                    == [(EP,)]
    finally:
        first.dispose()
        second.dispose()


def _changes(conn) -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(select(func.count()).select_from(t.changes)).scalar_one())


def test_one_writer_at_a_time_across_engines(url: str) -> None:
    """A write unit of work takes the store's write lock up front: a second node's writer
    enters only once the first has committed, and its change number follows (commit order
    is change order, so a GetUpdateList token never skips a change committed later)."""
    first, second = Database(url), Database(url)
    first.migrate()
    events: list[str] = []
    inside, asked = threading.Event(), threading.Event()

    def later_writer() -> None:
        inside.wait(30)
        asked.set()
        with second.unit_of_work(write=True) as uow:
            events.append("second in")
            events.append(str(uow.changes.record_removal("Realm", KEY, 1, [], NOW)))

    try:
        th = threading.Thread(target=later_writer)
        th.start()
        with first.unit_of_work(write=True) as uow:
            seq = uow.changes.record_removal("Realm", KEY, 1, [], NOW)
            inside.set()
            asked.wait(30)
            time.sleep(0.5)  # room for the second writer to get in, were it let in
            events.append("first commits")
        th.join(30)
        assert events == ["first commits", "second in", str(seq + 1)]
    finally:
        first.dispose()
        second.dispose()


def test_a_write_in_a_read_only_unit_of_work_asks_for_a_writer(store: Database) -> None:
    store.migrate()
    with pytest.raises(WriteNeeded), store.unit_of_work(read_only=True) as uow:
        assert _changes(uow.conn) == 0
        uow.changes.record_removal("Realm", KEY, 1, [], NOW)
    with store.transaction() as conn:
        assert _changes(conn) == 0  # nothing was written


@pytest.mark.parametrize("read_only", [False, True])
def test_a_unit_of_work_reads_one_snapshot(url: str, read_only: bool) -> None:
    """What a transaction reads does not change under it when another node commits (a
    GetUpdateList page reads keys and then their facets as of one moment)."""
    reader, writer = Database(url), Database(url)
    reader.migrate()
    try:
        with reader.transaction(read_only=read_only) as conn:
            before = _changes(conn)
            with writer.unit_of_work(write=True) as other:
                other.changes.record_removal("Realm", KEY, 1, [], NOW)
            assert _changes(conn) == before
        with reader.transaction(read_only=read_only) as conn:
            assert _changes(conn) == before + 1
    finally:
        reader.dispose()
        writer.dispose()


def test_a_schema_11_store_takes_realm_names_of_512_characters(store: Database) -> None:
    """Schema 12: objects.name was VARCHAR(256), which PostgreSQL enforces (SQLite does
    not); a Realm's name is its RealmUri, up to 512 characters."""
    store.migrate()
    with store.transaction(write=True) as conn:  # back to what schema 11 left
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE objects ALTER COLUMN name TYPE VARCHAR(256)")
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="11"))
    assert store.migrate() == migrations.LATEST
    name = "realm://" + ".".join(["d" * 60] * 4) + "/" + "r" * 128
    assert len(name) > 256
    with store.transaction(write=True) as conn:
        conn.execute(t.objects.insert().values(
            kind="Realm", id=KEY, name=name, version=1, created_at=NOW, edit_datetime=NOW,
            change_seq=0, body="{}"))
    with store.transaction() as conn:
        assert conn.execute(select(t.objects.c.name)).scalar_one() == name


def _client(name: str) -> Endpoint:
    return Endpoint(endpoint_id=str(uuid.uuid4()), kind=EndpointKind.CLIENT, name=name,
                    state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
                    version=1, grants={}, password_hash=hash_password("a-long-password"))


def test_a_string_longer_than_its_column_is_refused_before_the_store(store: Database,
                                                                     tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12.8: PostgreSQL failed the transaction (a 500) and SQLite kept any length.
    Both now refuse with a precise fault, before the database; the bound is in characters;
    a lookup of a longer value finds nothing; an audit record is written truncated (and
    chained as stored: it verifies)."""
    store.migrate()
    keyring = _audited(store, tmp_path)
    for name in ("x" * 257, "é" * 300):
        with (
            pytest.raises(ValueTooLong, match="longer than the 256 kept for endpoints.name"),
            store.transaction(write=True) as conn,
        ):
            SqlUnitOfWork(conn).endpoints.insert_endpoint(_client(name), NOW)
    with store.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(_client("é" * 256), NOW)
        assert uow.endpoints.find_client("é" * 5000) is None
        uow.audit.insert_audit(at=NOW, actor_id=None, actor_name="u" * 5000, operation="GetKey",
                               event="AuthenticationFailed", result="Denied", message="m" * 9000)
    with store.transaction() as conn:
        assert conn.execute(select(t.endpoints.c.name)).scalars().all() == ["é" * 256]
        name, message = conn.execute(select(t.audit.c.actor_name, t.audit.c.message)).one()
        assert name == "u" * 256 and message == "m" * 9000  # Text columns keep it all
    verdict = verify_store(store, keyring)
    assert verdict.intact and verdict.records == 1, verdict.findings


def _audited(store: Database, tmp_path) -> Keyring:  # type: ignore[no-untyped-def]
    """Give a migrated store a master key (a file in tmp_path) and its units of work the
    audit chain's signer, as the service does: audit records are chained."""
    provider = FileProvider(tmp_path)
    current = provider.create()
    with store.unit_of_work(write=True) as uow:
        uow.sealed.set_meta("master_key_current", current)
    keyring = Keyring(provider, current)
    store.audit = AuditChain(keyring)
    return keyring


def test_postgresql_commits_of_non_durable_writes_do_not_wait_for_the_disk(
        postgres: PostgresCluster) -> None:
    """durable=False (SQLite's synchronous=NORMAL) is synchronous_commit off, for that
    transaction only."""
    db = Database(postgres.create_database())
    try:
        for durable, expected in ((False, "off"), (True, "on"), (False, "off")):
            with db.transaction(write=True, durable=durable) as conn:
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == expected
        with db.transaction() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        db.dispose()
