"""§5.1 data-set bindings as a key query: "the KMS will store all data set bindings that
are reported to it, for future audit and key query commands".

Every binding reported (CreateKey/StoreKey data sets, GetKey by data for encryption) is
kept with who reported it and when. A client — not only an administrator — asks which
keys protected a data set, or which data sets a key protected (GetBindings; the
administrators' AdminBindings is the same query): the bindings of keys in realms where
the caller holds Read, newest first, with their time.

Reading bindings needs the Read right: a caller that holds Read in no realm is refused
(E_PERMISSION_DENIED, audited) whatever it asks, so the refusal says nothing about the
data. Bindings of keys in realms it cannot read are left out in the query itself (before
the limit), so an answer is the same whether or not such a binding exists. Naming a key
is naming an object: a key the caller holds no right on does not exist for it
(kms:NotFound, as for an unknown id); with Reference only, E_PERMISSION_DENIED."""

from __future__ import annotations

from ..domain.errors import InternalError, InvalidParameter, NotFound, PermissionDenied
from ..domain.model import DataSet, Endpoint
from ..domain.realms import Right, usable_realms
from .admin.base import need
from .context import RequestContext
from .messages import BindingQuery, BindingQueryResult


def readable_realms(caller: Endpoint, pep: Endpoint | None = None) -> tuple[str, ...]:
    """Realms whose keys' bindings the caller may read (for a PEP: that it shares with the
    PEP); refused when there are none."""
    realms = usable_realms(caller.grants, Right.READ, pep.grants if pep is not None else None)
    if not realms:
        raise PermissionDenied("the Read right is needed to read data-set bindings"
                               + (" (in a realm shared with the PEP)" if pep else "")
                               + "; the caller holds it in no realm")
    return realms


def get_bindings(ctx: RequestContext, req: BindingQuery) -> BindingQueryResult:
    """GetBindings (any client) and AdminBindings (administrators)."""
    if ctx.caller is None:  # the dispatcher authenticates first; this is a safety net
        raise InternalError("operation ran without an authenticated caller")
    readable = readable_realms(ctx.caller)
    if req.key_id is not None:
        found = ctx.uow.keys.get_key(req.key_id)
        if found is None:
            raise NotFound(f"no key {req.key_id}")
        need(ctx, found[0].realms, Right.READ, f"key {req.key_id}")
        rows = ctx.uow.keys.bindings(readable, key_id=req.key_id, limit=req.max_records + 1)
    elif req.dataset_name is not None:
        rows = ctx.uow.keys.bindings(readable, limit=req.max_records + 1,
                                     dataset=DataSet(req.dataset_name, req.dataset_value or ""))
    else:
        raise InvalidParameter("name a KeyId or a DataSet")
    return BindingQueryResult(tuple(rows[:req.max_records]), more=len(rows) > req.max_records)
