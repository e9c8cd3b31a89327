"""WS-Enumeration (2004/09) with the DSP0226 extensions, carrying §6.12 GetUpdateList.

Filter dialects: ours (`urn:kms-ws:p1619.3:1/GetUpdateList`, a kms:GetUpdateList element)
and the WS-Management SelectorFilter; no filter means every key the caller may see.
Clients in the wild pull while the context text is non-empty and ignore EndOfSequence:
the last PullResponse omits the context, a complete optimized EnumerateResponse carries
an empty one. MaxElements, MaxCharacters, MaxTime and MaxEnvelopeSize bound each page."""

from __future__ import annotations

import time

from lxml import etree

from ..codec import documents, key_xml, kms
from ..domain.errors import (
    CannotProcessFilter,
    EnumerationTimedOut,
    EnvelopeTooLarge,
    FilterDialectRequestedUnavailable,
)
from ..domain.model import Key, Removal
from ..security.xml import Spliced, child_text, text_of
from ..service.transfer import resource
from ..service.ws_messages import (
    AdminDocument,
    ContextRequest,
    ContextStatus,
    EnumerateRequest,
    PullRequest,
    ResourceName,
    UpdateFilter,
    UpdatePage,
)
from ..xmlns import ANONYMOUS, KMS, WSA, WSEN, WSMAN
from . import resource_uris
from .call import WsCall, WsReply, epr, expiration
from .headers import parse_duration

ACTIONS = {verb: f"{WSEN}/{verb}" for verb in ("Enumerate", "Pull", "Renew", "GetStatus",
                                                "Release")}
UPDATE_LIST_DIALECT = f"{KMS}/GetUpdateList"
SELECTOR_DIALECT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"
_N, _W, _K = f"{{{WSEN}}}", f"{{{WSMAN}}}", f"{{{KMS}}}"
_PREFIX = {WSEN: "wsen", WSMAN: "wsman"}
_EPR_NS = {"wsa": WSA, "wsman": WSMAN}
# Headers, their signature (one reference per header block: ~5.9 KB with
# UpdateVersioningTokens and TotalItemsCountEstimate) and wrappers around a page's items.
ENVELOPE_OVERHEAD = 6144


def enumerate_(call: WsCall) -> WsReply:
    body = call.payload
    assert body is not None  # schema-validated wsen:Enumerate
    mode = (child_text(body, _W + "EnumerationMode") or "").strip()  # checked by the service
    seconds, at = expiration(body.find(_N + "Expires"))
    optimize = body.find(_W + "OptimizeEnumeration") is not None
    req = EnumerateRequest(resource_uris.named(call.headers.resource_uri), parse_filter(body),
                           mode, seconds, at,
                           optimize, int(child_text(body, _W + "MaxElements") or 1),
                           call.headers.total_estimate, ACTIONS["Enumerate"])
    page: UpdatePage = call.run("Enumeration.Enumerate", req)
    out = etree.Element(_N + "EnumerateResponse", nsmap={"wsen": WSEN, "wsman": WSMAN})
    etree.SubElement(out, _N + "Expires").text = kms.format_time(page.expires)
    headers = _total(page)
    if not optimize:
        etree.SubElement(out, _N + "EnumerationContext").text = page.context_after(0)
        return WsReply(ACTIONS["Enumerate"] + "Response", [out], headers)
    ctx_el = etree.SubElement(out, _N + "EnumerationContext")
    context, spliced = _fill(call, out, _W + "Items", page, None)
    ctx_el.text = context or ""
    if context is None:
        etree.SubElement(out, _W + "EndOfSequence")
        headers += _finish(call, page)
    return WsReply(ACTIONS["Enumerate"] + "Response", [out], headers, spliced)


