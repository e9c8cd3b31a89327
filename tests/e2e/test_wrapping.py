"""Wrapped key delivery (§4.2 KeyBlob, §4.6 PEP wrapping values) against a real server:
every WrappingType recovered bit-exact by KmsClient and by the openssl command line,
double wrapping through a client to a PEP, rotation of wrapping keys, and the faults."""

from __future__ import annotations

import base64
import secrets
import uuid
from pathlib import Path

import pytest

from kms_ws.client import Kek, KeyUnwrapError, KmsClient, KmsFault, PepUnwrapper
from kms_ws.client.unwrap import Unwrapper

from ..conftest import data_files
from ..support.envelopes import envelope
from ..support.pki import server_cert
from ..support.server import ServerProcess
from ..support.validating import post
from ..support.wrapping import BlobCapture, make_holder, openssl_open

pytestmark = pytest.mark.e2e

SYMMETRIC = ["aes-key-wrap", "aes-key-wrap-pad", "cms-kek", "cms-auth-enveloped"]
CERTIFICATE = ["cms-rsa-oaep", "cms-auth-enveloped"]


@pytest.fixture()
def wrapped_client(server: ServerProcess, client_factory, validator, tmp_path: Path):
    """(make(keys) -> (KmsClient holding `keys`, BlobCapture), registering client)."""
    _, name, password = client_factory()
    opened: list[KmsClient] = []

    def make(keys=()):  # type: ignore[no-untyped-def]
        capture = BlobCapture()
        c = KmsClient(server.url, name, password, plugins=[validator, capture],
                      wrapping_keys=keys)
        opened.append(c)
        return c, capture

    make.credentials = (name, password)  # type: ignore[attr-defined]
    yield make
    for c in opened:
        c.close()


def _kek() -> Kek:
    return Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))


@pytest.mark.needs("openssl")
@pytest.mark.parametrize("wrapping_type", SYMMETRIC)
def test_kek_wrapped_key_recovered_by_client_and_openssl(wrapped_client, tmp_path,
                                                         wrapping_type) -> None:
    kek = _kek()
    c, capture = wrapped_client([kek])
    assert c.register_wrapping_values({kek.key_id: kek.secret}) == [kek.key_id]
    created = c.create_key(friendly_name="wrapped", wrapping_type=wrapping_type)
    fetched = c.get_key(created.key_id, wrapping_type=wrapping_type)
    assert created.value is not None and len(created.value) == 32
    assert fetched.value == created.value and fetched.wrapping_type == wrapping_type
    for blob in capture.blobs:
        assert blob["WrappingType"] == wrapping_type and blob["WrappingKeyId"] == kek.key_id
        assert blob["Length"] == "32" and created.value not in blob["Data"]
        assert openssl_open(wrapping_type, blob["Data"], tmp_path,
                            kek=(kek.key_id, kek.secret)) == created.value


@pytest.mark.needs("openssl")
@pytest.mark.parametrize("wrapping_type", CERTIFICATE)
def test_certificate_wrapped_key_recovered_by_client_and_openssl(wrapped_client, tmp_path,
                                                                 wrapping_type) -> None:
    holder = make_holder("client-cert-1", tmp_path)
    c, capture = wrapped_client([holder])
    c.register_wrapping_values({holder.key_id: holder.certificate})
    created = c.create_key(wrapping_type=wrapping_type, length=128)
    assert created.value is not None and len(created.value) == 16
    assert c.get_key(created.key_id, wrapping_type=wrapping_type).value == created.value
    for blob in capture.blobs:
        assert blob["WrappingType"] == wrapping_type
        assert openssl_open(wrapping_type, blob["Data"], tmp_path,
                            holder_id=holder.key_id) == created.value


def test_registered_keys_decide_the_default_wrapping(wrapped_client, tmp_path) -> None:
    kek, holder = _kek(), make_holder("cert-default", tmp_path)
    c, capture = wrapped_client([kek, holder])
    plain = c.create_key()
    assert plain.wrapping_type == "none"  # nothing registered, plain HTTP from loopback
    c.register_wrapping_values({kek.key_id: kek.secret})
    assert c.get_key(plain.key_id).wrapping_type == "aes-key-wrap-pad"
    c.register_wrapping_values({holder.key_id: holder.certificate})  # newest is used
    got = c.get_key(plain.key_id)
    assert got.wrapping_type == "cms-rsa-oaep" and got.value == plain.value
    assert capture.blobs[-1]["WrappingKeyId"] == holder.key_id


