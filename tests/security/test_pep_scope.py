"""§4.6 on the WS-Management paths: GetUpdateList (WS-Enumeration Enumerate with Scope a
PEP) and Subscribe scoped to a PEP that authenticates itself take the PEP's own proof
(kms:PepCredential over the wsa:Action, the PEP, the update type — and NotifyTo and
EndTo for Subscribe —, the MessageID and its creation time), exactly as GetKey does. Pull continues
under the MAC-protected context. Every missing, foreign, moved, replayed or tampered proof
or context is refused, audited, and changes nothing; a key made for such a PEP never
reaches its client alone. Every message is schema-validated."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree

from kms_ws.client import (
    KmsFault,
    PepSigner,
    PepUnwrapper,
    UpdateNotice,
)
from kms_ws.security import pep_proof, wssecurity
from kms_ws.xmlns import KMS, SOAP, WSA, WSE, WSEN, WXF

from ..support import db
from ..support import wsman as W
from ..support.pep import Forged, Setup, credential, denials
from ..support.schema_check import validate_envelope
from ..support.server import ServerProcess
from ..support.signing import utcnow
from ..support.validating import answers, post, with_new_message_id

pytestmark = pytest.mark.e2e
K, S = f"{{{KMS}}}", f"{{{SOAP}}}"
ENUMERATE, SUBSCRIBE = f"{WSEN}/Enumerate", f"{WSE}/Subscribe"
NOTIFY = "http://127.0.0.1:9/kms-notify"  # the subscriber's own address: allowed
NS = W.NS


def _list(s: Setup, prover: Any, update_type: str = "Keys",
          max_elements: int = 100) -> tuple[list[Any], dict[str, int]]:
    it = s.client.get_update_list(update_type, pep_id=s.pep_id, pep_proof=prover,
                                  max_elements=max_elements)
    keys: list[Any] = []
    while True:
        try:
            keys.append(next(it))
        except StopIteration as stop:
            return keys, stop.value


def _subscribe(s: Setup, prover: Any, notify_to: str = NOTIFY) -> str:
    return s.client.subscribe(notify_to, "Keys", pep_id=s.pep_id, pep_proof=prover)


REQUEST: dict[str, Callable[[Setup, Any], Any]] = {"enumerate": _list,
                                                   "subscribe": _subscribe}


def _state(server: ServerProcess) -> dict[str, int]:
    """What a refused request must leave as it was (UpdatePending acknowledgements and
    subscriptions included)."""
    return {**db.snapshot(server.data_dir),
            **{t: db.count(server.data_dir, t) for t in ("subscriptions", "pending_updates",
                                                          "seen_messages")}}


def _requests(s: Setup, action: str) -> list[bytes]:
    return [r for r in s.capture.all if f">{action}<".encode() in r]


def _with_proof(envelope: bytes, key: Any, action: str, pep_id: str,
                bound: tuple[tuple[str, str], ...]) -> bytes:
    """A raw request with the PEP's proof over its own MessageID."""
    tree = etree.fromstring(envelope)
    header = tree.find(S + "Header")
    mid = header.findtext(f"{{{WSA}}}MessageID")
    header.append(pep_proof.sign(key, action, pep_id, None, mid, utcnow(), bound))
    return etree.tostring(tree)


def _audited(server: ServerProcess, pep_id: str, event: str) -> int:
    return db.count(server.data_dir, "audit", pep_id=pep_id, event=event, result="Success")


# ---- acceptance -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ec", "rsa", "hmac"])
def test_update_list_of_a_self_authenticating_pep_with_its_proof(pep, server, kind) -> None:
    s = pep(kind)
    made = [s.client.create_key(friendly_name=f"k{i}", pep_id=s.pep_id,
                                pep_proof=s.signer).key_id for i in range(3)]
    s.client.create_key(friendly_name="the-clients-own")
    keys, tokens = _list(s, s.signer, max_elements=1)
    assert [k.key_id for k in keys] == made and tokens.get("Keys", 0) > 0
    # metadata only: the list carries no key value, wrapped or not
    assert all(k.value is None and k.pep_blob is None and k.wrapping_type is None
               for k in keys)
    enumerates, pulls = _requests(s, ENUMERATE), _requests(s, f"{WSEN}/Pull")
    assert len(enumerates) == 1 and b"PepCredential" in enumerates[0]
    assert len(pulls) >= 2 and not any(b"PepCredential" in p for p in pulls)
    # the next list starts at the token: nothing new
    again = s.client.get_update_list("Keys", tokens, pep_id=s.pep_id, pep_proof=s.signer)
    assert list(again) == []
    # each list accepted on the PEP's proof is on record, with the PEP
    assert _audited(server, s.pep_id, "Enumeration.Enumerate") == 2


