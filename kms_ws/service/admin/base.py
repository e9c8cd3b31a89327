"""What every administered kind shares: the admin check, realm rights on objects,
version checks, and the generic kind stored in the objects table."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...domain.errors import (
    AlreadyExists,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    StaleVersion,
)
from ...domain.model import AdminObject, Endpoint
from ...domain.realms import (
    Right,
    check_realm_uri,
    format_rights,
    holds,
    new_object_realms,
    realms_with,
    rights_on,
)
from .. import notifications, visibility
from ..context import RequestContext
from .messages import AdminRequest, Document, Ref

SERVER_FIELDS = ("Version", "EditDateTime", "State", "RealmAssociations")


def require_admin(ctx: RequestContext) -> Endpoint:
    caller = ctx.caller
    if caller is None or not caller.is_admin:
        raise PermissionDenied("administration requires an administrator's credential")
    return caller


def need(ctx: RequestContext, realms: Sequence[str], right: Right, what: str) -> None:
    """Raise unless the caller holds `right` on an object in `realms`. An object the
    caller holds no right on does not exist for it (NotFound); a weaker right is a
    PermissionDenied that names the right missing."""
    assert ctx.caller is not None
    have = rights_on(ctx.caller.grants, realms)
    if not have:
        raise NotFound(f"no {what}")
    if right not in have:
        raise PermissionDenied(f"{right.label} right needed on {what}; the caller's realms "
                               f"give {format_rights(have)}")


def need_everywhere(ctx: RequestContext, realms: Sequence[str], right: Right,
                    what: str) -> None:
    """Raise unless the caller holds `right` in EVERY realm of `realms`: what is done to an
    endpoint (its credentials, state, rights, wrapping keys) reaches into each realm it
    belongs to, so an administrator of one of them alone may not do it (issue 12.4). An
    endpoint the caller holds no right on does not exist for it (NotFound)."""
    assert ctx.caller is not None
    if not rights_on(ctx.caller.grants, realms):
        raise NotFound(f"no {what}")
    lacking = [r for r in realms if not holds(ctx.caller.grants, r, right)]
    if lacking:
        raise PermissionDenied(f"{right.label} right needed in every realm of {what}; the "
                               f"caller lacks it in {', '.join(lacking)}")


def realm_list(doc: Document) -> list[tuple[str, tuple[str, ...]]]:
    """(realm URI, rights) pairs from a document's RealmAssociations."""
    box = doc.get("RealmAssociations") or {}
    items = box.get("RealmAssociation", []) if isinstance(box, dict) else []
    return [(check_realm_uri(i["Realm"]), tuple(i.get("Right", ()))) for i in items]


def realms_for_new(ctx: RequestContext, doc: Document) -> tuple[str, ...]:
    """The realms a new object goes into: those named (each must exist, and the caller
    hold Create there), or the caller's one default (domain.realms.new_object_realms)."""
    assert ctx.caller is not None
    asked = [r for r, _ in realm_list(doc)]
    for realm in asked:
        require_realm(ctx, realm)
    return new_object_realms(ctx.caller.grants, asked, ctx.settings.default_realm, "object")


def require_realm(ctx: RequestContext, uri: str) -> AdminObject:
    realm = ctx.uow.objects.find_object("Realm", uri)
    if realm is None:
        raise NotFound(f"no realm {uri}")
    return realm


def check_version(current: int, given: Any) -> None:
    if given is None or str(given).strip() == "":
        raise InvalidParameter("an edit names the Version it was made from")
    if int(given) != current:
        raise StaleVersion(f"the object is at version {current}, not {given}: read it again")


def realm_doc(realms: Sequence[str],
              rights: dict[str, frozenset[Right]] | None = None) -> dict[str, Any] | None:
    if not realms:
        return None
    items = []
    for realm in realms:
        item: dict[str, Any] = {"Realm": realm}
        if rights is not None:
            item["Right"] = [r.label for r in sorted(rights.get(realm, ()), reverse=True)]
        items.append(item)
    return {"RealmAssociation": items}


def guid_list(ids: Sequence[str]) -> dict[str, Any]:
    return {"Id": list(ids)}


