"""What a signed request means travels in its headers (wsa:Action, wsman:SelectorSet,
OptionSet, wsa:MessageID, ...): each header block the server acts on must be covered by
the signature, and any request giving one twice is refused. Attacks by a relay that
holds a genuine signed request: each is refused, changes nothing, and is an audit record
of the signer when the signature itself verified."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
from lxml import etree

from kms_ws.client import Kek, KmsClient, PepSigner, PepUnwrapper
from kms_ws.client.addressing import AddressingPlugin
from kms_ws.client.signing import SignaturePlugin
from kms_ws.xmlns import DS, KMS, SOAP, WSA, WSMAN, WSSE, WSU, WXF

from ..e2e.test_wsman_eventing import Acks
from ..support import db, wsman
from ..support.envelopes import get_key
from ..support.pep import Capture, credential
from ..support.server import ADMIN, ServerProcess
from ..support.signing import Signer, register_signer, signed
from ..support.validating import ValidatingPlugin, post

S, K, W, A = f"{{{SOAP}}}", f"{{{KMS}}}", f"{{{WSMAN}}}", f"{{{WSA}}}"
INCLUDE_VALUE = ('<wsman:OptionSet><wsman:Option Name="IncludeKeyValue">true</wsman:Option>'
                 "</wsman:OptionSet>")


def fault(env: etree._Element | None) -> tuple[str | None, str | None]:
    assert env is not None
    return (env.findtext(f".//{S}Subcode/{S}Value"), env.findtext(f".//{K}ErrorCode"))


def signed_wsman(key: object, action: str, selectors: dict[str, str] | None = None,
                 extra: str = "") -> etree._Element:
    """A WS-Management request as a WS-Management tool shapes it (To, ResourceURI,
    ReplyTo, Action, MaxEnvelopeSize, MessageID, OperationTimeout, SelectorSet), signed by
    KmsClient's signing plugin; parsed, for the relay to edit."""
    env = etree.fromstring(wsman.request(action, resource=wsman.KEY_URI, selectors=selectors,
                                         style="shell", extra=extra))
    SignaturePlugin(AddressingPlugin("http://127.0.0.1/wsman"), key, False).egress(
        env, {}, None, None)
    return etree.fromstring(etree.tostring(env))


def header_block(xml: str) -> etree._Element:
    return etree.fromstring(f'<h xmlns:wsa="{WSA}" xmlns:wsman="{WSMAN}" xmlns:kms="{KMS}">'
                            f"{xml}</h>")[0]


def insert_before_security(env: etree._Element, block: etree._Element) -> None:
    sec = env.find(f"{S}Header/{{{WSSE}}}Security")
    sec.addprevious(block)


def refusals(server: ServerProcess, signer: Signer) -> list[tuple[str, str]]:
    """(operation, event) of the signer's refused requests, oldest first."""
    return db.rows(server.data_dir, "SELECT operation, event FROM audit WHERE "
                   "actor_id = ? AND result <> 'Success' ORDER BY id", (signer.endpoint_id,))


def deliveries(server: ServerProcess, key_id: str) -> int:
    return db.count(server.data_dir, "audit", key_id=key_id, event="KeyDelivered")


@pytest.fixture()
def signer(server: ServerProcess, admin: KmsClient) -> Signer:
    return register_signer(admin)


@pytest.fixture()
def admin_signer(server: ServerProcess, admin: KmsClient) -> Signer:
    """A client that signs, made an administrator."""
    s = register_signer(admin)
    doc = admin.admin_get("Client", s.endpoint_id)
    admin.admin_edit("Client", {**doc, "Administrator": "true"})
    return s


@pytest.fixture()
def own_key(server: ServerProcess, signer: Signer) -> Iterator[str]:
    with KmsClient(server.url, signing_key=signer.key) as c:
        yield c.create_key(friendly_name="the signer's").key_id


