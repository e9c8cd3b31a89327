"""WS-Security 1.1 message signatures (XML Signature, exclusive c14n), both directions.

A signed message carries one wsse:Security header holding a wsu:Timestamp, optionally a
wsse:BinarySecurityToken (the signer's X.509 certificate) and one ds:Signature whose
references name the Body (/Envelope/Body), the Timestamp and header blocks (children of
/Envelope/Header), one reference each: `sign` covers every header block the message
carries (what a request asks for travels in its headers: wsa:Action, wsman:SelectorSet,
...), and a receiver refuses a message in which a header block it acts on is not covered
(`require_signed`). The key is named by a SecurityTokenReference to the token, by a
SecurityTokenReference holding the certificate's ThumbprintSHA1 KeyIdentifier (WSS 1.1:
the server's responses, whose certificate the client has pinned: the thumbprint only
names it, the pinned certificate's key verifies), or by ds:KeyName (a registered
endpoint name). SOAP 1.2 and SOAP 1.1 envelopes alike.

Both directions are built here on lxml's exclusive c14n and `cryptography`, for one
narrow profile, because a general XML-DSig engine both costs more (signxml re-parses
the document several times: ~3x the time of this verifier) and accepts more than we
want. `sign` writes the Security header as text in one piece (signature_text, which
also gives the canonical bytes of the Timestamp and SignedInfo it holds) and
canonicalizes the parts carrying the caller's content with lxml, in place. `verify`
checks the shape of the received tree first (one Security header, one Signature
anywhere, ids unique, each reference naming the Body, the Timestamp or a header block AT
ITS POSITION, only exclusive c14n transforms, allowed SHA-2 algorithms without
parameters), then canonicalizes each referenced part where it is, checks the digests and
the SignatureValue against those bytes, and returns the parts re-parsed from them: the
caller uses only what was verified (`VerifiedMessage.header` holds the signed header
blocks only). Wrapping defence does not depend on resolving ids at all. signxml and
Debian's xmlsec1 verify what `sign` makes and sign what `verify` accepts
(tests/security, tests/interop).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeGuard, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import SignatureMethod  # algorithm URIs

from ..domain.errors import (
    EncodingLimit,
    MessageExpired,
    MessageSecurityError,
    SignatureInvalid,
    UnsupportedAlgorithm,
)
from ..xmlns import DS, EXC_C14N, SOAP, SOAP11, WSSE, WSU, prefixed
from . import signature_text as text
from . import xml as secure_xml
from .proofs import KeyRef, VerificationKey
from .settings import SecuritySettings
from .signature_text import BASE64, THUMBPRINT_SHA1, X509V3  # noqa: F401 - re-exported

_WSU_ID = f"{{{WSU}}}Id"
_SECURITY = f"{{{WSSE}}}Security"
_TIMESTAMP = f"{{{WSU}}}Timestamp"
_CREATED = f"{{{WSU}}}Created"
_EXPIRES = f"{{{WSU}}}Expires"
_TOKEN = f"{{{WSSE}}}BinarySecurityToken"
_SIGNATURE = f"{{{DS}}}Signature"
_SIGNED_INFO = f"{{{DS}}}SignedInfo"
_SIGNATURE_VALUE = f"{{{DS}}}SignatureValue"
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_ECDSA = {name: ec.ECDSA(h()) for name, h in _HASHES.items()}
_DIGESTS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_EC_HASH = {384: "sha384", 521: "sha512"}  # by curve size; else SHA-256
_INCLUSIVE = f"{{{EXC_C14N}}}InclusiveNamespaces"
_C14N_METHOD = f"{{{DS}}}CanonicalizationMethod"
_SIGNATURE_METHOD = f"{{{DS}}}SignatureMethod"
_REFERENCE = f"{{{DS}}}Reference"
_TRANSFORMS = f"{{{DS}}}Transforms"
_TRANSFORM = f"{{{DS}}}Transform"
_DIGEST_METHOD = f"{{{DS}}}DigestMethod"
_DIGEST_VALUE = f"{{{DS}}}DigestValue"
_KEY_INFO = f"{{{DS}}}KeyInfo"
_KEY_NAME = f"{{{DS}}}KeyName"
_STR = f"{{{WSSE}}}SecurityTokenReference"
_WSSE_REFERENCE = f"{{{WSSE}}}Reference"
_KEY_IDENTIFIER = f"{{{WSSE}}}KeyIdentifier"
# Every id-like attribute of a document, in one call of libxml2's XPath engine (`//*/@`:
# attributes are on elements, and libxml2 then walks elements only).
_ID_VALUES = etree.XPath("//*/@wsu:Id | //*/@Id | //*/@ID | //*/@id | //*/@xml:id",
                         namespaces={"wsu": WSU})

# The SOAP versions whose envelopes are signed and verified (their namespace URIs).
ENVELOPES = (SOAP, SOAP11)
_MUST_UNDERSTAND = {SOAP: "true", SOAP11: "1"}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """An asymmetric key with its certificate, or an HMAC secret with the registered
    endpoint name that identifies it (ds:KeyName)."""

    key: PrivateKey | bytes = field(repr=False)
    cert: x509.Certificate | None = None
    key_name: str | None = None  # with a certificate: reference it by name, send no token
    # with a certificate: name it by its thumbprint, send no token (the receiver has it)
    by_thumbprint: bool = False
    # the certificate as a BinarySecurityToken's text (base64 DER), made once
    token: str | None = field(init=False, default=None, repr=False, compare=False)
    # the certificate's ThumbprintSHA1 (base64), made once
    thumbprint: str | None = field(init=False, default=None, repr=False, compare=False)
    # the SignatureMethod URI, made once
    method: str = field(init=False, default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cert is not None and self.key_name is None:
            cert_der = self.cert.public_bytes(Encoding.DER)
            if self.by_thumbprint:
                object.__setattr__(self, "thumbprint", _b64encode(thumbprint_sha1(cert_der)))
            else:
                object.__setattr__(self, "token", base64.b64encode(cert_der).decode())
        object.__setattr__(self, "method", self.algorithm.value)

    @property
    def algorithm(self) -> SignatureMethod:
        if isinstance(self.key, bytes):
            return SignatureMethod.HMAC_SHA256
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return {384: SignatureMethod.ECDSA_SHA384, 521: SignatureMethod.ECDSA_SHA512}.get(
                self.key.curve.key_size, SignatureMethod.ECDSA_SHA256)
        return SignatureMethod.RSA_SHA256


@dataclass(frozen=True)
class VerifiedMessage:
    """What a signature vouches for, re-parsed from the verified canonical bytes."""

    signer_id: str
    body: etree._Element  # the Body
    header: etree._Element  # a Header holding the signed header blocks, in message order
    unsigned: tuple[str, ...]  # the tags of the header blocks the signature left out
    created: datetime
    expires: datetime
    digest: str  # SHA-256 of the canonical SignedInfo: one per signed message
    accept_until: datetime  # the last moment it is accepted: its replay-cache lifetime
    symmetric: bool = False  # HMAC (SymmetricKey) rather than a certificate
    # the registered key's fingerprint (VerificationKey.fingerprint), for the service to
    # check that it is still the signer's
    key_fingerprint: str | None = field(default=None, repr=False)


# ---- signing --------------------------------------------------------------------------

def sign(env: etree._Element, key: SigningKey, *, now: datetime, ttl_seconds: int,
         body_prefixes: Sequence[str] = (), spliced: Sequence[secure_xml.Spliced] = (),
         must_understand: bool = True) -> None:
    """Add a wsse:Security header with a Timestamp and a Signature over the Body, the
    Timestamp and every header block of the envelope (one reference each), except the
    SOAP blocks (NotUnderstood, Upgrade), which have no room for a wsu:Id and which
    no receiver acts on.
    body_prefixes: namespace prefixes used inside Body text as QNames (a fault's Subcode),
    whose declarations exclusive c14n would otherwise leave unsigned (InclusiveNamespaces).
    spliced: text the Body receives at serialisation (its digest covers it as sent).
    must_understand: mark the Security header mustUnderstand (requests, whose receiver
    must verify it); a response leaves it off, so that a client without WS-Security
    can ignore the signature.
    The header is written as text in one piece (signature_text); the Body and the
    header blocks, which carry the caller's content, are canonicalized by lxml where
    they are."""
    soap = _envelope_ns(env)
    header = _signable_header(env, soap)
    # one random per message (64 bits: no id in a message meets it by chance); ids differ
    # by their part name
    suffix = os.urandom(8).hex()
    ts_text = text.timestamp("Timestamp-" + suffix, _time(now),
                             _time(now + timedelta(seconds=ttl_seconds)))
    body = _child(env, f"{{{soap}}}Body")
    if body is None:
        raise ValueError("the envelope has no Body")
    body.set(_WSU_ID, "Body-" + suffix)
    refs: list[tuple[str, tuple[str, ...], bytes | None]] = [
        ("Body-" + suffix, tuple(body_prefixes), _part_c14n(body, tuple(body_prefixes),
                                                            spliced)),
        ("Timestamp-" + suffix, (), None)]
    used = {"Body", "Timestamp", "X509"}  # a block's id never takes another part's
    own = tuple(f"{{{ns}}}" for ns in ENVELOPES)  # a SOAP 1.1 VersionMismatch has 1.2's Upgrade
    for block in header.iterchildren(etree.Element):
        tag = block.tag
        if tag == _SECURITY or tag.startswith(own):
            continue
        name = tag.rpartition("}")[2]
        ref_id = f"{name}-{suffix}" if name not in used else f"{name}-{len(used)}-{suffix}"
        used.add(name)
        block.set(_WSU_ID, ref_id)
        refs.append((ref_id, (), _c14n(block)))
    token = None if key.token is None else ("X509-" + suffix, key.token)
    if text.keeps_prefixes(header):
        si_text = _signed_info(key, refs, text.canonical_timestamp(ts_text))
        value = _b64encode(_raw_signature(key, text.canonical_signed_info(si_text)))
        sec = secure_xml.parse_own(text.security(token, ts_text, text.signature(
            si_text, value, token and token[0], key.key_name, thumbprint=key.thumbprint)))
        header.append(sec)
    else:  # lxml renames our prefixes when placing: canonicalize the placed elements
        sec = secure_xml.parse_own(text.security(token, ts_text, ""))
        header.append(sec)
        si_text = _signed_info(key, refs, _c14n(_made(sec, _TIMESTAMP)))
        sec.append(secure_xml.parse_own(text.signature(si_text, "", token and token[0],
                                                       key.key_name, standalone=True,
                                                       thumbprint=key.thumbprint)))
        sig = _made(sec, _SIGNATURE)
        _made(sig, _SIGNATURE_VALUE).text = _b64encode(
            _raw_signature(key, _c14n(_made(sig, _SIGNED_INFO))))
    if must_understand:
        sec.set(f"{{{soap}}}mustUnderstand", _MUST_UNDERSTAND[soap])


def _envelope_ns(env: etree._Element) -> str:
    """The SOAP namespace of an Envelope (1.2 or 1.1)."""
    ns = etree.QName(env).namespace
    if etree.QName(env).localname != "Envelope" or ns not in ENVELOPES:
        raise MessageSecurityError("a signed message is a SOAP Envelope")
    return ns


def _signable_header(env: etree._Element, soap: str) -> etree._Element:
    """The envelope's Header (made if missing), with the wsu prefix in scope so that the
    wsu:Id of each header block does not declare a namespace of its own: a Header not
    declaring it is replaced by one that does, holding the same blocks (only when the
    prefix is free there, so no name or text in a block can mean something else)."""
    header = _child(env, f"{{{soap}}}Header")
    if header is None:
        header = etree.Element(f"{{{soap}}}Header", nsmap={"wsu": WSU})
        env.insert(0, header)
        return header
    scope = header.nsmap
    if WSU in scope.values() or "wsu" in scope:
        return header
    parent = header.getparent()
    own = {p: u for p, u in scope.items() if parent is None or parent.nsmap.get(p) != u}
    nsmap: dict[str | None, str] = {**own, "wsu": WSU}
    # lxml-stubs 0.5 types neither _Attrib as a mapping nor nsmap with the default
    # namespace's None prefix
    new = etree.Element(header.tag, dict(header.attrib), nsmap=nsmap)  # type: ignore[misc, arg-type]
    new.text = header.text
    new.extend(list(header))
    env.replace(header, new)
    return new


def _part_c14n(el: etree._Element, prefixes: tuple[str, ...],
               spliced: Sequence[secure_xml.Spliced]) -> bytes:
    """A part's exclusive c14n as it will be sent: with the spliced text in place."""
    if prefixes:  # lxml's in-memory c14n drops a declaration only content uses
        el = etree.fromstring(etree.tostring(el))
    canonical = _c14n(el, prefixes)
    return secure_xml.splice(canonical, spliced) if spliced else canonical


def _signed_info(key: SigningKey, refs: Sequence[tuple[str, tuple[str, ...], bytes | None]],
                 timestamp: bytes) -> str:
    """SignedInfo text: each reference with the SHA-256 of its part's canonical bytes
    (None: the Timestamp's)."""
    return text.signed_info(key.method, [
        (ref_id, prefixes, _b64encode(hashlib.sha256(
            timestamp if canonical is None else canonical).digest()))
        for ref_id, prefixes, canonical in refs])


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def thumbprint_sha1(cert_der: bytes) -> bytes:
    """A certificate's ThumbprintSHA1 (WSS 1.1): the SHA-1 of its DER. It names a
    certificate the receiver already holds; the signature is verified with that
    certificate's key, never with anything the thumbprint brings."""
    return hashlib.sha1(cert_der, usedforsecurity=False).digest()


def _raw_signature(key: SigningKey, data: bytes) -> bytes:
    """XML-DSig signature values: HMAC bytes, RSA PKCS#1 v1.5, ECDSA as r || s."""
    k = key.key
    if isinstance(k, bytes):
        return hmac.new(k, data, hashlib.sha256).digest()
    if isinstance(k, rsa.RSAPrivateKey):
        return k.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(k.sign(data, _ECDSA[_EC_HASH.get(k.curve.key_size,
                                                                 "sha256")]))
    size = (k.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _time(t: datetime) -> str:
    """xsd:dateTime in UTC with milliseconds (`t` is naive UTC)."""
    return (t if t.tzinfo is None else t.replace(tzinfo=None)).isoformat(
        timespec="milliseconds") + "Z"


# ---- verification ---------------------------------------------------------------------

Resolver = Callable[[KeyRef], VerificationKey]


def has_security(header: etree._Element | None) -> TypeGuard[etree._Element]:
    return header is not None and _child(header, _SECURITY) is not None


def verify(root: etree._Element, resolve: Resolver, settings: SecuritySettings,
           now: datetime) -> VerifiedMessage:
    """Verify the one signature of `root` (see the module doc): it must reference the
    Body and the Timestamp, and may reference header blocks (each at its place, a child
    of the Header); what it leaves out is listed in `VerifiedMessage.unsigned`, for the
    receiver to refuse what it acts on (`require_signed`)."""
    secure_xml.check_shape(root, settings)  # so the parts re-parsed below are bounded too
    soap = _envelope_ns(root)
    header = _child(root, f"{{{soap}}}Header")
    sec = _one(_children(header, _SECURITY) if header is not None else [],
               "wsse:Security header")
    sig = _one(list(root.iter(_SIGNATURE)), "ds:Signature")
    if sig.getparent() is not sec:
        raise MessageSecurityError("the ds:Signature must be a child of wsse:Security")
    ts = _one(_children(sec, _TIMESTAMP), "wsu:Timestamp")
    _unique_ids(root)
    body = _child(root, f"{{{soap}}}Body")
    for name, el in (("Body", body), ("Timestamp", ts)):
        if el is None or not el.get(_WSU_ID):
            raise MessageSecurityError(f"the {name} must be present and carry a wsu:Id")
    assert header is not None and body is not None
    blocks = [b for b in header.iterchildren(etree.Element) if b is not sec]
    # The places a reference may name: ids are unique, so each names one element.
    places = {"#" + str(el.get(_WSU_ID)): el for el in (body, ts, *blocks)
              if el.get(_WSU_ID)}
    si, refs = _check_signed_info(sig, settings)
    targets = []
    for ref in refs:
        el = places.get(ref.uri)
        if el is None:
            raise MessageSecurityError("the signature may reference only the Body, the "
                                       f"Timestamp and header blocks, not {ref.uri[:80]!r}")
        targets.append(el)
    if not any(t is body for t in targets) or not any(t is ts for t in targets):
        raise MessageSecurityError("the signature must reference the Body and the Timestamp")
    key = resolve(_key_ref(sig, sec))
    # The parts are canonicalized where they must be, so what is verified is what is used.
    canonical = [_c14n(el, r.prefixes) for el, r in zip(targets, refs, strict=True)]
    signed_info = _c14n(si)
    _crypto_verify(sig, si, refs, canonical, signed_info, key, now)
    verified = dict(zip(map(id, targets), _reparse(canonical, settings), strict=True))
    created, expires = _check_window(verified[id(ts)], settings, now)
    signed_header = etree.Element(f"{{{soap}}}Header")
    signed_header.extend(verified[id(b)] for b in blocks if id(b) in verified)
    digest = hashlib.sha256(signed_info).hexdigest()
    until = min(expires, created + timedelta(seconds=settings.timestamp_ttl_seconds)) \
        + timedelta(seconds=settings.clock_skew_seconds)
    return VerifiedMessage(key.signer_id, verified[id(body)], signed_header,
                           tuple(b.tag for b in blocks if id(b) not in verified),
                           created, expires, digest, until, key.cert is None,
                           key.fingerprint)


def require_signed(verified: VerifiedMessage, tags: Collection[str]) -> None:
    """Refuse a message whose signature leaves out a header block the receiver acts on
    (its tag in `tags`): a relay could have added or changed it."""
    left_out = next((tag for tag in verified.unsigned if tag in tags), None)
    if left_out is not None:
        raise SignatureInvalid(f"the signature does not cover the header {prefixed(left_out)}")


def _reparse(canonical: Sequence[bytes], settings: SecuritySettings
             ) -> list[etree._Element]:
    """The canonical bytes of each signed part parsed back, in one parse: side by side in
    an element declaring no namespace, each is the tree it is alone (exclusive c14n
    declares on each part every prefix it uses, and nothing else is in scope). Their
    size is bounded by twice the message limit (c14n writes empty elements out in full
    and repeats namespace declarations, so a valid message may grow a little)."""
    joined = b"".join((b"<signed>", *canonical, b"</signed>"))
    limit = 2 * settings.max_message_bytes
    if len(joined) > limit:
        raise EncodingLimit(f"the signed parts, canonicalized, exceed {limit} bytes")
    return list(secure_xml.parse_canonical(joined, settings, limit))


def _one(items: list[etree._Element], what: str) -> etree._Element:
    if len(items) != 1:
        raise MessageSecurityError(f"a signed message holds exactly one {what}, not "
                                   f"{len(items)}")
    return items[0]


def _child(el: etree._Element, tag: str) -> etree._Element | None:
    """The first child element with this tag (el.find(tag) without the path engine)."""
    return next(el.iterchildren(tag), None)


def _made(el: etree._Element, tag: str) -> etree._Element:
    """A child element this module has just made, so there."""
    child = _child(el, tag)
    if child is None:
        raise AssertionError(f"{tag} missing from the header block just made")
    return child


def _children(el: etree._Element, *tags: str | tuple[str, ...]) -> list[etree._Element]:
    """The child elements with this tag, or any of these tags (el.findall(tag))."""
    return list(el.iterchildren(*tags))


def _text(el: etree._Element, tag: str) -> str | None:
    """el.findtext(tag)."""
    child = _child(el, tag)
    return None if child is None else secure_xml.text_of(child)


def _unique_ids(root: etree._Element) -> None:
    ids = [str(v) for v in cast("list[str]", _ID_VALUES(root))]  # a node-set: a list
    if len(set(ids)) != len(ids):
        dup = next(v for v, n in Counter(ids).items() if n > 1)
        raise MessageSecurityError(f"duplicate id {dup!r}")


class SignedRef(NamedTuple):
    uri: str
    prefixes: tuple[str, ...]  # InclusiveNamespaces PrefixList of its transform
    digest_method: str
    digest_value: bytes


def _check_signed_info(sig: etree._Element, settings: SecuritySettings
                       ) -> tuple[etree._Element, list[SignedRef]]:
    """SignedInfo in the one shape we accept: exclusive c14n, an accepted signature method
    (no HMACOutputLength or other parameters), then references each with exactly one
    exclusive c14n transform, an accepted digest method and a digest value."""
    si = _one(_children(sig, _SIGNED_INFO), "ds:SignedInfo")
    children = list(si.iterchildren(etree.Element))  # comments and PIs aside
    if len(children) < 3 or children[0].tag != _C14N_METHOD \
            or children[1].tag != _SIGNATURE_METHOD \
            or any(c.tag != _REFERENCE for c in children[2:]):
        raise MessageSecurityError("SignedInfo holds CanonicalizationMethod, SignatureMethod "
                                   "and References, in that order")
    c14n, method = children[0], children[1]
    if c14n.get("Algorithm") != EXC_C14N or len(c14n):
        raise UnsupportedAlgorithm("SignedInfo must use exclusive c14n")
    if method.get("Algorithm") not in settings.signature_algorithms or len(method):
        raise UnsupportedAlgorithm(f"signature algorithm not accepted: {method.get('Algorithm')}")
    refs = [_signed_ref(ref, settings) for ref in children[2:]]
    if len({r.uri for r in refs}) != len(refs):
        raise MessageSecurityError("a part is referenced twice")
    return si, refs


def _signed_ref(ref: etree._Element, settings: SecuritySettings) -> SignedRef:
    """One pass over the Reference's children: every Transform of its Transforms, its
    DigestMethods and DigestValues (other children are not looked at)."""
    transforms: list[etree._Element] = []
    digests: list[etree._Element] = []
    values: list[etree._Element] = []
    for child in ref:
        tag = child.tag
        if tag == _TRANSFORMS:
            transforms += child.iterchildren(_TRANSFORM)
        elif tag == _DIGEST_METHOD:
            digests.append(child)
        elif tag == _DIGEST_VALUE:
            values.append(child)
    inner = list(transforms[0]) if len(transforms) == 1 else []
    if len(transforms) != 1 or transforms[0].get("Algorithm") != EXC_C14N \
            or len(inner) > 1 or any(c.tag != _INCLUSIVE for c in inner):
        raise UnsupportedAlgorithm("each reference takes exactly one exclusive c14n "
                                   "transform")
    if len(digests) != 1 or digests[0].get("Algorithm") not in settings.digest_algorithms:
        raise UnsupportedAlgorithm("digest algorithm not accepted")
    if len(values) != 1:
        raise MessageSecurityError("each reference holds exactly one DigestValue")
    prefixes = tuple((inner[0].get("PrefixList") or "").split()) if inner else ()
    return SignedRef(ref.get("URI") or "", prefixes, digests[0].get("Algorithm", ""),
                     _b64(secure_xml.text_of(values[0]), "DigestValue"))


def _key_ref(sig: etree._Element, sec: etree._Element) -> KeyRef:
    ki = _one(_children(sig, _KEY_INFO), "ds:KeyInfo")
    children = list(ki.iterchildren(etree.Element))
    if len(children) != 1:
        raise MessageSecurityError("KeyInfo names the key exactly once")
    el = children[0]
    if el.tag == _KEY_NAME and secure_xml.text_of(el).strip():
        return KeyRef(key_name=secure_xml.text_of(el).strip())
    if el.tag == _STR and _child(el, _KEY_IDENTIFIER) is not None:
        return KeyRef(thumbprint=_thumbprint(el))
    ref = _child(el, _WSSE_REFERENCE) if el.tag == _STR else None
    uri = ref.get("URI", "") if ref is not None else ""
    tokens = [t for t in _children(sec, _TOKEN) if "#" + (t.get(_WSU_ID) or "") == uri]
    if not uri.startswith("#") or len(tokens) != 1 or tokens[0].get("ValueType") != X509V3:
        raise MessageSecurityError("KeyInfo must reference an X.509 BinarySecurityToken in "
                                   "this Security header, or give a KeyName")
    try:
        der = base64.b64decode("".join(secure_xml.text_of(tokens[0]).split()), validate=True)
    except binascii.Error:
        raise MessageSecurityError("the BinarySecurityToken is not base64") from None
    return KeyRef(certificate=der)


def _thumbprint(str_el: etree._Element) -> bytes:
    """The ThumbprintSHA1 a SecurityTokenReference holds as its one KeyIdentifier."""
    ids = list(str_el.iterchildren(etree.Element))
    el = ids[0]
    if len(ids) != 1 or el.get("ValueType") != THUMBPRINT_SHA1 \
            or el.get("EncodingType", BASE64) != BASE64:
        raise MessageSecurityError("a KeyIdentifier names the certificate by its "
                                   "ThumbprintSHA1 (base64), alone in its reference")
    value = _b64(secure_xml.text_of(el), "KeyIdentifier")
    if len(value) != 20:
        raise MessageSecurityError("a ThumbprintSHA1 KeyIdentifier holds 20 bytes")
    return value


def _hash_name(uri: str) -> str:
    """The hash of an accepted algorithm URI (settings admit only SHA-2 ones)."""
    return uri.rsplit("-", 1)[-1] if "#" in uri and "-sha" in uri else uri.rsplit("#", 1)[-1]


def _crypto_verify(sig: etree._Element, si: etree._Element, refs: Sequence[SignedRef],
                   canonical: Sequence[bytes], signed_info: bytes, key: VerificationKey,
                   now: datetime) -> None:
    """Check each reference's digest over the canonical bytes of its part (taken at the
    part's required position) and the SignatureValue over the canonical SignedInfo.
    Only the algorithms `_check_signed_info` admitted reach here."""
    for ref, data in zip(refs, canonical, strict=True):
        digest = _DIGESTS[_hash_name(ref.digest_method)](data).digest()
        if not hmac.compare_digest(digest, ref.digest_value):
            raise SignatureInvalid("the message signature does not verify: a digest "
                                   "does not match")
    method = _child(si, _SIGNATURE_METHOD).get("Algorithm", "")  # type: ignore[union-attr]
    value = _b64(_text(sig, _SIGNATURE_VALUE), "SignatureValue")
    if not _signature_valid(key, method, signed_info, value, now):
        raise SignatureInvalid("the message signature does not verify")


@functools.lru_cache(maxsize=256)
def _certificate_key(cert: x509.Certificate) -> tuple[Any, datetime, datetime]:
    """A certificate's public key and validity period (naive UTC), worked out once per
    certificate (DER): a bounded cache, so a flood of certificates cannot grow it."""
    return (cert.public_key(), cert.not_valid_before_utc.replace(tzinfo=None),
            cert.not_valid_after_utc.replace(tzinfo=None))


def _signature_valid(key: VerificationKey, method: str, data: bytes, value: bytes,
                     now: datetime) -> bool:
    """XML-DSig SignatureValue: HMAC (full length), RSA PKCS#1 v1.5, ECDSA as r || s.
    The method must suit the key: HMAC for a symmetric credential, the certificate's own
    key type otherwise; the certificate must be within its validity period."""
    hash_name = _hash_name(method)
    if key.cert is None:
        if "#hmac-" not in method or key.hmac_key is None:
            raise UnsupportedAlgorithm("a symmetric credential signs with HMAC only")
        expected = hmac.new(key.hmac_key, data, hash_name).digest()
        return hmac.compare_digest(expected, value)
    public, not_before, not_after = _certificate_key(key.cert)
    if not_before > now or not_after < now:
        raise SignatureInvalid("the signer's certificate is not valid at this time")
    try:
        if isinstance(public, ec.EllipticCurvePublicKey) and "#ecdsa-" in method:
            size = (public.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                return False
            der_sig = encode_dss_signature(int.from_bytes(value[:size], "big"),
                                           int.from_bytes(value[size:], "big"))
            public.verify(der_sig, data, _ECDSA[hash_name])
        elif isinstance(public, rsa.RSAPublicKey) and "#rsa-" in method:
            public.verify(value, data, padding.PKCS1v15(), _HASHES[hash_name]())
        else:
            raise UnsupportedAlgorithm("the signature method does not suit the signer's key")
    except InvalidSignature:
        return False
    return True


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except binascii.Error:
        raise MessageSecurityError(f"the {what} is not base64") from None


def _c14n(el: etree._Element, prefixes: Sequence[str] = ()) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False,
                          inclusive_ns_prefixes=list(prefixes) or None)


def _check_window(ts: etree._Element, settings: SecuritySettings,
                  now: datetime) -> tuple[datetime, datetime]:
    created = _parse_time(_text(ts, _CREATED), "Created")
    expires = _parse_time(_text(ts, _EXPIRES), "Expires")
    skew = timedelta(seconds=settings.clock_skew_seconds)
    if created > now + skew:
        raise MessageExpired("the message Timestamp is in the future")
    if expires < created or expires + skew <= now \
            or now - created > timedelta(seconds=settings.timestamp_ttl_seconds) + skew:
        raise MessageExpired("the message has expired")
    return created, expires


def _parse_time(text: str | None, what: str) -> datetime:
    value = (text or "").strip()
    try:
        if not value.endswith("Z"):
            raise ValueError
        return datetime.fromisoformat(value[:-1])
    except ValueError:
        raise MessageSecurityError(f"the Timestamp's {what} must be a UTC time "
                                   "(…Z)") from None
