"""A response element whole, as a test compares it: encode_response's element with the
text it splices (the key elements of GetKey and CreateKey) parsed into it."""

from __future__ import annotations

from typing import Any

from lxml import etree

from kms_ws.codec.kms import encode_response
from kms_ws.security.xml import parse_own
from kms_ws.xmlns import KMS


def encode_result(operation: str, result: Any) -> etree._Element:
    el, spliced = encode_response(operation, result)
    if spliced:
        name = f"kms:{operation}Response"
        return parse_own(f'<{name} xmlns:kms="{KMS}">{spliced[0].text.decode()}</{name}>')
    return el
