"""§4.5 Realm objects: realm://domain/realm-name, with a description.

A realm is in itself: rights in realm R decide who may read, edit or delete R. Any
administrator may add a realm and receives every right in it; a realm still holding
endpoints or objects cannot be deleted."""

from __future__ import annotations

from datetime import datetime

from ...domain.errors import AlreadyExists, InUse
from ...domain.model import AdminObject
from ...domain.realms import ALL_RIGHTS, check_realm_uri, realm_object_id
from .. import subscription_end
from ..context import RequestContext
from ..ports import UnitOfWork
from .base import StoredKind, require_admin
from .messages import AdminRequest, Document


class RealmKind(StoredKind):
    element = "Realm"
    id_field = "RealmId"
    name_field = None

    def resolve(self, ctx: RequestContext, ref: str) -> str:
        return realm_object_id(check_realm_uri(ref)) if ref.startswith("realm:") else ref

    def label(self, object_id: str) -> str:
        return f"realm {object_id}"

    def document(self, ctx: RequestContext, obj: AdminObject) -> Document:
        doc = super().document(ctx, obj)
        doc["RealmId"] = obj.name
        doc.pop("RealmAssociations", None)
        return doc

    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        caller = require_admin(ctx)
        doc = req.document or {}
        uri = check_realm_uri(str(doc.get("RealmId", "")))
        if ctx.uow.objects.find_object("Realm", uri) is not None:
            raise AlreadyExists(f"realm {uri} exists")
        body = {k: v for k, v in doc.items() if k == "Description"}
        obj = AdminObject("Realm", realm_object_id(uri), uri, None, 1, ctx.now, ctx.now, body,
                          (uri,))
        ctx.uow.objects.insert_object(obj)
        ctx.uow.endpoints.grant(caller.endpoint_id, uri, ALL_RIGHTS)
        return self.document(ctx, obj)

    def body_of(self, doc: Document) -> Document:
        return {k: v for k, v in doc.items() if k == "Description"}

    def before_delete(self, ctx: RequestContext, obj: AdminObject) -> None:
        """Only the deleting administrator's own grant may remain; it goes with the realm."""
        assert obj.name is not None and ctx.caller is not None
        users = ctx.uow.endpoints.realm_users(obj.name, except_endpoint=ctx.caller.endpoint_id)
        if users:
            raise InUse(f"realm {obj.name} still holds {users}; move them out first")
        ctx.uow.endpoints.revoke(ctx.caller.endpoint_id, obj.name)
        subscription_end.review(ctx.uow, ctx.caller.endpoint_id, ctx.now)


def ensure_realm_in(uow: UnitOfWork, uri: str, now: datetime) -> str:
    """Create the Realm object for `uri` if missing: only the offline bootstrap
    (`kms-ws client add --realm`) does; online, naming a realm never creates it."""
    uri = check_realm_uri(uri)
    if uow.objects.find_object("Realm", uri) is None:
        uow.objects.insert_object(AdminObject("Realm", realm_object_id(uri), uri, None, 1, now, now,
                                              {}, (uri,)))
    return uri
