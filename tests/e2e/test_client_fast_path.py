"""KmsClient's fast path (GetKey, CreateKey, StoreKey, GetRandomBytes, PushAuditMessage
without zeep) against its zeep path, the reference, on a real server: equal results and
equal faults over the whole fast operation set — with a password, in a session, with
signed requests (EC certificate, HMAC), with the server's certificate pinned or fetched,
with wrapped keys and a PEP's proof — every response's signature verified on both paths
and every message of both validated against schemas/. A tampered, unsigned, foreign or
replayed response is refused by the fast path exactly as by zeep."""

from __future__ import annotations

import dataclasses
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from kms_ws.client import (
    Kek,
    Key,
    KeyUnwrapError,
    KmsClient,
    KmsFault,
    PepBlob,
    PepSigner,
    PepUnwrapper,
    UntrustedResponse,
    hmac_signing_key,
)
from kms_ws.security.certificates import SERVER_CERT_FILE, self_signed

from ..support.clients import ensure_realms
from ..support.pep import Forged, credential
from ..support.server import ADMIN, ServerProcess
from ..support.signing import new_key, register_signer
from ..support.tamper import TamperingRelay
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e

AES_256 = "2.16.840.1.101.3.4.1.46"
MODES = ["password", "session", "ec-signed", "hmac-signed", "tofu"]
Call = Callable[[KmsClient], Any]


@dataclasses.dataclass
class Pair:
    """The same client twice: on the fast path and on zeep's."""

    fast: KmsClient
    zeep: KmsClient
    validators: tuple[ValidatingPlugin, ValidatingPlugin]

    def outcomes(self, call: Call) -> tuple[Any, Any]:
        return _outcome(call, self.fast), _outcome(call, self.zeep)

    def same(self, call: Call) -> Any:
        """The call on both paths: the same result, or the same refusal."""
        fast, zeep = self.outcomes(call)
        assert fast == zeep
        return fast

    def close(self) -> None:
        self.fast.close()
        self.zeep.close()


def _outcome(call: Call, client: KmsClient) -> Any:
    try:
        return ("result", call(client))
    except KmsFault as fault:  # all but the request id and the HTTP status
        # (an oversize request's reason names its size: the fast path's envelopes are
        # smaller than zeep's)
        reason = re.sub(r"message of \d+ bytes", "message of N bytes", fault.reason)
        return (type(fault).__name__, fault.subcode, reason, fault.error_code,
                fault.supported)
    except (KeyUnwrapError, ValueError) as exc:
        return (type(exc).__name__, str(exc))


def _made(value: Any) -> Any:
    """What a call that makes something returns, without what differs each time (ids,
    key values, times): the made objects themselves are compared by reading them back."""
    if isinstance(value, Key):
        return dataclasses.replace(
            value, key_id="?", edit_datetime=None, value=value.value and len(value.value),  # type: ignore[arg-type]
            pep_blob=value.pep_blob and dataclasses.replace(
                value.pep_blob, key_id="?", data=b"", check_value=b""))
    if isinstance(value, bytes):
        return ("bytes", len(value))
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f-]{36}", value):
        return "<id>"
    return value


@dataclasses.dataclass
class World:
    """A client (its own realm, a KEK, a PEP with its own KEK and proof) in one mode."""

    pair: Pair
    realm: str
    kek: Kek
    pep_id: str
    pep_signer: PepSigner
    pep_kek: Kek
    template: str
    stranger_key: str  # a key in a realm this client is not in


def _pair(server: ServerProcess, mode: str, admin: KmsClient, realm: str,
          kek: Kek) -> tuple[Pair, Callable[[], None]]:
    name, password = f"fast-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    kw: dict[str, Any] = {"wrapping_keys": [kek]}
    if mode != "tofu":
        kw["server_cert"] = str(server.data_dir / SERVER_CERT_FILE)
    if mode == "ec-signed":
        signer = register_signer(admin, realms=(realm,))
        kw["signing_key"] = signer.key
    elif mode == "hmac-signed":
        secret = secrets.token_bytes(32)
        admin.register_endpoint("Client", name, symmetric_key=secret, realms=(realm,))
        kw["signing_key"] = hmac_signing_key(name, secret)
    else:
        admin.register_endpoint("Client", name, password=password, realms=(realm,))
        kw["username"], kw["password"] = name, password
    validators = (ValidatingPlugin(), ValidatingPlugin())
    pair = Pair(KmsClient(server.url, plugins=[validators[0]], **kw),
                KmsClient(server.url, plugins=[validators[1]], fast_path=False, **kw),
                validators)
    if mode == "session":
        pair.fast.login()
        pair.zeep.login()
    return pair, pair.close


