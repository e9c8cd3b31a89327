"""Issue 15.1–15.3 (§4.5): Reference is "use but not view", rights are a set, and every
object a client or administrator makes stays in the realms it was put in — against a
real server, through KmsClient.

The attacks: a client granted only Reference in a realm asks for a key of that realm and
receives its value in the clear (on main it did, loopback, no wrapping key); a
provisioning client granted only Create (or Delete) reads every key of the realm (on
main Create and Delete implied Read); a client in two realms registers a PEP and the PEP
joins both (on main it did); a Reference-only client registers its PEP's wrapping key
itself (a KEK, a certificate whose private key it holds, directly or through another
client without Read) and opens the "use" blob (before schema 21 it could). Each refusal
is a precise fault and is audited."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from kms_ws.client import Kek, KeyUnwrapError, KmsClient, KmsFault, PepUnwrapper

from ..support.wrapping import make_holder

pytestmark = pytest.mark.e2e

DEFAULT = "realm://localhost/default"
Principal = Callable[..., tuple[KmsClient, str]]


def _name() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


def _denied(call: Callable[[], object], needed: str = "Read") -> KmsFault:
    with pytest.raises(KmsFault) as err:
        call()
    assert err.value.error_code == "E_PERMISSION_DENIED", err.value
    assert err.value.subcode == "wsman:AccessDenied"
    assert f"{needed} right needed" in err.value.reason
    return err.value


def _audited(admin: KmsClient, actor_id: str, operations: dict[str, int]) -> None:
    """Each operation refused (E_PERMISSION_DENIED) at least that many times."""
    records = [r["Operation"] for r in admin.admin_audit(client_id=actor_id)
               if r["Event"] == "E_PERMISSION_DENIED" and r["Result"] == "Denied"]
    for operation, count in operations.items():
        assert records.count(operation) >= count, records


# ---- 15.1 Reference: use but not view ----------------------------------------------------

def test_a_reference_only_client_never_receives_a_value_it_can_open(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    realm = new_realm()
    name = _name()
    key = admin.create_key(friendly_name=name, realms=[realm])
    value = admin.get_key(key.key_id).value
    assert value is not None and len(value) == 32
    ref, ref_id = principal({realm: ("Reference",)})
    # its own GetKey, by id or by name, and WS-Transfer Get with the value: refused
    _denied(lambda: ref.get_key(key.key_id))
    _denied(lambda: ref.get_key(friendly_name=name))
    _denied(lambda: ref.get_key_metadata(key.key_id, include_value=True))
    _audited(admin, ref_id, {"GetKey": 2, "Transfer.Get": 1})
    # GetUpdateList lists no key the caller may not read (values never travel in it)
    listed = [k.key_id for k in ref.get_update_list()]
    assert key.key_id not in listed
    # a PEP of its own that registered no wrapping key: the client could open the value
    bare = ref.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    _denied(lambda: ref.get_key(key.key_id, pep_id=bare))
    # use: delivered to a PEP it serves, wrapped under a key of the PEP that an
    # administrator registered (the client never saw it) — the client gets a blob it
    # cannot open, and no metadata (the view); the PEP, holding the KEK, opens it
    pep_id = ref.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    pep_kek = Kek("pep-kek", secrets.token_bytes(32))  # provisioned into the PEP
    admin.register_wrapping_values({pep_kek.key_id: pep_kek.secret}, endpoint_id=pep_id)
    got = ref.get_key(key.key_id, pep_id=pep_id)
    assert got.value is None and got.pep_blob is not None
    assert got.pep_blob.wrapping_key_id == pep_kek.key_id
    assert value not in got.pep_blob.data
    assert PepUnwrapper([pep_kek]).open(got.pep_blob) == value  # the PEP's side
    assert got.friendly_name is None and got.realms == [] and got.attributes == {}
    # Read in another realm of the key: the union of the caller's realms decides
    other = new_realm()
    admin.admin_associate("Key", key.key_id, "Realm", other)
    both, _ = principal({realm: ("Reference",), other: ("Read",)})
    assert both.get_key(key.key_id).value == value


QUALIFIED = "registered by an administrator or by an endpoint holding Read on the key"


def _refused_for(call: Callable[[], object], pep_id: str) -> None:
    err = _denied(call)
    assert pep_id in err.reason and QUALIFIED in err.reason, err.reason


@pytest.mark.parametrize("how", ["RegisterEndpoint KEK", "RegisterEndpoint certificate",
                                 "RegisterWrappingValues KEK"])
def test_a_reference_only_client_cannot_open_a_key_under_a_pep_key_it_set(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal,
        tmp_path: Path, how: str) -> None:
    """The attack on "use but not view": the Reference-only client sets its PEP's
    wrapping key itself — a KEK or a certificate whose private key it holds, when it
    registers the PEP or later — and would open the "use" blob. Refused, naming what is
    needed, audited, and nothing changes."""
    realm = new_realm()
    key = admin.create_key(friendly_name=_name(), realms=[realm])
    shown = admin.admin_get("Key", key.key_id)
    ref, ref_id = principal({realm: ("Reference",)})
    name = f"pep-{uuid.uuid4().hex[:8]}"
    own: dict[str, bytes | x509.Certificate] = {"own-kek": secrets.token_bytes(32)}
    if how == "RegisterEndpoint certificate":
        own = {"own-cert": make_holder("own-cert", tmp_path).certificate}
    if how == "RegisterWrappingValues KEK":
        pep_id = ref.register_endpoint("Pep", name)
        ref.register_wrapping_values(own, endpoint_id=pep_id)
    else:
        pep_id = ref.register_endpoint("Pep", name, wrapping_values=own)
    _refused_for(lambda: ref.get_key(key.key_id, pep_id=pep_id), pep_id)
    _audited(admin, ref_id, {"GetKey": 1})
    assert admin.admin_get("Key", key.key_id) == shown  # no use recorded, nothing changed


def test_a_newer_pep_key_of_the_reference_only_client_is_passed_over(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    """The administrator provisioned the PEP's KEK; the client registers a newer one of
    its own (the newest is used by default): the delivery still goes under the
    administrator's, which only the PEP opens."""
    realm = new_realm()
    key = admin.create_key(friendly_name=_name(), realms=[realm])
    value = admin.get_key(key.key_id).value
    ref, _ = principal({realm: ("Reference",)})
    pep_id = ref.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    pep_kek = Kek("pep-kek", secrets.token_bytes(32))
    admin.register_wrapping_values({pep_kek.key_id: pep_kek.secret}, endpoint_id=pep_id)
    newer = Kek("newer-kek", secrets.token_bytes(32))
    ref.register_wrapping_values({newer.key_id: newer.secret}, endpoint_id=pep_id)
    got = ref.get_key(key.key_id, pep_id=pep_id)
    assert got.pep_blob is not None and got.pep_blob.wrapping_key_id == pep_kek.key_id
    for guess in (newer, Kek(pep_kek.key_id, newer.secret)):
        with pytest.raises(KeyUnwrapError):
            PepUnwrapper([guess]).open(got.pep_blob)
    assert PepUnwrapper([pep_kek]).open(got.pep_blob) == value


