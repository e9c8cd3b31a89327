"""The XML text of the wsse:Security header that `wssecurity.sign` adds, written in one
piece, and the exclusive-c14n forms of the two signed parts the header itself holds (the
wsu:Timestamp and the ds:SignedInfo).

Every name, attribute and value of those two parts is fixed here (ids are ours, times are
digits, algorithm URIs are constants, an InclusiveNamespaces PrefixList is escaped as
c14n escapes it), their text is already in canonical form (no empty-element tags,
namespace declarations before attributes, attributes in c14n order), and their elements
declare, on the Security and Signature elements, every prefix they use. So their
exclusive c14n as placed in an envelope is the text below with the namespace of the part's
own prefix declared on it, PROVIDED lxml keeps our prefixes when it places the header:
lxml drops a declaration whose namespace URI the new parent already has in scope and
reuses that prefix, so `keeps_prefixes` must hold for the header (else `sign` takes the
c14n of the placed elements). tests/security/test_signature_text.py proves the equality
against lxml's c14n in each envelope shape we meet, and that the fallback signs right.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from lxml import etree

from ..xmlns import DS, EXC_C14N, WSSE, WSU

X509V3 = ("http://docs.oasis-open.org/wss/2004/01/"
          "oasis-200401-wss-x509-token-profile-1.0#X509v3")
BASE64 = ("http://docs.oasis-open.org/wss/2004/01/"
          "oasis-200401-wss-soap-message-security-1.0#Base64Binary")
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# WS-Security 1.1 KeyIdentifier: a certificate named by the SHA-1 of its DER
THUMBPRINT_SHA1 = ("http://docs.oasis-open.org/wss/"
                   "oasis-wss-soap-message-security-1.1#ThumbprintSHA1")

# The prefixes the text binds, by namespace URI.
_OURS = {WSSE: "wsse", WSU: "wsu", DS: "ds", EXC_C14N: "ec"}
_SIGNED_INFO = "<ds:SignedInfo>"
_TRANSFORM = f'<ds:Transforms><ds:Transform Algorithm="{EXC_C14N}">'
_DIGEST = f'</ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="{SHA256}">' \
          '</ds:DigestMethod><ds:DigestValue>'


def keeps_prefixes(header: etree._Element) -> bool:
    """Whether the header's in-scope namespaces leave our prefixes as written: none of our
    namespace URIs is bound there to another prefix (or as the default namespace)."""
    return all(_OURS.get(uri, prefix) == prefix for prefix, uri in header.nsmap.items())


def timestamp(ts_id: str, created: str, expires: str) -> str:
    return (f'<wsu:Timestamp wsu:Id="{ts_id}"><wsu:Created>{created}</wsu:Created>'
            f'<wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>')


def canonical_timestamp(ts_text: str) -> bytes:
    """Exclusive c14n of the placed Timestamp written by `timestamp`."""
    return ts_text.replace("<wsu:Timestamp ", f'<wsu:Timestamp xmlns:wsu="{WSU}" ',
                           1).encode()


def signed_info(method: str, refs: Sequence[tuple[str, Sequence[str], str]]) -> str:
    """ds:SignedInfo: exclusive c14n, `method`, and for each (id, InclusiveNamespaces
    prefixes, base64 SHA-256 digest) a Reference with one exclusive c14n transform."""
    out = [_SIGNED_INFO, f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}">'
           '</ds:CanonicalizationMethod>'
           f'<ds:SignatureMethod Algorithm="{method}"></ds:SignatureMethod>']
    for ref_id, prefixes, digest in refs:
        out += [f'<ds:Reference URI="#{ref_id}">', _TRANSFORM]
        if prefixes:
            out.append(f'<ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList='
                       f'"{c14n_attr(" ".join(prefixes))}"></ec:InclusiveNamespaces>')
        out += [_DIGEST, digest, "</ds:DigestValue></ds:Reference>"]
    out.append("</ds:SignedInfo>")
    return "".join(out)


def canonical_signed_info(si_text: str) -> bytes:
    """Exclusive c14n of the placed SignedInfo written by `signed_info`."""
    return si_text.replace(_SIGNED_INFO, f'<ds:SignedInfo xmlns:ds="{DS}">', 1).encode()


def security(token: tuple[str, str] | None, ts_text: str, signature: str) -> str:
    """wsse:Security: the token (its id, base64 DER) if any, the Timestamp, the Signature."""
    bst = "" if token is None else (
        f'<wsse:BinarySecurityToken ValueType="{X509V3}" EncodingType="{BASE64}" '
        f'wsu:Id="{token[0]}">{token[1]}</wsse:BinarySecurityToken>')
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
            f'{bst}{ts_text}{signature}</wsse:Security>')


def signature(si_text: str, value: str, token_id: str | None, key_name: str | None,
              standalone: bool = False, thumbprint: str | None = None) -> str:
    """ds:Signature: SignedInfo, SignatureValue, and KeyInfo naming the key by a reference
    to the token, by its certificate's thumbprint (base64 SHA-1 of the DER: a
    KeyIdentifier, the receiver holds the certificate) or by its name. standalone: parsed
    on its own, outside `security`."""
    if token_id is not None:
        key_info = (f'<wsse:SecurityTokenReference><wsse:Reference ValueType="{X509V3}" '
                    f'URI="#{token_id}"/></wsse:SecurityTokenReference>')
    elif thumbprint is not None:
        key_info = (f'<wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType='
                    f'"{THUMBPRINT_SHA1}" EncodingType="{BASE64}">{thumbprint}'
                    '</wsse:KeyIdentifier></wsse:SecurityTokenReference>')
    else:
        key_info = f"<ds:KeyName>{escape(key_name or '')}</ds:KeyName>"
    wsse = f' xmlns:wsse="{WSSE}"' if standalone else ""
    return (f'<ds:Signature xmlns:ds="{DS}"{wsse}>{si_text}<ds:SignatureValue>{value}'
            f'</ds:SignatureValue><ds:KeyInfo>{key_info}</ds:KeyInfo></ds:Signature>')


def c14n_attr(value: str) -> str:
    """An attribute value escaped as canonical XML escapes it."""
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
            .replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;"))