@pytest.fixture(params=MODES)
def world(request: pytest.FixtureRequest, server: ServerProcess,
          admin: KmsClient) -> Iterator[World]:
    realm = f"realm://fast/{uuid.uuid4().hex[:8]}"
    ensure_realms(admin, (realm,))
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    pair, close = _pair(server, request.param, admin, realm, kek)
    pair.zeep.register_wrapping_values({kek.key_id: kek.secret})
    pep_key, cred = credential("ec")
    pep_kek = Kek(f"pkek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    pep_id = pair.zeep.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}", **cred,
                                         wrapping_values={pep_kek.key_id: pep_kek.secret})
    template = admin.admin_create("KeyTemplate", {
        "FriendlyName": f"t-{uuid.uuid4().hex[:10]}", "CipherType": AES_256,
        "KeyLength": 256, "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]},
        "ApplicationExtensions": {"Extension": [{"Name": "app/job", "Value": "nightly"}]}})
    stranger = admin.create_key(friendly_name="not-yours").key_id
    yield World(pair, realm, kek, pep_id, PepSigner(pep_id, pep_key), pep_kek,
                template["FriendlyName"], stranger)
    close()
    # every message of both paths was validated against schemas/, each answer verified
    assert pair.validators[0].received > 0 and pair.validators[1].received > 0


def _create_both(w: World, **args: Any) -> list[Key]:
    """create_key on both paths, equal but for what is new; each key then reads the same
    on both paths (GetKey), as each path made it."""
    fast, zeep = w.pair.outcomes(lambda c: c.create_key(**args))
    assert fast[0] == zeep[0] == "result", (fast, zeep)
    assert _made(fast[1]) == _made(zeep[1])
    for made in (fast[1], zeep[1]):
        read = w.pair.same(lambda c, k=made: c.get_key(k.key_id, wrapping_type=args.get(
            "wrapping_type"), pep_id=args.get("pep_id"), pep_proof=args.get("pep_proof")))
        assert (read[1].key_id, read[1].value) == (made.key_id, made.value)
    return [fast[1], zeep[1]]


def test_both_paths_give_equal_results(world: World) -> None:
    w, realm = world, world.realm
    name = f"fn-{uuid.uuid4().hex[:8]}"
    ds = [("tape://lib1/slot", "HU1234"), ("tape://lib1/label", "A<&>'\"\r\n😀")]
    attrs = {"owner": "backup & restore <nightly>", "tier": "2"}
    plain = _create_both(w, friendly_name=name, datasets=ds, attributes=attrs,
                         description="a key\r\nfor tapes", realms=(realm,))
    _create_both(w)
    _create_both(w, length=128)
    _create_both(w, cipher_type=AES_256)
    _create_both(w, template=w.template)
    wrapped = _create_both(w, friendly_name=f"w-{name}", wrapping_type="aes-key-wrap")
    assert all(k.wrapping_type == "aes-key-wrap" for k in wrapped)
    double = _create_both(w, pep_id=w.pep_id, pep_proof=w.pep_signer)
    for k in double:
        assert k.value is None and isinstance(k.pep_blob, PepBlob)
        assert len(PepUnwrapper([w.pep_kek]).open(k.pep_blob)) == 32

    for k in plain:
        w.pair.same(lambda c, k=k: c.get_key(k.key_id))
        w.pair.same(lambda c, k=k: c.get_key(k.key_id, usage="Encrypt"))
        w.pair.same(lambda c, k=k: c.get_key(k.key_id, wrapping_type="aes-key-wrap-pad"))
    one = w.pair.fast.create_key(friendly_name=f"one-{name}", datasets=[("tape://x", name)],
                                 attributes=attrs)
    by_name = w.pair.same(lambda c: c.get_key(friendly_name=one.friendly_name,
                                              attributes=attrs))
    by_sets = w.pair.same(lambda c: c.get_key(datasets=[("tape://x", name)]))
    assert by_name[1].key_id == by_sets[1].key_id == one.key_id
    w.pair.same(lambda c: c.get_key(friendly_name=name))  # two keys have that name

    for value, how in ((secrets.token_bytes(32), {}), (secrets.token_bytes(16), {
            "wrapping_type": "aes-key-wrap", "wrapping_key_id": w.kek.key_id})):
        fast, zeep = w.pair.outcomes(lambda c, v=value, h=how: c.store_key(
            v, friendly_name=f"s-{uuid.uuid4().hex[:6]}", datasets=ds, attributes=attrs,
            description="stored", realms=(realm,), **h))
        assert fast[0] == zeep[0] == "result" and _made(fast[1]) == _made(zeep[1])
        for key_id in (fast[1], zeep[1]):
            read = w.pair.same(lambda c, i=key_id: c.get_key(i))
            assert read[1].value == value

    for n in (1, 32, 65536):
        fast, zeep = w.pair.outcomes(lambda c, n=n: c.get_random_bytes(n))
        assert _made(fast[1]) == _made(zeep[1]) == ("bytes", n)

    key_id = plain[0].key_id
    w.pair.same(lambda c: c.push_audit_messages([{"event": "KeyUsed", "key_id": key_id}]))
    w.pair.same(lambda c: c.push_audit_messages([
        {"event": "Mounted", "key_id": key_id, "pep_id": w.pep_id,
         "time": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "message": "<ok> & 😀"},
        {"event": "Note", "time": "2026-01-02T03:04:05Z", "message": "line\r\nline"},
    ] * 3))


