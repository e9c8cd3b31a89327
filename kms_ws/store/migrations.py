"""Schema migrations. The store records its schema version in kms_meta; each migration
moves it one step and runs in one transaction. Never edit a released migration: add one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    func,
    inspect,
    literal,
    or_,
    select,
)

from ..domain.realms import format_rights, ladder_closure, parse_rights, realm_object_id
from . import tables as t
from .generations import ENDPOINT_TABLES, ENDPOINTS
from .updates import ATTRIBUTES, DATASETS, EXTENSIONS, join_realms

Migration = Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    """Release 0.1: endpoints, sessions, templates, keys, data-set bindings, audit."""
    t.metadata.create_all(conn, tables=[
        t.changes, t.endpoints, t.endpoint_realms, t.endpoint_capabilities,
        t.endpoint_attributes, t.sessions, t.templates, t.template_attributes,
        t.template_realms, t.keys, t.key_attributes, t.key_realms, t.dataset_bindings,
        t.audit,
    ])


def _v2(conn: Connection) -> None:
    """Realms with rights, administered objects and policies, associations, key use.

    Every realm an endpoint was in becomes a grant of all rights (what membership meant
    in 0.1), and every realm named anywhere becomes a Realm object."""
    t.metadata.create_all(conn, tables=[t.realm_grants, t.objects, t.object_realms,
                                        t.associations, t.key_use])
    conn.execute(t.realm_grants.insert().from_select(
        ["endpoint_id", "realm", "rights"],
        select(t.endpoint_realms.c.endpoint_id, t.endpoint_realms.c.realm,
               literal(ALL_RIGHTS_TEXT))))
    realms: set[str] = set()
    for table in (t.endpoint_realms, t.key_realms, t.template_realms):
        realms.update(conn.execute(select(table.c.realm).distinct()).scalars())
    now = datetime.now(UTC).replace(tzinfo=None)
    for realm in sorted(realms):
        realm_id = realm_object_id(realm)
        conn.execute(t.objects.insert().values(
            kind="Realm", id=realm_id, name=realm, state=None, version=1, created_at=now,
            edit_datetime=now, change_seq=0, body="{}"))
        conn.execute(t.object_realms.insert().values(kind="Realm", id=realm_id, realm=realm))
    t.endpoint_realms.drop(conn)


ALL_RIGHTS_TEXT = "Create,Delete,Edit,Read,Reference"


def _v3(conn: Connection) -> None:
    """Message security: registered certificates / HMAC secrets, the replay cache."""
    t.metadata.create_all(conn, tables=[t.endpoint_credentials, t.seen_messages])


def _v4(conn: Connection) -> None:
    """WS-Eventing subscriptions and pending UpdatePending notifications (issue 5)."""
    t.metadata.create_all(conn, tables=[t.subscriptions, t.pending_updates])


def _v5(conn: Connection) -> None:
    """Wrapping keys of clients and PEPs; an index for master-key rotation."""
    t.metadata.create_all(conn, tables=[t.wrapping_keys])
    conn.exec_driver_sql("CREATE INDEX ix_keys_master_key_id ON keys (master_key_id)")


def _v6(conn: Connection) -> None:
    """Vendor and application extensions of keys and key templates; KM servers."""
    t.metadata.create_all(conn, tables=[t.extensions, t.km_servers])


def _v7(conn: Connection) -> None:
    """The address each subscription came from (NotifyTo checks, issue 5). Subscriptions
    made before have none: their NotifyTo must then be in notify_to_networks."""
    # _v4 creates the table from today's definition (with the column) on a fresh store
    if "origin" not in {c["name"] for c in inspect(conn).get_columns("subscriptions")}:
        conn.exec_driver_sql("ALTER TABLE subscriptions ADD COLUMN origin VARCHAR(64)")


def _v8(conn: Connection) -> None:
    """A PEP's AUTHENTICATION_POLICY becomes its own attribute (issue 3). It was implied
    by the credential the PEP was registered with: a signed one asked for its proof."""
    if "authentication_policy" not in {c["name"] for c in inspect(conn).get_columns("endpoints")}:
        conn.exec_driver_sql("ALTER TABLE endpoints ADD COLUMN authentication_policy VARCHAR(32)")
    conn.exec_driver_sql(
        "UPDATE endpoints SET authentication_policy = CASE WHEN credential_type IN "
        "('AsymmetricKey', 'SymmetricKey') THEN credential_type ELSE 'None' END "
        "WHERE kind = 'Pep' AND authentication_policy IS NULL")


def _v9(conn: Connection) -> None:
    """SubscriptionEnd (issue 5): each subscription's wse:EndTo and the realms it was made
    under, since when delivery has been failing, and the SubscriptionEnd outbox; key
    templates take a place on the change sequence; indexes for GetUpdateList of custom
    types."""
    _add_columns(conn, "subscriptions", {"end_to": "VARCHAR(2048)", "realms": "TEXT"})
    _add_columns(conn, "pending_updates", {"failing_since": "TIMESTAMP"})
    t.metadata.create_all(conn, tables=[t.subscription_ends])
    # GetUpdateList of custom types pages objects by change_seq (on a fresh store _v2
    # already created it from today's definition)
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_objects_change_seq "
                         "ON objects (change_seq)")
    _add_columns(conn, "key_templates", {"change_seq": "INTEGER"})
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_key_templates_change_seq "
                         "ON key_templates (change_seq)")
    tp = t.templates.c
    now = datetime.now(UTC).replace(tzinfo=None)
    for tid, version in conn.execute(select(tp.id, tp.version).where(tp.change_seq.is_(None))
                                     .order_by(tp.edit_datetime, tp.id)).all():
        pk = conn.execute(t.changes.insert().values(
            object_kind="template", object_id=tid, version=version, at=now)).inserted_primary_key
        assert pk is not None  # an INSERT of one row
        seq = pk[0]
        conn.execute(t.templates.update().where(tp.id == tid).values(change_seq=seq))


def _v10(conn: Connection) -> None:
    """Each key's realms, and which facet tables hold rows of it, on its own row too
    (keys.realms and keys.facets: see tables.keys), filled in for every key stored
    before, in batches (a store of millions of keys is not held in memory at once)."""
    _add_columns(conn, "keys", {"realms": "TEXT", "facets": "INTEGER"})
    k = t.keys.c
    todo = select(k.id).where(or_(k.realms.is_(None), k.facets.is_(None))).order_by(k.id)
    after = ""
    while True:
        batch = list(conn.execute(todo.where(k.id > after).limit(5000)).scalars())
        if not batch:
            return
        realms: dict[str, list[str]] = {kid: [] for kid in batch}
        r = t.key_realms.c
        for kid, realm in conn.execute(select(r.key_id, r.realm).where(r.key_id.in_(batch))):
            realms[kid].append(realm)
        bits = dict.fromkeys(batch, 0)
        for bit, owner in ((ATTRIBUTES, t.key_attributes.c.key_id),
                           (DATASETS, t.dataset_bindings.c.key_id),
                           (EXTENSIONS, t.extensions.c.owner_id)):
            cond: ColumnElement[bool] = owner.in_(batch)
            if bit == EXTENSIONS:
                cond = and_(cond, t.extensions.c.owner_kind == "Key")
            for kid in conn.execute(select(owner).where(cond).distinct()).scalars():
                bits[kid] |= bit
        conn.execute(t.keys.update().where(k.id == bindparam("kid")).values(
            realms=bindparam("joined"), facets=bindparam("bits")),
            [{"kid": kid, "joined": join_realms(realms[kid]), "bits": bits[kid]}
             for kid in batch])
        after = batch[-1]


def _v11(conn: Connection) -> None:
    """Removals of objects of the custom update types (§6.12): GetUpdateList tells a
    client listing a type that an object it may have fetched was deleted. Objects deleted
    before this schema left no trace and are not listed."""
    t.metadata.create_all(conn, tables=[t.removals, t.removal_realms])


def _v12(conn: Connection) -> None:
    """objects.name holds 512 characters (a Realm's name is its RealmUri, which may be
    that long). PostgreSQL enforces the declared length and refused realm URIs longer than
    256 characters; SQLite enforces none, so there it has nothing to do."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE objects ALTER COLUMN name TYPE VARCHAR(512)")


