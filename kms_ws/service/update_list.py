"""§6.12 GetUpdateList over WS-Enumeration: Enumerate / Pull / Renew / GetStatus / Release.

A filter picks keys (Type Keys or AllKeys, Scope a client or PEP, the client's token) or
the objects of a custom type (service.update_types: policies, groups, endpoint types),
and — from a token, not from zero — their removals (domain.model.Removal: deleted, or out
of the caller's sight: service.visibility); the snapshot is bounded by the store's change
sequence at Enumerate time, and every page is one keyset query per source after the
cursor's position. A position older than the newest removal forgotten (the horizon) is
refused: the client lists again from zero. The final page carries the new token (the
snapshot bound); reaching it acknowledges pending UpdatePending notifications.

A client lists a PEP's keys (Scope PepId) only for a PEP it serves, and with the PEP's
own proof when the PEP authenticates itself (service.pep_auth). The context records the
scope and that it was proved; Pull, Renew and GetStatus check again that the client still
serves the PEP, and refuse a context that predates the PEP's own credential."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ..domain.errors import (
    CannotProcessFilter,
    DestinationUnreachable,
    InvalidExpirationTime,
    PepProofRequired,
    PermissionDenied,
    ResyncRequired,
    UnsupportedEnumerationMode,
)
from ..domain.lifecycle import effective_state
from ..domain.model import Endpoint, Key
from ..domain.realms import Right, realms_with
from ..domain.records import KEY_SELECTORS, KeyScope
from . import enumeration_context as ec
from .admin.base import StoredKind
from .admin.registry import kind
from .admin.template import TemplateKind
from .caching import resolve_for
from .context import RequestContext
from .key_versions import narrow_for_client
from .keys import _caller, _pep_for
from .pep_auth import proof_required
from .policies import client_retention
from .transfer import resource
from .update_types import CUSTOM_TYPES, KEY_KIND, TEMPLATE_TYPE, UPDATE_TYPES
from .ws_messages import (
    AdminDocument,
    ContextRequest,
    ContextStatus,
    EnumerateRequest,
    PullRequest,
    UpdateFilter,
    UpdatePage,
)

DEFAULT_EXPIRY = timedelta(minutes=10)
MAX_EXPIRY = timedelta(hours=24)
MAX_ITEMS = 1000
ENUMERATION_MODES = ("", "EnumerateEPR", "EnumerateObjectAndEPR")  # "": objects only


def enumerate_updates(ctx: RequestContext, req: EnumerateRequest) -> UpdatePage:
    caller = _caller(ctx)
    if not resource(req.resource).enumerable:
        raise DestinationUnreachable(f"{req.resource.given} cannot be enumerated")
    if req.mode not in ENUMERATION_MODES:
        raise UnsupportedEnumerationMode(
            f"EnumerationMode {req.mode} is not supported; use EnumerateEPR or "
            f"EnumerateObjectAndEPR, or none for objects", supported=ENUMERATION_MODES[1:])
    f = req.filter
    _check_filter(ctx, caller, f, req.action, (("UpdateType", f.type),))
    expires = _expiry(ctx.now, req.expires_seconds, req.expires_at)
    high = ctx.uow.changes.high_water()
    proved = (("proved", "1"),) if ctx.pep_proof_verified else ()
    full = (("full", "1"),) if f.token == 0 else ()  # everything: no removals
    cursor = ec.Cursor(pos=f.token, high=high, caller=caller.endpoint_id,
                       expires=int(expires.replace(tzinfo=UTC).timestamp()),
                       filter=_encode_filter(f) + proved + full, mode=req.mode)
    limit = min(req.max_elements, MAX_ITEMS) if req.optimize else 0
    page = _page(ctx, caller, cursor, limit)
    if req.total_estimate:
        page.total = _count(ctx, caller, f, f.token, high, _removals(cursor))
    return page


def pull(ctx: RequestContext, req: PullRequest) -> UpdatePage:
    caller = _caller(ctx)
    cursor = _open(ctx, caller, req.context)
    page = _page(ctx, caller, cursor, min(req.max_elements, MAX_ITEMS))
    if req.total_estimate:
        page.total = _count(ctx, caller, _decode_filter(cursor.filter), cursor.pos,
                            cursor.high, _removals(cursor))
    return page


def renew(ctx: RequestContext, req: ContextRequest) -> ContextStatus:
    caller = _caller(ctx)
    cursor = _open(ctx, caller, req.context)
    expires = _expiry(ctx.now, req.expires_seconds, req.expires_at)
    renewed = ec.Cursor(cursor.pos, cursor.high, cursor.caller,
                        int(expires.replace(tzinfo=UTC).timestamp()), cursor.filter,
                        cursor.mode)
    return ContextStatus(ec.seal(renewed, ctx.context_mac_key()), expires)


def get_status(ctx: RequestContext, req: ContextRequest) -> ContextStatus:
    caller = _caller(ctx)
    cursor = _open(ctx, caller, req.context)
    return ContextStatus(None, _from_unix(cursor.expires))


def release(ctx: RequestContext, req: ContextRequest) -> ContextStatus:
    """Contexts hold no server state: Release checks the context and forgets nothing."""
    return get_status(ctx, req)


# ---------------------------------------------------------------------------------------

def _open(ctx: RequestContext, caller: Endpoint, context: str) -> ec.Cursor:
    """The context's cursor; a PEP scope still served by the caller, and proved if the
    PEP now authenticates itself."""
    cursor = ec.open_context(context, ctx.context_mac_key(), caller.endpoint_id, ctx.now)
    pairs = dict(p for p in cursor.filter if not p[0].startswith("="))
    if pairs.get("pep") and not caller.is_admin:
        pep = _pep_for(ctx, caller, pairs["pep"])
        if pep is not None and proof_required(pep) and pairs.get("proved") != "1":
            raise PepProofRequired(f"PEP {pep.endpoint_id} authenticates itself: enumerate "
                                   "its keys again, with its proof")
    return cursor


def _removals(cursor: ec.Cursor) -> bool:
    """Whether the list holds removals: a list from a token (not from zero: everything
    there is), of a type, not a SelectorFilter query of today's keys."""
    pairs = dict(p for p in cursor.filter if not p[0].startswith("="))
    return pairs.get("full") != "1" and not any(p[0].startswith("=") for p in cursor.filter)