def test_a_client_with_wrapping_keys_never_gets_an_unwrapped_key(wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    key = c.create_key()
    c.register_wrapping_values({kek.key_id: kek.secret})
    with pytest.raises(KmsFault) as err:
        c.get_key(key.key_id, wrapping_type="none")
    assert err.value.subcode == "kms:WrappingRequired" and err.value.error_code == \
        "E_WRAPPING_REQUIRED"
    assert "aes-key-wrap-pad" in err.value.supported and "none" not in err.value.supported


def test_unsupported_wrapping_type_lists_the_supported_ones(wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    with pytest.raises(KmsFault) as err:
        c.create_key(wrapping_type="rot13")
    assert err.value.subcode == "wsman:UnsupportedFeature"
    assert err.value.error_code == "E_UNSUPPORTED_WRAPPING" and err.value.supported == ("none",)
    c.register_wrapping_values({kek.key_id: kek.secret})
    before = len(c.find_keys(attributes={"x": "never"})[0])
    with pytest.raises(KmsFault) as err:
        c.create_key(wrapping_type="cms-rsa-oaep", attributes={"x": "never"})
    assert err.value.supported == tuple(SYMMETRIC)
    assert len(c.find_keys(attributes={"x": "never"})[0]) == before  # nothing was created


def test_wrong_or_missing_wrapping_key_is_named(wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    c.register_wrapping_values({kek.key_id: kek.secret})
    key_id = c.create_key().key_id
    wrong, _ = wrapped_client([Kek(kek.key_id, secrets.token_bytes(32))])
    with pytest.raises(KeyUnwrapError) as err:
        wrong.get_key(key_id)
    assert kek.key_id in str(err.value) and err.value.wrapping_key_id == kek.key_id
    assert err.value.key_id == key_id
    bare, _ = wrapped_client([])
    with pytest.raises(KeyUnwrapError, match=kek.key_id):
        bare.get_key(key_id)


@pytest.mark.parametrize("pep_kind,outer", [("kek", "aes-key-wrap-pad"),
                                            ("cert", "cms-auth-enveloped"),
                                            ("cert", "cms-kek")])
@pytest.mark.needs("openssl")
def test_double_wrap_reaches_the_pep_and_the_client_cannot_read_it(
        wrapped_client, tmp_path, pep_kind, outer) -> None:
    client_kek = _kek()
    c, capture = wrapped_client([client_kek])
    c.register_wrapping_values({client_kek.key_id: client_kek.secret})
    pep_id = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    pep_key = _kek() if pep_kind == "kek" else make_holder("pep-cert", tmp_path)
    c.register_wrapping_values(
        {pep_key.key_id: pep_key.secret if isinstance(pep_key, Kek) else pep_key.certificate},
        endpoint_id=pep_id)
    created = c.create_key(pep_id=pep_id, wrapping_type=outer)
    assert created.value is None and created.pep_blob is not None  # the client never sees it
    pep_value = PepUnwrapper([pep_key]).open(created.pep_blob)
    assert len(pep_value) == 32
    again = c.get_key(created.key_id, pep_id=pep_id)
    assert again.value is None and PepUnwrapper([pep_key]).open(again.pep_blob) == pep_value
    blob = capture.blobs[0]
    assert blob["InnerWrappingKeyId"] == pep_key.key_id
    # What the client can take off is only the PEP's blob: the key is in none of it...
    inner = openssl_open(outer, blob["Data"], tmp_path, kek=(client_kek.key_id,
                                                              client_kek.secret))
    assert inner == created.pep_blob.data and pep_value not in inner
    assert pep_value not in blob["Data"]
    # ...and its own key cannot open the inner layer.
    with pytest.raises(KeyUnwrapError, match=pep_key.key_id):
        PepUnwrapper([Kek(pep_key.key_id, client_kek.secret)] if pep_kind == "kek"
                     else [client_kek]).open(created.pep_blob)
    # openssl, given the PEP's key, recovers the same bytes.
    opened = openssl_open(blob["InnerWrappingType"], inner, tmp_path,
                          kek=(pep_key.key_id, pep_key.secret) if pep_kind == "kek" else None,
                          holder_id=None if pep_kind == "kek" else pep_key.key_id)
    assert opened == pep_value


def test_a_pep_registered_with_its_certificate_gets_its_keys_wrapped(wrapped_client,
                                                                     tmp_path) -> None:
    c, capture = wrapped_client([])
    pep_cert = make_holder("pep-at-registration", tmp_path)
    pep_id = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}",
                                 wrapping_values={pep_cert.key_id: pep_cert.certificate})
    key = c.create_key(pep_id=pep_id)  # the client has no wrapping key: outer layer none
    assert key.value is None and key.wrapping_type == "none"
    assert capture.blobs[-1]["InnerWrappingType"] == "cms-rsa-oaep"
    value = PepUnwrapper([pep_cert]).open(key.pep_blob)
    assert value not in capture.blobs[-1]["Data"] and len(value) == 32


def test_every_wrapping_type_is_advertised(wrapped_client) -> None:
    c, _ = wrapped_client([])
    caps = set(c.get_server_capabilities())
    assert {f"wrapping:{t}" for t in ["none", *SYMMETRIC, *CERTIFICATE]} <= caps
    assert "operation:RegisterWrappingValues" in caps
    assert c.negotiate_capabilities(["wrapping:cms-kek", "wrapping:rot13"]) == \
        ["wrapping:cms-kek"]


def test_pep_without_wrapping_keys_gets_the_clients_layer_only(wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    c.register_wrapping_values({kek.key_id: kek.secret})
    pep_id = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    key = c.create_key(pep_id=pep_id)
    assert key.value is not None and key.pep_blob is None


def test_wrapping_keys_rotate_and_retire(wrapped_client) -> None:
    k1, k2 = _kek(), _kek()
    c, capture = wrapped_client([k1, k2])
    c.register_wrapping_values({k1.key_id: k1.secret})
    key = c.create_key()
    assert capture.blobs[-1]["WrappingKeyId"] == k1.key_id
    assert c.register_wrapping_values({k2.key_id: k2.secret}) == [k2.key_id, k1.key_id]
    assert c.get_key(key.key_id).value == key.value
    assert capture.blobs[-1]["WrappingKeyId"] == k2.key_id
    assert c.register_wrapping_values(retire=[k1.key_id]) == [k2.key_id]
    with pytest.raises(KmsFault) as err:
        c.register_wrapping_values({k2.key_id: secrets.token_bytes(32)})
    assert err.value.subcode == "wsman:AlreadyExists"
    with pytest.raises(KmsFault) as err:
        c.register_wrapping_values(retire=[k1.key_id])
    assert err.value.subcode == "kms:NotFound"
    with pytest.raises(KmsFault) as err:
        c.register_wrapping_values({"short": b"0123456789"})
    assert err.value.subcode == "wsman:InvalidParameter"


def test_only_the_owner_sets_a_peps_wrapping_keys(wrapped_client, client_factory) -> None:
    owner, _ = wrapped_client([])
    pep_id = owner.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    other = client_factory()[0]
    with pytest.raises(KmsFault) as err:
        other.register_wrapping_values({"x": secrets.token_bytes(32)}, endpoint_id=pep_id)
    assert err.value.http_status in (None, 400) and err.value.error_code == "E_PERMISSION_DENIED"


def test_expired_or_bad_certificates_are_refused(server: ServerProcess, client_factory,
                                                 wrapped_client, tmp_path) -> None:
    _, name, password = client_factory()
    body = ("<kms:RegisterWrappingValues><kms:WrappingValues><kms:WrappingValue>"
            "<kms:WrappingKeyId>bad</kms:WrappingKeyId>"
            f"<kms:Certificate>{base64.b64encode(b'not a certificate').decode()}"
            "</kms:Certificate></kms:WrappingValue></kms:WrappingValues>"
            "</kms:RegisterWrappingValues>")
    r, env = post(server.url, envelope(body, op="RegisterWrappingValues"),
                  auth=(name, password))
    assert r.status_code == 400 and env is not None
    assert b"wsman:InvalidParameter" in r.content and b"not a DER X.509" in r.content
    c, _ = wrapped_client([])
    expired = make_holder("expired", tmp_path, days=-1)
    with pytest.raises(KmsFault, match="not valid now"):
        c.register_wrapping_values({"expired": expired.certificate})


def test_registered_keks_are_not_stored_in_clear(server: ServerProcess, wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    c.register_wrapping_values({kek.key_id: kek.secret})
    c.create_key()
    for path in data_files(server.data_dir):
        assert kek.secret not in path.read_bytes(), path


def test_unwrapped_delivery_over_tls_only(tmp_path, validator) -> None:
    cert, key = server_cert(tmp_path)
    srv = ServerProcess(tmp_path / "data", security={"unwrapped_delivery": "tls"}, workers=1,
                        tls=(cert, key))
    srv.bootstrap()
    srv.start()
    try:
        with KmsClient(srv.url, "admin", "admin-password-1", verify=str(cert),
                       plugins=[validator]) as c:
            created = c.create_key()
            assert created.wrapping_type == "none" and len(created.value or b"") == 32
    finally:
        assert srv.stop() == 0


def test_unwrapped_delivery_over_plain_http_can_be_refused(tmp_path, validator) -> None:
    srv = ServerProcess(tmp_path / "data", security={"unwrapped_delivery": "tls"})
    srv.bootstrap()
    srv.start()
    try:
        kek = _kek()
        with KmsClient(srv.url, "admin", "admin-password-1", plugins=[validator],
                       wrapping_keys=[kek]) as c:
            with pytest.raises(KmsFault) as err:
                c.create_key(friendly_name="refused")
            assert err.value.subcode == "kms:WrappingRequired"
            c.register_wrapping_values({kek.key_id: kek.secret})
            key = c.create_key(friendly_name="wrapped")
            assert key.wrapping_type == "aes-key-wrap-pad" and len(key.value or b"") == 32
            with pytest.raises(KmsFault) as err:  # the refused CreateKey created nothing
                c.get_key(friendly_name="refused")
            assert err.value.subcode == "kms:NotFound"
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("wrapping_type", SYMMETRIC)
def test_store_key_wrapped_under_the_clients_kek(wrapped_client, wrapping_type) -> None:
    kek = _kek()
    c, capture = wrapped_client([kek])
    c.register_wrapping_values({kek.key_id: kek.secret})
    value = secrets.token_bytes(32)
    key_id = c.store_key(value, friendly_name=f"up-{wrapping_type}", wrapping_type=wrapping_type,
                         wrapping_key_id=kek.key_id)
    got = c.get_key(key_id)
    assert got.value == value and got.wrapping_type == "aes-key-wrap-pad"
    assert value not in capture.blobs[-1]["Data"]


def test_store_key_that_does_not_unwrap_stores_nothing(server: ServerProcess,
                                                       wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    c.register_wrapping_values({kek.key_id: kek.secret})
    impostor, _ = wrapped_client([Kek(kek.key_id, secrets.token_bytes(32))])
    with pytest.raises(KmsFault) as err:
        impostor.store_key(secrets.token_bytes(32), friendly_name="never-stored",
                           wrapping_type="aes-key-wrap-pad", wrapping_key_id=kek.key_id)
    assert err.value.error_code == "E_UNWRAP_FAILED" and kek.key_id in err.value.reason
    with pytest.raises(KmsFault) as err:
        c.get_key(friendly_name="never-stored")
    assert err.value.subcode == "kms:NotFound"
    # A corrupted blob (one bit of the CMS content flipped) is refused, never stored as garbage.
    value = secrets.token_bytes(32)
    blob = Unwrapper([kek]).blob_for_server(value, "cms-kek", kek.key_id)
    data = bytearray(blob["Data"])  # type: ignore[arg-type]
    data[-5] ^= 0x01
    body = ("<kms:StoreKey><kms:KeyBlob><kms:ProtocolVersion>1</kms:ProtocolVersion>"
            f"<kms:WrappingType>cms-kek</kms:WrappingType><kms:WrappingKeyId>{kek.key_id}"
            f"</kms:WrappingKeyId><kms:Length>32</kms:Length><kms:Data>"
            f"{base64.b64encode(bytes(data)).decode()}</kms:Data><kms:CheckValue>"
            f"{base64.b64encode(blob['CheckValue']).decode()}</kms:CheckValue></kms:KeyBlob>"
            "<kms:FriendlyName>corrupted</kms:FriendlyName></kms:StoreKey>")
    r, _ = post(server.url, envelope(body, op="StoreKey"), auth=wrapped_client.credentials)
    assert r.status_code == 400 and b"E_UNWRAP_FAILED" in r.content
    with pytest.raises(KmsFault):
        c.get_key(friendly_name="corrupted")


def test_store_key_refuses_what_it_cannot_open(server: ServerProcess, wrapped_client) -> None:
    kek = _kek()
    c, _ = wrapped_client([kek])
    with pytest.raises(KmsFault) as err:  # not registered with the server
        c.store_key(secrets.token_bytes(32), wrapping_type="aes-key-wrap",
                    wrapping_key_id=kek.key_id)
    assert err.value.subcode == "kms:NotFound" and kek.key_id in err.value.reason
    body = ("<kms:StoreKey><kms:KeyBlob><kms:ProtocolVersion>1</kms:ProtocolVersion>"
            "<kms:WrappingType>cms-rsa-oaep</kms:WrappingType><kms:Length>32</kms:Length>"
            f"<kms:Data>{base64.b64encode(b'x' * 300).decode()}</kms:Data></kms:KeyBlob>"
            "</kms:StoreKey>")
    r, env = post(server.url, envelope(body, op="StoreKey"), auth=wrapped_client.credentials)
    assert r.status_code == 400 and env is not None and b"E_UNSUPPORTED_WRAPPING" in r.content
    supported = [s.text for s in env.iter("{urn:kms-ws:p1619.3:1}Supported")]
    assert supported == ["none", *SYMMETRIC]