def _v13(conn: Connection) -> None:
    """The endpoints generation (store.generations): a token that every change to an
    endpoint, its grants, capabilities, attributes, signing credential or wrapping keys
    replaces in the same transaction, by triggers (SQLite; other stores cache no
    endpoints)."""
    token = uuid.uuid4().hex  # (a store brought back to an older version re-runs this)
    if not conn.execute(t.meta.update().where(t.meta.c.name == ENDPOINTS)
                        .values(value=token)).rowcount:
        conn.execute(t.meta.insert().values(name=ENDPOINTS, value=token))
    generation_triggers(conn)


def _v14(conn: Connection) -> None:
    """The audit chain (tamper-evident audit, kms_ws/audit/chain.py) and the
    PushAuditMessage quota. The chain starts here: records already stored are older than
    it (started_after) and not covered; its key is made by the first record written after
    (the migration runs without the master key)."""
    _add_columns(conn, "audit", {"chain_seq": "INTEGER", "mac": "VARCHAR(64)"})
    conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ix_audit_chain_seq "
                         "ON audit (chain_seq)")
    t.metadata.create_all(conn, tables=[t.audit_chain, t.audit_quota])
    if conn.execute(select(t.audit_chain.c.name)).first() is not None:
        return  # a store brought back to an older version re-runs this: the chain goes on
    last = conn.execute(select(func.max(t.audit.c.id))).scalar_one()
    conn.execute(t.audit_chain.insert().values(
        name=t.AUDIT_CHAIN, started_after=int(last or 0),
        started_at=datetime.now(UTC).replace(tzinfo=None), seq=0))


