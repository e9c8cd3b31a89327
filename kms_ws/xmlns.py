"""XML namespaces and action URIs used on the wire."""

KMS = "urn:kms-ws:p1619.3:1"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSA10 = "http://www.w3.org/2005/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
WSMID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
WSEN = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
WXF = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
WSE = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
XML = "http://www.w3.org/XML/1998/namespace"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

ANONYMOUS = WSA + "/role/anonymous"
FAULT_DETAIL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
WSMAN_FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

PREFIXES = {
    "s": SOAP,
    "wsa": WSA,
    "wsman": WSMAN,
    "wsmid": WSMID,
    "wsen": WSEN,
    "wxf": WXF,
    "wse": WSE,
    "kms": KMS,
    "wsse": WSSE,
}


def action(operation: str) -> str:
    """The wsa:Action URI of a kms operation (request) or its response."""
    return f"{KMS}/{operation}"


def qname(prefixed: str) -> str:
    """'wsman:AccessDenied' -> '{ns}AccessDenied'."""
    prefix, local = prefixed.split(":", 1)
    return f"{{{PREFIXES[prefix]}}}{local}"


def prefixed(tag: str) -> str:
    """'{ns}AccessDenied' -> 'wsman:AccessDenied' (a namespace of ours), else the tag."""
    ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    prefix = next((p for p, uri in PREFIXES.items() if uri == ns), None)
    return f"{prefix}:{local}" if prefix else tag
