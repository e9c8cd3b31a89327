"""Translate between schema-valid message elements and service requests/results.

Requests arrive here only after validation against schemas/kms-messages.xsd, so the
decoders can rely on structure and types; they only convert.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from ..domain.errors import MessageSecurityError
from ..domain.model import (
    AuditMessage,
    CredentialType,
    DataSet,
    EndpointKind,
    Key,
    KeyUsage,
    NameValue,
)
from ..security.proofs import PepProof
from ..security.xml import Spliced, child_text, text_of
from ..service import messages as m
from ..service.ws_messages import EndpointStatus, EndpointStatusRequest
from ..xmlns import KMS
from . import admin, key_xml

_K = f"{{{KMS}}}"


# ---- reading -----------------------------------------------------------------------------

def _child(el: etree._Element, name: str) -> etree._Element | None:
    return el.find(_K + name)


def _text(el: etree._Element, name: str) -> str | None:
    return child_text(el, _K + name)


def _int(el: etree._Element, name: str) -> int | None:
    v = _text(el, name)
    return None if v is None else int(v.strip())


def parse_time(v: str) -> datetime:
    """xsd:dateTime (UTC, 'Z') -> naive UTC datetime."""
    return datetime.fromisoformat(v.strip().replace("Z", "+00:00")).astimezone(UTC) \
        .replace(tzinfo=None)


def _time(el: etree._Element, name: str) -> datetime | None:
    v = _text(el, name)
    return None if v is None else parse_time(v)


def _pairs(el: etree._Element | None, item: str) -> tuple[NameValue, ...]:
    if el is None:
        return ()
    return tuple(NameValue(_text(a, "Name") or "", _text(a, "Value") or "")
                 for a in el.iterfind(_K + item))


def _datasets(el: etree._Element | None) -> tuple[DataSet, ...]:
    if el is None:
        return ()
    return tuple(DataSet(_text(d, "Name") or "", _text(d, "Value") or "", _int(d, "SizeofValue"))
                 for d in el.iterfind(_K + "DataSet"))


def _capabilities(el: etree._Element | None) -> tuple[str, ...]:
    if el is None:
        return ()
    return tuple((_text(c, "Name") or "") for c in el.iterfind(_K + "Capability"))


def _realms(el: etree._Element | None) -> tuple[m.RealmAssociation, ...]:
    if el is None:
        return ()
    return tuple(m.RealmAssociation(_text(r, "Realm") or "",
                                    tuple(text_of(g).strip() for g in r.iterfind(_K + "Right")))
                 for r in el.iterfind(_K + "RealmAssociation"))


def _b64(v: str) -> bytes:
    return base64.b64decode("".join(v.split()), validate=True)


def decode_pep_proof(el: etree._Element, message_id: str | None) -> PepProof:
    """A kms:PepCredential header (schema-validated) with the request's wsa:MessageID."""
    text = (_text(el, "Created") or "").strip()
    created = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if created.tzinfo is None:
        raise MessageSecurityError("the PEP proof's Created must be a UTC time (…Z)")
    return PepProof(_text(el, "PepId") or "", created.astimezone(UTC).replace(tzinfo=None),
                    text, _text(el, "SignatureMethod") or "",
                    _b64(_text(el, "SignatureValue") or ""), message_id)


def decode_credential(el: etree._Element | None) -> m.Credential | None:
    if el is None:
        return None
    ctype = CredentialType(_text(el, "CredentialType"))
    up = _child(el, "UsernamePassword")
    if up is not None:
        return m.Credential(ctype, username=_text(up, "Username"), password=_text(up, "Password"))
    token = _text(el, "SessionToken")
    values = tuple(_b64(_text(v, "Value") or "") for v in el.iterfind(_K + "CredentialValue"))
    return m.Credential(ctype, token=token, values=values)


def _wrapping_values(el: etree._Element | None) -> tuple[m.WrappingValue, ...]:
    if el is None:
        return ()
    out = []
    for v in el.iterfind(_K + "WrappingValue"):
        sym, cert = _text(v, "SymmetricKey"), _text(v, "Certificate")
        out.append(m.WrappingValue(_text(v, "WrappingKeyId") or "",
                                   symmetric_key=_b64(sym) if sym is not None else None,
                                   certificate=_b64(cert) if cert is not None else None))
    return tuple(out)


def _register_wrapping(el: etree._Element) -> m.RegisterWrappingValuesRequest:
    return m.RegisterWrappingValuesRequest(
        endpoint_id=_text(el, "EndpointId"),
        values=_wrapping_values(_child(el, "WrappingValues")),
        retire=tuple(text_of(r) for r in el.iterfind(_K + "Retire")))


def _register(el: etree._Element) -> m.RegisterEndpointRequest:
    return m.RegisterEndpointRequest(
        kind=EndpointKind(_text(el, "Kind")), name=_text(el, "Name") or "",
        description=_text(el, "Description"), endpoint_type_id=_text(el, "EndpointTypeId"),
        capabilities=_capabilities(_child(el, "Capabilities")),
        credential=decode_credential(_child(el, "Credential")),
        pep_attributes=_pairs(_child(el, "PepAttributes"), "Attribute"),
        attributes=_pairs(_child(el, "AttributeAssociations"), "Attribute"),
        realms=_realms(_child(el, "RealmAssociations")),
        wrapping_values=_wrapping_values(_child(el, "WrappingValues")),
        cim_identity=cim_identity(_child(el, "CimIdentity")),
        cim_identity_given=_child(el, "CimIdentity") is not None)


