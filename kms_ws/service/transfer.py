"""The object kinds reachable by WS-Transfer: each kind (its schema element; its
ResourceURI: kms_ws.wsman.resource_uris) has instances named by one selector (the kind's
id field: KeyId, PepId, ClientId, TemplateId, PolicyId, ...). Get/Put/Create/Delete are
the administrative handlers every kind already has (service/admin), with their realm
rights; keys add what their clients need: Get by any caller with the Read right
(metadata) or, with the IncludeKeyValue option, through GetKey's delivery; Create from a
kms:CreateKey."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..domain.errors import (
    ActionNotSupported,
    DestinationUnreachable,
    InvalidSelectors,
    KeyNotFound,
    SelectorProblem,
)
from ..domain.lifecycle import effective_state
from ..domain.model import KeyUsage
from ..domain.realms import Right, allows
from . import keys
from .admin import handlers as admin
from .admin.messages import AdminRequest, AdminResult
from .admin.registry import KINDS
from .audit_trail import ID_FIELDS
from .caching import resolve_for
from .context import RequestContext
from .key_versions import load_key, narrow_for_client
from .messages import CreateKeyRequest, GetKeyRequest
from .policies import client_retention
from .ws_messages import AdminDocument, ResourceName, TransferRequest, TransferResult

Handler = Callable[[RequestContext, TransferRequest], TransferResult]

KEY = "Key"
# wsman:OptionSet option asking Get on a key for its value (metadata otherwise).
INCLUDE_VALUE_OPTION = "IncludeKeyValue"


@dataclass(frozen=True)
class ResourceKind:
    kind: str  # the schema element of the objects
    selector: str  # the selector naming one instance
    get: Handler | None = None
    create: Handler | None = None
    put: Handler | None = None
    delete: Handler | None = None
    enumerable: bool = False


RESOURCES: dict[str, ResourceKind] = {}


def register(kind: ResourceKind) -> None:
    RESOURCES[kind.kind] = kind


def resource(name: ResourceName) -> ResourceKind:
    kind = RESOURCES.get(name.kind or "")
    if kind is None:
        raise DestinationUnreachable(f"no resource {name.given}" if name.given else
                                     "the request names no wsman:ResourceURI")
    return kind


def selector(req: TransferRequest, kind: ResourceKind) -> str:
    """The selector value naming the instance (a UUID); InvalidSelectors otherwise."""
    sel = req.selectors or {}
    named = req.resource.given
    if not sel:
        raise InvalidSelectors(f"{named} needs the selector {kind.selector}")
    unknown = set(sel) - {kind.selector}
    if unknown:
        raise InvalidSelectors(f"unknown selector {', '.join(sorted(unknown))} for {named}",
                               SelectorProblem.UNEXPECTED)
    value = sel[kind.selector]
    try:
        if str(uuid.UUID(value)) != value.lower():
            raise ValueError
    except ValueError:
        raise InvalidSelectors(f"selector value {value[:64]!r} is not a UUID",
                               SelectorProblem.INVALID_VALUE) from None
    return value.lower()


def _op(verb: str) -> Handler:
    def run(ctx: RequestContext, req: TransferRequest) -> TransferResult:
        kind = resource(req.resource)
        handler: Handler | None = getattr(kind, verb)
        if handler is None:
            raise ActionNotSupported(f"{verb.capitalize()} is not supported on "
                                     f"{req.resource.given}")
        return handler(ctx, req)
    return run


transfer_get, transfer_create = _op("get"), _op("create")
transfer_put, transfer_delete = _op("put"), _op("delete")


# ---- every administered kind: the administrative handlers ------------------------------

def _result(kind: ResourceKind, res: AdminResult) -> TransferResult:
    doc = res.documents[0] if res.documents else None
    obj = AdminDocument(kind.kind, doc) if doc is not None else None
    object_id = str(doc.get(kind.selector, "")) if doc is not None else ""
    return TransferResult(kind.kind, obj, {kind.selector: object_id} if object_id else {})


def _document(kind: ResourceKind, req: TransferRequest) -> dict[str, Any]:
    body = req.body
    if not isinstance(body, AdminDocument) or body.kind != kind.kind:
        raise ActionNotSupported(f"this request on {req.resource.given} takes a "
                                 f"kms:{kind.kind} body")
    return body.document


def _admin_get(ctx: RequestContext, req: TransferRequest) -> TransferResult:
    kind = resource(req.resource)
    return _result(kind, admin.admin_get(ctx, AdminRequest("Get", kind.kind,
                                                           selector(req, kind))))


def _admin_create(ctx: RequestContext, req: TransferRequest) -> TransferResult:
    kind = resource(req.resource)
    return _result(kind, admin.admin_create(ctx, AdminRequest(
        "Create", kind.kind, document=_document(kind, req))))


def _admin_put(ctx: RequestContext, req: TransferRequest) -> TransferResult:
    """A versioned edit: the representation carries the Version it was read at."""
    kind = resource(req.resource)
    object_id, doc = selector(req, kind), _document(kind, req)
    if str(doc.get(kind.selector, "")).lower() != object_id:
        raise InvalidSelectors(f"the body's {kind.selector} is not the selected instance",
                               SelectorProblem.INVALID_VALUE)
    return _result(kind, admin.admin_edit(ctx, AdminRequest("Edit", kind.kind, document=doc)))


def _admin_delete(ctx: RequestContext, req: TransferRequest) -> TransferResult:
    kind = resource(req.resource)
    version = req.options.get("Version")
    return _result(kind, admin.admin_delete(ctx, AdminRequest(
        "Delete", kind.kind, selector(req, kind),
        version=int(version) if version and version.isdigit() else None)))


# ---- keys: what clients need besides administration -------------------------------------

def _get_key(ctx: RequestContext, req: TransferRequest) -> TransferResult:
    caller = keys._caller(ctx)
    key_id = selector(req, KEY_KIND)
    if req.options.get(INCLUDE_VALUE_OPTION, "").lower() in ("true", "1"):
        usage = req.options.get("Usage")
        got = keys.get_key(ctx, GetKeyRequest(
            key_id=key_id, usage=KeyUsage(usage) if usage in ("Encrypt", "Decrypt") else None))
        return TransferResult(KEY, got.keys[0], {"KeyId": key_id})
    key = load_key(ctx, key_id)
    if not allows(caller.grants, key.realms, Right.READ):
        raise KeyNotFound(f"no key {key_id}")  # as if it did not exist: ids are no oracle
    key.value = key.blob = None
    narrow_for_client(key, client_retention(ctx, caller))  # the dates it has for the caller
    key.state = effective_state(key, ctx.now)  # the state its dates put it in now
    resolve_for(ctx, caller, [key])  # the T_CACHED GetKey would deliver to this caller
    return TransferResult(KEY, key, {"KeyId": key_id})


def _create_key(ctx: RequestContext, req: TransferRequest) -> TransferResult:
    if isinstance(req.body, AdminDocument):
        return _admin_create(ctx, req)
    if not isinstance(req.body, CreateKeyRequest):
        raise ActionNotSupported("Create on a key takes a kms:CreateKey or kms:Key body")
    key = keys.create_key(ctx, req.body).key
    key.value = key.blob = None  # Create answers with a reference; Get delivers the value
    return TransferResult(KEY, key, {"KeyId": key.key_id})


KEY_KIND = ResourceKind(KEY, "KeyId", get=_get_key, create=_create_key,
                        put=_admin_put, delete=_admin_delete, enumerable=True)

for _kind in KINDS:
    register(KEY_KIND if _kind == KEY else ResourceKind(
        _kind, ID_FIELDS[_kind], get=_admin_get, create=_admin_create,
        put=_admin_put, delete=_admin_delete))