def test_subscription_for_a_self_authenticating_pep_with_its_proof(pep, server) -> None:
    s = pep("ec")
    before = db.count(server.data_dir, "subscriptions")

    def ack(notice: UpdateNotice) -> dict[str, int]:
        return dict(notice.tokens)

    with s.client.listener(ack, inspect=validate_envelope) as listener:
        sub = _subscribe(s, s.signer, listener.url)
        assert sub and db.count(server.data_dir, "subscriptions") == before + 1
        assert b"PepCredential" in _requests(s, SUBSCRIBE)[0]
        assert _audited(server, s.pep_id, "Eventing.Subscribe") == 1
        s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not listener.received:
            time.sleep(0.05)
        assert listener.received and listener.received[0].pep_id == s.pep_id
        s.client.unsubscribe(sub)


# ---- refusals -------------------------------------------------------------------------

REFUSALS = ["missing", "other-pep", "wrong-key", "other-action", "other-body", "expired"]


@pytest.mark.parametrize("path", ["enumerate", "subscribe"])
@pytest.mark.parametrize("case", REFUSALS)
def test_missing_wrong_or_moved_proofs_are_refused(pep, server, path, case) -> None:
    s, other = pep("ec"), pep("ec")
    s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    other_body = (("UpdateType", "AllKeys"),) if path == "enumerate" else \
        (("UpdateType", "Keys"), ("NotifyTo", "http://127.0.0.1:9/elsewhere"),
         ("EndTo", "http://127.0.0.1:9/elsewhere"))
    prover = {
        "missing": None,
        "other-pep": Forged(other.key, pep_id=other.pep_id),
        "wrong-key": Forged(credential("ec")[0]),
        "other-action": Forged(s.key, operation=SUBSCRIBE if path == "enumerate"
                               else ENUMERATE),
        "other-body": Forged(s.key, bound=other_body),
        "expired": Forged(s.key, age=timedelta(minutes=10)),
    }[case]
    expected = {"missing": ("wsman:AccessDenied", "E_PEP_PROOF_REQUIRED"),
                "expired": ("wsse:MessageExpired", "E_MESSAGE_EXPIRED")}.get(
        case, ("wsse:FailedCheck", "E_SIGNATURE_INVALID"))
    before = _state(server)
    with pytest.raises(KmsFault) as e:
        REQUEST[path](s, prover)
    assert (e.value.subcode, e.value.error_code) == expected
    if case == "other-pep":
        assert other.pep_id in e.value.reason
    assert _state(server) == before
    assert denials(server, s.pep_id)[-1] == (expected[1], "Denied")


@pytest.mark.parametrize("path", ["enumerate", "subscribe"])
def test_replayed_or_lifted_proof_is_refused_and_audited(pep, server, path) -> None:
    s = pep("ec")
    s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    REQUEST[path](s, s.signer)
    captured = _requests(s, ENUMERATE if path == "enumerate" else SUBSCRIBE)[-1]
    before = _state(server)
    assert answers(server.url, captured, 2, auth=(s.name, s.password)) == [
        (400, "E_REPLAY")] * 2
    # the same proof on a new message (fresh MessageID): it was made for another request
    r, env = post(server.url, with_new_message_id(captured), auth=(s.name, s.password))
    assert r.status_code == 400
    assert env is not None and env.findtext(f".//{K}ErrorCode") == "E_SIGNATURE_INVALID"
    assert _state(server) == before
    assert denials(server, s.pep_id)[-3:] == [("E_REPLAY", "Denied")] * 2 + [
        ("E_SIGNATURE_INVALID", "Denied")]


def _tamper(context: str, **changes: Any) -> str:
    payload, tag = context.split(".")
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    doc.update(changes)
    new = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    return f"{new}.{tag}"