def cim_identity(el: etree._Element | None) -> tuple[NameValue, ...]:
    """A kms:CimIdentity as its properties, Class/Property = value (document order)."""
    if el is None:
        return ()
    return tuple(NameValue(f"{etree.QName(cls).localname}/{etree.QName(prop).localname}",
                           text_of(prop).strip())
                 for cls in el if isinstance(cls.tag, str)
                 for prop in cls if isinstance(prop.tag, str))


def _authenticate(el: etree._Element) -> m.AuthenticateRequest:
    return m.AuthenticateRequest(_text(el, "RequestType") or "",
                                 decode_credential(_child(el, "Credential")))


def _create(el: etree._Element) -> m.CreateKeyRequest:
    return m.CreateKeyRequest(
        friendly_name=_text(el, "FriendlyName"), template_id=_text(el, "TemplateId"),
        template_name=_text(el, "TemplateName"), cipher_type=_text(el, "CipherType"),
        length_bits=_int(el, "KeyLength"), datasets=_datasets(_child(el, "DataSets")),
        pep_id=_text(el, "PepId"),
        attributes=_pairs(_child(el, "AttributeAssociations"), "Attribute"),
        description=_text(el, "Description"), wrapping_type=_text(el, "WrappingType"),
        realms=_realms(_child(el, "RealmAssociations")))


def _store(el: etree._Element) -> m.StoreKeyRequest:
    blob = _child(el, "KeyBlob")
    assert blob is not None
    return m.StoreKeyRequest(
        value=_b64(_text(blob, "Data") or ""), wrapping_type=_text(blob, "WrappingType") or "",
        length=_int(blob, "Length") or 0, wrapping_key_id=_text(blob, "WrappingKeyId"),
        check_value=_b64(cv) if (cv := _text(blob, "CheckValue")) is not None else None,
        inner_wrapping_type=_text(blob, "InnerWrappingType"),
        friendly_name=_text(el, "FriendlyName"),
        cipher_type=_text(el, "CipherType"), datasets=_datasets(_child(el, "DataSets")),
        pep_id=_text(el, "PepId"),
        attributes=_pairs(_child(el, "AttributeAssociations"), "Attribute"),
        description=_text(el, "Description"), realms=_realms(_child(el, "RealmAssociations")))


def _get(el: etree._Element) -> m.GetKeyRequest:
    usage = _text(el, "Usage")
    return m.GetKeyRequest(
        key_id=_text(el, "KeyId"), if_altered_since_version=_int(el, "IfAlteredSinceVersion"),
        friendly_name=_text(el, "FriendlyName"),
        attributes=_pairs(_child(el, "AttributeAssociations"), "Attribute"),
        match_attributes=_pairs(_child(el, "MatchAttributes"), "Attribute"),
        datasets=_datasets(_child(el, "DataSets")), template_id=_text(el, "TemplateId"),
        altered_since=_time(el, "AlteredSince"), pep_id=_text(el, "PepId"),
        usage=KeyUsage(usage) if usage else None, max_keys=_int(el, "MaxKeys") or 100,
        wrapping_type=_text(el, "WrappingType"),
        all_bound=_text(el, "AllBoundKeys") in ("true", "1"))


def _audit(el: etree._Element) -> m.PushAuditMessageRequest:
    return m.PushAuditMessageRequest(tuple(
        AuditMessage(event=_text(a, "Event") or "", key_id=_text(a, "KeyId"),
                     pep_id=_text(a, "PepId"), time=_time(a, "Time"), message=_text(a, "Message"))
        for a in el.iterfind(_K + "AuditMessage")))


DECODERS: dict[str, Callable[[etree._Element], Any]] = {
    "RegisterEndpoint": _register,
    "RegisterWrappingValues": _register_wrapping,
    "Authenticate": _authenticate,
    "NegotiateCapabilities": lambda el: m.NegotiateCapabilitiesRequest(
        _capabilities(_child(el, "Capabilities"))),
    "GetServerCapabilities": lambda el: m.GetServerCapabilitiesRequest(),
    "CreateKey": _create,
    "StoreKey": _store,
    "GetKey": _get,
    "GetBindings": admin.bindings_query,
    "PushAuditMessage": _audit,
    "GetRandomBytes": lambda el: m.GetRandomBytesRequest(_int(el, "NumberOfBytes") or 0),
    **admin.decoders(decode_credential, parse_time),
    "GetEndpointStatus": lambda el: EndpointStatusRequest(
        _text(el, "SubscriptionId") or "", _text(el, "TargetOfInterest"), _text(el, "Locale")),
}


# ---- writing -----------------------------------------------------------------------------

format_time = key_xml.xsd_time


