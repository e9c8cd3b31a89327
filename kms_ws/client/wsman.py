"""WS-Management requests from KmsClient: Identify, WS-Transfer Get, WS-Enumeration of
§6.12 GetUpdateList, WS-Eventing subscriptions. Raw SOAP over the client's HTTP session;
zeep plugins (e.g. a validator) see every envelope, as for the §6 operations."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Sequence
from typing import Any

import requests
from lxml import etree

from ..security.xml import child_text, text_of
from ..xmlns import ANONYMOUS, KMS, SOAP, WSA, WSE, WSEN, WSMAN, WSMID, WSU, WXF
from .pep import PepProver
from .values import fault_from_element

_S, _W, _N, _K = f"{{{SOAP}}}", f"{{{WSMAN}}}", f"{{{WSEN}}}", f"{{{KMS}}}"
NSMAP = {"s": SOAP, "wsa": WSA, "wsman": WSMAN, "wsen": WSEN, "wse": WSE, "kms": KMS}
KEY_URI = f"{KMS}/Key"
UPDATE_LIST_DIALECT = f"{KMS}/GetUpdateList"
PUSH_WITH_ACK = "http://schemas.dmtf.org/wbem/wsman/1/wsman/PushWithAck"
IDENTIFY_ACTION = WSMID.rsplit("/", 1)[0] + "/Identify"
ENUMERATE_ACTION, SUBSCRIBE_ACTION = f"{WSEN}/Enumerate", f"{WSE}/Subscribe"
Proof = Callable[[str], etree._Element]  # (MessageID) -> kms:PepCredential header
# Items asked for per Pull of GetUpdateList by default: the most a kms-ws server returns
# in one (service.update_list.MAX_ITEMS). Each response is signed, each request
# authenticated: a client catching up streams ~2-3x the keys per second with pages of
# 1000 that it does with pages of 100 (bench/README.md, "Enumeration benchmark").
UPDATE_PAGE = 1000


class WsManChannel:
    def __init__(self, url: str, session: requests.Session, timeout: float,
                 plugins: Sequence[Any], fault: Any, session_header: Any,
                 message_ids: Any = None) -> None:
        """plugins: zeep plugins (signing and verification, validators) applied to every
        envelope; message_ids: told each request's MessageID and action (what a signed
        response must answer)."""
        self.url, self._http, self._timeout = url, session, timeout
        self._plugins, self._fault, self._session_header = plugins, fault, session_header
        self._message_ids = message_ids

    def call(self, action: str | None, body: etree._Element | None,
             resource_uri: str | None = None, selectors: dict[str, str] | None = None,
             headers: Sequence[etree._Element] = (),
             pep_proof: Proof | None = None) -> etree._Element:
        """POST one request; returns the response envelope, raises KmsFault on a fault.
        pep_proof: makes the PEP's kms:PepCredential header for the request's MessageID."""
        env = etree.Element(_S + "Envelope", nsmap={**NSMAP, "wsu": WSU})  # wsu: ids
        header = etree.SubElement(env, _S + "Header")
        mid = f"uuid:{uuid.uuid4()}"
        if action is not None:
            if self._message_ids is not None:
                self._message_ids(mid, action)
            for name, text in (("To", self.url), ("Action", action), ("MessageID", mid)):
                etree.SubElement(header, f"{{{WSA}}}{name}").text = text
            reply = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
            etree.SubElement(reply, f"{{{WSA}}}Address").text = ANONYMOUS
        if resource_uri:
            etree.SubElement(header, _W + "ResourceURI").text = resource_uri
        if selectors:
            sset = etree.SubElement(header, _W + "SelectorSet")
            for n, v in selectors.items():
                etree.SubElement(sset, _W + "Selector", Name=n).text = v
        header.extend(headers)
        if pep_proof is not None:
            header.append(pep_proof(mid))
        self._session_header(header)
        b = etree.SubElement(env, _S + "Body")
        if body is not None:
            b.append(body)
        for p in self._plugins:
            p.egress(env, {}, None, None)
        r = self._http.post(self.url, data=etree.tostring(env, xml_declaration=True,
                                                          encoding="UTF-8"),
                            headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                            timeout=self._timeout)
        if not r.headers.get("Content-Type", "").startswith("application/soap+xml"):
            raise self._fault(None, f"HTTP {r.status_code}", http_status=r.status_code)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        out = etree.fromstring(r.content, parser)
        for p in self._plugins:
            p.ingress(out, {}, None)
        fault = out.find(f"{_S}Body/{_S}Fault")
        if fault is not None:
            raise fault_from_element(fault, r.status_code)
        return out

    def _part(self, el: etree._Element, path: str) -> etree._Element:
        """The response's element at path; a response without it is a fault, not a crash."""
        found = el.find(path)
        if found is None:
            name = etree.QName(path.rsplit("/", 1)[-1]).localname
            raise self._fault(None, f"the response has no {name}")
        return found

    def identify(self) -> dict[str, str]:
        env = self.call(IDENTIFY_ACTION,
                        etree.Element(f"{{{WSMID}}}Identify", nsmap={"wsmid": WSMID}))
        res = self._part(env, f"{_S}Body/{{{WSMID}}}IdentifyResponse")
        return {etree.QName(c).localname: text_of(c) for c in res
                if isinstance(c.tag, str) and text_of(c).strip()}

    def get(self, resource_uri: str, selectors: dict[str, str],
            options: dict[str, str] | None = None) -> etree._Element:
        hdrs = []
        if options:
            oset = etree.Element(_W + "OptionSet", nsmap={"wsman": WSMAN})
            for n, v in options.items():
                etree.SubElement(oset, _W + "Option", Name=n).text = v
            hdrs.append(oset)
        env = self.call(f"{WXF}/Get", None, resource_uri, selectors, hdrs)
        return next(c for c in self._part(env, _S + "Body") if isinstance(c.tag, str))

    def update_list(self, update_type: str, tokens: dict[str, int] | None,
                    pep_id: str | None, max_elements: int, prover: PepProver | None = None
                    ) -> Generator[etree._Element, None, dict[str, int]]:
        """Yields kms:Key elements (or a custom type's object elements); returns the new
        UpdateVersioningTokens. prover: the PEP's, for Enumerate scoped to it (Pull
        continues under the context)."""
        enum = etree.Element(_N + "Enumerate", nsmap=NSMAP)
        etree.SubElement(enum, _W + "OptimizeEnumeration")
        etree.SubElement(enum, _W + "MaxElements").text = str(max_elements)
        enum.append(update_filter(update_type, tokens, pep_id))
        env = self.call(ENUMERATE_ACTION, enum, KEY_URI, pep_proof=_proof(
            prover, ENUMERATE_ACTION, pep_id, (("UpdateType", update_type),)))
        body = self._part(env, f"{_S}Body/{_N}EnumerateResponse")
        yield from _items(body.find(_W + "Items"))
        while body.find(_W + "EndOfSequence") is None and body.find(_N + "EndOfSequence") is None:
            pull = etree.Element(_N + "Pull", nsmap=NSMAP)
            etree.SubElement(pull, _N + "EnumerationContext").text = \
                child_text(body, _N + "EnumerationContext")
            etree.SubElement(pull, _N + "MaxElements").text = str(max_elements)
            env = self.call(f"{WSEN}/Pull", pull, KEY_URI)
            body = self._part(env, f"{_S}Body/{_N}PullResponse")
            yield from _items(body.find(_N + "Items"))
        return {t.get("Type", ""): int(text_of(t) or 0) for t in
                env.iterfind(f"{_S}Header/{_K}UpdateVersioningTokens/{_K}Token")}

    def subscribe(self, notify_to: str, update_type: str, pep_id: str | None,
                  expires: str | None, mode: str, end_to: str | None = None,
                  prover: PepProver | None = None) -> str:
        notify_to, end_to = notify_to.strip(), end_to.strip() if end_to else None
        sub = etree.Element(f"{{{WSE}}}Subscribe", nsmap=NSMAP)
        if end_to:
            etree.SubElement(etree.SubElement(sub, f"{{{WSE}}}EndTo"),
                             f"{{{WSA}}}Address").text = end_to
        delivery = etree.SubElement(sub, f"{{{WSE}}}Delivery", Mode=mode)
        nt = etree.SubElement(delivery, f"{{{WSE}}}NotifyTo")
        etree.SubElement(nt, f"{{{WSA}}}Address").text = notify_to
        if expires:
            etree.SubElement(sub, f"{{{WSE}}}Expires").text = expires
        sub.append(update_filter(update_type, None, pep_id))
        bound = (("UpdateType", update_type), ("NotifyTo", notify_to)) + \
            ((("EndTo", end_to),) if end_to else ())
        env = self.call(SUBSCRIBE_ACTION, sub, KEY_URI,
                        pep_proof=_proof(prover, SUBSCRIBE_ACTION, pep_id, bound))
        return child_text(env, f"{_S}Body/{{{WSE}}}SubscribeResponse/{{{WSE}}}SubscriptionManager/"
                            f"{{{WSA}}}ReferenceParameters/{{{WSE}}}Identifier") or ""

    def subscription_call(self, verb: str, subscription_id: str) -> etree._Element:
        ident = etree.Element(f"{{{WSE}}}Identifier", nsmap={"wse": WSE})
        ident.text = subscription_id
        body = etree.Element(f"{{{WSE}}}{verb}", nsmap={"wse": WSE})
        return self.call(f"{WSE}/{verb}", body, KEY_URI, headers=[ident])


