"""Updates of keys, templates and endpoints made by administration (mixed into
Repository). Every change takes a number from the store-wide change sequence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, select, update

from ..domain.model import Endpoint, Extensions, Key, KeyTemplate
from . import tables as t
from .objects import ObjectQueries
from .updates import DATASETS, extensions_from, facet_bits, join_realms


class AdminQueries(ObjectQueries):
    conn: Connection

    def get_template(self, template_id: str | None = None,
                     name: str | None = None) -> KeyTemplate | None:  # pragma: no cover
        raise NotImplementedError  # provided by Repository

    def _endpoint(self, row) -> Endpoint:  # type: ignore[no-untyped-def]  # pragma: no cover
        raise NotImplementedError  # provided by Repository

    def key_ids_of_template(self, template_id: str) -> list[str]:
        return list(self.conn.execute(select(t.keys.c.id).where(
            t.keys.c.template_id == template_id).order_by(t.keys.c.id)).scalars())

    def update_key(self, key: Key, sealed: bytes | None, erase: bool = False,
                   master_key_id: str | None = None) -> int:
        """Write a key's new state, dates, names and version; `sealed` re-seals the value
        under the new version with master key `master_key_id` (None with erase=True erases
        it: Destroyed). Returns the key's new position on the change sequence."""
        seq = self.next_change("key", key.key_id, key.version, key.edit_datetime)
        k = t.keys.c
        values: dict[str, Any] = dict(state=key.state.value, friendly_name=key.friendly_name,
                      t_expired=key.t_expired, t_disabled=key.t_disabled,
                      description=key.description, version=key.version,
                      edit_datetime=key.edit_datetime, change_seq=seq,
                      # attributes and extensions are replaced; data sets stay as they are
                      facets=k.facets.bitwise_and(DATASETS).bitwise_or(
                          facet_bits(key, datasets=False)))
        if sealed is not None or erase:
            values["sealed_value"] = sealed
            values["master_key_id"] = master_key_id if sealed is not None else None
        self.conn.execute(update(t.keys).where(t.keys.c.id == key.key_id).values(**values))
        self.conn.execute(delete(t.key_attributes).where(t.key_attributes.c.key_id == key.key_id))
        self._insert_many(t.key_attributes, [
            {"key_id": key.key_id, "name": a.name, "value": a.value} for a in key.attributes])
        self.set_extensions("Key", key.key_id, key.extensions)
        return seq

    def set_key_realms(self, key_id: str, realms: Sequence[str]) -> None:
        """Replace a key's realms: key_realms and keys.realms, together."""
        self.conn.execute(delete(t.key_realms).where(t.key_realms.c.key_id == key_id))
        self._insert_many(t.key_realms, [{"key_id": key_id, "realm": r}
                                         for r in sorted(set(realms))])
        self.conn.execute(update(t.keys).where(t.keys.c.id == key_id).values(
            realms=join_realms(realms)))

    def list_key_ids(self, realms: Sequence[str], *, limit: int,
                     altered_since: datetime | None = None) -> list[str]:
        k = t.keys.c
        q = select(k.id).where(k.id.in_(select(t.key_realms.c.key_id).where(
            t.key_realms.c.realm.in_(list(realms)))))
        if altered_since is not None:
            q = q.where(k.edit_datetime > altered_since)
        return list(self.conn.execute(q.order_by(k.change_seq, k.id).limit(limit)).scalars())

    def update_template(self, tpl: KeyTemplate, now: datetime) -> int:
        """Returns the template's new position on the change sequence."""
        seq = self.next_change("template", tpl.template_id, tpl.version, now)
        self.conn.execute(update(t.templates).where(t.templates.c.id == tpl.template_id).values(
            friendly_name=tpl.friendly_name, cipher_type=tpl.cipher_type,
            length_bits=tpl.length_bits, t_cached=tpl.t_cached, description=tpl.description,
            version=tpl.version, edit_datetime=now, change_seq=seq))
        ta = t.template_attributes
        self.conn.execute(delete(ta).where(ta.c.template_id == tpl.template_id))
        self._insert_many(ta, [{"template_id": tpl.template_id, "name": a.name,
                                "value": a.value} for a in tpl.attributes])
        self.set_extensions("KeyTemplate", tpl.template_id, tpl.extensions)
        return seq

    def _template_conditions(self, realms: Sequence[str], pos: int,
                             high: int) -> list:  # type: ignore[type-arg]
        k, r = t.templates.c, t.template_realms.c
        return [k.change_seq > pos, k.change_seq <= high,
                exists().where(and_(r.template_id == k.id, r.realm.in_(list(realms))))]

    def template_page(self, realms: Sequence[str], pos: int, high: int,
                      limit: int) -> list[tuple[int, KeyTemplate]]:
        """§6.12 custom type KeyTemplate: templates in any of `realms` changed after `pos`
        up to `high`, in change order (keyset pagination)."""
        rows = self.conn.execute(select(t.templates.c.id, t.templates.c.change_seq).where(
            and_(*self._template_conditions(realms, pos, high)))
            .order_by(t.templates.c.change_seq).limit(limit)).all()
        found = [(seq, self.get_template(template_id=tid)) for tid, seq in rows]
        return [(seq, tpl) for seq, tpl in found if tpl is not None]

    def count_templates(self, realms: Sequence[str], pos: int, high: int) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.templates).where(
            and_(*self._template_conditions(realms, pos, high)))).scalar_one())

    def set_template_realms(self, template_id: str, realms: Sequence[str]) -> None:
        tr = t.template_realms
        self.conn.execute(delete(tr).where(tr.c.template_id == template_id))
        self._insert_many(tr, [{"template_id": template_id, "realm": r}
                               for r in sorted(set(realms))])

    def list_templates(self, realms: Sequence[str], limit: int,
                       altered_since: datetime | None = None) -> list[KeyTemplate]:
        q = select(t.templates.c.id).where(t.templates.c.id.in_(
            select(t.template_realms.c.template_id).where(
                t.template_realms.c.realm.in_(list(realms)))))
        if altered_since is not None:
            q = q.where(t.templates.c.edit_datetime > altered_since)
        ids = self.conn.execute(q.order_by(t.templates.c.friendly_name).limit(limit)) \
            .scalars().all()
        return [tpl for i in ids if (tpl := self.get_template(template_id=i)) is not None]

    def delete_template(self, template_id: str) -> None:
        self.set_extensions("KeyTemplate", template_id, Extensions())
        self.conn.execute(delete(t.templates).where(t.templates.c.id == template_id))

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

    def set_extensions(self, owner_kind: str, owner_id: str, ext: Extensions) -> None:
        """Replace the owner's vendor ("v") and application ("p") extensions."""
        x = t.extensions.c
        self.conn.execute(delete(t.extensions).where(and_(x.owner_kind == owner_kind,
                                                          x.owner_id == owner_id)))
        self._insert_many(t.extensions, [
            {"owner_kind": owner_kind, "owner_id": owner_id, "section": sec, "name": a.name,
             "value": a.value}
            for sec, values in (("v", ext.vendor), ("p", ext.application)) for a in values])

    def get_extensions(self, owner_kind: str, owner_id: str) -> Extensions:
        x = t.extensions.c
        rows = self.conn.execute(select(x.section, x.name, x.value).where(and_(
            x.owner_kind == owner_kind, x.owner_id == owner_id)).order_by(x.name)).all()
        return extensions_from(rows)

    def update_endpoint(self, ep: Endpoint, now: datetime) -> None:
        seq = self.next_change("endpoint", ep.endpoint_id, ep.version, now)
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