def _v15(conn: Connection) -> None:
    """Failed authentications (issue 12): backoff counts per user name and source, the
    time a client was locked (its lockout runs out), refusal tallies and the count of an
    aggregated audit record. Clients locked before have no time: their lockout runs from
    this upgrade."""
    _add_columns(conn, "endpoints", {"locked_at": "TIMESTAMP"})
    _add_columns(conn, "audit", {"count": "INTEGER"})
    t.metadata.create_all(conn, tables=[t.auth_strikes, t.refusal_tallies])
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(t.endpoints.update().where(and_(t.endpoints.c.state == "Locked",
                                                 t.endpoints.c.locked_at.is_(None)))
                 .values(locked_at=now))


# What schema 15 and earlier stored as a subscription's delivery mode and a queued
# SubscriptionEnd's status: the WS-* URIs of the wire.
_EVENTING = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
_STORED_MODES = {f"{_EVENTING}/DeliveryModes/Push": "Push",
                 "http://schemas.dmtf.org/wbem/wsman/1/wsman/PushWithAck": "PushWithAck"}
_STORED_END_STATUSES = {f"{_EVENTING}/{name}": name for name in (
    "SourceCancelling", "DeliveryFailure", "SourceShuttingDown")}


def _v16(conn: Connection) -> None:
    """Subscriptions keep their delivery mode, and queued SubscriptionEnd messages their
    status, by name (service.ws_messages.DeliveryMode, service.subscription_end.EndStatus):
    the URIs are the wire's (kms_ws.wsman), not the store's."""
    for uri, name in _STORED_MODES.items():
        conn.execute(t.subscriptions.update().where(t.subscriptions.c.mode == uri)
                     .values(mode=name))
    for uri, name in _STORED_END_STATUSES.items():
        conn.execute(t.subscription_ends.update().where(t.subscription_ends.c.status == uri)
                     .values(status=name))


def _v17(conn: Connection) -> None:
    """Dates change a key's state everywhere (issue 15): keys.next_transition_at, the
    moment the deliverer records a date-caused transition on the change sequence. A key
    whose T_EXPIRED / T_DISABLED passed before this upgrade is due at once (announced
    once, so readers that saw it Active learn its state); others at their next date."""
    _add_columns(conn, "keys", {"next_transition_at": "TIMESTAMP"})
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_keys_next_transition_at "
                         "ON keys (next_transition_at)")
    k = t.keys.c
    rows = conn.execute(select(k.id, k.t_expired, k.t_disabled).where(and_(
        k.state.in_(("Active", "Expired")),
        or_(k.t_expired.is_not(None), k.t_disabled.is_not(None))))).all()
    for key_id, t_expired, t_disabled in rows:
        due = min(d for d in (t_expired, t_disabled) if d is not None)
        conn.execute(t.keys.update().where(k.id == key_id).values(next_transition_at=due))