def _items(box: etree._Element | None) -> list[etree._Element]:
    return [] if box is None else [c for c in box if isinstance(c.tag, str)
                                   and c.tag.startswith(_K)]


def _proof(prover: PepProver | None, action: str, pep_id: str | None,
           bound: tuple[tuple[str, str], ...]) -> Proof | None:
    """The PEP's proof of a WS-Management request made for it (service.pep_auth says
    what it binds)."""
    if prover is None:
        return None
    if pep_id is None:
        raise ValueError("a PEP proof goes with a request for a PEP (pep_id)")
    return lambda mid: prover.prove(action, pep_id, None, mid, bound)


def update_filter(update_type: str, tokens: dict[str, int] | None,
                  pep_id: str | None) -> etree._Element:
    f = etree.Element(_W + "Filter", nsmap=NSMAP, Dialect=UPDATE_LIST_DIALECT)
    req = etree.SubElement(f, _K + "GetUpdateList")
    etree.SubElement(req, _K + "Type").text = update_type
    if pep_id:
        etree.SubElement(etree.SubElement(req, _K + "Scope"), _K + "PepId").text = pep_id
    if tokens:
        box = etree.SubElement(req, _K + "UpdateVersioningTokens")
        for t, v in tokens.items():
            etree.SubElement(box, _K + "Token", Type=t).text = str(v)
    return f