def test_create_and_reference_get_no_blob_under_their_own_pep_key(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    """CreateKey by a caller with Create and Reference (not Read) for a PEP whose KEK it
    registered: the new key's id and metadata, no blob it could open."""
    realm = new_realm()
    maker, _ = principal({realm: ("Create", "Reference")})
    own = Kek("own-kek", secrets.token_bytes(32))
    mine = maker.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}",
                                   wrapping_values={own.key_id: own.secret})
    made = maker.create_key(pep_id=mine, realms=[realm])
    assert made.value is None and made.pep_blob is None
    assert admin.get_key(made.key_id).value is not None  # it was made, with a value
    # with a KEK an administrator registered, the blob is for the PEP only
    pep_kek = Kek("pep-kek", secrets.token_bytes(32))
    admin.register_wrapping_values({pep_kek.key_id: pep_kek.secret}, endpoint_id=mine)
    again = maker.create_key(pep_id=mine, realms=[realm])
    assert again.pep_blob is not None and again.pep_blob.wrapping_key_id == pep_kek.key_id
    assert PepUnwrapper([pep_kek]).open(again.pep_blob) == admin.get_key(again.key_id).value


def test_a_pep_key_set_by_an_endpoint_without_read_launders_nothing(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    """The PEP's wrapping key set by another endpoint lacking Read on the key — a second
    Reference-only client, a client reading another realm only — carries no
    Reference-only delivery; one set by an endpoint holding Read does, while it holds it."""
    realm, elsewhere = new_realm(), new_realm()
    key = admin.create_key(friendly_name=_name(), realms=[realm])
    value = admin.get_key(key.key_id).value
    ref, ref_id = principal({realm: ("Reference",)})

    def pep_of(owner: KmsClient, kek: Kek) -> str:
        pep_id = owner.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}", realms=[realm],
                                         wrapping_values={kek.key_id: kek.secret})
        admin.admin_associate("Pep", pep_id, "Client", ref_id)  # ref serves it too
        return pep_id

    accomplice, _ = principal({realm: ("Reference",)})
    laundered = pep_of(accomplice, Kek("a-kek", secrets.token_bytes(32)))
    _refused_for(lambda: ref.get_key(key.key_id, pep_id=laundered), laundered)
    _refused_for(lambda: accomplice.get_key(key.key_id, pep_id=laundered), laundered)
    # a key where the caller has no right is no oracle: the answer of an unknown id
    hidden = admin.create_key(friendly_name=_name(), realms=[elsewhere]).key_id
    faults = []
    for key_id in (hidden, str(uuid.uuid4())):
        with pytest.raises(KmsFault) as err:
            ref.get_key(key_id, pep_id=laundered)
        faults.append((err.value.error_code, err.value.subcode,
                       err.value.reason.replace(key_id, "ID")))
    assert faults[0] == faults[1] and faults[0][0] == "E_KEY_NOT_FOUND"
    reads_elsewhere, _ = principal({realm: ("Reference",), elsewhere: ("Read",)})
    other = pep_of(reads_elsewhere, Kek("e-kek", secrets.token_bytes(32)))
    _refused_for(lambda: ref.get_key(key.key_id, pep_id=other), other)
    _audited(admin, ref_id, {"GetKey": 2})
    # a client that may read the key registered the PEP's KEK: the PEP opens the blob
    reader, reader_id = principal({realm: ("Read", "Reference")})
    reader_kek = Kek("r-kek", secrets.token_bytes(32))
    served = pep_of(reader, reader_kek)
    got = ref.get_key(key.key_id, pep_id=served)
    assert got.value is None and got.pep_blob is not None
    assert PepUnwrapper([reader_kek]).open(got.pep_blob) == value
    # ... as long as it holds Read: decided at delivery time
    admin.admin_associate("Client", reader_id, "Realm", realm, rights=["Reference"])
    _refused_for(lambda: ref.get_key(key.key_id, pep_id=served), served)