class Kind:
    """One administered kind. Subclasses implement the seven actions."""

    element: str = ""
    # every kind by element name; the registry that builds the kinds hands them over
    peers: Mapping[str, Kind] = {}
    id_field: str = ""
    targets: frozenset[str] = frozenset()  # kinds it associates with, besides Realm

    def realms_of(self, ctx: RequestContext, object_id: str) -> tuple[str, ...] | None:
        raise NotImplementedError

    def resolve(self, ctx: RequestContext, ref: str) -> str:
        """An id from a reference (an id; some kinds also take a name)."""
        return ref

    def label(self, object_id: str) -> str:
        return f"{self.element} {object_id}"

    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        raise InvalidParameter(f"{self.element} objects are not created by administration")

    def get(self, ctx: RequestContext, object_id: str) -> Document:
        raise NotImplementedError

    def list(self, ctx: RequestContext, req: AdminRequest) -> tuple[list[Document], bool]:
        raise NotImplementedError

    def edit(self, ctx: RequestContext, req: AdminRequest) -> Document:
        raise NotImplementedError

    def delete(self, ctx: RequestContext, req: AdminRequest) -> Document | None:
        raise NotImplementedError

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        raise InvalidParameter(f"{self.element} cannot be associated with {target.kind}")

    def target_realms(self, ctx: RequestContext, target: Ref, right: Right) -> tuple[str, ...]:
        """The realms of an association's target; the caller needs `right` on it."""
        if target.kind == "Realm":
            realms: tuple[str, ...] | None = (target.object_id,)
            if ctx.uow.objects.find_object("Realm", target.object_id) is None:
                realms = None
        else:
            realms = self.peers[target.kind].realms_of(ctx, target.object_id)
        if realms is None:
            raise NotFound(f"no {target.kind} {target.object_id}")
        need(ctx, realms, right, f"{target.kind} {target.object_id}")
        return realms

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        raise InvalidParameter(f"{self.element} is not associated with {target.kind}")