def _check_horizon(ctx: RequestContext, cursor: ec.Cursor) -> None:
    """A list from a position older than the newest removal forgotten could miss one:
    the client must list everything again, from zero."""
    through = ctx.uow.changes.removals_pruned_through()
    if cursor.pos < through:
        raise ResyncRequired(
            f"token {cursor.pos} is older than the removals kept (up to {through} are "
            "forgotten): list again from token 0 and replace what you hold")


def _page(ctx: RequestContext, caller: Endpoint, cursor: ec.Cursor, limit: int) -> UpdatePage:
    f = _decode_filter(cursor.filter)
    removals = _removals(cursor)
    if removals:
        _check_horizon(ctx, cursor)
    rows = _rows(ctx, caller, f, cursor.pos, cursor.high, limit + 1, removals) \
        if limit else []
    more = len(rows) > limit if limit else True  # a plain Enumerate always hands a context
    items = rows[:limit]
    # Each key carries the T_CACHED its receiver (the PEP the list is for, else the
    # caller) would get with GetKey: resolved once for the page, applied per key.
    if f.type not in CUSTOM_TYPES:
        keys = [k for _, k in items if isinstance(k, Key)]  # not their removals
        retention = client_retention(ctx, caller) if keys else []
        for k in keys:  # the state its dates put it in now, as GetKey shows it to the caller
            narrow_for_client(k, retention)
            k.state = effective_state(k, ctx.now)
        resolve_for(ctx, _receiver(ctx, caller, f), keys,
                    (items[0][0], items[-1][0]) if items else None)
    key = ctx.context_mac_key()

    def context_after(n: int) -> str | None:
        if n >= len(items) and not more:
            return None
        pos = items[n - 1][0] if n else cursor.pos
        return ec.seal(cursor.advanced(pos), key)

    return UpdatePage(items, more, cursor.mode, _from_unix(cursor.expires), f.type,
                      cursor.high, context_after, caller_id=caller.endpoint_id,
                      acknowledges=not f.equals, pep_id=f.pep_id)


def _receiver(ctx: RequestContext, caller: Endpoint, f: UpdateFilter) -> Endpoint:
    pep = ctx.uow.endpoints.get_endpoint(f.pep_id) if f.pep_id else None
    return pep or caller


def _stored(name: str) -> StoredKind:
    """The kind of a custom update type's objects (kept in the objects table)."""
    found = kind(name)
    assert isinstance(found, StoredKind)
    return found


