"""Clients generated from an older copy of the WSDL (no wsam:Action, soapActionRequired=
"false") send the action their toolkit derives: gSOAP's wsdl2h the message-name pattern
urn:kms-ws:p1619.3:1/KmsPortType/<Op>Input, WS-Addressing 1.0 Metadata §4.4.4 the same
with ':' for a URN namespace. They are routed to the operation and answered with the
output action of the same pattern; anything else stays wsa:ActionNotSupported."""

from __future__ import annotations

import pytest

from kms_ws.xmlns import KMS, SOAP11, WSA

from ..support import envelopes as E
from ..support.server import ADMIN, ServerProcess
from ..support.validating import CT, post, post11
from .test_faults import fault_of

pytestmark = pytest.mark.e2e
RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes></kms:GetRandomBytes>"
GSOAP_IN = "urn:kms-ws:p1619.3:1/KmsPortType/GetRandomBytesInput"
GSOAP_OUT = "urn:kms-ws:p1619.3:1/KmsPortType/GetRandomBytesOutput"
WSAM_IN = "urn:kms-ws:p1619.3:1:KmsPortType:GetRandomBytesInput"
WSAM_OUT = "urn:kms-ws:p1619.3:1:KmsPortType:GetRandomBytesOutput"


def _with_action(uri: str) -> bytes:
    return E.envelope(RANDOM, addressing=False, headers=f"<wsa:Action>{uri}</wsa:Action>")


@pytest.mark.parametrize("sent, answered", [(GSOAP_IN, GSOAP_OUT), (WSAM_IN, WSAM_OUT)],
                         ids=["gsoap-message-name", "wsam-default"])
def test_a_default_action_in_the_content_type_is_routed(server: ServerProcess, sent: str,
                                                        answered: str) -> None:
    """What gSOAP sent with the old WSDL: no WS-Addressing, the action parameter only."""
    r, env = post(server.url, E.envelope(RANDOM, addressing=False), auth=ADMIN,
                  headers={"Content-Type": f'{CT};action="{sent}"'})
    assert r.status_code == 200
    assert env.findtext(f".//{{{WSA}}}Action") == answered
    assert env.find(f".//{{{KMS}}}GetRandomBytesResponse/{{{KMS}}}RandomBytes") is not None


@pytest.mark.parametrize("sent, answered", [(GSOAP_IN, GSOAP_OUT), (WSAM_IN, WSAM_OUT)],
                         ids=["gsoap-message-name", "wsam-default"])
def test_a_default_action_as_wsa_action_is_answered_with_its_output_pair(
        server: ServerProcess, sent: str, answered: str) -> None:
    r, env = post(server.url, _with_action(sent), auth=ADMIN)
    assert r.status_code == 200
    assert env.findtext(f".//{{{WSA}}}Action") == answered
    assert env.find(f".//{{{KMS}}}GetRandomBytesResponse/{{{KMS}}}RandomBytes") is not None


def test_a_default_action_as_soap11_soap_action(server: ServerProcess) -> None:
    r, env = post11(server.url, E.envelope11(RANDOM, addressing=False), action=GSOAP_IN,
                    auth=ADMIN)
    assert r.status_code == 200
    assert env.findtext(f".//{{{WSA}}}Action") == GSOAP_OUT
    assert env.find(f"{{{SOAP11}}}Body/{{{KMS}}}GetRandomBytesResponse") is not None


def test_an_alias_and_our_action_for_the_same_operation_agree(server: ServerProcess) -> None:
    r, env = post(server.url, E.envelope(RANDOM, op="GetRandomBytes", url=server.url),
                  auth=ADMIN, headers={"Content-Type": f'{CT};action="{GSOAP_IN}"'})
    assert r.status_code == 200
    assert env.findtext(f".//{{{WSA}}}Action") == f"{KMS}/GetRandomBytesResponse"


@pytest.mark.parametrize("sent", [
    "urn:kms-ws:p1619.3:1/KmsPortType/NoSuchOperationInput",
    "urn:kms-ws:p1619.3:1/KmsPortType/GetRandomBytesOutput",   # an output, not a request
    "urn:kms-ws:p1619.3:1/OtherPortType/GetRandomBytesInput",
    "urn:kms-ws:p1619.3:1:KmsPortType/GetRandomBytesInput",    # delimiters mixed
])
def test_other_actions_stay_unsupported(server: ServerProcess, sent: str) -> None:
    r, env = post(server.url, _with_action(sent), auth=ADMIN)
    assert r.status_code == 400
    assert fault_of(env)[1::2] == ("wsa:ActionNotSupported", "E_ACTION_NOT_SUPPORTED")


def test_an_alias_still_needs_its_operations_body(server: ServerProcess) -> None:
    body = E.envelope(E.get_key("00000000-0000-4000-8000-000000000000"), addressing=False,
                      headers=f"<wsa:Action>{GSOAP_IN}</wsa:Action>")
    r, env = post(server.url, body, auth=ADMIN)
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:SchemaValidationError"