def pull(call: WsCall) -> WsReply:
    body = call.payload
    assert body is not None
    max_time = child_text(body, _N + "MaxTime")
    max_chars = child_text(body, _N + "MaxCharacters")
    page: UpdatePage = call.run("Enumeration.Pull", PullRequest(
        child_text(body, _N + "EnumerationContext") or "",
        int(child_text(body, _N + "MaxElements") or 1), call.headers.total_estimate))
    deadline = call.started + parse_duration(max_time) if max_time else None
    out = etree.Element(_N + "PullResponse", nsmap={"wsen": WSEN})
    ctx_el = etree.SubElement(out, _N + "EnumerationContext")
    context, spliced = _fill(call, out, _N + "Items", page, deadline,
                             int(max_chars) if max_chars else None)
    headers = _total(page)
    if context is None:
        out.remove(ctx_el)  # clients that ignore EndOfSequence stop on a missing context
        etree.SubElement(out, _N + "EndOfSequence")
        headers += _finish(call, page)
    else:
        ctx_el.text = context
    return WsReply(ACTIONS["Pull"] + "Response", [out], headers, spliced)


def renew(call: WsCall) -> WsReply:
    status: ContextStatus = call.run("Enumeration.Renew", _context_request(call))
    out = etree.Element(_N + "RenewResponse", nsmap={"wsen": WSEN})
    etree.SubElement(out, _N + "Expires").text = kms.format_time(status.expires)
    etree.SubElement(out, _N + "EnumerationContext").text = status.context
    return WsReply(ACTIONS["Renew"] + "Response", [out])


def get_status(call: WsCall) -> WsReply:
    status: ContextStatus = call.run("Enumeration.GetStatus", _context_request(call))
    out = etree.Element(_N + "GetStatusResponse", nsmap={"wsen": WSEN})
    etree.SubElement(out, _N + "Expires").text = kms.format_time(status.expires)
    return WsReply(ACTIONS["GetStatus"] + "Response", [out])


def release(call: WsCall) -> WsReply:
    call.run("Enumeration.Release", _context_request(call))
    return WsReply(ACTIONS["Release"] + "Response")


# ---------------------------------------------------------------------------------------

def _context_request(call: WsCall) -> ContextRequest:
    body = call.payload
    assert body is not None
    seconds, at = expiration(body.find(_N + "Expires"))
    return ContextRequest(child_text(body, _N + "EnumerationContext") or "", seconds, at)


def parse_filter(body: etree._Element, own_filter: str = _N + "Filter") -> UpdateFilter:
    """The wsman:Filter (or the protocol's own Filter element) of Enumerate/Subscribe."""
    f = body.find(_W + "Filter")
    if f is None:
        f = body.find(own_filter)
    if f is None:
        return UpdateFilter()
    dialect = f.get("Dialect") or UPDATE_LIST_DIALECT
    if dialect == SELECTOR_DIALECT:
        sels = f.findall(f"{_W}SelectorSet/{_W}Selector")
        return UpdateFilter(equals=tuple((s.get("Name", ""), text_of(s).strip())
                                         for s in sels))
    if dialect != UPDATE_LIST_DIALECT:
        raise FilterDialectRequestedUnavailable(
            f"filter dialect {dialect} is not supported",
            supported=(UPDATE_LIST_DIALECT, SELECTOR_DIALECT))
    req = f.find(_K + "GetUpdateList")
    if req is None:
        raise CannotProcessFilter("the GetUpdateList dialect takes a kms:GetUpdateList filter")
    kind = (child_text(req, _K + "Type") or "").strip()
    tokens = {t.get("Type"): int(text_of(t) or 0)
              for t in req.iterfind(f"{_K}UpdateVersioningTokens/{_K}Token")}
    return UpdateFilter(type=kind, client_id=child_text(req, f"{_K}Scope/{_K}ClientId"),
                        pep_id=child_text(req, f"{_K}Scope/{_K}PepId"), token=tokens.get(kind, 0))


def _fill(call: WsCall, parent: etree._Element, tag: str, page: UpdatePage,
          deadline: float | None, max_chars: int | None = None
          ) -> tuple[str | None, list[Spliced]]:
    """Add the Items of as many of the page's items as MaxCharacters, MaxEnvelopeSize and
    MaxTime allow; return the context that resumes after them (None: the enumeration is
    done) and the items' text, which the Items element receives as it is sent."""
    if not page.items:
        return page.context_after(0), []
    if deadline is not None and time.monotonic() >= deadline:
        raise EnumerationTimedOut("no item could be produced within MaxTime")
    items = [_item(call, obj, page.mode) for _, obj in page.items]
    budget = min(max_chars or 1 << 62,
                 (call.headers.max_envelope_size or 1 << 62) - ENVELOPE_OVERHEAD)
    if budget < 1 << 40:
        n = _fitting(items, budget)
        if n == 0:
            raise EnvelopeTooLarge("the next item does not fit in MaxCharacters / "
                                   "MaxEnvelopeSize")
        del items[n:]
    text = "".join(items)
    if page.mode or not isinstance(page.items[0][1], Key):
        # EPRs and other objects are built as elements: written out as c14n writes them
        text = _canonical_content(tag, text)
    part = Spliced.new(text)
    etree.SubElement(parent, tag).text = part.marker
    return page.context_after(len(items)), [part]