def test_pull_continues_under_the_proved_context_and_refuses_tampered_ones(pep,
                                                                           server) -> None:
    s, other = pep("ec"), pep("ec")
    for _ in range(2):
        s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
        other.client.create_key(pep_id=other.pep_id, pep_proof=other.signer)
    _list(s, s.signer, max_elements=1)
    response = next(etree.fromstring(r) for r in s.capture.received
                    if b"EnumerateResponse" in r)
    context = response.findtext(".//wsen:EnumerationContext", namespaces=NS)
    assert context
    auth = (s.name, s.password)
    r, env = post(server.url, W.pull(context), auth=auth)  # no proof: the context carries it
    assert r.status_code == 200
    assert env.find("s:Body/wsen:PullResponse/wsen:Items/kms:Key", NS) is not None
    payload = context.split(".")[0]
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert ["pep", s.pep_id] in doc["filter"] and ["proved", "1"] in doc["filter"]
    to_other = [[n, other.pep_id if n == "pep" else v] for n, v in doc["filter"]]
    unproved = [p for p in doc["filter"] if p[0] != "proved"]
    before = _state(server)
    for who, bad in [(auth, _tamper(context, filter=to_other)),   # another PEP's keys
                     (auth, _tamper(context, filter=unproved)),
                     ((other.name, other.password), context)]:    # another client
        r, env = post(server.url, W.pull(bad), auth=who)
        assert r.status_code == 500
        assert env.findtext(f".//{K}ErrorCode") == "E_INVALID_ENUMERATION_CONTEXT"
    # a proof on a Pull was made for no request the server takes one on
    stray = _with_proof(W.pull(context), s.key, f"{WSEN}/Pull", s.pep_id, ())
    r, env = post(server.url, stray, auth=auth)
    assert r.status_code == 400
    assert env.findtext(f".//{K}ErrorCode") == "E_SIGNATURE_INVALID"
    assert "takes no PEP proof" in env.findtext(".//s:Reason/s:Text", namespaces=NS)
    assert _state(server) == before


def test_a_proof_where_none_is_taken_is_refused(pep, server) -> None:
    """Enumerate for no PEP, and WS-Transfer Get of a key's metadata (which reads before
    it records): a proof there was made for some other request."""
    s = pep("ec")
    key = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer)
    listing = W.enumerate_(W.optimized(10) + W.update_filter("AllKeys"))
    requests = [_with_proof(listing, s.key, ENUMERATE, s.pep_id, (("UpdateType", "AllKeys"),)),
                _with_proof(W.get(key.key_id), s.key, f"{WXF}/Get", s.pep_id, ())]
    before = _state(server)
    for signed in requests:
        r, env = post(server.url, signed, auth=(s.name, s.password))
        assert r.status_code == 400
        assert env.findtext(f".//{K}ErrorCode") == "E_SIGNATURE_INVALID"
        # no kms:KeyId element, nor the key's id anywhere (the signature's
        # wsse:KeyIdentifier names the server's certificate)
        assert b"<kms:KeyId" not in r.content and key.key_id.encode() not in r.content
    assert _state(server) == before


def test_raw_enumerate_with_the_peps_proof(pep, server) -> None:
    """The proof as a non-KmsClient client would send it (shell style, no
    mustUnderstand), and marked mustUnderstand: both are understood."""
    s = pep("hmac")
    made = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer).key_id
    for style in ("shell", "openwsman"):
        request = W.enumerate_(W.optimized(10) + W.update_filter("Keys", pep=s.pep_id),
                               style=style)
        signed = _with_proof(request, s.key, ENUMERATE, s.pep_id, (("UpdateType", "Keys"),))
        if style == "openwsman":
            signed = signed.replace(b"<kms:PepCredential",
                                    b'<kms:PepCredential s:mustUnderstand="true"')
        r, env = post(server.url, signed, auth=(s.name, s.password))
        assert r.status_code == 200, env.findtext(".//s:Reason/s:Text", namespaces=NS)
        items = env.find("s:Body/wsen:EnumerateResponse/wsman:Items", NS)
        assert [k.findtext(K + "KeyId") for k in items] == [made]


# ---- keys made for a self-authenticating PEP ------------------------------------------

def test_a_self_authenticating_peps_key_never_reaches_its_client_alone(pep, server) -> None:
    s = pep("ec")
    key = s.client.create_key(pep_id=s.pep_id, pep_proof=s.signer,
                              attributes={"slot": f"s-{uuid.uuid4().hex[:6]}"})
    plain_pep = s.client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    before = db.snapshot(server.data_dir)
    refusals: list[Callable[[], Any]] = [
        lambda: s.client.get_key(key.key_id),
        lambda: s.client.get_key_metadata(key.key_id, include_value=True),
        lambda: s.client.get_key(key.key_id, pep_id=plain_pep),  # a PEP on its client's word
    ]
    for call in refusals:
        with pytest.raises(KmsFault) as e:
            call()
        assert (e.value.subcode, e.value.error_code) == ("wsman:AccessDenied",
                                                         "E_PEP_PROOF_REQUIRED")
    found, _ = s.client.find_keys(attributes=key.attributes)
    assert [k.key_id for k in found] == [key.key_id]
    assert found[0].value is None and found[0].pep_blob is None  # metadata only
    assert s.client.get_key_metadata(key.key_id).value is None
    assert db.snapshot(server.data_dir) == before
    # with the PEP's proof it arrives, wrapped to the PEP
    got = s.client.get_key(key.key_id, pep_id=s.pep_id, pep_proof=s.signer)
    assert got.value is None and len(PepUnwrapper([s.pep_kek]).open(got.pep_blob)) == 32


