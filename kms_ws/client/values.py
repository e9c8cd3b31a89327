"""What KmsClient returns and raises (Key, UpdatedObject, RemovedObject, KmsFault), and the
conversions from zeep objects and kms elements to them."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree
from zeep.exceptions import Fault
from zeep.helpers import serialize_object

from ..security.xml import child_text, text_of
from ..xmlns import KMS, PREFIXES, SOAP
from .unwrap import BlobFields, PepBlob, Unwrapper


class KmsFault(Exception):
    def __init__(self, subcode: str | None, reason: str, error_code: str | None = None,
                 request_id: str | None = None, http_status: int | None = None,
                 supported: Sequence[str] = ()) -> None:
        super().__init__(f"{subcode}: {reason}")
        self.subcode, self.reason, self.error_code = subcode, reason, error_code
        self.request_id, self.http_status, self.supported = request_id, http_status, \
            tuple(supported)


class UntrustedResponse(KmsFault):
    """The response's signature is missing or does not verify: nothing in it is used."""


@dataclass
class Key:
    key_id: str
    state: str
    version: int
    cipher_type: str
    t_cached: int
    edit_datetime: datetime
    friendly_name: str | None = None
    value: bytes | None = field(default=None, repr=False)
    t_expired: datetime | None = None
    t_disabled: datetime | None = None
    description: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    datasets: list[tuple[str, str]] = field(default_factory=list)
    realms: list[str] = field(default_factory=list)
    template_id: str | None = None
    # {"VendorSpecificExtensions"|"ApplicationExtensions": {name: value}}
    extensions: dict[str, dict[str, str]] = field(default_factory=dict)
    wrapping_type: str | None = None  # how the blob arrived ("none" = unwrapped)
    pep_blob: PepBlob | None = field(default=None, repr=False)  # double wrapped: for the PEP
    caching_type: str | None = None  # §5.6 NoCache | Memory | Persistent, for t_cached seconds
    # the policies that decided the delivery: [(kind, policy id)] (hidden without Read)
    applied_policies: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class UpdatedObject:
    """An administered object of a custom update type (GetUpdateList): its kind (schema
    element, e.g. RetentionPolicy) and its fields by element name."""

    kind: str
    document: dict[str, Any]


@dataclass(frozen=True)
class RemovedObject:
    """An administered object of a custom update type that was deleted (GetUpdateList):
    its kind (schema element, e.g. RetentionPolicy), id, and when it was removed (UTC).
    A client that cached the object drops it."""

    kind: str
    object_id: str
    removed_at: datetime


def removed_from_element(el: etree._Element) -> RemovedObject:
    """A kms:RemovedObject element as a RemovedObject."""
    at = (child_text(el, f"{{{KMS}}}RemovedAt") or "").strip()
    return RemovedObject(child_text(el, f"{{{KMS}}}Kind") or "",
                         child_text(el, f"{{{KMS}}}ObjectId") or "", datetime.fromisoformat(at))


_EXTENSIONS = ("VendorSpecificExtensions", "ApplicationExtensions")


def key_metadata(k: Any) -> Key:
    """A zeep Key as a Key: its metadata (KmsClient adds the unwrapped value)."""
    return Key(
        key_id=k.KeyId, state=k.State, version=int(k.Version), cipher_type=k.CipherType,
        t_cached=int(k.TCached), edit_datetime=k.EditDateTime, friendly_name=k.FriendlyName,
        t_expired=k.TExpired, t_disabled=k.TDisabled, description=k.Description,
        attributes={a.Name: a.Value for a in (k.AttributeAssociations.Attribute
                                              if k.AttributeAssociations else [])},
        datasets=[(d.Name, d.Value) for d in (k.DataSets.DataSet if k.DataSets else [])],
        realms=[r.Realm for r in (k.RealmAssociations.RealmAssociation
                                  if k.RealmAssociations else [])],
        template_id=k.TemplateId, caching_type=k.CachingType,
        applied_policies=[(p.Kind, p.PolicyId) for p in (k.AppliedPolicies.AppliedPolicy
                                                         if k.AppliedPolicies else [])],
        extensions={f: {e.Name: e.Value for e in getattr(k, f).Extension}
                    for f in _EXTENSIONS if getattr(k, f) is not None})


