"""What the six §5 policies share: states (Created/Assigned/Enforcing/Disabled), policy
associations with objects, and re-versioning of the keys a policy change touches."""

from __future__ import annotations

from ...domain import policy_state
from ...domain.errors import AlreadyExists, InvalidParameter, NotFound
from ...domain.model import AdminObject
from ...domain.policy_state import PolicyState
from ...domain.realms import Right, realm_object_id
from ..context import RequestContext
from .base import StoredKind, check_version
from .effects import policy_changed, target_changed
from .messages import AdminRequest, Document, Ref


class PolicyKind(StoredKind):
    id_field = "PolicyId"
    policy = True
    realm_assigns = False  # True: a realm association is what the policy applies to
    several_per_target = False  # True: policies of this kind on one object combine
    target_right = Right.EDIT  # needed on what the policy is associated with

    def edited_state(self, obj: AdminObject, wanted: str | None) -> str | None:
        if wanted is None:
            return obj.state
        try:
            target = PolicyState(wanted)
        except ValueError:
            raise InvalidParameter(f"unknown policy state {wanted}") from None
        return policy_state.on_edit(PolicyState(obj.state), target).value

    def changed(self, ctx: RequestContext, obj: AdminObject) -> None:
        policy_changed(ctx, obj)

    def applies_to(self) -> frozenset[str]:
        return self.targets | {"Realm"} if self.realm_assigns else self.targets

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind == "Realm" and not self.realm_assigns:
            return super().associate(ctx, object_id, target, rights)
        if target.kind not in self.applies_to():
            raise InvalidParameter(f"a {self.element} applies to "
                                   f"{', '.join(sorted(self.applies_to()))}, not {target.kind}")
        obj = self.load(ctx, object_id, Right.EDIT)
        self.target_realms(ctx, target, self.target_right)
        taken = ctx.uow.objects.sources_of(target.kind, _stored_id(target), [self.element])
        several = self.several_per_target or target.kind == "Realm"
        if several and (self.element, object_id) in taken:
            raise AlreadyExists(f"{self.element} {object_id} already applies there")
        if taken and not several:
            raise AlreadyExists(f"{target.kind} {target.object_id} already has {self.element} "
                                f"{taken[0][1]}; disassociate it first")
        ctx.uow.objects.associate(self.element, object_id, target.kind, _stored_id(target))
        obj.state = policy_state.on_associate(PolicyState(obj.state)).value
        self.bump(ctx, obj)  # re-versions every object the policy applies to

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind == "Realm" and not self.realm_assigns:
            return super().disassociate(ctx, object_id, target)
        obj = self.load(ctx, object_id, Right.EDIT)
        self.target_realms(ctx, target, Right.EDIT)
        if not ctx.uow.objects.disassociate(self.element, object_id, target.kind,
                                            _stored_id(target)):
            raise NotFound(f"{self.element} {object_id} is not associated with {target.kind} "
                           f"{target.object_id}")
        remaining = len(ctx.uow.objects.targets_of(self.element, object_id))
        obj.state = policy_state.on_disassociate(PolicyState(obj.state), remaining).value
        self.bump(ctx, obj)
        target_changed(ctx, obj, target)

    def delete(self, ctx: RequestContext, req: AdminRequest) -> Document | None:
        obj = self.load(ctx, req.object_id or "", Right.DELETE)
        if req.version is not None:
            check_version(obj.version, req.version)
        after = policy_state.on_delete(PolicyState(obj.state))
        if after is None:
            self.remove(ctx, obj)
            return None
        targets = ctx.uow.objects.targets_of(self.element, obj.object_id)
        for kind, target_id in targets:
            ctx.uow.objects.disassociate(self.element, obj.object_id, kind, target_id)
        obj.state = after.value
        self.bump(ctx, obj)
        for kind, target_id in targets:
            target_changed(ctx, obj, Ref(kind, target_id))
        return self.document(ctx, obj)



def _stored_id(target: Ref) -> str:
    """Associations name realms by their SO_GUID (requests name them by URI)."""
    return realm_object_id(target.object_id) if target.kind == "Realm" else target.object_id