def test_ws_transfer_create_for_the_pep_takes_its_proof(pep, server) -> None:
    """WS-Transfer Create with a kms:CreateKey body for the PEP is CreateKey: the same
    proof (Operation CreateKey) is needed, and the answer is a reference, never a value."""
    s = pep("ec")
    body = f"<kms:CreateKey><kms:PepId>{s.pep_id}</kms:PepId></kms:CreateKey>"
    auth = (s.name, s.password)
    before = db.snapshot(server.data_dir)
    r, env = post(server.url, W.request(f"{WXF}/Create", body), auth=auth)
    assert r.status_code == 400 and env.findtext(f".//{K}ErrorCode") == "E_PEP_PROOF_REQUIRED"
    assert db.snapshot(server.data_dir) == before
    signed = _with_proof(W.request(f"{WXF}/Create", body), s.key, "CreateKey", s.pep_id, ())
    r, env = post(server.url, signed, auth=auth)
    assert r.status_code == 200
    key_id = env.findtext("s:Body/wxf:ResourceCreated/wsa:ReferenceParameters/"
                          "wsman:SelectorSet/wsman:Selector", namespaces=NS)
    assert b"KeyBlob" not in r.content and db.snapshot(server.data_dir)["keys"] == \
        before["keys"] + 1
    got = s.client.get_key(key_id, pep_id=s.pep_id, pep_proof=s.signer)
    assert len(PepUnwrapper([s.pep_kek]).open(got.pep_blob)) == 32


def test_a_context_made_before_the_pep_asked_for_proofs_stops(pep, admin, server) -> None:
    """An administrator gives a PEP served on its client's word an authentication
    policy: an enumeration begun without its proof cannot be continued."""
    s = pep("ec")
    plain = s.client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}",
                                       wrapping_values={"plain-kek": secrets.token_bytes(32)})
    for _ in range(2):
        s.client.create_key(pep_id=plain)
    auth = (s.name, s.password)
    r, env = post(server.url, W.enumerate_(W.optimized(1) + W.update_filter("Keys", pep=plain)),
                  auth=auth)
    context = env.findtext("s:Body/wsen:EnumerateResponse/wsen:EnumerationContext",
                           namespaces=NS)
    assert r.status_code == 200 and context
    assert post(server.url, W.pull(context), auth=auth)[0].status_code == 200
    secret = secrets.token_bytes(32)
    admin.admin_edit("Pep", {**admin.admin_get("Pep", plain), "AuthenticationPolicy":
                             "SymmetricKey", "AuthenticationValues": {"CredentialValue": [
                                 {"Length": 32, "Value": base64.b64encode(secret).decode()}]}})
    before = _state(server)
    r, env = post(server.url, W.pull(context), auth=auth)
    assert r.status_code == 400 and env.findtext(f".//{K}ErrorCode") == "E_PEP_PROOF_REQUIRED"
    assert _state(server) == before
    last = db.rows(server.data_dir, "SELECT operation, event, result, message FROM audit "
                   "WHERE actor_name = ? ORDER BY id DESC LIMIT 1", (s.name,))[0]
    assert last[:3] == ("Enumeration.Pull", "E_PEP_PROOF_REQUIRED", "Denied") and plain in last[3]
    signer = PepSigner(plain, wssecurity.SigningKey(secret))
    keys = list(s.client.get_update_list("Keys", pep_id=plain, pep_proof=signer,
                                         max_elements=1))
    assert len(keys) == 2


def test_a_subscribe_proof_binds_its_end_to(pep, server) -> None:
    """KmsClient sends EndTo (SubscriptionEnd goes there; by default NotifyTo): a proof
    over another EndTo, or over none, does not fit the request."""
    s = pep("ec")
    before = _state(server)
    for bound in ((("UpdateType", "Keys"), ("NotifyTo", NOTIFY),
                   ("EndTo", "http://127.0.0.1:9/elsewhere")),
                  (("UpdateType", "Keys"), ("NotifyTo", NOTIFY))):
        with pytest.raises(KmsFault) as e:
            _subscribe(s, Forged(s.key, bound=bound))
        assert e.value.error_code == "E_SIGNATURE_INVALID"
    assert _state(server) == before
    assert _subscribe(s, s.signer)
    sent = etree.fromstring(_requests(s, SUBSCRIBE)[-1])
    assert sent.findtext(f".//{{{WSE}}}EndTo/{{{WSA}}}Address") == NOTIFY
