"""The one writer of kms:Key (§4.1) elements, as XML text.

A page of GetUpdateList holds up to a thousand keys: building each of their ~15 elements
with lxml costs ~25 us per key, joining escaped strings ~4 us. The text is written as
exclusive XML canonicalisation (c14n) writes it: a page's keys, each declaring the kms
prefix, are spliced into the signed response as they are (see security.xml.Spliced), with
no tree built, parsed or canonicalised. `element` parses one key (it is ours, never
input) for the writers that build a tree around it."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

from lxml import etree

from ..domain.model import Key, KeyState, NameValue, SourceKind
from ..domain.wrapping import KeyBlob
from ..security.xml import parse_own
from ..xmlns import KMS

_KMS_DECL = f'xmlns:kms="{KMS}"'


# Characters XML 1.0 cannot carry at all (lxml refuses them too).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """Character data as exclusive c14n writes it: & < > and CR (which a parser would
    otherwise normalise away) as references, everything else as itself. A character
    XML cannot carry is a ValueError (as lxml raises), never a malformed document."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if not (text.isascii() and text.isprintable()):
        if _NOT_XML.search(text):
            raise ValueError("a key field holds a character XML cannot carry")
        if "\r" in text:
            text = text.replace("\r", "&#xD;")
    return text


# Values many keys share (cipher, realms, templates, sources): escaped once per process.
_shared = lru_cache(maxsize=4096)(escape)
_WORDS = {m: m.value for m in (*KeyState, *SourceKind)}


def xsd_time(v: datetime) -> str:
    """xsd:dateTime in UTC with Z; microseconds only when there are some."""
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    return v.isoformat() + "Z"


def key_xml(key: Key, tag: str = "Key", declare: bool = False) -> str:
    """A key as delivered. With only the Reference right (key.hidden) the caller gets
    what it needs to use the key (its caching type too) and nothing that describes it
    (not the policies that applied). declare: the element
    binds the kms prefix itself (otherwise its container does)."""
    out = [f"<kms:{tag} {_KMS_DECL}>" if declare else f"<kms:{tag}>",
           f"<kms:KeyId>{escape(key.key_id)}</kms:KeyId>"]
    if key.friendly_name is not None and not key.hidden:
        out.append(f"<kms:FriendlyName>{escape(key.friendly_name)}</kms:FriendlyName>")
    out.append(f"<kms:State>{_WORDS[key.state]}</kms:State>")
    if key.t_expired is not None:
        out.append(f"<kms:TExpired>{xsd_time(key.t_expired)}</kms:TExpired>")
    if key.t_disabled is not None:
        out.append(f"<kms:TDisabled>{xsd_time(key.t_disabled)}</kms:TDisabled>")
    out.append(f"<kms:TCached>{int(key.t_cached)}</kms:TCached>")
    if key.caching_type is not None:
        out.append(f"<kms:CachingType>{_shared(key.caching_type)}</kms:CachingType>")
    out.append(f"<kms:CipherType>{_shared(key.cipher_type)}</kms:CipherType>")
    if key.blob is not None:
        _blob(out, key.blob)
    if not key.hidden and key.extensions:
        _pairs(out, "VendorSpecificExtensions", "Extension", key.extensions.vendor)
        _pairs(out, "ApplicationExtensions", "Extension", key.extensions.application)
    out.append(f"<kms:Version>{int(key.version)}</kms:Version>"
               f"<kms:EditDateTime>{xsd_time(key.edit_datetime)}</kms:EditDateTime>")
    if not key.hidden:
        _metadata(out, key)
    if key.assignment_policy_id is not None:
        out.append(f"<kms:KeyAssignmentPolicyId>{escape(key.assignment_policy_id)}"
                   "</kms:KeyAssignmentPolicyId>")
    if key.assignment_scope is not None:
        out.append(f"<kms:AssignmentScope>{escape(key.assignment_scope)}</kms:AssignmentScope>")
    if key.applied_policies and not key.hidden:
        out.append("<kms:AppliedPolicies>" + "".join(
            f"<kms:AppliedPolicy><kms:Kind>{_shared(p.kind)}</kms:Kind>"
            f"<kms:PolicyId>{_shared(p.policy_id)}</kms:PolicyId></kms:AppliedPolicy>"
            for p in key.applied_policies) + "</kms:AppliedPolicies>")
    out.append(f"</kms:{tag}>")
    return "".join(out)


