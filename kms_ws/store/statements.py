"""The hot-path statements, built once per process (SQLAlchemy Core, so portable) and
run as Prepared statements on the unit of work's driver connection (store.prepared).
Multi-valued facets of an object (realms, attributes, capabilities, data sets) come back
in ONE portable UNION ALL query, tagged by kind."""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    String,
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from ..domain.model import EndpointKind
from . import tables as t
from .generations import ENDPOINTS, OBJECTS, STRIKES
from .prepared import Prepared
from .updates import KEY_COLUMNS


@cache
def prepared(name: str, dialect: Dialect, column_keys: tuple[str, ...] | None) -> Prepared:
    return Prepared(_stmt(name, dialect.name), dialect, column_keys)


def _stmt(name: str, dialect: str):  # type: ignore[no-untyped-def]
    e, k = t.endpoints.c, t.keys.c
    if name == "insert_seen_message":  # a conflict (a replay) inserts nothing
        return _insert_once(t.seen_messages, dialect)
    if name == "insert_key_use":  # the first use is kept
        return _insert_once(t.key_use, dialect)
    if name == "generations":
        m = t.meta.c
        return select(m.name, m.value).where(or_(m.name == OBJECTS, m.name == ENDPOINTS,
                                                 m.name == STRIKES))
    if name in ("credential_of_endpoint", "credential_by_cert"):
        c = t.endpoint_credentials.c
        return select(c.endpoint_id, c.credential_type, c.certificate, c.cert_sha256,
                      c.sealed_secret, c.master_key_id).where(
            c.endpoint_id == bindparam("id") if name == "credential_of_endpoint"
            else c.cert_sha256 == bindparam("sha"))
    if name == "wrapping_keys":
        w = t.wrapping_keys.c
        return (select(w.endpoint_id, w.key_id, w.kind, w.created_at, w.ordinal, w.not_after,
                       w.registered_by, w.registered_by_admin)
                .where(w.endpoint_id == bindparam("endpoint_id")).order_by(w.ordinal.desc()))
    if name == "endpoint_by_id":
        return select(t.endpoints).where(e.id == bindparam("id"))
    if name == "client_by_name":  # any user name may be looked up; a longer one finds none
        return select(t.endpoints).where(and_(e.kind == EndpointKind.CLIENT.value,
                                              e.name == bindparam("name", type_=String())))
    if name == "insert_audit":
        return t.audit.insert()
    if name == "audit_link":
        h = t.audit_chain.c
        return select(h.started_after, h.master_key_id, h.seq, h.mac).where(
            h.name == t.AUDIT_CHAIN)
    if name in ("update_audit_head", "insert_audit_linked"):
        h = t.audit_chain.c
        head = t.audit_chain.update().where(h.name == literal_column(f"'{t.AUDIT_CHAIN}'")
                                            ).values(seq=bindparam("new_seq"),
                                                     mac=bindparam("new_mac"),
                                                     tag=bindparam("new_tag"))
        # PostgreSQL: the record and the chain's new head in one statement (one round trip)
        return head if name == "update_audit_head" else t.audit.insert().add_cte(head.cte())
    if name == "auth_strikes":
        s = t.auth_strikes.c
        return select(s.key, s.failures, s.last_at, s.barred_until).where(
            or_(s.key == bindparam("name"), s.key == bindparam("source")))
    if name == "meta":
        return select(t.meta.c.value).where(t.meta.c.name == bindparam("name"))
    if name == "key_by_id":
        return select(*KEY_COLUMNS, k.sealed_value, k.master_key_id).where(
            k.id == bindparam("id"))
    if name == "endpoint_facets":
        r, c, a = t.realm_grants.c, t.endpoint_capabilities.c, t.endpoint_attributes.c
        return union_all(
            select(literal("r"), r.realm, r.rights, null()).where(r.endpoint_id == bindparam("id")),
            select(literal("c"), c.name, null(), null()).where(c.endpoint_id == bindparam("id")),
            select(literal("a"), a.name, a.value, null()).where(a.endpoint_id == bindparam("id")),
            select(literal("k"), null(), null(), null())
            .where(t.km_servers.c.endpoint_id == bindparam("id")))
    if name == "key_facets":
        a, b, x = t.key_attributes.c, t.dataset_bindings.c, t.extensions.c
        return union_all(
            select(literal("a"), a.name, a.value, null()).where(a.key_id == bindparam("id")),
            select(literal("d"), b.name, b.value, func.max(b.sizeof_value))
            .where(b.key_id == bindparam("id")).group_by(b.name, b.value),
            select(x.section, x.name, x.value, null()).where(and_(
                x.owner_kind == "Key", x.owner_id == bindparam("id"))))
    raise KeyError(name)


def _insert_once(table, dialect: str):  # type: ignore[no-untyped-def]
    """INSERT that does nothing where the row's key is taken."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()
