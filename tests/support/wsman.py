"""WS-Management envelopes shaped as real clients send them (notes/wsman.md): openwsman /
wsmancli (prefixed uuid MessageIDs, every addressing header mustUnderstand), curl+xmllint
shell clients (bare uuidgen MessageIDs, optimized enumeration with MaxElements 512) and
WinRM-style clients (unqualified mustUnderstand, MaxEnvelopeSize 153600, a wsa:To that
is not our URL)."""

from __future__ import annotations

import uuid

from kms_ws.xmlns import KMS, SOAP, WSA, WSE, WSEN, WSMAN, WSMID, WXF, XML

ANON = WSA + "/role/anonymous"
KEY_URI = f"{KMS}/Key"
CLIENT_URI = f"{KMS}/Client"
PEP_URI = f"{KMS}/Pep"
SELECTOR_DIALECT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"
UPDATE_DIALECT = f"{KMS}/GetUpdateList"
NS = {"s": SOAP, "wsa": WSA, "wsman": WSMAN, "wsen": WSEN, "wse": WSE, "wxf": WXF,
      "wsmid": WSMID, "kms": KMS}
DECL = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())


def identify(header: str = "<s:Header/>") -> bytes:
    return (f'<s:Envelope {DECL}>{header}<s:Body><wsmid:Identify/></s:Body>'
            '</s:Envelope>').encode()


def request(action: str, body: str = "", *, resource: str | None = KEY_URI,
            selectors: dict[str, str] | None = None, style: str = "openwsman",
            to: str = "http://127.0.0.1/wsman", extra: str = "",
            timeout: str = "PT60.000S", max_envelope: int | None = None) -> bytes:
    """style: openwsman (s:mustUnderstand, uuid: MessageID), shell (bare uuidgen MessageID,
    no mustUnderstand) or winrm (unqualified mustUnderstand, a foreign wsa:To, Locale)."""
    mu = {"openwsman": ' s:mustUnderstand="true"', "shell": "",
          "winrm": ' mustUnderstand="true"'}[style]
    mid = str(uuid.uuid4()) if style == "shell" else f"uuid:{uuid.uuid4()}"
    if style == "winrm":
        to = "http://winrm-host.example:5985/wsman?PSVersion=5.1"
    max_env = max_envelope if max_envelope is not None else (153600 if style == "winrm"
                                                             else 51200)
    h = (f"<wsa:To>{to}</wsa:To>"
         + (f"<wsman:ResourceURI{mu}>{resource}</wsman:ResourceURI>" if resource else "")
         + f"<wsa:ReplyTo><wsa:Address{mu}>{ANON}</wsa:Address></wsa:ReplyTo>"
         f"<wsa:Action{mu}>{action}</wsa:Action>"
         f"<wsman:MaxEnvelopeSize{mu}>{max_env}</wsman:MaxEnvelopeSize>"
         f"<wsa:MessageID>{mid}</wsa:MessageID>")
    if style == "winrm":
        h += '<wsman:Locale xml:lang="en-US" s:mustUnderstand="false"/>'
    if timeout:
        h += f"<wsman:OperationTimeout>{timeout}</wsman:OperationTimeout>"
    if selectors is not None:
        h += "<wsman:SelectorSet>" + "".join(
            f'<wsman:Selector Name="{n}">{v}</wsman:Selector>' for n, v in selectors.items()) \
            + "</wsman:SelectorSet>"
    h += extra
    return (f'<s:Envelope {DECL} xmlns:xml="{XML}"><s:Header>{h}</s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def get(key_id: str | None, **kw) -> bytes:  # type: ignore[no-untyped-def]
    sel = {"KeyId": key_id} if key_id is not None else None
    return request(f"{WXF}/Get", selectors=kw.pop("selectors", sel), **kw)


def enumerate_(inner: str = "", **kw) -> bytes:  # type: ignore[no-untyped-def]
    return request(f"{WSEN}/Enumerate", f"<wsen:Enumerate>{inner}</wsen:Enumerate>", **kw)


def optimized(max_elements: int = 512, extra: str = "") -> str:
    return (f"<wsman:OptimizeEnumeration/><wsman:MaxElements>{max_elements}"
            f"</wsman:MaxElements>{extra}")


def update_filter(kind: str = "AllKeys", token: int | None = None, pep: str | None = None) -> str:
    scope = f"<kms:Scope><kms:PepId>{pep}</kms:PepId></kms:Scope>" if pep else ""
    tok = (f'<kms:UpdateVersioningTokens><kms:Token Type="{kind}">{token}</kms:Token>'
           "</kms:UpdateVersioningTokens>") if token is not None else ""
    return (f'<wsman:Filter Dialect="{UPDATE_DIALECT}"><kms:GetUpdateList><kms:Type>{kind}'
            f"</kms:Type>{scope}{tok}</kms:GetUpdateList></wsman:Filter>")


def pull(context: str, max_elements: int = 1, extra: str = "", **kw) -> bytes:  # type: ignore[no-untyped-def]
    return request(f"{WSEN}/Pull", f"<wsen:Pull><wsen:EnumerationContext>{context}"
                   f"</wsen:EnumerationContext>{extra}<wsen:MaxElements>{max_elements}"
                   "</wsen:MaxElements></wsen:Pull>" if "MaxTime" not in extra else
                   f"<wsen:Pull><wsen:EnumerationContext>{context}</wsen:EnumerationContext>"
                   f"{extra}</wsen:Pull>", **kw)


def context_call(verb: str, context: str, **kw) -> bytes:  # type: ignore[no-untyped-def]
    return request(f"{WSEN}/{verb}", f"<wsen:{verb}><wsen:EnumerationContext>{context}"
                   f"</wsen:EnumerationContext></wsen:{verb}>", **kw)
