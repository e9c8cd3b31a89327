"""Raw SOAP 1.2 (and SOAP 1.1) envelopes, shaped as the clients in the wild send them."""

from __future__ import annotations

import uuid

from kms_ws.xmlns import KMS, SOAP, SOAP11, WSA, action

ANON = WSA + "/role/anonymous"


def envelope(body: str, *, op: str | None = None, url: str = "http://127.0.0.1/wsman",
             message_id: str | None = None, headers: str = "", addressing: bool = True) -> bytes:
    """body: the Body's inner XML using prefix kms. op: the operation for wsa:Action."""
    hdr = headers
    if addressing and op is not None:
        mid = message_id or f"uuid:{uuid.uuid4()}"
        hdr = (f"<wsa:To>{url}</wsa:To><wsa:Action>{action(op)}</wsa:Action>"
               f"<wsa:MessageID>{mid}</wsa:MessageID>"
               f"<wsa:ReplyTo><wsa:Address>{ANON}</wsa:Address></wsa:ReplyTo>") + headers
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}" xmlns:kms="{KMS}">'
            f"<s:Header>{hdr}</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()


def envelope11(body: str, *, op: str | None = None, url: str = "http://127.0.0.1/wsman",
               message_id: str | None = None, headers: str = "",
               addressing: bool = True) -> bytes:
    """A SOAP 1.1 envelope (prefix s bound to the SOAP 1.1 namespace); as `envelope`."""
    return envelope(body, op=op, url=url, message_id=message_id, headers=headers,
                    addressing=addressing).replace(SOAP.encode(), SOAP11.encode(), 1)


def get_key(key_id: str) -> str:
    return f"<kms:GetKey><kms:KeyId>{key_id}</kms:KeyId></kms:GetKey>"


def create_key(name: str = "k") -> str:
    return f"<kms:CreateKey><kms:FriendlyName>{name}</kms:FriendlyName></kms:CreateKey>"
