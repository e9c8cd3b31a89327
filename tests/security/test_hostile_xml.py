"""Hostile XML is refused before any authentication, with a fault, changing nothing:
entity bombs, XXE, external DTDs, quadratic blow-up, deep nesting, element floods,
oversize and malformed messages."""

from __future__ import annotations

import pytest
import requests

from ..support import db
from ..support.envelopes import envelope, get_key
from ..support.schema_check import validate_envelope
from ..support.server import ServerProcess
from ..support.validating import CT, post

S = "{http://www.w3.org/2003/05/soap-envelope}"
GOOD = envelope(get_key("00000000-0000-4000-8000-000000000000"), op="GetKey").decode()
_DECL = GOOD.index("<s:Envelope")


def _with_doctype(doctype: str, body_text: str = "&e;") -> bytes:
    msg = GOOD.replace("00000000-0000-4000-8000-000000000000", body_text)
    return (doctype + msg).encode()


LAUGHS = ('<!DOCTYPE s:Envelope [<!ENTITY a "lol">' + "".join(
    f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>")

CORPUS = {
    "billion_laughs": _with_doctype(LAUGHS, "&j;"),
    "xxe_file": _with_doctype('<!DOCTYPE s:Envelope [<!ENTITY e SYSTEM "file:///etc/passwd">]>'),
    "xxe_http": _with_doctype('<!DOCTYPE s:Envelope [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]>'),
    "parameter_entity": _with_doctype(
        '<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "x"),
    "external_dtd": _with_doctype('<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:9/x.dtd">',
                                  "x"),
    "quadratic_blowup": _with_doctype(
        '<!DOCTYPE s:Envelope [<!ENTITY e "' + "x" * 40_000 + '">]>', "&e;" * 10),
    "deep_nesting": envelope("<a>" * 5000 + "</a>" * 5000, op="GetKey"),
    "nesting_over_limit": envelope("<kms:GetKey>" + "<x>" * 40 + "</x>" * 40 + "</kms:GetKey>",
                                   op="GetKey"),
    "element_flood": envelope("<kms:GetKey>" + "<x/>" * 25_000 + "</kms:GetKey>", op="GetKey"),
    "oversize": envelope("<kms:GetKey><kms:KeyId>" + "A" * 600_000 + "</kms:KeyId></kms:GetKey>",
                         op="GetKey"),
    "attribute_flood": envelope('<kms:GetKey a="' + "x" * 400_000 + '"/>', op="GetKey"),
    "not_xml": b"\x00\xff\xfe garbage <<<",
    "bad_utf8": GOOD.replace("GetKey>", "GetKey\xff>", 1).encode("latin-1"),
    "unclosed": GOOD[:-20].encode(),
    "soap11": b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
    "two_bodies": GOOD.replace("</s:Body>", "</s:Body><s:Body/>").encode(),
    "entity_in_signed_message": _with_doctype(
        '<!DOCTYPE s:Envelope [<!ENTITY e "x">]>').replace(
        b"<s:Header>", b'<s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/'
        b'2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"/>'),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_message_gets_a_fault_and_changes_nothing(server: ServerProcess,
                                                          name: str) -> None:
    before = db.snapshot(server.data_dir)
    # No credential at all: the parser refuses before authentication is even considered.
    r, env = post(server.url, CORPUS[name], validate_request=False)
    if name == "soap11":  # answered in SOAP 1.1 (500 for every fault): its Body names nothing
        env = validate_envelope(r.content, soap11=True)
        assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/xml")
        assert env.findtext(".//faultcode") == "wsa:ActionNotSupported"
    else:
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        assert env is not None, r.text[:300]
        sub = env.findtext(f".//{S}Subcode/{S}Value")
        assert sub in ("wsman:SchemaValidationError", "wsman:EncodingLimit"), (sub, r.text[:300])
    assert b"root:" not in r.content and b"lollol" not in r.content
    assert db.snapshot(server.data_dir) == before


def test_oversize_without_content_length_is_refused(server: ServerProcess) -> None:
    """A chunked upload cannot sneak past the size limit."""
    chunks = (b"<a>" + b"x" * 65536 for _ in range(20))
    r = requests.post(server.url, data=chunks, headers={"Content-Type": CT}, timeout=30)
    assert r.status_code == 400


def test_processing_instructions_are_dropped_not_followed(server: ServerProcess) -> None:
    msg = ('<?xml-stylesheet href="http://127.0.0.1:9/x"?>' + GOOD).encode()
    r, env = post(server.url, msg, validate_request=False)
    # Parsed without the PI; the request then lacks a credential like any other.
    assert r.status_code == 401
    assert env.findtext(f".//{S}Subcode/{S}Value") == "wsman:AccessDenied"
