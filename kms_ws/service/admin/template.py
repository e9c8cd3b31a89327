"""§4.3 key templates: attributes and policies new keys inherit."""

from __future__ import annotations

import dataclasses
import uuid

from ...domain import ciphers
from ...domain.errors import AlreadyExists, InUse, InvalidParameter, NotFound
from ...domain.model import KeyTemplate
from ...domain.realms import Right, realms_with
from .. import notifications, visibility
from ..context import RequestContext
from .base import (
    Kind,
    check_version,
    is_guid,
    need,
    realm_doc,
    realm_join,
    realm_leave,
    realms_for_new,
)
from .common import clean, extensions, extensions_doc, pair_doc, pairs, policy_ids
from .messages import AdminRequest, Document, Ref


class TemplateKind(Kind):
    element = "KeyTemplate"
    id_field = "TemplateId"

    def realms_of(self, ctx: RequestContext, object_id: str) -> tuple[str, ...] | None:
        tpl = ctx.uow.templates.get_template(template_id=object_id)
        return tpl.realms if tpl else None

    def resolve(self, ctx: RequestContext, ref: str) -> str:
        if is_guid(ref):
            return ref
        tpl = ctx.uow.templates.get_template(name=ref)
        if tpl is None:
            raise NotFound(f"no key template named {ref!r}")
        return tpl.template_id

    def load(self, ctx: RequestContext, object_id: str, right: Right) -> KeyTemplate:
        tpl = ctx.uow.templates.get_template(template_id=object_id)
        if tpl is None:
            raise NotFound(f"no key template {object_id}")
        need(ctx, tpl.realms, right, f"key template {object_id}")
        return tpl

    def document(self, ctx: RequestContext, tpl: KeyTemplate) -> Document:
        return clean({
            "TemplateId": tpl.template_id, "FriendlyName": tpl.friendly_name,
            "Description": tpl.description, "CipherType": tpl.cipher_type,
            "KeyLength": str(tpl.length_bits), "TCached": str(tpl.t_cached),
            **extensions_doc(tpl.extensions),
            "AttributeAssociations": pair_doc(tpl.attributes),
            "RealmAssociations": realm_doc(tpl.realms),
            **policy_ids(ctx, self.element, tpl.template_id,
                         ("CachingPolicyId", "WrappingPolicyId", "RetentionPolicyId",
                          "AccessPolicyId", "KeyAssignmentPolicyId")),
            "Version": str(tpl.version), "EditDateTime": tpl.edit_datetime or ctx.now})

    def _from_doc(self, doc: Document, template_id: str, version: int,
                  realms: tuple[str, ...]) -> KeyTemplate:
        cipher, length = ciphers.resolve(doc.get("CipherType"),
                                         int(doc["KeyLength"]) if doc.get("KeyLength") else None)
        return KeyTemplate(template_id, doc["FriendlyName"], cipher, length,
                           int(doc.get("TCached") or 3600), version, doc.get("Description"),
                           pairs(doc, "AttributeAssociations"), realms,
                           extensions=extensions(doc))

    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        realms = realms_for_new(ctx, doc)
        if ctx.uow.templates.get_template(name=doc.get("FriendlyName")) is not None:
            raise AlreadyExists(f"a key template named {doc.get('FriendlyName')!r} exists")
        _no_policy_refs(doc)
        tpl = self._from_doc(doc, doc.get("TemplateId") or str(uuid.uuid4()), 1, realms)
        _changed(ctx, tpl, ctx.uow.templates.insert_template(tpl, ctx.now))
        return self.document(ctx, tpl)

    def get(self, ctx: RequestContext, object_id: str) -> Document:
        return self.document(ctx, self.load(ctx, object_id, Right.READ))

    def list(self, ctx: RequestContext, req: AdminRequest) -> tuple[list[Document], bool]:
        assert ctx.caller is not None
        tpls = ctx.uow.templates.list_templates(realms_with(ctx.caller.grants, Right.READ),
                                                req.max_items + 1, req.altered_since)
        return [self.document(ctx, t) for t in tpls[:req.max_items]], \
            len(tpls) > req.max_items

    def edit(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        old = self.load(ctx, self.resolve(ctx, doc.get("TemplateId", "")), Right.EDIT)
        check_version(old.version, doc.get("Version"))
        other = ctx.uow.templates.get_template(name=doc.get("FriendlyName"))
        if other is not None and other.template_id != old.template_id:
            raise AlreadyExists(f"a key template named {doc.get('FriendlyName')!r} exists")
        _no_policy_refs(doc, ctx, old.template_id)
        tpl = self._from_doc(doc, old.template_id, old.version + 1, old.realms)
        _changed(ctx, tpl, ctx.uow.templates.update_template(tpl, ctx.now))
        return self.document(ctx, tpl)

    def delete(self, ctx: RequestContext, req: AdminRequest) -> Document | None:
        tpl = self.load(ctx, req.object_id or "", Right.DELETE)
        if req.version is not None:
            check_version(tpl.version, req.version)
        keys = ctx.uow.keys.key_ids_of_template(tpl.template_id)
        if keys:
            raise InUse(f"{len(keys)} keys were created from template {tpl.template_id}")
        ctx.uow.objects.drop_associations(self.element, tpl.template_id)
        notifications.object_removed(ctx, "KeyTemplate", tpl.template_id, tpl.version,
                                     tpl.realms)
        ctx.uow.templates.delete_template(tpl.template_id)
        return None

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind != "Realm":
            return super().associate(ctx, object_id, target, rights)
        tpl = self.load(ctx, object_id, Right.EDIT)
        realm_join(ctx, target.object_id, tpl.realms)
        _new_realms(ctx, tpl, (*tpl.realms, target.object_id))

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind != "Realm":
            return super().disassociate(ctx, object_id, target)
        tpl = self.load(ctx, object_id, Right.EDIT)
        realms = realm_leave(ctx, target.object_id, tpl.realms)
        visibility.object_left_realms(ctx, "KeyTemplate", tpl.template_id, tpl.version,
                                      tpl.realms, (target.object_id,))
        _new_realms(ctx, tpl, realms)


def _new_realms(ctx: RequestContext, tpl: KeyTemplate, realms: tuple[str, ...]) -> None:
    """A realm change is a new version (its new readers see it in GetUpdateList)."""
    ctx.uow.templates.set_template_realms(tpl.template_id, realms)
    tpl = dataclasses.replace(tpl, version=tpl.version + 1, realms=realms)
    _changed(ctx, tpl, ctx.uow.templates.update_template(tpl, ctx.now))


def _changed(ctx: RequestContext, tpl: KeyTemplate, seq: int) -> None:
    notifications.object_changed(ctx, "KeyTemplate", tpl.realms, seq)


def _no_policy_refs(doc: Document, ctx: RequestContext | None = None,
                    template_id: str | None = None) -> None:
    """Policies are attached by association; an edit may repeat the current ids."""
    current = policy_ids(ctx, "KeyTemplate", template_id,
                         tuple(doc)) if ctx is not None and template_id else {}
    for field in ("CachingPolicyId", "WrappingPolicyId", "RetentionPolicyId", "AccessPolicyId",
                  "KeyAssignmentPolicyId"):
        if field in doc and current.get(field) != doc[field]:
            raise InvalidParameter(f"attach policies by association, not by {field}")

