"""The repository: every query the service layer needs, over one connection (one unit
of work). The service never builds SQL; the domain never sees rows."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, func, select, update

from ..domain.model import (
    ClientState,
    CredentialType,
    DataSet,
    Endpoint,
    EndpointKind,
    Key,
    KeyTemplate,
    NameValue,
)
from ..domain.realms import Right, format_rights, parse_rights
from ..domain.wrapping import WrappingKeyInfo, WrappingKeyKind
from . import tables as t
from .admin_queries import AdminQueries
from .audit_log import AuditLog
from .failures import FailureQueries
from .generations import endpoint_cached
from .removals import RemovalQueries
from .statements import prepared
from .updates import DATASETS, UpdatesRepository, facet_bits, join_realms, key_from_row


def _own_endpoint(ep: Endpoint) -> Endpoint:
    """A cached endpoint as the caller's own (admin edits change what they read)."""
    own = copy.copy(ep)
    own.grants = dict(ep.grants)
    return own


class Repository(AdminQueries, RemovalQueries, AuditLog, FailureQueries):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.updates = UpdatesRepository(conn)

    def _run(self, name: str, params: dict[str, Any]) -> list[Any]:
        """Run one of the prepared hot-path statements (`_stmt`) in this unit of work."""
        keys = tuple(params) if name.startswith("insert_") else None
        return prepared(name, self.conn.dialect, keys).run(self.conn, params)

    def _write(self, name: str, params: dict[str, Any]) -> int:
        """Run a prepared data change; the number of rows it changed."""
        keys = tuple(params) if name.startswith("insert_") else None
        return prepared(name, self.conn.dialect, keys).write(self.conn, params)

    # ---- change sequence -------------------------------------------------------
    def next_change(self, kind: str, object_id: str, version: int, now: datetime) -> int:
        res = self.conn.execute(t.changes.insert().values(
            object_kind=kind, object_id=object_id, version=version, at=now))
        assert res.inserted_primary_key is not None  # an INSERT of one row
        return int(res.inserted_primary_key[0])

    # ---- endpoints -------------------------------------------------------------
    def insert_endpoint(self, ep: Endpoint, now: datetime) -> None:
        seq = self.next_change("endpoint", ep.endpoint_id, ep.version, now)
        self.conn.execute(t.endpoints.insert().values(
            id=ep.endpoint_id, kind=ep.kind.value, name=ep.name, state=ep.state.value,
            credential_type=ep.credential_type.value, password_hash=ep.password_hash,
            is_admin=ep.is_admin, owner_id=ep.owner_id, endpoint_type_id=ep.endpoint_type_id,
            description=ep.description, failed_auth=0, version=ep.version, created_at=now,
            edit_datetime=now, change_seq=seq, authentication_policy=ep.authentication_policy))
        self.set_grants(ep.endpoint_id, ep.grants)
        self.set_km_server(ep.endpoint_id, ep.is_km_server)
        self._insert_many(t.endpoint_capabilities, [{"endpoint_id": ep.endpoint_id, "name": c}
                                                    for c in ep.capabilities])
        self._insert_many(t.endpoint_attributes, [
            {"endpoint_id": ep.endpoint_id, "name": a.name, "value": a.value}
            for a in ep.attributes])

    def endpoint_name_taken(self, kind: EndpointKind, name: str) -> bool:
        return self.conn.execute(select(exists().where(
            and_(t.endpoints.c.kind == kind.value, t.endpoints.c.name == name)))).scalar_one()

    @endpoint_cached(copy=_own_endpoint)
    def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        rows = self._run("endpoint_by_id", {"id": endpoint_id})
        return self._endpoint(rows[0]) if rows else None

    @endpoint_cached(copy=_own_endpoint)
    def find_client(self, name: str) -> Endpoint | None:
        rows = self._run("client_by_name", {"name": name})
        return self._endpoint(rows[0]) if rows else None

    def list_clients(self) -> list[Endpoint]:
        rows = self.conn.execute(select(t.endpoints).order_by(t.endpoints.c.kind,
                                                              t.endpoints.c.name)).all()
        return [self._endpoint(r) for r in rows]

    def record_auth_failure(self, endpoint_id: str, lock_after: int, now: datetime) -> bool:
        """One more wrong password; True when it locks the client (lock_after 0: never).
        Only a client that may authenticate has its password checked: Active, or Locked
        with its lockout run out (domain.backoff)."""
        e = t.endpoints.c
        self.conn.execute(update(t.endpoints).where(e.id == endpoint_id)
                          .values(failed_auth=e.failed_auth + 1))
        count = self.conn.execute(select(e.failed_auth).where(e.id == endpoint_id)).scalar_one()
        if not lock_after or count < lock_after:
            return False
        return bool(self.conn.execute(update(t.endpoints).where(and_(
            e.id == endpoint_id, e.state.in_((ClientState.ACTIVE.value,
                                              ClientState.LOCKED.value))))
            .values(state=ClientState.LOCKED.value, locked_at=now)).rowcount)

    def set_grants(self, endpoint_id: str, grants: dict[str, frozenset[Right]]) -> None:
        self._insert_many(t.realm_grants, [
            {"endpoint_id": endpoint_id, "realm": realm, "rights": format_rights(rights)}
            for realm, rights in grants.items()])

    def reset_auth_failures(self, endpoint_id: str, locked_before: datetime | None) -> None:
        """A right credential: the count of wrong ones goes, and a lockout that began
        before `locked_before` (one that has run out; None: lockouts do not run out) ends.
        A lockout that began meanwhile, on another worker, stays."""
        e = t.endpoints.c
        self.conn.execute(update(t.endpoints).where(and_(
            e.id == endpoint_id, e.state != ClientState.LOCKED.value, e.failed_auth != 0))
            .values(failed_auth=0))
        if locked_before is not None:
            self.conn.execute(update(t.endpoints).where(and_(
                e.id == endpoint_id, e.state == ClientState.LOCKED.value,
                e.locked_at < locked_before))
                .values(state=ClientState.ACTIVE.value, failed_auth=0, locked_at=None))

    def unlock(self, endpoint_id: str) -> bool:
        """A Locked client becomes Active, its count of wrong passwords cleared; False
        when it was not Locked."""
        e = t.endpoints.c
        return bool(self.conn.execute(update(t.endpoints).where(and_(
            e.id == endpoint_id, e.state == ClientState.LOCKED.value))
            .values(state=ClientState.ACTIVE.value, failed_auth=0, locked_at=None)).rowcount)

    def _endpoint(self, row) -> Endpoint:  # type: ignore[no-untyped-def]
        grants, caps, attrs, km_server = {}, [], [], False
        for facet, name, value, _ in self._run("endpoint_facets", {"id": row.id}):
            if facet == "r":
                grants[name] = parse_rights(value)
            elif facet == "c":
                caps.append(name)
            elif facet == "k":
                km_server = True
            else:
                attrs.append(NameValue(name, value))
        return Endpoint(
            endpoint_id=row.id, kind=EndpointKind(row.kind), name=row.name,
            state=ClientState(row.state), credential_type=CredentialType(row.credential_type),
            version=row.version, grants=grants, capabilities=tuple(sorted(caps)),
            attributes=tuple(sorted(attrs, key=lambda a: a.name)), description=row.description,
            endpoint_type_id=row.endpoint_type_id, owner_id=row.owner_id,
            is_admin=bool(row.is_admin), is_km_server=km_server, failed_auth=row.failed_auth,
            locked_at=row.locked_at, password_hash=row.password_hash,
            authentication_policy=row.authentication_policy)

    def find_endpoints(self, name: str) -> list[Endpoint]:
        """Clients and PEPs of that name (a name is unique per kind)."""
        rows = self.conn.execute(select(t.endpoints).where(t.endpoints.c.name == name)).all()
        return [self._endpoint(r) for r in rows]

    # ---- signing credentials ------------------------------------------------------
    def insert_endpoint_credential(self, endpoint_id: str, credential_type: CredentialType, *,
                                   certificate: bytes | None = None,
                                   cert_sha256: str | None = None,
                                   sealed_secret: bytes | None = None,
                                   master_key_id: str | None = None) -> None:
        self.conn.execute(t.endpoint_credentials.insert().values(
            endpoint_id=endpoint_id, credential_type=credential_type.value,
            certificate=certificate, cert_sha256=cert_sha256, sealed_secret=sealed_secret,
            master_key_id=master_key_id))

    def delete_endpoint_credential(self, endpoint_id: str) -> bool:
        c = t.endpoint_credentials.c
        return bool(self.conn.execute(t.endpoint_credentials.delete().where(
            c.endpoint_id == endpoint_id)).rowcount)

    def certificate_taken(self, cert_sha256: str) -> bool:
        c = t.endpoint_credentials.c
        return self.conn.execute(select(exists().where(c.cert_sha256 == cert_sha256))).scalar_one()

    def endpoint_credential(self, endpoint_id: str | None = None,
                            cert_sha256: str | None = None) -> Any:
        """(endpoint_id, credential_type, certificate, cert_sha256, sealed_secret,
        master_key_id) by endpoint or by certificate fingerprint (a named tuple)."""
        return self._credential(endpoint_id, cert_sha256)

    @endpoint_cached()
    def _credential(self, endpoint_id: str | None, cert_sha256: str | None) -> Any:
        if endpoint_id is not None:
            rows = self._run("credential_of_endpoint", {"id": endpoint_id})
        else:
            rows = self._run("credential_by_cert", {"sha": cert_sha256})
        return rows[0] if rows else None

    # ---- replay cache ------------------------------------------------------------
    def remember_message(self, signer_id: str, digest: str, expires_at: datetime,
                         now: datetime) -> bool:
        """Record a signed message; False when it was seen before (a replay)."""
        added = self._write("insert_seen_message", {
            "signer_id": signer_id, "digest": digest, "expires_at": expires_at})
        if digest[:2] == "00":  # about one insert in 256 prunes what has expired
            self.conn.execute(t.seen_messages.delete().where(t.seen_messages.c.expires_at < now))
        return added == 1

    # ---- sessions --------------------------------------------------------------
    def insert_session(self, token_hash: str, endpoint_id: str, now: datetime,
                       expires: datetime) -> None:
        self.conn.execute(t.sessions.insert().values(
            token_hash=token_hash, endpoint_id=endpoint_id, created_at=now, expires_at=expires,
            revoked=False))

    def session_endpoint(self, token_hash: str, now: datetime) -> tuple[str, datetime] | None:
        s = t.sessions.c
        row = self.conn.execute(select(s.endpoint_id, s.expires_at).where(and_(
            t.sessions.c.token_hash == token_hash, t.sessions.c.revoked.is_(False),
            t.sessions.c.expires_at > now))).first()
        return (row.endpoint_id, row.expires_at) if row else None

    def revoke_session(self, token_hash: str) -> None:
        self.conn.execute(update(t.sessions).where(t.sessions.c.token_hash == token_hash)
                          .values(revoked=True))

    # ---- templates -------------------------------------------------------------
    def insert_template(self, tpl: KeyTemplate, now: datetime) -> int:
        """Returns the template's position on the change sequence."""
        seq = self.next_change("template", tpl.template_id, tpl.version, now)
        self.conn.execute(t.templates.insert().values(
            id=tpl.template_id, friendly_name=tpl.friendly_name, cipher_type=tpl.cipher_type,
            length_bits=tpl.length_bits, t_cached=tpl.t_cached, description=tpl.description,
            version=tpl.version, edit_datetime=now, change_seq=seq))
        self._insert_many(t.template_attributes, [
            {"template_id": tpl.template_id, "name": a.name, "value": a.value}
            for a in tpl.attributes])
        self._insert_many(t.template_realms, [{"template_id": tpl.template_id, "realm": r}
                                              for r in tpl.realms])
        self.set_extensions("KeyTemplate", tpl.template_id, tpl.extensions)
        return seq

    def get_template(self, template_id: str | None = None,
                     name: str | None = None) -> KeyTemplate | None:
        col = t.templates.c.id if template_id is not None else t.templates.c.friendly_name
        row = self.conn.execute(select(t.templates).where(
            col == (template_id if template_id is not None else name))).first()
        if row is None:
            return None
        ta = t.template_attributes.c
        attrs = self.conn.execute(select(ta.name, ta.value)
                                  .where(ta.template_id == row.id)).all()
        realms = self.conn.execute(select(t.template_realms.c.realm).where(
            t.template_realms.c.template_id == row.id)).scalars()
        return KeyTemplate(template_id=row.id, friendly_name=row.friendly_name,
                           cipher_type=row.cipher_type, length_bits=row.length_bits,
                           t_cached=row.t_cached, version=row.version,
                           description=row.description,
                           attributes=tuple(NameValue(n, v) for n, v in attrs),
                           realms=tuple(realms), edit_datetime=row.edit_datetime,
                           extensions=self.get_extensions("KeyTemplate", row.id))

    # ---- keys ------------------------------------------------------------------
    def insert_key(self, key: Key, sealed: bytes, master_key_id: str, reported_by: str | None,
                   now: datetime) -> int:
        """Insert the key; returns its position on the change sequence."""
        seq = self.next_change("key", key.key_id, key.version, now)
        self.conn.execute(t.keys.insert().values(
            id=key.key_id, friendly_name=key.friendly_name, state=key.state.value,
            cipher_type=key.cipher_type, length_bits=key.length_bits, t_expired=key.t_expired,
            t_disabled=key.t_disabled, t_cached=key.t_cached, description=key.description,
            source_kind=key.source_kind.value, source_id=key.source_id,
            template_id=key.template_id, pep_id=key.pep_id, sealed_value=sealed,
            master_key_id=master_key_id, version=key.version, created_at=key.created_at,
            edit_datetime=key.edit_datetime, change_seq=seq, realms=join_realms(key.realms),
            facets=facet_bits(key)))
        self._insert_many(t.key_attributes, [{"key_id": key.key_id, "name": a.name,
                                              "value": a.value} for a in key.attributes])
        self._insert_many(t.key_realms, [{"key_id": key.key_id, "realm": r} for r in key.realms])
        self.set_extensions("Key", key.key_id, key.extensions)
        self.add_bindings(key.key_id, key.datasets, reported_by, now)
        return seq

    def add_bindings(self, key_id: str, datasets: Iterable[DataSet], reported_by: str | None,
                     now: datetime) -> None:
        rows = [{"key_id": key_id, "name": d.name, "value": d.value,
                 "sizeof_value": d.sizeof_value, "reported_by": reported_by, "at": now}
                for d in datasets]
        if rows:
            self._insert_many(t.dataset_bindings, rows)
            k = t.keys.c
            self.conn.execute(update(t.keys).where(k.id == key_id).values(
                facets=k.facets.bitwise_or(DATASETS)))

    def get_key(self, key_id: str) -> tuple[Key, bytes | None, str | None] | None:
        """The key's metadata, its sealed value and the id of the master key sealing it."""
        rows = self._run("key_by_id", {"id": key_id})
        if not rows:
            return None
        row = rows[0]
        return self._key(row), row.sealed_value, row.master_key_id

    def find_key_ids(self, realms: Sequence[str], *, limit: int,
                     friendly_name: str | None = None, attributes: Sequence[NameValue] = (),
                     datasets: Sequence[DataSet] = (), template_id: str | None = None,
                     altered_since: datetime | None = None,
                     order: str = "created") -> list[str]:
        """Ids of keys sharing a realm with `realms` and matching every given condition
        (attributes and data sets ANDed). order: created | newest | edited."""
        k = t.keys.c
        conds: list[ColumnElement[bool]] = [exists().where(and_(t.key_realms.c.key_id == k.id,
                                     t.key_realms.c.realm.in_(list(realms))))]
        if friendly_name is not None:
            conds.append(k.friendly_name == friendly_name)
        if template_id is not None:
            conds.append(k.template_id == template_id)
        if altered_since is not None:
            conds.append(k.edit_datetime > altered_since)
        a, b = t.key_attributes.c, t.dataset_bindings.c
        conds += [exists().where(and_(a.key_id == k.id, a.name == x.name, a.value == x.value))
                  for x in attributes]
        conds += [exists().where(and_(b.key_id == k.id, b.name == d.name, b.value == d.value))
                  for d in datasets]
        orders = {"created": (k.created_at, k.id), "newest": (k.created_at.desc(), k.id.desc()),
                  "edited": (k.edit_datetime, k.id)}
        q = select(k.id).where(and_(*conds)).order_by(*orders[order]).limit(limit)
        return list(self.conn.execute(q).scalars())

    def _key(self, row) -> Key:  # type: ignore[no-untyped-def]
        attrs, datasets, ext = [], [], []
        facets = self._run("key_facets", {"id": row.id}) if row.facets != 0 else ()
        for facet, name, value, size in facets:
            if facet == "a":
                attrs.append(NameValue(name, value))
            elif facet == "d":
                datasets.append(DataSet(name, value, size))
            else:
                ext.append((facet, name, value))
        return key_from_row(row, attrs, datasets, ext)

    # ---- store metadata, master keys ----------------------------------------------
    def get_meta(self, name: str) -> str | None:
        rows = self._run("meta", {"name": name})  # every request: the current master key
        return rows[0][0] if rows else None

    def set_meta(self, name: str, value: str) -> None:
        if self.get_meta(name) is None:
            self.conn.execute(t.meta.insert().values(name=name, value=value))
        else:
            self.conn.execute(update(t.meta).where(t.meta.c.name == name).values(value=value))

    def current_master_key_id(self) -> str | None:
        return self.get_meta("master_key_current")

    def sealed_counts(self) -> dict[str, int]:
        """How many key values, KEKs, signing secrets and audit chain keys each master
        key seals."""
        counts: dict[str, int] = {}
        for table, col in ((t.keys, "sealed_value"), (t.wrapping_keys, "sealed_value"),
                           (t.endpoint_credentials, "sealed_secret"),
                           (t.audit_chain, "sealed_key")):
            c = table.c
            for mk, n in self.conn.execute(select(c.master_key_id, func.count()).where(
                    c[col].is_not(None)).group_by(c.master_key_id)).all():
                counts[mk] = counts.get(mk, 0) + n
        return counts

    def sealed_not_under(self, master_key_id: str,
                         limit: int) -> list[tuple[str, Any, Any, str, bytes]]:
        """Up to `limit` sealed rows under another master key: (table, id, version/key id,
        master key id, sealed)."""
        out: list[tuple[str, Any, Any, str, bytes]] = []
        k = t.keys.c
        for r in self.conn.execute(select(k.id, k.version, k.master_key_id, k.sealed_value).where(
                and_(k.sealed_value.is_not(None), k.master_key_id != master_key_id))
                .limit(limit)).all():
            out.append(("key", r.id, r.version, r.master_key_id, r.sealed_value))
        w = t.wrapping_keys.c
        for r in self.conn.execute(select(w.endpoint_id, w.key_id, w.master_key_id,
                                          w.sealed_value).where(and_(
                w.sealed_value.is_not(None), w.master_key_id != master_key_id))
                .limit(max(0, limit - len(out)))).all():
            out.append(("kek", r.endpoint_id, r.key_id, r.master_key_id, r.sealed_value))
        e = t.endpoint_credentials.c
        for s in self.conn.execute(select(e.endpoint_id, e.master_key_id, e.sealed_secret).where(
                and_(e.sealed_secret.is_not(None), e.master_key_id != master_key_id))
                .limit(max(0, limit - len(out)))).all():
            out.append(("secret", s.endpoint_id, "", s.master_key_id, s.sealed_secret))
        a = t.audit_chain.c
        for s in self.conn.execute(select(a.name, a.master_key_id, a.sealed_key).where(
                and_(a.sealed_key.is_not(None), a.master_key_id != master_key_id))
                .limit(max(0, limit - len(out)))).all():
            out.append(("audit", s.name, "", s.master_key_id, s.sealed_key))
        return out

    def reseal_secret(self, endpoint_id: str, old_master: str, sealed: bytes,
                      new_master: str) -> bool:
        e = t.endpoint_credentials.c
        res = self.conn.execute(update(t.endpoint_credentials).where(and_(
            e.endpoint_id == endpoint_id, e.master_key_id == old_master))
            .values(sealed_secret=sealed, master_key_id=new_master))
        return res.rowcount == 1

    def reseal_key(self, key_id: str, version: int, old_master: str, sealed: bytes,
                   new_master: str) -> bool:
        k = t.keys.c
        res = self.conn.execute(update(t.keys).where(and_(
            k.id == key_id, k.version == version, k.master_key_id == old_master))
            .values(sealed_value=sealed, master_key_id=new_master))
        return res.rowcount == 1

    def reseal_kek(self, endpoint_id: str, key_id: str, old_master: str, sealed: bytes,
                   new_master: str) -> bool:
        w = t.wrapping_keys.c
        res = self.conn.execute(update(t.wrapping_keys).where(and_(
            w.endpoint_id == endpoint_id, w.key_id == key_id, w.master_key_id == old_master))
            .values(sealed_value=sealed, master_key_id=new_master))
        return res.rowcount == 1

    # ---- wrapping keys (WRAPPING_VALUES) ------------------------------------------
    def insert_wrapping_key(self, info: WrappingKeyInfo, sealed: bytes | None,
                            master_key_id: str | None, certificate: bytes | None) -> None:
        self.conn.execute(t.wrapping_keys.insert().values(
            endpoint_id=info.endpoint_id, key_id=info.key_id, kind=info.kind.value,
            sealed_value=sealed, master_key_id=master_key_id, certificate=certificate,
            not_after=info.not_after, created_at=info.created_at, ordinal=info.ordinal))

    def next_wrapping_ordinal(self, endpoint_id: str) -> int:
        w = t.wrapping_keys.c
        top = self.conn.execute(select(func.max(w.ordinal)).where(
            w.endpoint_id == endpoint_id)).scalar_one()
        return int(top or 0) + 1

    @endpoint_cached(copy=list)
    def wrapping_keys(self, endpoint_id: str) -> list[WrappingKeyInfo]:
        rows = self._run("wrapping_keys", {"endpoint_id": endpoint_id})
        return [WrappingKeyInfo(r.endpoint_id, r.key_id, WrappingKeyKind(r.kind), r.created_at,
                                r.ordinal, r.not_after) for r in rows]

    def wrapping_key_material(self, endpoint_id: str,
                              key_id: str) -> tuple[bytes | None, str | None, bytes | None]:
        """(sealed KEK, its master key id, certificate DER) of one wrapping key."""
        w = t.wrapping_keys.c
        row = self.conn.execute(select(w.sealed_value, w.master_key_id, w.certificate).where(
            and_(w.endpoint_id == endpoint_id, w.key_id == key_id))).one()
        return row.sealed_value, row.master_key_id, row.certificate

    def delete_wrapping_keys(self, endpoint_id: str, key_ids: Sequence[str]) -> int:
        w = t.wrapping_keys.c
        res = self.conn.execute(t.wrapping_keys.delete().where(and_(
            w.endpoint_id == endpoint_id, w.key_id.in_(list(key_ids)))))
        return int(res.rowcount)

    # ---- helpers ---------------------------------------------------------------
    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(table.insert(), rows)