def test_a_relayed_get_cannot_become_a_delete_of_another_key(
        server: ServerProcess, admin: KmsClient, admin_signer: Signer) -> None:
    mine, other = (admin.create_key(friendly_name=n).key_id for n in ("asked", "victim"))
    env = signed_wsman(admin_signer.key, f"{WXF}/Get", {"KeyId": mine})
    genuine = etree.tostring(env)
    # the relay turns the Get of one key into a Delete of another, same signature
    env.find(f"{S}Header/{A}Action").text = f"{WXF}/Delete"
    env.find(f"{S}Header/{W}SelectorSet/{W}Selector").text = other
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env), validate_request=False)
    assert fault(resp) == ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
    assert db.snapshot(server.data_dir) == before
    assert admin.get_key_metadata(other).state == admin.get_key_metadata(mine).state == "Active"
    r, resp = post(server.url, genuine)  # the signer's own request still does what it says
    assert r.status_code == 200 and resp.findtext(f".//{K}KeyId") == mine


def test_a_relay_cannot_add_include_key_value(server: ServerProcess, signer: Signer,
                                              own_key: str) -> None:
    env = signed_wsman(signer.key, f"{WXF}/Get", {"KeyId": own_key})  # metadata only
    insert_before_security(env, header_block(INCLUDE_VALUE))
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env), validate_request=False)
    assert fault(resp) == ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
    assert "does not cover the header wsman:OptionSet" in resp.findtext(f".//{S}Text")
    assert resp.find(f".//{K}KeyBlob") is None and deliveries(server, own_key) == 0
    assert db.snapshot(server.data_dir) == before
    # the signature verified: the signer is known, and the refusal is on its record
    assert refusals(server, signer) == [("Get", "E_SIGNATURE_INVALID")]


def test_swapped_message_ids_are_refused(server: ServerProcess, signer: Signer,
                                         own_key: str) -> None:
    """Two signed GetKeys whose MessageIDs a relay swaps: answered, each would relate to
    the other request, and the client would take one key for the other."""
    with KmsClient(server.url, signing_key=signer.key) as c:
        second = c.create_key(friendly_name="second").key_id
    first_env, second_env = (etree.fromstring(signed(get_key(k), "GetKey", signer.key))
                             for k in (own_key, second))
    ids = [e.find(f"{S}Header/{A}MessageID") for e in (first_env, second_env)]
    ids[0].text, ids[1].text = ids[1].text, ids[0].text
    for env in (first_env, second_env):
        r, resp = post(server.url, etree.tostring(env), validate_request=False)
        assert fault(resp) == ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
        assert resp.find(f".//{K}KeyBlob") is None
    assert deliveries(server, own_key) == deliveries(server, second) == 0


