"""Signed server-to-client calls: UpdatePending, GetStatus and SubscriptionEnd carry the
server's WS-Security signature (like its responses), and a client's listener verifies
each one against the server certificate it trusts. Unsigned, tampered, forged or replayed
calls get a SOAP fault and no callback runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from lxml import etree

from kms_ws.client import ClientServiceListener, KmsClient
from kms_ws.domain.records import Subscription
from kms_ws.security import wssecurity
from kms_ws.security.certificates import SERVER_CERT_FILE, self_signed
from kms_ws.wsman.addressing import must_understand
from kms_ws.wsman.delivery import request_envelope, update_pending_payload
from kms_ws.xmlns import KMS, SOAP, WSA, WSE, WSSE

from ..e2e.test_wsman_eventing import FAST, Acks, eventually
from ..support.clients import own_realm_client
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.signing import new_key, utcnow
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e
CT = {"Content-Type": "application/soap+xml;charset=UTF-8"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("signedcalls") / "data", config=FAST) as s:
        yield s


@pytest.fixture()
def client(srv: ServerProcess) -> Iterator[KmsClient]:
    with own_realm_client(srv.url, "signed") as (c, _, _):
        yield c


class Recorder:
    """inspect hook: validates every envelope and keeps the requests, as received."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        root = validate_envelope(data)
        if root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault") is None and \
                root.find(f"{{{SOAP}}}Header/{{http://schemas.xmlsoap.org/ws/2004/08/"
                          f"addressing}}RelatesTo") is None:
            self.requests.append(data)

    def first(self, tag: str) -> bytes:
        return next(r for r in self.requests if etree.fromstring(r).find(
            f"{{{SOAP}}}Body/{tag}") is not None)


def captured_update(client: KmsClient) -> tuple[bytes, ClientServiceListener]:
    """A genuine signed UpdatePending, as the server sent it, and the listener it
    reached (which the caller stops)."""
    rec = Recorder()
    listener = client.listener(Acks(), inspect=rec).start()
    sub = client.subscribe(listener.url)
    client.create_key(friendly_name="signed")
    assert listener.wait_for(1, 15)
    client.unsubscribe(sub)
    return rec.first(f"{{{KMS}}}UpdatePending"), listener


def post(listener: ClientServiceListener, data: bytes) -> tuple[int, etree._Element | None]:
    r = requests.post(listener.url, data=data, headers=CT, timeout=10)
    return r.status_code, validate_envelope(r.content) if r.content else None


def subcode(fault_env: etree._Element | None) -> str:
    assert fault_env is not None
    return fault_env.findtext(f".//{{{SOAP}}}Subcode/{{{SOAP}}}Value") or ""


def test_genuine_calls_are_signed_and_accepted(client: KmsClient) -> None:
    data, listener = captured_update(client)
    listener.stop()
    root = etree.fromstring(data)
    assert root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security/{{http://www.w3.org/2000/09/"
                     f"xmldsig#}}Signature") is not None
    assert listener.refused == 0 and len(listener.received) >= 1


def test_tampered_unsigned_replayed_and_forged_calls_are_refused(client: KmsClient) -> None:
    genuine, sender = captured_update(client)
    sender.stop()
    fired: list[object] = []
    # a listener taking calls at the first one's address (as one restarted there would)
    with client.listener(lambda n: fired.append(n) or None, inspect=validate_envelope,
                         addresses=[sender.url]) as listener:
        tampered = genuine.replace(b"<kms:Type>AllKeys</kms:Type>", b"<kms:Type>Keys</kms:Type>")
        assert tampered != genuine
        status, env = post(listener, tampered)
        assert (status, subcode(env)) == (400, "wsse:FailedCheck")

        root = etree.fromstring(genuine)
        sec = root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security")
        sec.getparent().remove(sec)
        status, env = post(listener, etree.tostring(root))
        assert (status, subcode(env)) == (400, "wsse:InvalidSecurity")

        status, env = post(listener, forged(genuine))
        assert (status, subcode(env)) == (400, "wsse:SecurityTokenUnavailable")

        assert post(listener, genuine)[0] == 200  # once (the first listener did not share)
        status, env = post(listener, genuine)
        assert (status, subcode(env)) == (400, "wsse:InvalidSecurity")  # a replay

        assert len(fired) == 1 and len(listener.received) == 1
        assert listener.refused == 4


def test_a_forged_subscription_end_is_not_recorded(client: KmsClient) -> None:
    rec = Recorder()
    with client.listener(Acks(), inspect=rec) as listener:
        sub = client.subscribe(listener.url)
        with KmsClient(client.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
            admin.unsubscribe(sub)  # an administrator removes it: SubscriptionEnd
        assert listener.wait_for_end(1, 15)
        genuine = rec.first(f"{{{WSE}}}SubscriptionEnd")
        other = genuine.replace(sub.encode(), f"uuid:{uuid.uuid4()}".encode())
        status, env = post(listener, other)
        assert (status, subcode(env)) == (400, "wsse:FailedCheck")
        status, env = post(listener, forged(other))
        assert (status, subcode(env)) == (400, "wsse:SecurityTokenUnavailable")
        assert [e.subscription_id for e in listener.ended] == [sub]


def test_a_listener_trusting_another_certificate_refuses_the_server(
        srv: ServerProcess, client: KmsClient) -> None:
    stranger = self_signed(new_key(), "not the server")
    fired: list[object] = []
    with ClientServiceListener(lambda n: fired.append(n) or None, server_cert=stranger,
                               inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url)
        client.create_key(friendly_name="to-a-stranger")
        assert eventually(lambda: listener.refused >= 2)  # refused, and tried again
        assert fired == [] and listener.received == []
        client.unsubscribe(sub)


def test_verification_is_required_unless_turned_off(srv: ServerProcess,
                                                    client: KmsClient) -> None:
    with pytest.raises(ValueError, match="server_cert"):
        ClientServiceListener(Acks())
    genuine, sender = captured_update(client)
    sender.stop()
    root = etree.fromstring(genuine)
    sec = root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security")
    sec.getparent().remove(sec)
    with ClientServiceListener(Acks(), verify_requests=False,
                               inspect=validate_envelope) as lax:
        assert post(lax, etree.tostring(root))[0] == 200  # what the owner chose
        assert len(lax.received) == 1
    pinned = ClientServiceListener(Acks(), server_cert=srv.data_dir / SERVER_CERT_FILE)
    with pinned:
        assert post(pinned, etree.tostring(root))[0] == 400 and pinned.received == []


def forged(data: bytes) -> bytes:
    """The same call, re-signed with a key that is not the server's."""
    root = etree.fromstring(data)
    sec = root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security")
    if sec is not None:
        sec.getparent().remove(sec)
    key = new_key()
    wssecurity.sign(root, wssecurity.SigningKey(key, self_signed(key, "kms-ws response signing")),
                    now=utcnow(), ttl_seconds=300)
    return etree.tostring(root)


# ---- the header blocks of a call are signed, and used ---------------------------------

def test_a_call_with_a_signed_header_changed_is_refused(client: KmsClient) -> None:
    genuine, sender = captured_update(client)
    sender.stop()
    fired: list[object] = []
    with client.listener(lambda n: fired.append(n) or None,
                         inspect=validate_envelope) as listener:
        root = etree.fromstring(genuine)
        root.find(f"{{{SOAP}}}Header/{{{WSA}}}To").text = listener.url  # re-addressed
        status, env = post(listener, etree.tostring(root))
        assert subcode(env) == "wsse:FailedCheck"
        root = etree.fromstring(genuine)
        root.find(f"{{{SOAP}}}Header/{{{WSA}}}MessageID").text = f"uuid:{uuid.uuid4()}"
        status, env = post(listener, etree.tostring(root))
        assert subcode(env) == "wsse:FailedCheck"
        assert fired == [] and listener.refused == 2


def test_a_call_for_another_listener_is_refused(client: KmsClient) -> None:
    """A genuine signed call, captured on its way to one listener and sent to another
    that trusts the same server: its signed wsa:To names the first."""
    genuine, sender = captured_update(client)
    sender.stop()
    fired: list[object] = []
    with client.listener(lambda n: fired.append(n) or None,
                         inspect=validate_envelope) as other:
        status, env = post(other, genuine)
        assert subcode(env) == "wsse:InvalidSecurity"
        assert "is addressed to" in env.findtext(f".//{{{SOAP}}}Text")
        assert fired == [] and other.refused == 1


def test_server_calls_ask_no_header_to_be_understood(client: KmsClient) -> None:
    """A listener built on a stack without WS-Security (JAX-WS, gSOAP) must be able to
    take the call: its Security header, like every other, is not mustUnderstand."""
    genuine, sender = captured_update(client)
    sender.stop()
    header = etree.fromstring(genuine).find(f"{{{SOAP}}}Header")
    assert header.find(f"{{{WSSE}}}Security") is not None
    assert [h.tag for h in header if must_understand(h)] == []


def _call(key: wssecurity.SigningKey, to: str, headers: str = "",
          action: str = f"{KMS}/UpdatePending") -> bytes:
    """An UpdatePending signed with `key` (standing in for the server's), addressed to
    `to`, with extra header blocks, under `action`."""
    sub = Subscription("uuid:x", str(uuid.uuid4()), to, "push", "AllKeys", None,
                       utcnow(), "127.0.0.1")
    env = etree.fromstring(request_envelope(to, action, update_pending_payload(sub, 7)))
    header = env.find(f"{{{SOAP}}}Header")
    for block in etree.fromstring(f'<h xmlns:wsa="{WSA}">{headers}</h>'):
        header.append(block)
    wssecurity.sign(env, key, now=utcnow(), ttl_seconds=300, must_understand=False)
    return etree.tostring(env)


def test_addresses_and_actions_a_listener_takes() -> None:
    key = new_key()
    server_key = wssecurity.SigningKey(key, self_signed(key, "a server"))
    behind = "http://proxy.example:8080/kms"
    with ClientServiceListener(Acks(), server_cert=server_key.cert) as own, \
            ClientServiceListener(Acks(), server_cert=server_key.cert,
                                  addresses=[behind]) as nat:
        by_name = own.url.replace("127.0.0.1", "localhost")
        assert post(own, _call(server_key, by_name))[0] == 200  # any name of this host
        assert subcode(post(own, _call(server_key, behind))[1]) == "wsse:InvalidSecurity"
        assert post(nat, _call(server_key, behind))[0] == 200  # the address it was given
        assert subcode(post(nat, _call(server_key, nat.url))[1]) == "wsse:InvalidSecurity"
        twice = _call(server_key, own.url, f"<wsa:MessageID>uuid:{uuid.uuid4()}</wsa:MessageID>")
        status, env = post(own, twice)
        assert subcode(env) == "wsa:InvalidMessageInformationHeader"
        changed = _call(server_key, own.url).replace(
            f"{KMS}/UpdatePending<".encode(), f"{KMS}/GetStatus<".encode())
        assert subcode(post(own, changed)[1]) == "wsse:FailedCheck"  # it was signed
        mismatched = _call(server_key, own.url, action=f"{KMS}/GetStatus")
        status, env = post(own, mismatched)
        assert "is not its Body's" in env.findtext(f".//{{{SOAP}}}Text")
        assert (len(own.received), own.refused, len(nat.received), nat.refused) == (1, 4, 1, 1)