class StoredKind(Kind):
    """A kind kept in the objects table: realms, endpoint types, groups, policies."""

    name_field: str | None = "Name"
    policy = False

    def validate(self, ctx: RequestContext, body: Document) -> None:
        """Kind-specific rules on the attributes (raise InvalidParameter)."""

    def extra(self, ctx: RequestContext, obj: AdminObject) -> Document:
        """Fields shown that are kept outside the body (e.g. association lists)."""
        return {}

    def changed(self, ctx: RequestContext, obj: AdminObject) -> None:
        """Called after an edit or state change (e.g. re-version referencing keys)."""

    # ---- helpers ---------------------------------------------------------------------
    def load(self, ctx: RequestContext, object_id: str, right: Right) -> AdminObject:
        obj = ctx.uow.objects.get_object(self.element, object_id)
        if obj is None:
            raise NotFound(f"no {self.label(object_id)}")
        need(ctx, obj.realms, right, self.label(object_id))
        return obj

    def realms_of(self, ctx: RequestContext, object_id: str) -> tuple[str, ...] | None:
        obj = ctx.uow.objects.get_object(self.element, object_id)
        return obj.realms if obj else None

    def resolve(self, ctx: RequestContext, ref: str) -> str:
        if self.name_field and not _is_guid(ref):
            obj = ctx.uow.objects.find_object(self.element, ref)
            if obj is None:
                raise NotFound(f"no {self.element} named {ref!r}")
            return obj.object_id
        return ref

    def body_of(self, doc: Document) -> Document:
        return {k: v for k, v in doc.items() if k not in SERVER_FIELDS and k != self.id_field}

    def document(self, ctx: RequestContext, obj: AdminObject) -> Document:
        doc: Document = {self.id_field: obj.object_id, **obj.body, **self.extra(ctx, obj)}
        if obj.state is not None:
            doc["State"] = obj.state
        doc["Version"] = str(obj.version)
        doc["EditDateTime"] = obj.edit_datetime
        realms = realm_doc(obj.realms)
        if realms:
            doc["RealmAssociations"] = realms
        return doc

    # ---- actions ---------------------------------------------------------------------
    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        realms = realms_for_new(ctx, doc)
        object_id = doc.get(self.id_field) or str(uuid.uuid4())
        if ctx.uow.objects.get_object(self.element, object_id) is not None:
            raise AlreadyExists(f"{self.label(object_id)} exists")
        body = self.body_of(doc)
        self.validate(ctx, body)
        name = body.get(self.name_field) if self.name_field else None
        if name is not None and ctx.uow.objects.find_object(self.element, name) is not None:
            raise AlreadyExists(f"a {self.element} named {name!r} exists")
        obj = AdminObject(self.element, object_id, name, "Created" if self.policy else None, 1,
                          ctx.now, ctx.now, body, realms)
        notifications.object_changed(ctx, obj.kind, obj.realms, ctx.uow.objects.insert_object(obj))
        return self.document(ctx, obj)

    def get(self, ctx: RequestContext, object_id: str) -> Document:
        return self.document(ctx, self.load(ctx, object_id, Right.READ))

    def list(self, ctx: RequestContext, req: AdminRequest) -> tuple[list[Document], bool]:
        assert ctx.caller is not None
        objs = ctx.uow.objects.list_objects(
            self.element, realms_with(ctx.caller.grants, Right.READ),
                                     limit=req.max_items + 1, altered_since=req.altered_since)
        return [self.document(ctx, o) for o in objs[:req.max_items]], \
            len(objs) > req.max_items

    def edit(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        obj = self.load(ctx, self.resolve(ctx, str(doc.get(self.id_field, ""))), Right.EDIT)
        check_version(obj.version, doc.get("Version"))
        body = self.body_of(doc)
        self.validate(ctx, body)
        name = body.get(self.name_field) if self.name_field else None
        if name is not None and name != obj.name:
            other = ctx.uow.objects.find_object(self.element, name)
            if other is not None:
                raise AlreadyExists(f"a {self.element} named {name!r} exists")
        obj.state = self.edited_state(obj, doc.get("State"))
        obj.body, obj.name = body, name
        self.bump(ctx, obj)
        return self.document(ctx, obj)

    def edited_state(self, obj: AdminObject, wanted: str | None) -> str | None:
        if wanted is not None and wanted != obj.state:
            raise InvalidParameter(f"{self.element} has no state to change")
        return obj.state

    def bump(self, ctx: RequestContext, obj: AdminObject) -> None:
        self.new_version(ctx, obj)
        self.changed(ctx, obj)

    def new_version(self, ctx: RequestContext, obj: AdminObject) -> None:
        """A new VERSION and place on the change sequence (§6.12 custom update types)."""
        obj.version += 1
        obj.edit_datetime = ctx.now
        notifications.object_changed(ctx, obj.kind, obj.realms, ctx.uow.objects.update_object(obj))

    def delete(self, ctx: RequestContext, req: AdminRequest) -> Document | None:
        obj = self.load(ctx, req.object_id or "", Right.DELETE)
        if req.version is not None:
            check_version(obj.version, req.version)
        self.before_delete(ctx, obj)
        self.remove(ctx, obj)
        return None

    def remove(self, ctx: RequestContext, obj: AdminObject) -> None:
        """Delete the object; GetUpdateList of its custom type lists the removal."""
        notifications.object_removed(ctx, obj.kind, obj.object_id, obj.version, obj.realms)
        ctx.uow.objects.delete_object(self.element, obj.object_id)

    def before_delete(self, ctx: RequestContext, obj: AdminObject) -> None:
        """Refuse (InUse) when removing the object would break something."""

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind == "Realm":
            obj = self.load(ctx, object_id, Right.EDIT)
            _realm_join(ctx, target.object_id, obj.realms)
            obj.realms = (*obj.realms, target.object_id)
            ctx.uow.objects.set_object_realms(self.element, object_id, obj.realms)
            self.new_version(ctx, obj)  # new readers see it (and are told), like a key
            return
        raise InvalidParameter(f"{self.element} cannot be associated with {target.kind}")

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind == "Realm":
            obj = self.load(ctx, object_id, Right.EDIT)
            before = obj.realms
            obj.realms = realm_leave(ctx, target.object_id, obj.realms)
            ctx.uow.objects.set_object_realms(self.element, object_id, obj.realms)
            visibility.object_left_realms(ctx, obj.kind, object_id, obj.version, before,
                                          (target.object_id,))
            self.new_version(ctx, obj)
            return
        raise InvalidParameter(f"{self.element} is not associated with {target.kind}")


def _realm_join(ctx: RequestContext, uri: str, current: Sequence[str]) -> None:
    assert ctx.caller is not None
    require_realm(ctx, uri)
    if uri in current:
        raise AlreadyExists(f"already in {uri}")
    if uri not in realms_with(ctx.caller.grants, Right.CREATE):
        raise PermissionDenied(f"Create right needed in {uri}")


realm_join = _realm_join


def realm_leave(ctx: RequestContext, uri: str, current: Sequence[str]) -> tuple[str, ...]:
    """The realms left after leaving `uri`; an object never leaves its last realm (it
    would become invisible to everyone)."""
    assert ctx.caller is not None
    if uri not in current:
        raise NotFound(f"not in {uri}")
    need(ctx, [uri], Right.DELETE, f"realm {uri}")
    remaining = tuple(r for r in current if r != uri)
    if not remaining:
        raise InvalidParameter("an object keeps at least one realm association")
    return remaining


def _is_guid(v: str) -> bool:
    try:
        return str(uuid.UUID(v)) == v.lower()
    except ValueError:
        return False


is_guid = _is_guid
Touch = Callable[[RequestContext, str], None]