def test_both_paths_refuse_alike(world: World) -> None:
    w = world
    missing, unknown = "00000000-0000-4000-8000-000000000000", uuid.uuid4().hex
    mine = w.pair.fast.create_key(friendly_name=f"mine-{uuid.uuid4().hex[:6]}").key_id
    invalid: list[Call] = [  # requests schemas/ refuses (or the values it allows)
        lambda c: c.get_key("not-a-guid"),
        lambda c: c.get_key(mine, usage="Sign"),
        lambda c: c.get_key(mine, wrapping_type="no-such-wrapping"),
        lambda c: c.create_key(length=100),
        lambda c: c.create_key(cipher_type="1.2.3"),
        lambda c: c.store_key(b""),
        lambda c: c.store_key(b"k" * 600),
        lambda c: c.get_random_bytes(0),
        lambda c: c.get_random_bytes(65537),
        lambda c: c.push_audit_messages([{"event": "x", "time": datetime(2026, 1, 2)}]),
        lambda c: c.push_audit_messages([{"event": ""}]),
    ]
    refusals: list[Call] = [
        lambda c: c.get_key(missing),
        lambda c: c.get_key(w.stranger_key),
        lambda c: c.get_key(friendly_name=f"none-{unknown}"),
        lambda c: c.get_key(datasets=[("tape://none", unknown)]),
        lambda c: c.get_key(mine, wrapping_type="cms-rsa-oaep"),
        lambda c: c.get_key(mine, pep_id=missing),
        lambda c: c.get_key(mine, pep_id=w.pep_id, pep_proof=Forged(w.pep_signer._key,
                                                                      key_id=missing)),
        lambda c: c.get_key(mine, pep_proof=w.pep_signer),  # no pep_id: refused locally
        lambda c: c.get_key(),
        lambda c: c.push_audit_messages([]),
        lambda c: c.create_key(template="no-such-template"),
        lambda c: c.create_key(template=missing),
        lambda c: c.create_key(realms=("realm://localhost/default",)),
        lambda c: c.create_key(realms=("realm://nowhere/x",)),
        lambda c: c.create_key(pep_id=missing),
        lambda c: c.create_key(wrapping_type="cms-rsa-oaep"),
        lambda c: c.create_key(friendly_name="bad\x01name"),
        lambda c: c.store_key(b"k" * 32, wrapping_type="aes-key-wrap",
                              wrapping_key_id="not-held"),
        lambda c: c.store_key(b"k" * 32, realms=("realm://localhost/default",)),
        lambda c: c.push_audit_messages([{"event": "x", "key_id": missing}]),
        lambda c: c.push_audit_messages([{"event": "x", "key_id": w.stranger_key}]),
        lambda c: c.push_audit_messages([{"event": "Note", "message": "A" * 4000}] * 200),
    ]
    seen = set()
    for refuse in refusals:
        outcome = w.pair.same(refuse)
        assert outcome[0] != "result", outcome
        seen.add(outcome[0])
    for v in w.pair.validators:
        v.check_requests = False  # (the answers are still validated)
    for refuse in invalid:
        outcome = w.pair.same(refuse)
        assert outcome[0] == "KmsFault", outcome
    assert seen == {"KeyUnwrapError", "KmsFault", "ValueError"}, seen
    assert w.pair.same(lambda c: len(c.get_random_bytes(4))) == ("result", 4)  # both go on


