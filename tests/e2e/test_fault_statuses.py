"""HTTP statuses of faults by the SOAP 1.2 HTTP binding (Part 2 §7.5.2): Sender 400;
Receiver, MustUnderstand, VersionMismatch 500; 401 with a Basic challenge only where HTTP
authentication itself failed. Java JAX-WS, gSOAP and .NET read a fault body only on 400
and 500: with any other status they lose the kms:KmsFault detail. (tests/support/
validating.post checks this rule for every fault the tests receive.)"""

from __future__ import annotations

import uuid

import pytest

from kms_ws.client import KmsClient, KmsFault
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed

from ..support import envelopes as E
from ..support.server import ADMIN, ServerProcess
from ..support.signing import new_key, signed
from ..support.validating import post
from .test_faults import fault_of

pytestmark = pytest.mark.e2e
RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes></kms:GetRandomBytes>"
CHALLENGE = 'Basic realm="kms-ws", charset="UTF-8"'


def _random(server: ServerProcess, headers: str = "") -> bytes:
    return E.envelope(RANDOM, op="GetRandomBytes", url=server.url, headers=headers)


def _session(token: str) -> str:
    return (f"<kms:Credential><kms:CredentialType>Session</kms:CredentialType>"
            f"<kms:SessionToken>{token}</kms:SessionToken></kms:Credential>")


def test_a_domain_sender_fault_is_400_with_its_typed_detail(server: ServerProcess) -> None:
    missing = str(uuid.uuid4())
    r, env = post(server.url, E.envelope(E.get_key(missing), op="GetKey", url=server.url),
                  auth=ADMIN)
    assert r.status_code == 400 and "WWW-Authenticate" not in r.headers
    code, sub, _, error = fault_of(env)
    assert (code, sub, error) == ("s:Sender", "kms:NotFound", "E_KEY_NOT_FOUND")


def test_kms_client_reads_the_typed_fault(admin: KmsClient) -> None:
    with pytest.raises(KmsFault) as err:
        admin.get_key(str(uuid.uuid4()))
    assert (err.value.subcode, err.value.error_code) == ("kms:NotFound", "E_KEY_NOT_FOUND")
    with pytest.raises(KmsFault) as err:  # the WS-Management channel sees the status too
        admin.get_key_metadata(str(uuid.uuid4()))
    assert (err.value.subcode, err.value.http_status) == ("kms:NotFound", 400)


@pytest.mark.parametrize("authorization", [None, "wrong-password", "Bearer abc"])
def test_http_authentication_failure_is_401_with_a_challenge(server: ServerProcess,
                                                             authorization: str | None) -> None:
    headers, auth = {}, None
    if authorization == "wrong-password":
        auth = (ADMIN[0], "not-the-password")
    elif authorization:
        headers = {"Authorization": authorization}
    r, env = post(server.url, _random(server), auth=auth, headers=headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == CHALLENGE
    _, sub, _, error = fault_of(env)
    assert sub == "wsman:AccessDenied"
    assert error == ("E_INVALID_CREDENTIALS" if auth else "E_ACCESS_DENIED")


def test_a_disabled_client_over_basic_is_401(server: ServerProcess, admin: KmsClient) -> None:
    name, password = f"disabled-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    client_id = admin.register_endpoint("Client", name, password=password)
    admin.admin_edit("Client", {**admin.admin_get("Client", client_id), "State": "Disabled"})
    r, env = post(server.url, _random(server), auth=(name, password))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == CHALLENGE
    assert fault_of(env)[3] == "E_INVALID_CREDENTIALS"


def test_a_bad_session_credential_is_400_without_a_challenge(server: ServerProcess) -> None:
    """The credential travelled in the message, not in HTTP: a challenge would only make
    the client resend Basic credentials it never used."""
    r, env = post(server.url, _random(server, _session("A" * 43)))
    assert r.status_code == 400 and "WWW-Authenticate" not in r.headers
    assert fault_of(env)[1::2] == ("wsman:AccessDenied", "E_INVALID_CREDENTIALS")
    # ... also when HTTP Basic credentials come along (the header credential is the one used)
    r, env = post(server.url, _random(server, _session("A" * 43)),
                  auth=(ADMIN[0], "not-the-password"))
    assert r.status_code == 400 and "WWW-Authenticate" not in r.headers


def test_a_wrong_credential_in_an_authenticate_body_is_400(server: ServerProcess) -> None:
    login = ("<kms:Authenticate><kms:RequestType>Login</kms:RequestType><kms:Credential>"
             "<kms:CredentialType>UsernamePassword</kms:CredentialType><kms:UsernamePassword>"
             f"<kms:Username>{ADMIN[0]}</kms:Username><kms:Password>wrong-password</kms:Password>"
             "</kms:UsernamePassword></kms:Credential></kms:Authenticate>")
    r, env = post(server.url, E.envelope(login, op="Authenticate", url=server.url))
    assert r.status_code == 400 and "WWW-Authenticate" not in r.headers
    assert fault_of(env)[3] == "E_INVALID_CREDENTIALS"


def test_an_unregistered_signer_is_400_without_a_challenge(server: ServerProcess) -> None:
    key = new_key()
    stranger = wssecurity.SigningKey(key, self_signed(key, "stranger"))
    r, env = post(server.url, signed(RANDOM, "GetRandomBytes", stranger))
    assert r.status_code == 400 and "WWW-Authenticate" not in r.headers
    assert fault_of(env)[1] == "wsse:SecurityTokenUnavailable"


def test_an_authenticated_caller_without_the_right_is_400(server: ServerProcess,
                                                           client_factory) -> None:  # type: ignore[no-untyped-def]
    _, name, password = client_factory()
    body = "<kms:AdminList><kms:Kind>Realm</kms:Kind></kms:AdminList>"
    r, env = post(server.url, E.envelope(body, op="AdminList", url=server.url),
                  auth=(name, password))
    assert r.status_code == 400 and "WWW-Authenticate" not in r.headers
    assert fault_of(env)[1::2] == ("wsman:AccessDenied", "E_PERMISSION_DENIED")


def test_must_understand_is_500(server: ServerProcess) -> None:
    extra = '<x:Secret xmlns:x="urn:example:unknown" s:mustUnderstand="true">1</x:Secret>'
    r, env = post(server.url, _random(server, extra), auth=ADMIN, validate_request=False)
    assert r.status_code == 500 and fault_of(env)[0] == "s:MustUnderstand"
