"""GetKey by data (§5.1): the key-assignment policy in force decides which key protects
the data presented, creating it when the policy says a new one is due; every data-set
binding reported this way is recorded (separately from the policy).

Without a policy that applies, GetKey by data returns the newest key already bound to
all the data sets presented (nothing is created). A request for decryption never creates
a key: it gets the newest key bound to the data.

Realms (issue 12.1). A key the policy creates goes into the policy's realms — those an
administrator associated it with, holding Create in each — narrowed to the realms of the
policy's template when that has realms; never into realms the caller's grants pick. A
key is only ever handed to a caller (and PEP) holding a right in one of its realms: a
pool key the caller cannot use (the policy was extended to the caller's realm after the
key was made) is replaced by a new one in the policy's realms, as one that can no longer
encrypt is."""

from __future__ import annotations

from ..crypto.random import generate_key
from ..domain import assignment, ciphers
from ..domain.errors import InvalidParameter, KeyNotFound, NotFound
from ..domain.lifecycle import effective_state
from ..domain.model import Endpoint, Key, KeyState, KeyUsage, SourceKind
from ..domain.realms import Right, realm_object_id, realms_with
from .admin.decoders import assignment_policy
from .context import RequestContext
from .key_creation import insert_key, new_key
from .key_versions import load_key
from .messages import GetKeyRequest


def applicable_policies(ctx: RequestContext,
                        caller: Endpoint) -> list[tuple[assignment.AssignmentPolicy, list[str]]]:
    """Enforcing assignment policies that apply in a realm where the caller holds at least
    Reference, with the realm ids each applies to."""
    mine = {realm_object_id(r) for r in realms_with(caller.grants, Right.REFERENCE)}
    out = []
    for obj in ctx.uow.objects.list_objects("KeyAssignmentPolicy", None, limit=1000,
                                            states=["Enforcing"]):
        realm_ids = [i for k, i in ctx.uow.objects.targets_of(obj.kind, obj.object_id)
                     if k == "Realm"]
        if mine & set(realm_ids):
            out.append((assignment_policy(obj.object_id, obj.body, obj.created_at), realm_ids))
    return out


def key_for_data(ctx: RequestContext, caller: Endpoint, req: GetKeyRequest,
                 usable: tuple[str, ...]) -> Key:
    found = applicable_policies(ctx, caller)
    policy = assignment.select_policy([p for p, _ in found], req.datasets)
    if policy is None or req.usage is KeyUsage.DECRYPT:
        ids = ctx.uow.keys.find_key_ids(usable, limit=1, datasets=req.datasets,
                                        template_id=req.template_id, order="newest")
        if not ids:
            raise KeyNotFound("no key is bound to these data sets")
        key = load_key(ctx, ids[0])
    else:
        realm_ids = next(r for p, r in found if p is policy)
        key = _assigned_key(ctx, caller, policy, req, usable, realm_ids)
        for d in req.datasets:
            if not ctx.uow.keys.has_binding(key.key_id, d):
                ctx.uow.keys.add_bindings(key.key_id, [d], caller.endpoint_id, ctx.now)
        key = load_key(ctx, key.key_id)
    if policy is not None:
        key.assignment_policy_id, key.assignment_scope = policy.policy_id, policy.scope
    return key


def _can_encrypt(key: Key, ctx: RequestContext) -> bool:
    return effective_state(key, ctx.now) is KeyState.ACTIVE and key.value is not None


def _assigned_key(ctx: RequestContext, caller: Endpoint, policy: assignment.AssignmentPolicy,
                  req: GetKeyRequest, usable: tuple[str, ...], realm_ids: list[str]) -> Key:
    if policy.generation == "PerDataSet":
        ids = ctx.uow.keys.find_key_ids(usable, limit=1, datasets=req.datasets, order="newest")
        if ids:
            key = load_key(ctx, ids[0])
            if _can_encrypt(key, ctx):
                return key
    else:
        newest = ctx.uow.objects.newest_assigned_key(policy.policy_id)
        if newest is not None:
            key = load_key(ctx, newest)
            if _can_encrypt(key, ctx) and set(key.realms) & set(usable) and \
                    assignment.pool_key_still_current(policy, key.created_at, ctx.now):
                return key
    return _create(ctx, caller, policy, req, usable, realm_ids)


def _create(ctx: RequestContext, caller: Endpoint, policy: assignment.AssignmentPolicy,
            req: GetKeyRequest, usable: tuple[str, ...], realm_ids: list[str]) -> Key:
    template = ctx.uow.templates.get_template(template_id=policy.template_id) \
        if policy.template_id else None
    if policy.template_id and template is None:
        raise NotFound(f"no key template {policy.template_id}")
    cipher_type, length = ciphers.resolve(template.cipher_type if template else None,
                                          template.length_bits if template else None)
    realms = {o.name for o in (ctx.uow.objects.get_object("Realm", i) for i in realm_ids)
              if o is not None and o.name}
    if template is not None and template.realms:
        realms &= set(template.realms)
    if not realms & set(usable):
        raise InvalidParameter(f"key-assignment policy {policy.policy_id} makes its keys in "
                               f"{', '.join(sorted(realms)) or 'no realm'} (its realms and "
                               "its template's): none the caller (and its PEP) may use")
    key = new_key(ctx, cipher_type, length, None, None, template, (),
                  req.datasets if policy.generation == "PerDataSet" else (), None,
                  SourceKind.KMS, None, sorted(realms))
    key.value = generate_key(length)
    insert_key(ctx, caller, key)
    ctx.uow.objects.associate("KeyAssignmentPolicy", policy.policy_id, "Key", key.key_id)
    return key