def plain(value: Any) -> Any:
    """zeep objects -> dicts and lists, without the absent (None) fields."""
    value = serialize_object(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def one(res: Any, kind: str) -> dict[str, Any]:
    found = many(res, kind)
    if len(found) != 1:
        raise KmsFault(None, f"expected one {kind} in the response")
    return found[0]


def many(res: Any, kind: str) -> list[dict[str, Any]]:
    if res is None:
        return []
    value = getattr(res, kind, None) if not isinstance(res, list) else res
    if value is None:
        flat = plain(res)
        value = flat.get(kind) if isinstance(flat, dict) else None
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [plain(v) for v in items]
def key_from_element(k: etree._Element, unwrapper: Unwrapper | None = None) -> Key:
    """A kms:Key element (WS-Management responses) as a Key; a wrapped KeyBlob is opened
    with the caller's wrapping keys (`unwrapper`), never taken as the key."""
    K = f"{{{KMS}}}"
    fields: dict[str, etree._Element] = {}
    for c in k.iterchildren(etree.Element):  # one pass: each field's first element
        fields.setdefault(c.tag, c)

    def text(name: str) -> str | None:
        el = fields.get(K + name)
        return None if el is None else text_of(el)

    def when(name: str) -> datetime | None:
        v = text(name)
        return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None

    value = pep_blob = wrapping = None
    blob = fields.get(K + "KeyBlob")
    if blob is not None:
        def b(name: str) -> str | None:
            return child_text(blob, K + name)
        check = b("CheckValue")
        wrapping = b("WrappingType") or "none"
        value, pep_blob = (unwrapper or Unwrapper()).open_key(BlobFields(
            text("KeyId") or "", wrapping, b("WrappingKeyId"), b("InnerWrappingType"),
            b("InnerWrappingKeyId"), int(b("Length") or 0), base64.b64decode(b("Data") or ""),
            base64.b64decode(check) if check else None))
    return Key(
        key_id=text("KeyId") or "", state=text("State") or "", version=int(text("Version") or 0),
        cipher_type=text("CipherType") or "", t_cached=int(text("TCached") or 0),
        edit_datetime=when("EditDateTime"),  # type: ignore[arg-type]
        friendly_name=text("FriendlyName"),
        value=value, wrapping_type=wrapping, pep_blob=pep_blob, t_expired=when("TExpired"),
        t_disabled=when("TDisabled"), description=text("Description"),
        attributes={child_text(a, K + "Name") or "": child_text(a, K + "Value") or ""
                    for a in k.iterfind(f"{K}AttributeAssociations/{K}Attribute")},
        datasets=[(child_text(d, K + "Name") or "", child_text(d, K + "Value") or "")
                  for d in k.iterfind(f"{K}DataSets/{K}DataSet")],
        realms=[child_text(r, K + "Realm") or "" for r in
                k.iterfind(f"{K}RealmAssociations/{K}RealmAssociation")],
        template_id=text("TemplateId"), caching_type=text("CachingType"),
        applied_policies=[(child_text(p, K + "Kind") or "", child_text(p, K + "PolicyId") or "")
                          for p in k.iterfind(f"{K}AppliedPolicies/{K}AppliedPolicy")],
        extensions={f: {child_text(e, K + "Name") or "": child_text(e, K + "Value") or ""
                        for e in box.iterfind(K + "Extension")}
                    for f in _EXTENSIONS if (box := k.find(K + f)) is not None})


def fault_from_element(fault: etree._Element, http_status: int | None = None) -> KmsFault:
    """A soap:Fault element as KmsFault: what fault_from makes of zeep's Fault, and the
    HTTP status it came with."""
    S, K = f"{{{SOAP}}}", f"{{{KMS}}}"
    subcode = None
    value = fault.find(f"{S}Code/{S}Subcode/{S}Value")
    if value is not None:
        prefix, _, local = text_of(value).strip().rpartition(":")
        ns = value.nsmap.get(prefix or None) or ""
        subcode = f"{_PREFIX.get(ns, ns)}:{local}"
    error_code = request_id = None
    supported: list[str] = []
    kf = fault.find(f"{S}Detail/{K}KmsFault")
    if kf is not None:
        error_code = child_text(kf, K + "ErrorCode")
        request_id = child_text(kf, K + "RequestId")
        supported = [text_of(s) for s in kf.iterfind(K + "Supported")]
    return KmsFault(subcode, child_text(fault, f"{S}Reason/{S}Text") or "", error_code,
                    request_id, http_status, supported)


def fault_from(fault: Fault) -> KmsFault:
    subcode = None
    if fault.subcodes:
        q = fault.subcodes[0]
        subcode = f"{_PREFIX.get(q.namespace, q.namespace)}:{q.localname}"
    error_code = request_id = None
    supported: list[str] = []
    if fault.detail is not None:
        kf = fault.detail.find(f"{{{KMS}}}KmsFault")
        if kf is not None:
            error_code = child_text(kf, f"{{{KMS}}}ErrorCode")
            request_id = child_text(kf, f"{{{KMS}}}RequestId")
            supported = [text_of(s) for s in kf.iterfind(f"{{{KMS}}}Supported")]
    return KmsFault(subcode, fault.message, error_code, request_id, supported=supported)


_PREFIX = {ns: prefix for prefix, ns in PREFIXES.items()}
