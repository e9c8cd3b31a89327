"""Key templates (§4.3) and their realms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select, update

from ..domain.model import (
    Extensions,
    KeyTemplate,
    NameValue,
)
from . import tables as t
from .part import Part


class SqlTemplates(Part):
    """Key templates in one unit of work (service.ports.Templates)."""

    def insert_template(self, tpl: KeyTemplate, now: datetime) -> int:
        """Returns the template's position on the change sequence."""
        seq = self._next_change("template", tpl.template_id, tpl.version, now)
        self.conn.execute(t.templates.insert().values(
            id=tpl.template_id, friendly_name=tpl.friendly_name, cipher_type=tpl.cipher_type,
            length_bits=tpl.length_bits, t_cached=tpl.t_cached, description=tpl.description,
            version=tpl.version, edit_datetime=now, change_seq=seq))
        self._insert_many(t.template_attributes, [
            {"template_id": tpl.template_id, "name": a.name, "value": a.value}
            for a in tpl.attributes])
        self._insert_many(t.template_realms, [{"template_id": tpl.template_id, "realm": r}
                                              for r in tpl.realms])
        self._set_extensions("KeyTemplate", tpl.template_id, tpl.extensions)
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
                           extensions=self._get_extensions("KeyTemplate", row.id))

    def update_template(self, tpl: KeyTemplate, now: datetime) -> int:
        """Returns the template's new position on the change sequence."""
        seq = self._next_change("template", tpl.template_id, tpl.version, now)
        self.conn.execute(update(t.templates).where(t.templates.c.id == tpl.template_id).values(
            friendly_name=tpl.friendly_name, cipher_type=tpl.cipher_type,
            length_bits=tpl.length_bits, t_cached=tpl.t_cached, description=tpl.description,
            version=tpl.version, edit_datetime=now, change_seq=seq))
        ta = t.template_attributes
        self.conn.execute(delete(ta).where(ta.c.template_id == tpl.template_id))
        self._insert_many(ta, [{"template_id": tpl.template_id, "name": a.name,
                                "value": a.value} for a in tpl.attributes])
        self._set_extensions("KeyTemplate", tpl.template_id, tpl.extensions)
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
        self._set_extensions("KeyTemplate", template_id, Extensions())
        self.conn.execute(delete(t.templates).where(t.templates.c.id == template_id))
