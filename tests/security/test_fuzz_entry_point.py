"""A bounded hypothesis fuzz of the message entry point (the WSGI application, real store
and crypto, in process): mutated signed and unsigned envelopes and XML-ish noise never
crash it, never get a 500, and always get a well-formed SOAP 1.2 envelope back."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from kms_ws.app import create_app, init_data_dir
from kms_ws.config import Config
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed

from ..support.envelopes import create_key, envelope, get_key
from ..support.signing import new_key, utcnow

S = "{http://www.w3.org/2003/05/soap-envelope}"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cfg = Config(data_dir=Path(tmp_path_factory.mktemp("fuzz")) / "data")
    db, _ = init_data_dir(cfg)
    db.dispose()
    return create_app(cfg)


def _seeds() -> list[bytes]:
    key = new_key()
    signer = wssecurity.SigningKey(key, self_signed(key, "fuzz"))
    plain = envelope(get_key("00000000-0000-4000-8000-000000000000"), op="GetKey")
    env = etree.fromstring(envelope(create_key("fuzz"), op="CreateKey"))
    wssecurity.sign(env, signer, wssecurity.REQUEST_PARTS, now=utcnow(), ttl_seconds=300)
    return [plain, etree.tostring(env)]


SEEDS = _seeds()


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(
                [b"<", b">", b"&", b"&e;", b"<!DOCTYPE x>", b"<!--", b"]]>", b'"', b"\x00",
                 b"<x>", b"</s:Body>", b"xmlns:s='urn:x'", b"wsu:Id='Body-1'"]))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            other = draw(st.sampled_from(SEEDS))
            at = draw(st.integers(0, len(other)))
            data[pos:pos] = other[at:at + draw(st.integers(1, 200))]
    return bytes(data)


def _call(app, body: bytes) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    status: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/wsman", "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/soap+xml;charset=UTF-8", "wsgi.input": io.BytesIO(body),
               "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}
    out = b"".join(app(environ, lambda s, h: status.append(s)))
    return int(status[0].split()[0]), out


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(messages(), st.binary(max_size=2000),
                      st.text(alphabet="<>/=\"' &;:abcsxmlnEBody!-[]", max_size=400)
                      .map(str.encode)))
def test_entry_point_never_crashes(app, body: bytes) -> None:  # type: ignore[no-untyped-def]
    status, out = _call(app, body)
    assert status != 500 and 200 <= status < 600
    root = etree.fromstring(out)
    assert root.tag == S + "Envelope"
    if status != 200:
        assert root.find(f"{S}Body/{S}Fault") is not None