# ---- 15.2 rights are a set ---------------------------------------------------------------

def test_create_without_read_makes_keys_it_cannot_read(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    realm = new_realm()
    maker, maker_id = principal({realm: ("Create",)})
    name = _name()
    made = maker.create_key(friendly_name=name, attributes={"tape": "A00001"})
    # the new key's id and metadata, not its value
    assert made.value is None and made.pep_blob is None and made.wrapping_type is None
    assert made.friendly_name == name and made.realms == [realm]
    assert made.attributes == {"tape": "A00001"}
    assert admin.get_key(made.key_id).value is not None  # it was made, with a value
    _denied(lambda: maker.get_key(made.key_id))
    _denied(lambda: maker.get_key_metadata(made.key_id, include_value=True))
    stored = maker.store_key(secrets.token_bytes(32), friendly_name=_name())
    _denied(lambda: maker.get_key(stored))
    _audited(admin, maker_id, {"GetKey": 2, "Transfer.Get": 1})
    # Delete and Edit do not imply Read either; Read does not imply Create
    deleter, _ = principal({realm: ("Delete", "Edit")})
    _denied(lambda: deleter.get_key(made.key_id))
    reader, _ = principal({realm: ("Read",)})
    assert reader.get_key(made.key_id).value == admin.get_key(made.key_id).value
    _denied(lambda: reader.create_key(realms=[realm]), "Create")
    # the grant is stored and shown as given: Create alone
    assert admin.admin_get("Client", maker_id)["RealmAssociations"] == {
        "RealmAssociation": [{"Realm": realm, "Right": ["Create"]}]}


# ---- 15.3 objects stay in the realms they were put in -------------------------------------

def test_a_pep_registered_by_a_client_in_two_realms_joins_one(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal) -> None:
    fin, hr = new_realm(), new_realm()
    client, _ = principal({fin: ("Reference",), hr: ("Read",)})
    with pytest.raises(KmsFault) as err:  # no default realm among its two: name one
        client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    assert err.value.error_code == "E_INVALID_PARAMETER"
    assert fin in err.value.reason and hr in err.value.reason
    pep_id = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}", realms=[fin])
    assert admin.admin_get("Pep", pep_id)["RealmAssociations"] == {
        "RealmAssociation": [{"Realm": fin, "Right": ["Reference"]}]}
    # a client with rights in the default realm and another: the default realm only
    wide, _ = principal({DEFAULT: (), hr: ()})
    pep2 = wide.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    assert [a["Realm"] for a in admin.admin_get("Pep", pep2)["RealmAssociations"][
        "RealmAssociation"]] == [DEFAULT]


