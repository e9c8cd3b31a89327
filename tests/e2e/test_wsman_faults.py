"""DSP0226 behaviour: MaxEnvelopeSize (wsman:EncodingLimit), OperationTimeout
(wsman:TimedOut), Locale, mustUnderstand on WS-Management requests, schema-invalid WS-*
bodies, and wsman:InternalError without a trace. Each fault changes nothing."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from kms_ws.client import KmsClient
from kms_ws.xmlns import FAULT_DETAIL, WSEN

from ..support import wsman as W
from ..support.db import snapshot
from ..support.server import ADMIN, ServerProcess
from ..support.validating import post
from .test_faults import fault_of

pytestmark = pytest.mark.e2e
NS = W.NS


@pytest.fixture()
def unchanged(server: ServerProcess):  # type: ignore[no-untyped-def]
    before = snapshot(server.data_dir)
    yield
    assert snapshot(server.data_dir) == before


def test_max_envelope_size_below_minimum(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, W.get(str(uuid.uuid4()), max_envelope=4096), auth=ADMIN)
    assert r.status_code == 400
    assert fault_of(env)[:2] == ("s:Sender", "wsman:EncodingLimit")


def test_response_larger_than_max_envelope_size(server: ServerProcess, admin: KmsClient) -> None:
    key = admin.create_key(friendly_name="big", description="d" * 4000,
                           attributes={f"a{i}": "v" * 200 for i in range(30)})
    before = snapshot(server.data_dir)
    r, env = post(server.url, W.get(key.key_id, max_envelope=8192), auth=ADMIN)
    assert r.status_code == 400
    assert fault_of(env)[1] == "wsman:EncodingLimit"
    assert env.findtext("s:Body/s:Fault/s:Detail/wsman:FaultDetail", namespaces=NS) == \
        FAULT_DETAIL + "MaxEnvelopeSize"
    assert snapshot(server.data_dir) == before
    r, _ = post(server.url, W.get(key.key_id, max_envelope=153600), auth=ADMIN)
    assert r.status_code == 200


def test_pages_shrink_to_fit_max_envelope_size(server: ServerProcess, client_factory) -> None:  # type: ignore[no-untyped-def]
    client, name, pw = client_factory(realms=(f"realm://env/{uuid.uuid4().hex[:6]}",))
    # at the smallest MaxEnvelopeSize the signed headers (~6 KB: one reference per header
    # block) leave room for a page of one such key
    made = [client.create_key(friendly_name=f"f{i}", description="x" * 500).key_id
            for i in range(8)]
    r, env = post(server.url, W.enumerate_(W.optimized(100), max_envelope=8192),
                  auth=(name, pw))
    assert r.status_code == 200 and len(r.content) <= 8192
    res = env.find("s:Body/wsen:EnumerateResponse", NS)
    got = [k.text for k in res.iterfind("wsman:Items/kms:Key/kms:KeyId", NS)]
    assert 1 <= len(got) < 8 and got == made[:len(got)]


def test_operation_timeout(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, W.enumerate_(timeout="PT0.000001S"), auth=ADMIN)
    assert r.status_code == 500
    assert fault_of(env)[:2] == ("s:Receiver", "wsman:TimedOut")
    assert env.findtext("s:Header/wsa:Action", namespaces=NS).endswith("/wsman/fault")


def test_lenient_operation_timeout_forms(server: ServerProcess) -> None:
    for t in ("PT60.000S", "PT60S", "PT1M", "P1D", "PT1H30M"):
        r, _ = post(server.url, W.enumerate_(timeout=t), auth=ADMIN)
        assert r.status_code == 200, t


def test_locale_is_accepted(server: ServerProcess, admin: KmsClient) -> None:
    key = admin.create_key(friendly_name="locale")
    for mu in ('s:mustUnderstand="false"', 's:mustUnderstand="true"', 'mustUnderstand="true"'):
        extra = f'<wsman:Locale xml:lang="de-DE" {mu}/>'
        r, env = post(server.url, W.get(key.key_id, extra=extra), auth=ADMIN)
        assert r.status_code == 200 and env.find("s:Body/kms:Key", NS) is not None


def test_unknown_must_understand_header_on_a_wsman_request(server: ServerProcess,
                                                            unchanged) -> None:  # type: ignore[no-untyped-def]
    extra = '<x:Lease xmlns:x="urn:example:lease" s:mustUnderstand="true">5</x:Lease>'
    r, env = post(server.url, W.get(str(uuid.uuid4()), extra=extra), auth=ADMIN,
                  validate_request=False)
    assert r.status_code == 500 and fault_of(env)[0] == "s:MustUnderstand"
    assert env.find("s:Header/s:NotUnderstood", NS).get("qname").endswith(":Lease")
    # the same header without mustUnderstand is ignored
    r, _ = post(server.url, W.enumerate_(extra=extra.replace(' s:mustUnderstand="true"', "")),
                auth=ADMIN, validate_request=False)
    assert r.status_code == 200


@pytest.mark.parametrize("body", [
    "<wsen:Pull><wsen:MaxElements>1</wsen:MaxElements></wsen:Pull>",
    "<wsen:Pull><wsen:EnumerationContext>x</wsen:EnumerationContext>"
    "<wsen:MaxElements>0</wsen:MaxElements></wsen:Pull>",
    "<wsen:Enumerate><wsen:Expires>tomorrow</wsen:Expires></wsen:Enumerate>",
], ids=["no-context", "zero-elements", "bad-expires"])
def test_schema_invalid_ws_bodies(server: ServerProcess, unchanged, body: str) -> None:  # type: ignore[no-untyped-def]
    action = "Pull" if "Pull" in body else "Enumerate"
    r, env = post(server.url, W.request(f"{WSEN}/{action}", body), auth=ADMIN,
                  validate_request=False)
    assert r.status_code == 400
    assert fault_of(env)[:2] == ("s:Sender", "wsman:SchemaValidationError")


def test_unknown_ws_action(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, W.request(f"{WSEN}/Rewind", "<wsen:Release><wsen:EnumerationContext>"
                                        "x</wsen:EnumerationContext></wsen:Release>"),
                  auth=ADMIN, validate_request=False)
    assert r.status_code == 400 and fault_of(env)[1] == "wsa:ActionNotSupported"


def test_internal_error_carries_no_trace(server: ServerProcess, admin: KmsClient) -> None:
    """A stored value that fails its integrity check: wsman:InternalError, a request id,
    no detail of what broke, and the key is never delivered."""
    key = admin.create_key(friendly_name="tampered-at-rest")
    con = sqlite3.connect(server.data_dir / "kms.db")
    try:
        con.execute("UPDATE keys SET sealed_value = zeroblob(60) WHERE id = ?", (key.key_id,))
        con.commit()
    finally:
        con.close()
    r, env = post(server.url, W.get(key.key_id, style="shell").replace(
        b"</wsman:MaxEnvelopeSize>",
        b'</wsman:MaxEnvelopeSize><wsman:OptionSet><wsman:Option Name="IncludeKeyValue">true'
        b"</wsman:Option></wsman:OptionSet>"), auth=ADMIN)
    assert r.status_code == 500
    code, sub, reason, error = fault_of(env)
    assert (code, sub, error) == ("s:Receiver", "wsman:InternalError", "E_INTERNAL")
    assert "Traceback" not in r.text and "sealed" not in reason
    assert env.findtext("s:Body/s:Fault/s:Detail/kms:KmsFault/kms:RequestId", namespaces=NS) \
        == r.headers["X-Request-Id"]
