"""Keys as administered objects (§4.1, §5.2): show and list metadata (never the value),
edit attributes and dates, drive the life cycle by State (Active = activate, Disabled,
Compromised, Destroyed), delete = destroy (the value is erased; the tombstone, its
bindings and its audit history stay)."""

from __future__ import annotations

from ...domain.durations import parse_utc
from ...domain.errors import InvalidParameter, NotFound
from ...domain.lifecycle import apply_action, effective_state
from ...domain.model import Key, KeyState
from ...domain.realms import Right, realms_with
from .. import notifications, visibility
from ..context import RequestContext
from ..key_versions import apply_retention, load_key, touch_key
from .base import Kind, check_version, need, realm_doc, realm_join, realm_leave
from .common import clean, extensions, extensions_doc, pair_doc, pairs, policy_ids
from .messages import AdminRequest, Document, Ref

_ACTION_FOR_STATE = {"Active": "Activate", "Disabled": "Disable", "Compromised": "Compromise",
                     "Destroyed": "Destroy"}
_IMMUTABLE = ("CipherType", "TemplateId")


def _time(value: object) -> object:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        return parse_utc(value)
    return value


class KeyKind(Kind):
    element = "Key"
    id_field = "KeyId"

    def realms_of(self, ctx: RequestContext, object_id: str) -> tuple[str, ...] | None:
        found = ctx.uow.keys.get_key(object_id)
        return found[0].realms if found else None

    def load(self, ctx: RequestContext, key_id: str, right: Right) -> Key:
        found = ctx.uow.keys.get_key(key_id)
        if found is None:
            raise NotFound(f"no key {key_id}")
        need(ctx, found[0].realms, right, f"key {key_id}")
        return found[0]

    def document(self, ctx: RequestContext, key: Key) -> Document:
        if key.state is not KeyState.DESTROYED:
            apply_retention(ctx, key)  # the dates in force now (dynamic key groups too)
        use = ctx.uow.keys.use_by(key.key_id)
        return clean({
            "KeyId": key.key_id, "FriendlyName": key.friendly_name,
            "State": effective_state(key, ctx.now).value, "TExpired": key.t_expired,
            "TDisabled": key.t_disabled, "TCached": str(key.t_cached),
            "CipherType": key.cipher_type, **extensions_doc(key.extensions),
            **policy_ids(ctx, "Key", key.key_id, ("CachingPolicyId",)),
            "Version": str(key.version), "EditDateTime": key.edit_datetime,
            "RealmAssociations": realm_doc(key.realms),
            **policy_ids(ctx, "Key", key.key_id, ("WrappingPolicyId",)),
            "Description": key.description,
            "Source": clean({"Kind": key.source_kind.value, "Id": key.source_id}),
            "AttributeAssociations": pair_doc(key.attributes),
            "DataSets": {"DataSet": [clean({"Name": d.name, "Value": d.value,
                                            "SizeofValue": d.sizeof_value})
                                     for d in key.datasets]} if key.datasets else None,
            "TemplateId": key.template_id,
            **policy_ids(ctx, "Key", key.key_id, ("KeyAssignmentPolicyId",)),
            **policy_ids(ctx, "Key", key.key_id, ("RetentionPolicyId", "AccessPolicyId")),
            "UseByClients": {"Id": [i for k, i in use if k == "Client"]}
            if any(k == "Client" for k, _ in use) else None,
            "UseByPeps": {"Id": [i for k, i in use if k == "Pep"]}
            if any(k == "Pep" for k, _ in use) else None})

    def get(self, ctx: RequestContext, object_id: str) -> Document:
        return self.document(ctx, self.load(ctx, object_id, Right.READ))

    def list(self, ctx: RequestContext, req: AdminRequest) -> tuple[list[Document], bool]:
        assert ctx.caller is not None
        ids = ctx.uow.keys.list_key_ids(realms_with(ctx.caller.grants, Right.READ),
                                        limit=req.max_items + 1, altered_since=req.altered_since)
        docs = [self.document(ctx, self.load(ctx, i, Right.READ)) for i in ids[:req.max_items]]
        return docs, len(ids) > req.max_items

    def edit(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        key = self.load(ctx, doc.get("KeyId", ""), Right.EDIT)
        check_version(key.version, doc.get("Version"))
        for name in _IMMUTABLE:
            if doc.get(name) != (key.cipher_type if name == "CipherType" else key.template_id):
                raise InvalidParameter(f"a key's {name} does not change")
        ext = extensions(doc)
        wanted = doc.get("State", effective_state(key, ctx.now).value)
        action = None
        if wanted != effective_state(key, ctx.now).value:
            action = _ACTION_FOR_STATE.get(wanted)
            if action is None:
                raise InvalidParameter(f"a key is not set {wanted}; its dates decide that")

        def change(k: Key) -> None:
            if action is not None:
                k.state = apply_action(k, action, ctx.now)
            k.friendly_name = doc.get("FriendlyName")
            k.description = doc.get("Description")
            k.t_expired = _time(doc.get("TExpired"))  # type: ignore[assignment]
            k.t_disabled = _time(doc.get("TDisabled"))  # type: ignore[assignment]
            k.t_cached = int(doc.get("TCached", k.t_cached))
            k.attributes = tuple(sorted(pairs(doc, "AttributeAssociations"),
                                        key=lambda a: a.name))
            k.extensions = ext
        touch_key(ctx, key.key_id, change)
        return self.document(ctx, load_key(ctx, key.key_id))

    def delete(self, ctx: RequestContext, req: AdminRequest) -> Document | None:
        key = self.load(ctx, req.object_id or "", Right.DELETE)
        if req.version is not None:
            check_version(key.version, req.version)

        def destroy(k: Key) -> None:
            k.state = apply_action(k, "Destroy", ctx.now)
        touch_key(ctx, key.key_id, destroy)
        return self.document(ctx, self.load(ctx, key.key_id, Right.REFERENCE))

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind != "Realm":
            return super().associate(ctx, object_id, target, rights)
        key = self.load(ctx, object_id, Right.EDIT)
        realm_join(ctx, target.object_id, key.realms)
        _set_realms(ctx, key, (*key.realms, target.object_id))

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind != "Realm":
            return super().disassociate(ctx, object_id, target)
        key = self.load(ctx, object_id, Right.EDIT)
        realms = realm_leave(ctx, target.object_id, key.realms)
        visibility.key_left_realms(ctx, key, (target.object_id,))  # readers who lose it
        _set_realms(ctx, key, realms)


def _set_realms(ctx: RequestContext, key: Key, realms: tuple[str, ...]) -> None:
    """A realm association changes no VERSION or EDIT_DATETIME (§4.1), but it is a change
    readers must learn of (a key enters or leaves their view): the key takes a new place
    on the change sequence and subscribers who see it now are told."""
    seq = ctx.uow.keys.set_key_realms(key.key_id, realms, key.version, ctx.now)
    key.realms = tuple(sorted(set(realms)))
    notifications.key_changed(ctx, key, seq)