KINDS = {
    "KeyTemplate": lambda: {"FriendlyName": _name(), "CipherType": "2.16.840.1.101.3.4.1.46",
                            "KeyLength": 256},
    "RetentionPolicy": lambda: {"Name": _name(), "TExpiration": "P30D"},
    "KeyGroup": lambda: {"Name": _name(), "Type": "Static"},
    "ClientGroup": lambda: {"Name": _name(), "Type": "Static"},
    "EndpointType": lambda: {"Name": _name(), "Capabilities": {
        "Capability": [{"Name": "hasHSM"}]}},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_administered_object_goes_where_named_or_to_one_default_realm(
        admin: KmsClient, new_realm: Callable[[], str], principal: Principal,
        kind: str) -> None:
    fin, hr = new_realm(), new_realm()
    boss, _ = principal({fin: (), hr: ()}, administrator=True)
    with pytest.raises(KmsFault) as err:  # Create in two realms, neither the default
        boss.admin_create(kind, KINDS[kind]())
    assert err.value.error_code == "E_INVALID_PARAMETER"
    made = boss.admin_create(kind, {**KINDS[kind](), "RealmAssociations": {
        "RealmAssociation": [{"Realm": hr}]}})
    assert made["RealmAssociations"] == {"RealmAssociation": [{"Realm": hr}]}
    one, _ = principal({DEFAULT: (), fin: ()}, administrator=True)
    assert one.admin_create(kind, KINDS[kind]())["RealmAssociations"] == {
        "RealmAssociation": [{"Realm": DEFAULT}]}
    # Create needed in a realm named
    reader, _ = principal({fin: ("Read", "Reference", "Edit")}, administrator=True)
    _denied(lambda: reader.admin_create(kind, {**KINDS[kind](), "RealmAssociations": {
        "RealmAssociation": [{"Realm": fin}]}}), "Create")
