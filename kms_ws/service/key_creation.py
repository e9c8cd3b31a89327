"""New keys (§6.5 CreateKey, §6.6 StoreKey, §5.1 GetKey by data through a key-assignment
policy): which realms they go into, the Key made, and its insertion (sealed, with its
retention dates, on the change sequence)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ..crypto import sealing
from ..domain.errors import InvalidParameter
from ..domain.model import (
    DataSet,
    Endpoint,
    Extensions,
    Key,
    KeyState,
    KeyTemplate,
    NameValue,
    SourceKind,
)
from ..domain.realms import Right, check_realm_uri, new_object_realms, realms_with
from . import notifications
from .context import RequestContext
from .key_versions import apply_retention
from .messages import RealmAssociation

DEFAULT_T_CACHED = 3600


def key_realms(ctx: RequestContext, caller: Endpoint, named: Sequence[RealmAssociation],
               template: KeyTemplate | None, pep: Endpoint | None) -> tuple[str, ...]:
    """Where a new key goes (issue 12.1: never every realm where the caller may create).
    The realms named, the caller holding Create in each and, when it is made from a
    template in realms, all of them among the template's; else the caller's one default
    realm (domain.realms.new_object_realms), among those where the PEP it is made for
    holds a right. A PEP must be able to receive the key it is made for."""
    if any(a.rights for a in named):
        raise InvalidParameter("a key is in realms; rights are given to endpoints "
                               "(RealmAssociation of a key carries no Right)")
    asked = [check_realm_uri(a.realm) for a in named]
    within = list(template.realms) if template is not None and template.realms else None
    pep_realms = realms_with(pep.grants, Right.REFERENCE) if pep is not None else ()
    bound = "the template's realms"
    if pep is not None and not asked:  # a default the PEP can receive it in
        within = [r for r in (within if within is not None else pep_realms) if r in pep_realms]
        bound = "the PEP's realms" + (" and the template's" if template and template.realms
                                      else "")
    realms = new_object_realms(caller.grants, asked, ctx.settings.default_realm, "key",
                               within, bound)
    if pep is not None and not set(realms) & set(pep_realms):
        raise InvalidParameter(f"PEP {pep.endpoint_id} holds no right in "
                               f"{', '.join(realms)}: it could never receive this key")
    return realms


def new_key(ctx: RequestContext, cipher_type: str, length: int,
            friendly_name: str | None, description: str | None, template: KeyTemplate | None,
            attributes: Sequence[NameValue], datasets: Sequence[DataSet],
            pep: Endpoint | None, source: SourceKind, source_id: str | None,
            realms: Sequence[str]) -> Key:
    merged = {a.name: a for a in (template.attributes if template else ())}
    merged.update({a.name: a for a in attributes})
    return Key(
        key_id=str(uuid.uuid4()), state=KeyState.ACTIVE, cipher_type=cipher_type,
        length_bits=length, version=1, edit_datetime=ctx.now, created_at=ctx.now,
        t_cached=template.t_cached if template else DEFAULT_T_CACHED,
        friendly_name=friendly_name, description=description or
        (template.description if template else None), source_kind=source, source_id=source_id,
        template_id=template.template_id if template else None,
        pep_id=pep.endpoint_id if pep else None,
        attributes=tuple(sorted(merged.values(), key=lambda a: a.name)),
        datasets=tuple(_unique(datasets)), realms=tuple(sorted(realms)),
        extensions=template.extensions if template else Extensions())


def _unique(datasets: Sequence[DataSet]) -> list[DataSet]:
    seen: dict[tuple[str, str], DataSet] = {}
    for d in datasets:
        seen.setdefault((d.name, d.value), d)
    return list(seen.values())


def insert_key(ctx: RequestContext, caller: Endpoint, key: Key) -> None:
    assert key.value is not None
    apply_retention(ctx, key)
    master_id, aead = ctx.sealing_key()
    sealed = sealing.seal(aead, key.key_id, key.version, key.value)
    seq = ctx.uow.keys.insert_key(key, sealed, master_id, caller.endpoint_id, ctx.now)
    notifications.key_changed(ctx, key, seq)