SECOND = {  # a second copy of a header block of a WS-Transfer Get
    "wsman:SelectorSet": '<wsman:SelectorSet><wsman:Selector Name="KeyId">{other}'
                         "</wsman:Selector></wsman:SelectorSet>",
    "wsa:Action": f"<wsa:Action>{WXF}/Delete</wsa:Action>",
    "wsa:MessageID": "<wsa:MessageID>uuid:{mid}</wsa:MessageID>",
    "wsman:OptionSet": INCLUDE_VALUE,
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_a_header_given_twice_is_refused_unsigned(server: ServerProcess, admin: KmsClient,
                                                  name: str) -> None:
    mine, other = (admin.create_key(friendly_name=n).key_id for n in ("asked", "other"))
    once = INCLUDE_VALUE if name == "wsman:OptionSet" else ""

    def get(extra: str = "") -> bytes:
        return wsman.request(f"{WXF}/Get", selectors={"KeyId": mine}, style="shell",
                             extra=once + extra)
    r, resp = post(server.url, get(), auth=ADMIN)  # each header once: answered
    assert r.status_code == 200 and resp.findtext(f".//{K}KeyId") == mine
    before = db.snapshot(server.data_dir), deliveries(server, mine), deliveries(server, other)
    r, resp = post(server.url, get(SECOND[name].format(other=other, mid=uuid.uuid4())),
                   auth=ADMIN, validate_request=False)
    assert fault(resp) == ("wsa:InvalidMessageInformationHeader", "E_DUPLICATE_HEADER")
    assert f"the header {name} is given more than once" in resp.findtext(f".//{S}Text")
    assert resp.find(f".//{K}Key") is None
    assert (db.snapshot(server.data_dir), deliveries(server, mine),
            deliveries(server, other)) == before


@pytest.mark.parametrize("signed_twice", [False, True], ids=["added-by-a-relay", "signed"])
@pytest.mark.parametrize("block", [f"<wsa:Action>{WXF}/Delete</wsa:Action>",
                                   '<wsman:SelectorSet><wsman:Selector Name="KeyId">{other}'
                                   "</wsman:Selector></wsman:SelectorSet>"],
                         ids=["Action", "SelectorSet"])
def test_a_header_given_twice_is_refused_signed(server: ServerProcess, admin: KmsClient,
                                                admin_signer: Signer, own_key: str,
                                                block: str, signed_twice: bool) -> None:
    other = admin.create_key(friendly_name="other").key_id
    extra = block.format(other=other)
    if signed_twice:  # a signer that signs two of them (a bug, or a trap)
        env = signed_wsman(admin_signer.key, f"{WXF}/Get", {"KeyId": own_key}, extra=extra)
    else:
        env = signed_wsman(admin_signer.key, f"{WXF}/Get", {"KeyId": own_key})
        insert_before_security(env, header_block(extra))
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env), validate_request=False)
    assert fault(resp) == ("wsa:InvalidMessageInformationHeader", "E_DUPLICATE_HEADER")
    assert resp.find(f".//{K}Key") is None and db.snapshot(server.data_dir) == before
    assert admin.get_key_metadata(other).state == "Active"
    assert refusals(server, admin_signer) == [("Get", "E_DUPLICATE_HEADER")]


@pytest.mark.parametrize("block", [
    "<wsman:OperationTimeout>PT1.000S</wsman:OperationTimeout>",
    '<wsman:Locale xml:lang="fr-FR"/>',
    "<wsa:FaultTo><wsa:Address>http://192.0.2.1/x</wsa:Address></wsa:FaultTo>",
    "<kms:Credential><kms:CredentialType>Session</kms:CredentialType>"
    "<kms:SessionToken>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</kms:SessionToken></kms:Credential>",
    "<kms:PepCredential><kms:PepId>00000000-0000-4000-8000-000000000000</kms:PepId>"
    "<kms:Created>2026-01-01T00:00:00Z</kms:Created><kms:SignatureMethod>"
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256</kms:SignatureMethod>"
    "<kms:SignatureValue>AAAA</kms:SignatureValue></kms:PepCredential>",
], ids=["OperationTimeout", "Locale", "FaultTo", "Credential", "PepCredential"])
def test_an_unsigned_known_header_next_to_signed_ones_is_refused(
        server: ServerProcess, signer: Signer, own_key: str, block: str) -> None:
    env = etree.fromstring(signed(get_key(own_key), "GetKey", signer.key))
    insert_before_security(env, header_block(block))
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env), validate_request=False)
    name = block[1:block.index(">")].split()[0]
    assert fault(resp) == ("wsse:FailedCheck", "E_SIGNATURE_INVALID")
    assert f"does not cover the header {name}" in resp.findtext(f".//{S}Text")
    assert resp.find(f".//{K}KeyBlob") is None and deliveries(server, own_key) == 0
    assert db.snapshot(server.data_dir) == before
    assert refusals(server, signer) == [("GetKey", "E_SIGNATURE_INVALID")]


def test_an_unknown_header_may_travel_unsigned_and_is_ignored(
        server: ServerProcess, signer: Signer, own_key: str) -> None:
    """A header block the server does not act on (and need not understand) is not
    refused for being unsigned: toolkits add such blocks without signing them."""
    env = etree.fromstring(signed(get_key(own_key), "GetKey", signer.key))
    insert_before_security(env, etree.fromstring(
        '<x:Trace xmlns:x="urn:vendor:trace">relay 7</x:Trace>'))
    r, resp = post(server.url, etree.tostring(env), validate_request=False)
    assert r.status_code == 200 and resp.findtext(f".//{K}KeyId") == own_key