def test_bad_credentials_are_refused_alike(server: ServerProcess) -> None:
    """The refusals of the server's HTTP authentication and of a closed session."""
    cert = str(server.data_dir / SERVER_CERT_FILE)
    outcomes = []
    for fast in (True, False):
        with KmsClient(server.url, ADMIN[0], "wrong", server_cert=cert,
                       fast_path=fast) as c:
            outcomes.append(_outcome(lambda c: c.get_random_bytes(4), c))
        with KmsClient(server.url, *ADMIN, server_cert=cert, fast_path=fast) as c:
            c.login()
            token = c._addressing.session_token
            c.logout()
            c._addressing.session_token = token
            outcomes.append(_outcome(lambda c: c.get_key(str(uuid.uuid4())), c))
    assert outcomes[:2] == outcomes[2:]
    assert all(o[0] == "KmsFault" for o in outcomes)


# ---- a man in the middle: both paths refuse what he changed, alike ---------------------

def _flip_data(data: bytes) -> bytes:
    start = data.index(b"<kms:Data>") + len(b"<kms:Data>")
    return data[:start] + (b"A" if data[start:start + 1] != b"A" else b"B") + data[start + 1:]


def _strip_signature(data: bytes) -> bytes:
    start = data.index(b"<wsse:Security")
    end = data.index(b"</wsse:Security>") + len(b"</wsse:Security>")
    return data[:start] + data[end:]


def _reword_fault(data: bytes) -> bytes:
    return data.replace(b"E_KEY_NOT_FOUND", b"E_INTERNAL")


def _unsigned_header(data: bytes) -> bytes:
    return data.replace(b"<wsse:Security", b"<wsa:RelatesTo>uuid:00000000-0000-4000-8000-"
                        b"000000000000</wsa:RelatesTo><wsse:Security", 1)


# (the rewrite, the call it spoils given a key made before)
ATTACKS: dict[str, tuple[Callable[[bytes], bytes], Callable[[KmsClient, Key], Any]]] = {
    "tampered key value": (_flip_data, lambda c, k: c.get_key(k.key_id)),
    "unsigned response": (_strip_signature, lambda c, k: c.get_random_bytes(16)),
    "tampered fault": (_reword_fault, lambda c, k: c.get_key(str(uuid.uuid4()))),
    "unsigned header": (_unsigned_header,
                        lambda c, k: c.push_audit_messages([{"event": "x"}])),
    "unsigned created key": (_strip_signature, lambda c, k: c.create_key()),
    "tampered stored id": (lambda d: d.replace(b"<kms:KeyId>", b"<kms:KeyId>0"),
                           lambda c, k: c.store_key(b"k" * 32)),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_changed_response_is_refused_by_both_paths(server: ServerProcess,
                                                     attack: str) -> None:
    rewrite, call = ATTACKS[attack]
    cert = str(server.data_dir / SERVER_CERT_FILE)
    outcomes = []
    for fast in (True, False):
        with (TamperingRelay(server.url, rewrite) as relay,
              KmsClient(relay.url, *ADMIN, server_cert=cert, fast_path=fast) as c):
            key = c.create_key()  # untouched: it verifies
            relay.active = True
            outcomes.append(_outcome(lambda c, k=key: call(c, k), c))
            assert relay.rewritten == 1
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "UntrustedResponse", outcomes


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "zeep"])
def test_a_replayed_or_foreign_response_is_refused(server: ServerProcess, fast_path: bool,
                                                   tmp_path) -> None:  # type: ignore[no-untyped-def]
    captured: list[bytes] = []

    def replay(data: bytes) -> bytes:
        if not captured:
            captured.append(data)
        return captured[0]
    cert = str(server.data_dir / SERVER_CERT_FILE)
    with (TamperingRelay(server.url, replay) as relay,
          KmsClient(relay.url, *ADMIN, server_cert=cert, fast_path=fast_path) as c):
        relay.active = True
        c.get_random_bytes(16)
        with pytest.raises(UntrustedResponse) as replayed:
            c.get_random_bytes(16)
    assert "does not answer this request" in replayed.value.reason
    other = tmp_path / "other.pem"
    other.write_bytes(self_signed(new_key(), "impostor").public_bytes(Encoding.PEM))
    with (KmsClient(server.url, *ADMIN, server_cert=str(other), fast_path=fast_path) as c,
          pytest.raises(UntrustedResponse) as foreign):
        c.get_random_bytes(16)
    assert foreign.value.error_code == "E_INVALID_CREDENTIALS"