def _canonical_content(tag: str, text: str) -> str:
    """The content of Items holding `text`, in exclusive c14n form: the same inside the
    Body as on its own, since nothing between the Body and the items declares a prefix
    the items use other than Items' own."""
    ns, _, local = tag[1:].partition("}")
    box = key_xml.fragment(local, _PREFIX[ns], ns, text, _EPR_NS)
    canonical = etree.tostring(box, method="c14n", exclusive=True, with_comments=False)
    start, end = canonical.index(b">") + 1, canonical.rindex(b"</")
    return canonical[start:end].decode("utf-8")


def _fitting(items: list[str], budget: int) -> int:
    """How many items fit in `budget` octets (UTF-8: never fewer than characters)."""
    used = 0
    for n, item in enumerate(items):
        used += len(item) if item.isascii() else len(item.encode("utf-8"))
        if used > budget:
            return n
    return len(items)


def _item(call: WsCall, obj: Key | AdminDocument | Removal, mode: str) -> str:
    """One item as XML text: a key as key_xml writes it (exclusive c14n form); an object
    of a custom update type, its removal, and EPRs, serialised from elements (see _fill).
    A removed object has no EPR (nothing is there to address): in EnumerateEPR mode its
    item is the kms:RemovedObject, in EnumerateObjectAndEPR a wsman:Item holding only it."""
    if isinstance(obj, Removal):
        text = _document_text(AdminDocument("RemovedObject", {
            "Kind": obj.kind, "ObjectId": obj.object_id, "RemovedAt": obj.removed_at}))
        return f"<wsman:Item>{text}</wsman:Item>" if mode == "EnumerateObjectAndEPR" else text
    text = key_xml.key_xml(obj, declare=True) if isinstance(obj, Key) \
        else _document_text(obj)
    if mode == "":
        return text
    if isinstance(obj, Key):
        uri, selectors = resource_uris.KEY_URI, {"KeyId": obj.key_id}
    else:  # an object of a custom update type: its own resource
        res = resource(ResourceName(obj.kind))
        uri = resource_uris.uri_of(obj.kind)
        selectors = {res.selector: str(obj.document[res.selector])}
    holder = etree.Element(_W + "Item", nsmap=_EPR_NS)
    epr(holder, f"{{{WSA}}}EndpointReference", call.addr.to or ANONYMOUS, uri, selectors)
    ref = etree.tostring(holder[0], encoding="unicode")
    return f"<wsman:Item>{text}{ref}</wsman:Item>" if mode == "EnumerateObjectAndEPR" else ref


def _document_text(obj: AdminDocument) -> str:
    holder = etree.Element(_K + "Objects", nsmap={"kms": KMS})
    return etree.tostring(documents.encode(holder, obj.kind, obj.document), encoding="unicode")


def _total(page: UpdatePage) -> list[etree._Element]:
    if page.total is None:
        return []
    el = etree.Element(_W + "TotalItemsCountEstimate", nsmap={"wsman": WSMAN})
    el.text = str(page.total)
    return [el]


def _finish(call: WsCall, page: UpdatePage) -> list[etree._Element]:
    """The final page: the new UpdateVersioningTokens (a header), and acknowledgement of
    pending UpdatePending notifications the client has now caught up with."""
    call.service.acknowledge_updates(page)
    tokens = etree.Element(_K + "UpdateVersioningTokens", nsmap={"kms": KMS})
    etree.SubElement(tokens, _K + "Token", Type=page.token_type).text = str(page.high)
    return [tokens]

