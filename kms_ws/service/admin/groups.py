"""§4.10 client groups and §4.11 key groups: static members (associations) or dynamic
{Pattern, Attribute} rules evaluated at request time."""

from __future__ import annotations

from ...domain import groups
from ...domain.errors import AlreadyExists, InvalidParameter, NotFound
from ...domain.model import AdminObject
from ...domain.realms import Right
from ..context import RequestContext
from .base import StoredKind, guid_list
from .decoders import group_rules
from .messages import Document, Ref


class GroupKind(StoredKind):
    member_kind = ""

    def validate(self, ctx: RequestContext, body: Document) -> None:
        if body.get("Members"):
            raise InvalidParameter("add static members by associating them with the group")
        for ref in ("WrappingPolicyId", "AccessPolicyId"):
            if ref in body:
                raise InvalidParameter(f"attach policies by association, not {ref}")
        groups.check_group(groups.Group("new", body.get("Type") == "Dynamic",
                                        rules=group_rules(body)))

    @property
    def targets(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({self.member_kind})

    def extra(self, ctx: RequestContext, obj: AdminObject) -> Document:
        out: Document = {}
        members = [i for k, i in ctx.uow.objects.targets_of(self.element, obj.object_id)
                   if k == self.member_kind]
        if obj.body.get("Type") != "Dynamic":
            out["Members"] = guid_list(members)
        for kind, field in (("WrappingPolicy", "WrappingPolicyId"),
                            ("AccessDistributionPolicy", "AccessPolicyId")):
            found = ctx.uow.objects.sources_of(self.element, obj.object_id, [kind])
            if found and field in self.policy_fields:
                out[field] = found[0][1]
        return out

    policy_fields: tuple[str, ...] = ()

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind != self.member_kind:
            return super().associate(ctx, object_id, target, rights)
        obj = self.load(ctx, object_id, Right.EDIT)
        if obj.body.get("Type") == "Dynamic":
            raise InvalidParameter("a dynamic group's members follow its rules")
        self.target_realms(ctx, target, Right.REFERENCE)
        if not ctx.uow.objects.associate(self.element, object_id, target.kind, target.object_id):
            raise AlreadyExists(f"{target.object_id} is already a member")
        self.bump(ctx, obj)

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind != self.member_kind:
            return super().disassociate(ctx, object_id, target)
        obj = self.load(ctx, object_id, Right.EDIT)
        if not ctx.uow.objects.disassociate(self.element, object_id, target.kind, target.object_id):
            raise NotFound(f"{target.object_id} is not a member")
        self.bump(ctx, obj)


class ClientGroupKind(GroupKind):
    element = "ClientGroup"
    id_field = "GroupId"
    member_kind = "Client"


class KeyGroupKind(GroupKind):
    element = "KeyGroup"
    id_field = "GroupId"
    member_kind = "Key"
    policy_fields = ("WrappingPolicyId", "AccessPolicyId")