def _rows(ctx: RequestContext, caller: Endpoint, f: UpdateFilter, pos: int, high: int,
          limit: int, removals: bool) -> list[tuple[int, Any]]:
    """Keys, or a custom type's objects as their documents, and (removals) the removals
    the caller may learn of, in change order."""
    kinds = CUSTOM_TYPES.get(f.type)
    readable = realms_with(caller.grants, Right.READ)
    found: list[tuple[int, Any]]
    if kinds is None:
        scope = _scope(caller, f)
        found = list(ctx.uow.changes.key_page(scope, pos, high, limit))
        kinds = (KEY_KIND,)
    elif f.type == TEMPLATE_TYPE:
        templates = ctx.uow.templates.template_page(readable, pos, high, limit)
        template_kind = kind(TEMPLATE_TYPE)
        assert isinstance(template_kind, TemplateKind)
        found = [(seq, AdminDocument(TEMPLATE_TYPE, template_kind.document(ctx, tpl)))
                 for seq, tpl in templates]
    else:
        found = [(seq, AdminDocument(obj.kind, _stored(obj.kind).document(ctx, obj)))
                 for seq, obj in ctx.uow.objects.object_page(kinds, readable, pos, high, limit)]
    if not removals:
        return found
    # the removals, merged in change order: each source is one keyset query LIMIT n
    # after the cursor, so a page costs the same at any position
    removed = ctx.uow.changes.removal_page(kinds, readable, pos, high, limit,
                                           caller.endpoint_id, _pep(f))
    return sorted(found + removed, key=lambda item: item[0])[:limit]


def _count(ctx: RequestContext, caller: Endpoint, f: UpdateFilter, pos: int,
           high: int, removals: bool) -> int:
    kinds = CUSTOM_TYPES.get(f.type)
    readable = realms_with(caller.grants, Right.READ)
    removed = ctx.uow.changes.count_removals(kinds or (KEY_KIND,), readable, pos, high,
                                             caller.endpoint_id, _pep(f)) if removals else 0
    if kinds is None:
        return removed + ctx.uow.changes.count_keys(_scope(caller, f), pos, high)
    if f.type == TEMPLATE_TYPE:
        return removed + ctx.uow.templates.count_templates(readable, pos, high)
    return removed + ctx.uow.objects.count_objects(kinds, readable, pos, high)


def _pep(f: UpdateFilter) -> str | None:
    return f.pep_id if f.type == "Keys" else None


def _scope(caller: Endpoint, f: UpdateFilter) -> KeyScope:
    return KeyScope(realms=realms_with(caller.grants, Right.READ), pep_id=_pep(f),
                    equals=f.equals)


def _check_filter(ctx: RequestContext, caller: Endpoint, f: UpdateFilter, operation: str,
                  bound: tuple[tuple[str, str], ...]) -> None:
    """The filter is one we serve; a PEP scope is one the caller serves, proved by the
    PEP (`operation` and `bound`: what its proof signs) when it authenticates itself."""
    if f.type not in UPDATE_TYPES:
        raise CannotProcessFilter(f"update type {f.type} is not one of "
                                  f"{', '.join(UPDATE_TYPES)}")
    if f.type in CUSTOM_TYPES and f.pep_id is not None:
        raise CannotProcessFilter(f"a PEP scope selects keys; {f.type} takes none")
    unknown = {n for n, _ in f.equals} - set(KEY_SELECTORS)
    if unknown:
        raise CannotProcessFilter(f"cannot filter keys on {', '.join(sorted(unknown))}")
    if f.client_id is not None and f.client_id != caller.endpoint_id and not caller.is_admin:
        raise PermissionDenied("a client asks for its own updates or its PEPs'")
    if (f.pep_id is not None and not caller.is_admin) or ctx.pep_proof is not None:
        # a PEP's keys only through a client it serves; a proof only for a PEP scope
        _pep_for(ctx, caller, f.pep_id, operation, None, bound)


def _encode_filter(f: UpdateFilter) -> tuple[tuple[str, str], ...]:
    base = (("type", f.type), ("client", f.client_id or ""), ("pep", f.pep_id or ""))
    return base + tuple(("=" + n, v) for n, v in f.equals)


def _decode_filter(pairs: tuple[tuple[str, str], ...]) -> UpdateFilter:
    d = dict(p for p in pairs if not p[0].startswith("="))
    return UpdateFilter(type=d["type"], client_id=d["client"] or None, pep_id=d["pep"] or None,
                        equals=tuple((n[1:], v) for n, v in pairs if n.startswith("=")))


def _expiry(now: datetime, seconds: float | None, at: datetime | None) -> datetime:
    if at is not None:
        delta = at - now
    elif seconds is not None:
        delta = timedelta(seconds=seconds)
    else:
        return now + DEFAULT_EXPIRY
    if delta <= timedelta(0) or delta > MAX_EXPIRY:
        raise InvalidExpirationTime(f"an enumeration expires between now and "
                                    f"{int(MAX_EXPIRY.total_seconds())} s from now")
    return now + delta


def _from_unix(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