def _v18(conn: Connection) -> None:
    """Lost visibility (§6.12) and bounded removals. Queued SubscriptionEnd messages are
    retried with UpdatePending's backoff (their attempts and next attempt time) instead
    of being sent once; those already queued are due at once. A removal records the
    realms an object stayed in (removal_realms.kept: their readers are not told), or the
    one reader it is for (removal_readers: an endpoint that lost the Read right); the
    removals stored before are removals from every realm they name."""
    _add_columns(conn, "subscription_ends", {"attempts": "INTEGER NOT NULL DEFAULT 0",
                                             "next_attempt_at": "TIMESTAMP"})
    _add_columns(conn, "removal_realms", {"kept": "BOOLEAN NOT NULL DEFAULT FALSE"})
    t.metadata.create_all(conn, tables=[t.removal_readers])


def _v19(conn: Connection) -> None:
    """Realm rights become a set (issue 15.2, §4.5 "create, edit, delete, read, reference"):
    until now a grant's top right implied every right below it (Create implied all of
    them). Each stored grant becomes the set it effectively meant, so nobody gains or
    loses an access by the upgrade (domain.realms.ladder_closure)."""
    g = t.realm_grants.c
    for text in list(conn.execute(select(g.rights).distinct()).scalars()):
        meant = format_rights(ladder_closure(parse_rights(text or "")))
        if meant != text:  # one UPDATE per distinct stored text, however many grants
            conn.execute(t.realm_grants.update().where(g.rights == text).values(rights=meant))


def _v20(conn: Connection) -> None:
    """CIM identity at registration (issue 15.13): the CIM PhysicalElement /
    SoftwareIdentity properties an endpoint presents, kept beside it. Endpoints registered
    before presented none; the EndpointTypeRule objects live in the objects table."""
    t.metadata.create_all(conn, tables=[t.endpoint_identity])


def _v21(conn: Connection) -> None:
    """Who registered each wrapping key (§4.5 "reference (use but not view)"): a key
    delivered to a Reference-only caller goes only under a PEP wrapping key registered by
    an administrator or by an endpoint holding Read on the key. Keys registered before
    have no known registrant: they carry no Reference-only delivery (fail closed) until an
    administrator registers the PEP's wrapping key again."""
    _add_columns(conn, "wrapping_keys", {
        "registered_by": "VARCHAR(36) REFERENCES endpoints (id) ON DELETE SET NULL",
        "registered_by_admin": "BOOLEAN NOT NULL DEFAULT FALSE"})


def generation_triggers(conn: Connection) -> None:
    """The endpoints generation's triggers, made where missing (SQLite). Run after every
    upgrade too: a later migration that rebuilds one of the tables drops its triggers,
    and the endpoints cache would silently stop seeing its changes."""
    if conn.dialect.name != "sqlite":
        return
    for table in ENDPOINT_TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_{op.lower()}_generation "
                f"AFTER {op} ON {table} "
                f"BEGIN UPDATE {t.meta.name} SET value = lower(hex(randomblob(16))) "
                f"WHERE name = '{ENDPOINTS}'; END")


def _add_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE ADD COLUMN for the columns a store lacks (an earlier migration creates
    the table from today's definition on a fresh store)."""
    have = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, sql_type in columns.items():
        if name not in have:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10, _v11,
                                  _v12, _v13, _v14, _v15, _v16, _v17, _v18, _v19,
                                  _v20, _v21)
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    t.meta.create(conn, checkfirst=True)
    row = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "schema_version")).first()
    return int(row[0]) if row else 0


def stored_version(conn: Connection) -> int:
    """The store's schema version, read without changing anything (0: none)."""
    if not inspect(conn).has_table(t.meta.name):
        return 0
    row = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "schema_version")).first()
    return int(row[0]) if row else 0


def upgrade(conn: Connection) -> int:
    """Apply every pending migration; returns the resulting version."""
    version = current_version(conn)
    if version > LATEST:
        raise RuntimeError(f"store schema {version} is newer than this kms-ws ({LATEST})")
    for number in range(version + 1, LATEST + 1):
        MIGRATIONS[number - 1](conn)
        if number == 1:
            conn.execute(t.meta.insert().values(name="schema_version", value="1"))
        else:
            conn.execute(t.meta.update().where(t.meta.c.name == "schema_version")
                         .values(value=str(number)))
    generation_triggers(conn)
    return LATEST
