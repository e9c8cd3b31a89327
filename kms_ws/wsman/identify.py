"""DSP0226 §11 Identify: `<s:Header/><s:Body><wsmid:Identify/></s:Body>`, answered without
credentials only when the server is configured to (security.identify_without_credentials)."""

from __future__ import annotations

from lxml import etree

from ..service import identify as service_identify
from ..service.ws_messages import IdentifyRequest, IdentifyResult
from ..xmlns import WSMAN, WSMID
from .call import WsCall, WsReply

ACTION = WSMID.rsplit("/", 1)[0] + "/Identify"  # the action real clients send, if any
_I = f"{{{WSMID}}}"
PROTOCOL_VERSION = WSMAN
SECURITY_PROFILES = (
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic",
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/basic",
)


def identify(call: WsCall) -> WsReply:
    if call.credential is None and call.service.settings.identify_without_credentials:
        result = service_identify.identify(None, IdentifyRequest())
    else:
        result = call.run("Identify", IdentifyRequest())
    return WsReply(ACTION + "Response", [_encode(result)])


def _encode(r: IdentifyResult) -> etree._Element:
    el = etree.Element(_I + "IdentifyResponse", nsmap={"wsmid": WSMID})
    etree.SubElement(el, _I + "ProtocolVersion").text = PROTOCOL_VERSION
    etree.SubElement(el, _I + "ProductVendor").text = r.product_vendor
    etree.SubElement(el, _I + "ProductVersion").text = r.product_version
    profiles = etree.SubElement(el, _I + "SecurityProfiles")
    for p in SECURITY_PROFILES:
        etree.SubElement(profiles, _I + "SecurityProfileName").text = p
    return el
