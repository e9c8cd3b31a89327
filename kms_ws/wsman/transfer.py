"""WS-Transfer (2004/09) Get / Put / Create / Delete on WS-Management resources. The
instance is named by wsman:ResourceURI + wsman:SelectorSet; Get and Delete have an empty
Body; Create and Put carry the object's kms element (Create on a key may carry a
kms:CreateKey instead)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from ..codec import documents, kms
from ..domain.errors import SchemaValidationError
from ..domain.model import Key
from ..service.ws_messages import AdminDocument, TransferRequest, TransferResult
from ..xmlns import ANONYMOUS, KMS, WXF
from . import resource_uris
from .call import WsCall, WsReply, epr

ACTIONS = {verb: f"{WXF}/{verb}" for verb in ("Get", "Put", "Create", "Delete")}
_K = f"{{{KMS}}}"


def _request(call: WsCall, with_body: bool) -> TransferRequest:
    body: Any = None
    if with_body:
        el = call.payload
        name = el.tag[len(_K):] if el is not None and el.tag.startswith(_K) else ""
        if el is not None and name == "CreateKey":
            body = kms.DECODERS[name](el)
        elif el is not None and name in documents._schema()[1]:
            body = AdminDocument(name, documents.decode(el))
        else:
            raise SchemaValidationError("this WS-Transfer request carries a kms object element")
    return TransferRequest(resource_uris.named(call.headers.resource_uri), call.headers.selectors,
                           call.headers.options, body)


def get(call: WsCall) -> WsReply:
    result: TransferResult = call.run("Transfer.Get", _request(call, False))
    return WsReply(ACTIONS["Get"] + "Response", [encode_object(result.object)])


def create(call: WsCall) -> WsReply:
    result: TransferResult = call.run("Transfer.Create", _request(call, True))
    created = epr(None, f"{{{WXF}}}ResourceCreated", call.addr.to or ANONYMOUS,
                  resource_uris.uri_of(result.kind), result.selectors)
    return WsReply(ACTIONS["Create"] + "Response", [created])


def put(call: WsCall) -> WsReply:
    result: TransferResult = call.run("Transfer.Put", _request(call, True))
    return WsReply(ACTIONS["Put"] + "Response", [encode_object(result.object)])


def delete(call: WsCall) -> WsReply:
    call.run("Transfer.Delete", _request(call, False))
    return WsReply(ACTIONS["Delete"] + "Response")


def encode_object(obj: Any) -> etree._Element:
    holder = etree.Element(_K + "Objects", nsmap={"kms": KMS})
    if isinstance(obj, Key):
        el = kms.encode_key(holder, obj)
    elif isinstance(obj, AdminDocument):
        el = documents.encode(holder, obj.kind, obj.document)
    else:
        raise TypeError(f"no encoder for {type(obj).__name__}")
    holder.remove(el)
    return el
