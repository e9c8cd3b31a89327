"""Each §6 operation through KmsClient against a real server process."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kms_ws.client import KmsClient, KmsFault
from kms_ws.domain.capabilities import SERVER_CAPABILITIES

from ..support import db
from ..support.envelopes import envelope
from ..support.server import kms
from ..support.validating import post

pytestmark = pytest.mark.e2e


def test_create_then_get_returns_the_same_key_bytes(client: KmsClient, validator) -> None:
    created = client.create_key(friendly_name="tape-A0001", length=256)
    assert created.value is not None and len(created.value) == 32
    assert created.state == "Active" and created.version == 1
    fetched = client.get_key(created.key_id)
    assert fetched.value == created.value
    assert fetched.friendly_name == "tape-A0001"
    assert validator.sent >= 2 and validator.received == validator.sent


def test_create_key_lengths_and_ciphers(client: KmsClient) -> None:
    k128 = client.create_key(length=128)
    assert len(k128.value or b"") == 16 and k128.cipher_type == "2.16.840.1.101.3.4.1.6"
    xts = client.create_key(cipher_type="1.3.111.2.1619.0.1.2", length=512)
    assert len(xts.value or b"") == 64
    with pytest.raises(KmsFault) as err:
        client.create_key(cipher_type="1.3.111.2.1619.0.1.2", length=256)
    assert err.value.subcode == "wsman:InvalidParameter"


def test_created_keys_are_random(client: KmsClient) -> None:
    values = {client.create_key().value for _ in range(5)}
    assert len(values) == 5


def test_store_key_and_get_it_back(client: KmsClient) -> None:
    value = secrets.token_bytes(32)
    key_id = client.store_key(value, friendly_name="legacy-key", datasets={"volume": "L001"})
    key = client.get_key(key_id)
    assert key.value == value
    assert key.datasets == [("volume", "L001")]


def test_get_key_by_friendly_name_with_reference_attributes(client: KmsClient) -> None:
    name = f"shared-{uuid.uuid4().hex[:6]}"
    a = client.create_key(friendly_name=name, attributes={"site": "paris"})
    b = client.create_key(friendly_name=name, attributes={"site": "oslo"})
    with pytest.raises(KmsFault) as err:
        client.get_key(friendly_name=name)
    assert err.value.subcode == "kms:AmbiguousReference"
    assert client.get_key(friendly_name=name, attributes={"site": "oslo"}).key_id == b.key_id
    assert client.get_key(friendly_name=name, attributes={"site": "paris"}).value == a.value


def test_get_key_by_anded_attributes(client: KmsClient) -> None:
    tag = uuid.uuid4().hex
    both = client.create_key(attributes={"tag": tag, "tier": "gold"})
    client.create_key(attributes={"tag": tag, "tier": "silver"})
    keys, more = client.find_keys(attributes={"tag": tag, "tier": "gold"})
    assert [k.key_id for k in keys] == [both.key_id] and more is False
    keys, _ = client.find_keys(attributes={"tag": tag})
    assert len(keys) == 2


def test_get_key_by_datasets_returns_the_newest_binding(client: KmsClient) -> None:
    vol = f"V{uuid.uuid4().hex[:6]}"
    client.create_key(datasets={"volume": vol, "pool": "p1"})
    newer = client.create_key(datasets={"volume": vol, "pool": "p1"})
    assert client.get_key(datasets={"volume": vol, "pool": "p1"}).key_id == newer.key_id
    with pytest.raises(KmsFault) as err:
        client.get_key(datasets={"volume": vol, "pool": "other"})
    assert err.value.subcode == "kms:NotFound"


def test_get_key_altered_since_version_and_time(client: KmsClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    key = client.create_key()
    assert client.get_key_if_altered(key.key_id, since_version=1) is None
    assert client.get_key_if_altered(key.key_id, since_version=0).value == key.value
    keys, _ = client.find_keys(altered_since=before, max_keys=1000)
    assert key.key_id in {k.key_id for k in keys}
    later, _ = client.find_keys(altered_since=datetime.now(UTC) + timedelta(hours=1))
    assert later == []


def test_keys_are_invisible_across_realms(client_factory) -> None:  # type: ignore[no-untyped-def]
    red, _, _ = client_factory(("realm://example.com/red",))
    blue, _, _ = client_factory(("realm://example.com/blue",))
    key = red.create_key()
    with pytest.raises(KmsFault) as err:
        blue.get_key(key.key_id)
    assert err.value.subcode == "kms:NotFound"  # same answer as a key that does not exist
    assert red.get_key(key.key_id).value == key.value


def test_template_by_name_is_inherited(server, client: KmsClient) -> None:  # type: ignore[no-untyped-def]
    name = f"tpl-{uuid.uuid4().hex[:6]}"
    kms("template", "add", name, "--length", "128", "--attribute", "app=backup",
        "--data-dir", str(server.data_dir))
    key = client.create_key(template=name, datasets={"volume": "T1"})
    assert len(key.value or b"") == 16 and key.attributes == {"app": "backup"}
    assert key.template_id is not None
    assert client.get_key(datasets={"volume": "T1"}, template_id=key.template_id).key_id == \
        key.key_id
    with pytest.raises(KmsFault) as err:
        client.create_key(template="no-such-template")
    assert err.value.subcode == "kms:NotFound"


def test_capabilities(client: KmsClient) -> None:
    assert client.get_server_capabilities() == list(SERVER_CAPABILITIES)
    assert client.negotiate_capabilities(["x-unknown", "wrapping:none", "credential:Session"]) == \
        ["wrapping:none", "credential:Session"]
    assert client.negotiate_capabilities(["x-unknown"]) == []


def test_random_bytes(client: KmsClient) -> None:
    a, b = client.get_random_bytes(64), client.get_random_bytes(64)
    assert len(a) == 64 and a != b
    assert len(client.get_random_bytes(65536)) == 65536  # the documented upper bound


def test_push_audit_messages_single_and_batch(server, client: KmsClient) -> None:  # type: ignore[no-untyped-def]
    key = client.create_key()
    assert client.push_audit_messages([{"event": "KeyUsed", "key_id": key.key_id}]) == 1
    batch = [{"event": "Unlocked", "key_id": key.key_id, "message": f"drive {i}",
              "time": datetime(2026, 1, 1, tzinfo=UTC)} for i in range(50)]
    assert client.push_audit_messages(batch) == 50
    n = db.count(server.data_dir, "audit", key_id=key.key_id, operation="PushAuditMessage")
    assert n == 51
    with pytest.raises(KmsFault) as err:
        client.push_audit_messages([{"event": "x", "key_id": str(uuid.uuid4())}])
    assert err.value.subcode == "kms:NotFound"


def test_session_login_use_logout(client_factory, server) -> None:  # type: ignore[no-untyped-def]
    c, name, password = client_factory()
    client_id = c.login()
    assert client_id
    key = c.create_key()  # carried by the session header, no HTTP Basic
    assert c.get_key(key.key_id).value == key.value
    c.logout()
    with pytest.raises(KmsFault) as err:
        c.get_key(key.key_id)
    assert err.value.subcode == "wsman:AccessDenied"


def test_revoked_session_token_is_refused(client_factory, server, validator) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = client_factory()
    c.login()
    token = c._addressing.session_token
    c.logout()
    other = KmsClient(server.url, plugins=[validator])
    other._addressing.session_token = token
    with pytest.raises(KmsFault) as err:
        other.get_random_bytes(1)
    assert err.value.error_code == "E_INVALID_CREDENTIALS"


def test_register_pep_and_create_key_for_it(client_factory) -> None:  # type: ignore[no-untyped-def]
    owner, _, _ = client_factory()
    stranger, _, _ = client_factory()
    pep_id = owner.register_endpoint("Pep", f"drive-{uuid.uuid4().hex[:6]}",
                                     pep_attributes={"pep://example.com/lto/serial": "HU1234"})
    key = owner.create_key(pep_id=pep_id)
    assert owner.get_key(key.key_id, pep_id=pep_id).value == key.value
    with pytest.raises(KmsFault) as err:
        stranger.create_key(pep_id=pep_id)
    assert err.value.subcode == "wsman:AccessDenied" and err.value.error_code == \
        "E_PERMISSION_DENIED"


def test_only_admins_register_clients(client: KmsClient) -> None:
    with pytest.raises(KmsFault) as err:
        client.register_endpoint("Client", f"x-{uuid.uuid4().hex[:6]}", password="long-enough")
    assert err.value.error_code == "E_PERMISSION_DENIED"


def test_duplicate_client_name_is_refused(admin: KmsClient) -> None:
    name = f"dup-{uuid.uuid4().hex[:6]}"
    admin.register_endpoint("Client", name, password="password-1")
    with pytest.raises(KmsFault) as err:
        admin.register_endpoint("Client", name, password="password-2")
    assert err.value.subcode == "wsman:AlreadyExists"


def test_registered_client_authenticates_validate(client_factory, server, validator) -> None:  # type: ignore[no-untyped-def]
    _, name, password = client_factory()
    c = KmsClient(server.url, name, password, plugins=[validator])
    assert c.authenticate("Validate")
    bad = KmsClient(server.url, name, "wrong-password", plugins=[validator])
    with pytest.raises(KmsFault) as err:
        bad.authenticate("Validate")
    assert err.value.error_code == "E_INVALID_CREDENTIALS"


def test_non_ascii_password_over_basic(server, admin: KmsClient, validator) -> None:  # type: ignore[no-untyped-def]

    name, password = f"ü-{uuid.uuid4().hex[:6]}", "pässwörd-ünïcode"
    admin.register_endpoint("Client", name, password=password)
    with KmsClient(server.url, name, password, plugins=[validator]) as c:  # sends UTF-8
        assert len(c.get_random_bytes(8)) == 8
    body = envelope("<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes>"
                    "</kms:GetRandomBytes>", op="GetRandomBytes", url=server.url)
    r, _ = post(server.url, body, auth=(name, password))  # requests sends Latin-1
    assert r.status_code == 200
    r, _ = post(server.url, body, auth=(name, "pässwörd-wrong"))
    assert r.status_code == 401 and 'charset="UTF-8"' in r.headers["WWW-Authenticate"]
