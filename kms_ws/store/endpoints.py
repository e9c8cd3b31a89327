"""Endpoints — clients and PEPs (§4.6, §4.7) — with what authenticates and serves
them: realm grants, credentials (passwords, signing certificates and secrets), sessions,
failed-password counts, wrapping keys (KEKs)."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    exists,
    func,
    select,
    update,
)

from ..domain.model import (
    ClientState,
    CredentialType,
    Endpoint,
    EndpointKind,
    NameValue,
)
from ..domain.realms import Right, format_rights, parse_rights
from ..domain.wrapping import WrappingKeyInfo, WrappingKeyKind
from . import tables as t
from .generations import endpoint_cached
from .part import Part

GRANTS_CHUNK = 500  # endpoints per statement


def _own_endpoint(ep: Endpoint) -> Endpoint:
    """A cached endpoint as the caller's own (admin edits change what they read)."""
    own = copy.copy(ep)
    own.grants = dict(ep.grants)
    return own


class SqlEndpoints(Part):
    """Endpoints and their credentials in one unit of work (service.ports.Endpoints)."""

    def insert_endpoint(self, ep: Endpoint, now: datetime) -> None:
        seq = self._next_change("endpoint", ep.endpoint_id, ep.version, now)
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

    def grants_in(self, endpoint_ids: Collection[str],
                  realms: Sequence[str]) -> dict[str, dict[str, frozenset[Right]]]:
        """The grants of these endpoints (those that exist) in `realms`, by endpoint; a
        few statements for any number of endpoints."""
        g, e = t.realm_grants.c, t.endpoints.c
        ids = sorted(set(endpoint_ids))
        out: dict[str, dict[str, frozenset[Right]]] = {}
        for start in range(0, len(ids), GRANTS_CHUNK):
            for eid, realm, rights in self.conn.execute(
                    select(g.endpoint_id, g.realm, g.rights)
                    .join(t.endpoints, e.id == g.endpoint_id)
                    .where(and_(g.endpoint_id.in_(ids[start:start + GRANTS_CHUNK]),
                                g.realm.in_(list(realms))))):
                out.setdefault(eid, {})[realm] = parse_rights(rights)
        return out

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

    def insert_wrapping_key(self, info: WrappingKeyInfo, sealed: bytes | None,
                            master_key_id: str | None, certificate: bytes | None) -> None:
        self.conn.execute(t.wrapping_keys.insert().values(
            endpoint_id=info.endpoint_id, key_id=info.key_id, kind=info.kind.value,
            sealed_value=sealed, master_key_id=master_key_id, certificate=certificate,
            not_after=info.not_after, created_at=info.created_at, ordinal=info.ordinal,
            registered_by=info.registered_by, registered_by_admin=info.by_admin))

    def next_wrapping_ordinal(self, endpoint_id: str) -> int:
        w = t.wrapping_keys.c
        top = self.conn.execute(select(func.max(w.ordinal)).where(
            w.endpoint_id == endpoint_id)).scalar_one()
        return int(top or 0) + 1

    @endpoint_cached(copy=list)
    def wrapping_keys(self, endpoint_id: str) -> list[WrappingKeyInfo]:
        rows = self._run("wrapping_keys", {"endpoint_id": endpoint_id})
        return [WrappingKeyInfo(r.endpoint_id, r.key_id, WrappingKeyKind(r.kind), r.created_at,
                                r.ordinal, r.not_after, r.registered_by,
                                bool(r.registered_by_admin)) for r in rows]

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

    def grant(self, endpoint_id: str, realm: str, rights: frozenset[Right]) -> None:
        g = t.realm_grants.c
        self.conn.execute(delete(t.realm_grants).where(and_(g.endpoint_id == endpoint_id,
                                                            g.realm == realm)))
        self.conn.execute(t.realm_grants.insert().values(
            endpoint_id=endpoint_id, realm=realm, rights=format_rights(rights)))

    def revoke(self, endpoint_id: str, realm: str) -> bool:
        g = t.realm_grants.c
        return bool(self.conn.execute(delete(t.realm_grants).where(and_(
            g.endpoint_id == endpoint_id, g.realm == realm))).rowcount)

    def realm_users(self, realm: str, except_endpoint: str | None = None) -> str:
        """What still uses a realm, as text ('' when nothing): grants, objects, keys."""
        parts = []
        for label, table, extra in (
                ("endpoint grants", t.realm_grants,
                 t.realm_grants.c.endpoint_id != except_endpoint),
                ("objects", t.object_realms, t.object_realms.c.kind != "Realm"),
                ("keys", t.key_realms, None), ("templates", t.template_realms, None)):
            q = select(func.count()).select_from(table).where(table.c.realm == realm)
            if extra is not None:
                q = q.where(extra)
            n = self.conn.execute(q).scalar_one()
            if n:
                parts.append(f"{n} {label}")
        return ", ".join(parts)

    def set_password_hash(self, endpoint_id: str, password_hash: str | None) -> None:
        self.conn.execute(update(t.endpoints).where(t.endpoints.c.id == endpoint_id)
                          .values(password_hash=password_hash))

    def has_open_session(self, endpoint_id: str, now: datetime) -> bool:
        s = t.sessions.c
        return bool(self.conn.execute(select(exists().where(and_(
            s.endpoint_id == endpoint_id, s.revoked.is_(False), s.expires_at > now))))
            .scalar_one())

    def revoke_sessions_of(self, endpoint_id: str) -> None:
        self.conn.execute(update(t.sessions).where(t.sessions.c.endpoint_id == endpoint_id)
                          .values(revoked=True))

    def set_km_server(self, endpoint_id: str, flag: bool) -> None:
        k = t.km_servers.c
        self.conn.execute(delete(t.km_servers).where(k.endpoint_id == endpoint_id))
        if flag:
            self.conn.execute(t.km_servers.insert().values(endpoint_id=endpoint_id))

    def update_endpoint(self, ep: Endpoint, now: datetime) -> None:
        seq = self._next_change("endpoint", ep.endpoint_id, ep.version, now)
        self.conn.execute(update(t.endpoints).where(t.endpoints.c.id == ep.endpoint_id).values(
            state=ep.state.value, description=ep.description, is_admin=ep.is_admin,
            endpoint_type_id=ep.endpoint_type_id, failed_auth=ep.failed_auth,
            locked_at=ep.locked_at, credential_type=ep.credential_type.value,
            authentication_policy=ep.authentication_policy,
            version=ep.version, edit_datetime=now, change_seq=seq))
        self.set_km_server(ep.endpoint_id, ep.is_km_server)
        for table, rows in (
                (t.endpoint_capabilities, [{"endpoint_id": ep.endpoint_id, "name": c}
                                           for c in ep.capabilities]),
                (t.endpoint_attributes, [{"endpoint_id": ep.endpoint_id, "name": a.name,
                                          "value": a.value} for a in ep.attributes])):
            self.conn.execute(delete(table).where(table.c.endpoint_id == ep.endpoint_id))
            self._insert_many(table, rows)

    def list_endpoints(self, kind: str, realms: Sequence[str], limit: int,
                       altered_since: datetime | None = None) -> list[Endpoint]:
        e = t.endpoints.c
        q = select(t.endpoints).where(and_(
            e.kind == kind, e.id.in_(select(t.realm_grants.c.endpoint_id).where(
                t.realm_grants.c.realm.in_(list(realms))))))
        if altered_since is not None:
            q = q.where(e.edit_datetime > altered_since)
        rows = self.conn.execute(q.order_by(e.name).limit(limit)).all()
        return [self._endpoint(r) for r in rows]

    def set_cim_identity(self, endpoint_id: str, identity: Sequence[NameValue]) -> None:
        self._insert_many(t.endpoint_identity, [
            {"endpoint_id": endpoint_id, "property": p.name, "value": p.value}
            for p in identity])

    def cim_identity(self, endpoint_id: str) -> tuple[NameValue, ...]:
        c = t.endpoint_identity.c
        return tuple(NameValue(r.property, r.value) for r in self.conn.execute(
            select(c.property, c.value).where(c.endpoint_id == endpoint_id)
            .order_by(c.property)))

    def delete_endpoint(self, endpoint_id: str) -> None:
        self.set_km_server(endpoint_id, False)
        self.conn.execute(delete(t.endpoints).where(t.endpoints.c.id == endpoint_id))

    def count_endpoints_of_type(self, type_id: str) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.endpoints).where(
            t.endpoints.c.endpoint_type_id == type_id)).scalar_one())

    def peps_of(self, owner_id: str) -> list[str]:
        return list(self.conn.execute(select(t.endpoints.c.id).where(
            t.endpoints.c.owner_id == owner_id)).scalars())

    def endpoint_users(self, endpoint_id: str) -> str:
        """What still refers to an endpoint ('' when nothing): PEPs it owns, keys for it."""
        peps = len(self.peps_of(endpoint_id))
        keys = int(self.conn.execute(select(func.count()).select_from(t.keys).where(
            t.keys.c.pep_id == endpoint_id)).scalar_one())
        return ", ".join(f"{n} {label}" for n, label in ((peps, "PEPs"), (keys, "keys")) if n)
