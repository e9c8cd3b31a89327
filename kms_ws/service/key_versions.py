"""Loading keys (unsealed) and changing them: every change to a key's attributes or to
a policy it references gives it a new VERSION and EDIT_DATETIME and re-seals its value
under the new version, in the same transaction (the version is sealed in as associated
data, so a row cannot be rolled back to an old value unnoticed)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from ..crypto import sealing
from ..crypto.master_key import MasterKeyError
from ..domain.durations import add_duration
from ..domain.errors import InternalError, KeyNotFound, NotFound
from ..domain.model import AdminObject, Key, KeyState
from . import notifications
from .context import RequestContext
from .policies import key_policies

log = logging.getLogger("kms_ws.service")


def load_key(ctx: RequestContext, key_id: str) -> Key:
    found = ctx.uow.keys.get_key(key_id)
    if found is None:
        raise KeyNotFound(f"no key {key_id}")
    key, sealed, master_key_id = found
    if sealed is not None:
        try:  # any master key of the keyring: a rotation may be re-sealing right now
            aead = ctx.master.aead_for(master_key_id)
        except MasterKeyError as exc:
            log.error("key %s: %s", key_id, exc)
            raise InternalError(f"the master key sealing key {key_id} is not available") \
                from None
        try:
            key.value = sealing.unseal(aead, key.key_id, key.version, sealed)
        except sealing.SealError:
            raise InternalError(f"stored value of key {key_id} failed its integrity check") \
                from None
    return key


def apply_retention(ctx: RequestContext, key: Key,
                    in_force: dict[str, AdminObject] | None = None) -> None:
    """Stamp T_EXPIRED / T_DISABLED from the retention policy in force for the key
    (`in_force`: the key's policies when the caller has them already)."""
    policy = (key_policies(ctx, key) if in_force is None else in_force).get("RetentionPolicy")
    if policy is None:
        return
    if policy.body.get("TExpiration"):
        key.t_expired = add_duration(key.created_at, policy.body["TExpiration"])
    if policy.body.get("TDisable"):
        key.t_disabled = add_duration(key.created_at, policy.body["TDisable"])


def narrow_for_client(key: Key, policies: list[AdminObject]) -> None:
    """Bring the key's T_EXPIRED / T_DISABLED forward to what the client's retention
    policies (policies.client_retention) allow it: creation + T_EXPIRATION / T_DISABLE
    of each, the earliest date winning. They only narrow: a key's own earlier dates
    stay (§5.2: the key's life cycle supersedes)."""
    for policy in policies:
        for field, attr in (("TExpiration", "t_expired"), ("TDisable", "t_disabled")):
            if policy.body.get(field):
                limit = add_duration(key.created_at, policy.body[field])
                current = getattr(key, attr)
                if current is None or limit < current:
                    setattr(key, attr, limit)


def touch_key(ctx: RequestContext, key_id: str,
              change: Callable[[Key], None] | None = None) -> Key:
    """Apply `change` (or only re-read the policies), version the key, re-seal it."""
    key = load_key(ctx, key_id)
    if change is not None:
        change(key)
    if key.state is not KeyState.DESTROYED:
        apply_retention(ctx, key)
    key.version += 1
    key.edit_datetime = ctx.now
    erase = key.state is KeyState.DESTROYED
    if erase:
        key.value = None
    master_id, aead = ctx.sealing_key()
    sealed = sealing.seal(aead, key.key_id, key.version, key.value) \
        if key.value is not None else None
    seq = ctx.uow.keys.update_key(key, sealed, erase=erase, master_key_id=master_id)
    notifications.key_changed(ctx, key, seq)
    return key


def touch_template(ctx: RequestContext, template_id: str) -> None:
    tpl = ctx.uow.templates.get_template(template_id=template_id)
    if tpl is None:
        raise NotFound(f"no key template {template_id}")
    seq = ctx.uow.templates.update_template(
        dataclasses.replace(tpl, version=tpl.version + 1), ctx.now)
    notifications.object_changed(ctx, "KeyTemplate", tpl.realms, seq)
