"""The hardened parser, addressing headers, HTTP Basic, settings."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from lxml import etree

from kms_ws.domain.errors import EncodingLimit, SchemaValidationError
from kms_ws.security import xml as secure_xml
from kms_ws.security.http_auth import parse_basic
from kms_ws.security.settings import SecuritySettings
from kms_ws.wsman import addressing
from kms_ws.xmlns import KMS, SOAP, WSA

S = SecuritySettings()


def test_parser_refuses_dtds_and_entities() -> None:
    for doc in (b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', b'<!DOCTYPE a SYSTEM "x.dtd"><a/>'):
        with pytest.raises(SchemaValidationError, match="DTD"):
            secure_xml.parse(doc, S)


def test_parser_limits() -> None:
    small = dataclasses.replace(S, max_message_bytes=100, max_xml_depth=5, max_xml_elements=10)
    with pytest.raises(EncodingLimit, match="bytes"):
        secure_xml.parse(b"<a>" + b"x" * 200 + b"</a>", small)
    with pytest.raises(EncodingLimit, match="nesting"):
        secure_xml.parse(b"<a><a><a><a><a><a/></a></a></a></a></a>", small)
    with pytest.raises(EncodingLimit, match="elements"):
        secure_xml.parse(b"<a>" + b"<b/>" * 10 + b"</a>", small)
    assert secure_xml.parse(b"<a><a><a><a><a/></a></a></a></a>", small).tag == "a"


def test_parser_reports_malformed_xml() -> None:
    with pytest.raises(SchemaValidationError, match="well-formed"):
        secure_xml.parse(b"<a><b></a>", S)


def header(xml: str) -> etree._Element:
    return etree.fromstring(f'<s:Header xmlns:s="{SOAP}" xmlns:wsa="{WSA}">{xml}</s:Header>')


def test_must_understand_qualified_and_unqualified() -> None:
    h = header('<x:A xmlns:x="urn:x" s:mustUnderstand="true"/><x:B xmlns:x="urn:x" '
               'mustUnderstand="1"/><x:C xmlns:x="urn:x" s:mustUnderstand="false"/>'
               '<wsa:Action s:mustUnderstand="true">a</wsa:Action>')
    assert [e.tag for e in addressing.not_understood(h)] == ["{urn:x}A", "{urn:x}B"]


def test_addressing_read_and_content_type_action() -> None:
    h = header("<wsa:Action> urn:a </wsa:Action><wsa:MessageID>123</wsa:MessageID>"
               "<wsa:ReplyTo><wsa:Address>r</wsa:Address></wsa:ReplyTo>")
    a = addressing.read(h)
    assert (a.action, a.message_id, a.reply_to, a.to) == ("urn:a", "123", "r", None)
    ct = f'application/soap+xml; charset=utf-8; action="{KMS}/GetKey"'
    assert addressing.action_from_content_type(ct) == f"{KMS}/GetKey"
    assert addressing.action_from_content_type("application/soap+xml") is None


def test_basic_auth_parsing() -> None:
    token = base64.b64encode(b"alice:pa:ss").decode()
    assert parse_basic(f"Basic {token}") == ("alice", "pa:ss")
    assert parse_basic("Bearer xyz") is None
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Basic " + base64.b64encode(b"nocolon").decode()) is None


def test_basic_auth_utf8_and_latin1_passwords() -> None:
    utf8 = base64.b64encode("bob:pässwörd".encode()).decode()
    latin1 = base64.b64encode("bob:pässwörd".encode("iso-8859-1")).decode()
    assert parse_basic(f"Basic {utf8}") == ("bob", "pässwörd")
    assert parse_basic(f"Basic {latin1}") == ("bob", "pässwörd")


def test_settings_are_frozen_and_refuse_unknown_names() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.max_message_bytes = 1  # type: ignore[misc]
    assert SecuritySettings.from_mapping({"session_ttl_seconds": 5}).session_ttl_seconds == 5
    with pytest.raises(ValueError, match="unknown"):
        SecuritySettings.from_mapping({"max_mesage_bytes": 5})