def _references(env: etree._Element) -> tuple[set[str], set[str]]:
    """(the ids the signature references, the ids of the Body, the Timestamp and every
    header block but the Security header) of a request as sent."""
    refs = {r.get("URI")[1:] for r in env.iter(f"{{{DS}}}Reference")}
    header = env.find(f"{S}Header")
    parts = [env.find(f"{S}Body"), header.find(f".//{{{WSU}}}Timestamp"),
             *[b for b in header if isinstance(b.tag, str)
               and b.tag != f"{{{WSSE}}}Security"]]
    return refs, {str(p.get(f"{{{WSU}}}Id")) for p in parts}


def test_kms_client_signs_every_header_block(server: ServerProcess, admin: KmsClient) -> None:
    """§6 operations (also carrying a PEP's proof) and WS-Management requests
    (ResourceURI, SelectorSet, OptionSet, wse:Identifier): every header block is
    referenced by the signature, and the server accepts them."""
    signer = register_signer(admin)
    capture = Capture()
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    pep_key, pep_cred = credential("ec")
    pep_kek = Kek(f"pkek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    with KmsClient(server.url, signing_key=signer.key, wrapping_keys=[kek],
                   plugins=[ValidatingPlugin(), capture]) as c:
        c.register_wrapping_values({kek.key_id: kek.secret})
        key = c.create_key(friendly_name="covered")
        assert c.get_key_metadata(key.key_id, include_value=True).value == key.value
        assert run_to_end(c.get_update_list("Keys", max_elements=1))
        with c.listener(Acks()) as listener:
            sub = c.subscribe(listener.url)
            c.renew_subscription(sub)
            c.unsubscribe(sub)
        pep_id = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}", **pep_cred,
                                     wrapping_values={pep_kek.key_id: pep_kek.secret})
        prover = PepSigner(pep_id, pep_key)
        made = c.create_key(friendly_name="for the pep", pep_id=pep_id, pep_proof=prover)
        got = c.get_key(made.key_id, pep_id=pep_id, pep_proof=prover)
        assert PepUnwrapper([pep_kek]).open(got.pep_blob)
    sent = [etree.fromstring(m) for m in capture.all]
    assert any(e.find(f"{S}Header/{K}PepCredential") is not None for e in sent)
    assert any(e.find(f"{S}Header/{W}OptionSet") is not None for e in sent)
    for env, raw in zip(sent, capture.all, strict=True):
        refs, parts = _references(env)
        assert refs == parts, raw
    assert len(sent) >= 10


def run_to_end(gen):  # type: ignore[no-untyped-def]
    """Run a get_update_list generator to its end; its return value (the tokens)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def test_a_signed_request_is_not_routed_by_its_content_type(
        server: ServerProcess, admin: KmsClient, admin_signer: Signer) -> None:
    """A signed Get that carries no wsa:Action: a relay naming Delete in the HTTP
    Content-Type (which WSDL-driven stacks route by) must not make it a Delete."""
    key_id = admin.create_key(friendly_name="routed").key_id
    env = etree.fromstring(wsman.request(f"{WXF}/Get", resource=wsman.KEY_URI,
                                         selectors={"KeyId": key_id}, style="shell"))
    header = env.find(f"{S}Header")
    header.remove(header.find(f"{A}Action"))
    SignaturePlugin(AddressingPlugin("http://127.0.0.1/wsman"), admin_signer.key, False).egress(
        env, {}, None, None)
    before = db.snapshot(server.data_dir)
    r, resp = post(server.url, etree.tostring(env), validate_request=False, headers={
        "Content-Type": f'application/soap+xml;charset=UTF-8;action="{WXF}/Delete"'})
    assert fault(resp)[0] == "wsa:ActionNotSupported"
    assert db.snapshot(server.data_dir) == before
    assert admin.get_key_metadata(key_id).state == "Active"