def _add(parent: etree._Element, name: str, text: object = None) -> etree._Element:
    el = etree.SubElement(parent, _K + name)
    if text is not None:
        el.text = text if isinstance(text, str) else str(text)
    return el


def _opt(parent: etree._Element, name: str, value: object) -> None:
    if value is not None:
        _add(parent, name, format_time(value) if isinstance(value, datetime) else value)


def _list(parent: etree._Element, name: str, item: str, pairs: Iterable[NameValue]) -> None:
    pairs = list(pairs)
    if pairs:
        box = _add(parent, name)
        for p in pairs:
            a = _add(box, item)
            _add(a, "Name", p.name)
            _add(a, "Value", p.value)


def _capability_list(parent: etree._Element, names: Iterable[str]) -> None:
    box = _add(parent, "Capabilities")
    for n in names:
        _add(_add(box, "Capability"), "Name", n)


def encode_key(parent: etree._Element, key: Key, tag: str = "Key") -> etree._Element:
    """A key as delivered, appended to `parent` (the writer is codec.key_xml)."""
    el = key_xml.element(key, tag)
    parent.append(el)
    return el


def _enc_register_wrapping(el: etree._Element, r: m.RegisterWrappingValuesResult) -> None:
    _add(el, "EndpointId", r.endpoint_id)
    for k in r.keys:
        w = _add(el, "WrappingKey")
        _add(w, "WrappingKeyId", k.key_id)
        _add(w, "Kind", k.kind.value)
        _add(w, "Created", format_time(k.created_at))


def _enc_register(el: etree._Element, r: m.RegisterEndpointResult) -> None:
    _add(el, "EndpointId", r.endpoint_id)
    _add(el, "Kind", r.kind.value)
    if r.endpoint_type_id is not None:
        _add(el, "EndpointTypeId", r.endpoint_type_id)


def _enc_authenticate(el: etree._Element, r: m.AuthenticateResult) -> None:
    _add(el, "ClientId", r.client.endpoint_id)
    _add(el, "State", "Authenticated" if r.token else r.client.state.value)
    if r.token:
        cred = _add(el, "Credential")
        _add(cred, "CredentialType", CredentialType.SESSION.value)
        _add(cred, "SessionToken", r.token)
    _opt(el, "Expires", r.expires)


def _text_get(r: m.GetKeyResult) -> str:
    return "".join([*(key_xml.key_xml(k) for k in r.keys),
                    "<kms:NotModified>true</kms:NotModified>" if r.not_modified else "",
                    "<kms:More>true</kms:More>" if r.more else ""])


# The responses written as text (the keys they deliver: codec.key_xml), in exclusive-c14n
# form inside their response element, which declares the kms prefix: spliced into the
# signed envelope as they are (security.xml.Spliced), no tree built, parsed or
# canonicalized for them.
TEXT_ENCODERS: dict[str, Callable[[Any], str]] = {
    "GetKey": _text_get,
    "CreateKey": lambda r: key_xml.key_xml(r.key),
}


ENCODERS: dict[str, Callable[[etree._Element, Any], object]] = {
    "RegisterEndpoint": _enc_register,
    "RegisterWrappingValues": _enc_register_wrapping,
    "Authenticate": _enc_authenticate,
    "NegotiateCapabilities": lambda el, r: _capability_list(el, r.capabilities),
    "GetServerCapabilities": lambda el, r: _capability_list(el, r.capabilities),
    "StoreKey": lambda el, r: (_add(el, "KeyId", r.key_id), _add(el, "Version", r.version)),
    "GetBindings": lambda el, r: admin.bindings_result(
        el, r, lambda v: format_time(v) if isinstance(v, datetime) else str(v)),
    "PushAuditMessage": lambda el, r: (_add(el, "Success", "true"),
                                       _add(el, "Accepted", r.accepted)),
    "GetRandomBytes": lambda el, r: _add(el, "RandomBytes",
                                         base64.b64encode(r.data).decode("ascii")),
    **admin.encoders(lambda v: format_time(v) if isinstance(v, datetime) else str(v)),
    "GetEndpointStatus": lambda el, r: encode_status(el, r),
}


def encode_status(el: etree._Element, r: EndpointStatus) -> None:
    """§6.10 status fields (kms:EndpointStatus) into `el`."""
    _opt(el, "EndpointId", r.endpoint_id)
    _opt(el, "Locale", r.locale)
    _opt(el, "OperatingMode", r.operating_mode)
    _opt(el, "KeysInUse", r.keys_in_use)
    _opt(el, "RekeyStatus", r.rekey_status)
    _list(el, "Status", "Attribute", (NameValue(n, v) for n, v in r.status))


def encode_response(operation: str, result: Any) -> tuple[etree._Element, list[Spliced]]:
    """The response element, and the text it receives when the envelope is serialised
    and signed (TEXT_ENCODERS; none for the others)."""
    el = etree.Element(_K + operation + "Response", nsmap={"kms": KMS})
    text = TEXT_ENCODERS.get(operation)
    if text is None:
        ENCODERS[operation](el, result)
        return el, []
    part = Spliced.new(text(result))
    el.text = part.marker
    return el, [part]