def _metadata(out: list[str], key: Key) -> None:
    if key.realms:
        out.append(_realm_associations(key.realms))
    if key.description is not None:
        out.append(f"<kms:Description>{escape(key.description)}</kms:Description>")
    out.append(f"<kms:Source><kms:Kind>{_WORDS[key.source_kind]}</kms:Kind>")
    if key.source_id is not None:
        out.append(f"<kms:Id>{_shared(key.source_id)}</kms:Id>")
    out.append("</kms:Source>")
    if key.attributes:
        _pairs(out, "AttributeAssociations", "Attribute", key.attributes)
    if key.datasets:
        out.append("<kms:DataSets>")
        for d in key.datasets:
            out.append(f"<kms:DataSet><kms:Name>{escape(d.name)}</kms:Name>"
                       f"<kms:Value>{escape(d.value)}</kms:Value>")
            if d.sizeof_value is not None:
                out.append(f"<kms:SizeofValue>{int(d.sizeof_value)}</kms:SizeofValue>")
            out.append("</kms:DataSet>")
        out.append("</kms:DataSets>")
    if key.template_id is not None:
        out.append(f"<kms:TemplateId>{_shared(key.template_id)}</kms:TemplateId>")


@lru_cache(maxsize=1024)
def _realm_associations(realms: tuple[str, ...]) -> str:
    """Keys share a few sets of realms: each set is written once per process."""
    return "<kms:RealmAssociations>" + "".join(
        f"<kms:RealmAssociation><kms:Realm>{escape(r)}</kms:Realm></kms:RealmAssociation>"
        for r in realms) + "</kms:RealmAssociations>"


def _pairs(out: list[str], name: str, item: str, pairs: Iterable[NameValue]) -> None:
    body = "".join(f"<kms:{item}><kms:Name>{escape(p.name)}</kms:Name>"
                   f"<kms:Value>{escape(p.value)}</kms:Value></kms:{item}>" for p in pairs)
    if body:
        out.append(f"<kms:{name}>{body}</kms:{name}>")


def _blob(out: list[str], b: KeyBlob) -> None:
    """The one KeyBlob writer: the service has already wrapped Data (see service.key_delivery)."""
    out.append(f"<kms:KeyBlob><kms:ProtocolVersion>1</kms:ProtocolVersion>"
               f"<kms:WrappingType>{escape(b.wrapping_type)}</kms:WrappingType>")
    for name, value in (("WrappingKeyId", b.wrapping_key_id),
                        ("InnerWrappingType", b.inner_wrapping_type),
                        ("InnerWrappingKeyId", b.inner_wrapping_key_id)):
        if value is not None:
            out.append(f"<kms:{name}>{escape(value)}</kms:{name}>")
    out.append(f"<kms:Length>{int(b.length)}</kms:Length>"
               f"<kms:Data>{base64.b64encode(b.data).decode('ascii')}</kms:Data>")
    if b.check_value is not None:
        out.append(f"<kms:CheckValue>{base64.b64encode(b.check_value).decode('ascii')}"
                   "</kms:CheckValue>")
    out.append("</kms:KeyBlob>")


def fragment(tag: str, prefix: str, ns: str, text: str,
             nsmap: dict[str, str] | None = None) -> etree._Element:
    """`<prefix:tag>text</prefix:tag>` as an element; `text` is XML we wrote (key_xml and
    the like), with the kms prefix and any prefixes of `nsmap` bound on the container."""
    decls = " ".join([f'xmlns:{prefix}="{ns}"', _KMS_DECL] +
                     [f'xmlns:{p}="{u}"' for p, u in (nsmap or {}).items()
                      if p not in (prefix, "kms")])
    return parse_own(f"<{prefix}:{tag} {decls}>{text}</{prefix}:{tag}>")


def element(key: Key, tag: str = "Key") -> etree._Element:
    """One kms:Key element (for the writers that build a tree around it)."""
    return parse_own(key_xml(key, tag, declare=True))
