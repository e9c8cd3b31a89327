"""Each worker remembers endpoints, their grants, signing credentials and wrapping keys
between key deliveries (store.generations). An administrator's change must still reach
the very next request on EVERY worker and every node sharing the store: a disabled,
locked, deleted client is refused, a replaced certificate no longer signs, changed realm
rights and newly registered wrapping keys apply. Each check below first has every
worker deliver the key (so each has the old state in memory), then changes it, then
asks every worker again on its own kept-alive connection."""

from __future__ import annotations

import base64
import http.client
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from lxml import etree

from kms_ws.client import KmsClient
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.xmlns import KMS

from ..support.envelopes import envelope, get_key
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.signing import Signer, new_key, register_signer, signed
from ..support.validating import ValidatingPlugin
from ..support.workers import exchange, worker_connections
from ..support.wsman import identify

pytestmark = pytest.mark.e2e
DEFAULT_REALM = "realm://localhost/default"

Conns = dict[int, http.client.HTTPConnection]


def _outcome(env: etree._Element) -> str:
    """'delivered', 'wrapped:<WrappingKeyId>', or the fault's kms:ErrorCode."""
    code = env.findtext(f".//{{{KMS}}}ErrorCode")
    if code is not None:
        return code
    blob = env.find(f".//{{{KMS}}}KeyBlob")
    assert blob is not None, etree.tostring(env)[:400]
    wrapped = blob.findtext(f"{{{KMS}}}WrappingKeyId")
    return f"wrapped:{wrapped}" if wrapped else "delivered"


def _signed_get(key: wssecurity.SigningKey, key_id: str) -> Callable[[], bytes]:
    return lambda: signed(get_key(key_id), "GetKey", key)


def _on_every_worker(conns: Conns, message: Callable[[], bytes],
                     headers: dict[str, str] | None = None) -> set[str]:
    """Each worker's answer to a fresh `message()`, twice per worker."""
    return {_outcome(exchange(conn, message(), headers)) for conn in conns.values()
            for _ in range(2)}


def _signer_with_key(admin: KmsClient, server: ServerProcess,
                     validator: ValidatingPlugin) -> tuple[Signer, str]:
    signer = register_signer(admin)
    with KmsClient(server.url, signing_key=signer.key, plugins=[validator]) as c:
        return signer, c.create_key().key_id


def _edit(admin: KmsClient, client_id: str, **fields: object) -> None:
    doc = admin.admin_get("Client", client_id)
    admin.admin_edit("Client", {**doc, **fields})


def test_a_disabled_client_is_refused_by_every_worker(server: ServerProcess, admin: KmsClient,
                                                      validator: ValidatingPlugin) -> None:
    signer, key_id = _signer_with_key(admin, server, validator)
    get = _signed_get(signer.key, key_id)
    with worker_connections(server, identify()) as conns:
        assert _on_every_worker(conns, get) == {"delivered"}
        _edit(admin, signer.endpoint_id, State="Disabled")
        assert _on_every_worker(conns, get) == {"E_INVALID_CREDENTIALS"}
        _edit(admin, signer.endpoint_id, State="Active")
        assert _on_every_worker(conns, get) == {"delivered"}


def test_a_deleted_client_is_refused_by_every_worker(server: ServerProcess, admin: KmsClient,
                                                     validator: ValidatingPlugin) -> None:
    signer, key_id = _signer_with_key(admin, server, validator)
    get = _signed_get(signer.key, key_id)
    with worker_connections(server, identify()) as conns:
        assert _on_every_worker(conns, get) == {"delivered"}
        assert admin.admin_delete("Client", signer.endpoint_id) is None
        # each worker still knows the certificate's key (it verifies the signature) but
        # finds no client behind it
        assert _on_every_worker(conns, get) == {"E_INVALID_CREDENTIALS"}


def test_a_replaced_certificate_no_longer_signs_on_any_worker(
        server: ServerProcess, admin: KmsClient, validator: ValidatingPlugin) -> None:
    signer, key_id = _signer_with_key(admin, server, validator)
    key = new_key()
    cert = self_signed(key, signer.name)
    der = cert.public_bytes(serialization.Encoding.DER)
    with worker_connections(server, identify()) as conns:
        assert _on_every_worker(conns, _signed_get(signer.key, key_id)) == {"delivered"}
        _edit(admin, signer.endpoint_id, Credentials={"CredentialValue": [
            {"Length": len(der), "Value": base64.b64encode(der).decode()}]})
        assert _on_every_worker(conns, _signed_get(signer.key, key_id)) == \
            {"E_INVALID_CREDENTIALS"}
        assert _on_every_worker(conns, _signed_get(wssecurity.SigningKey(key, cert),
                                                   key_id)) == {"delivered"}


def test_changed_realm_rights_apply_on_every_worker(server: ServerProcess, admin: KmsClient,
                                                    validator: ValidatingPlugin) -> None:
    signer, key_id = _signer_with_key(admin, server, validator)
    get = _signed_get(signer.key, key_id)
    realm = f"realm://localhost/elsewhere-{uuid.uuid4().hex[:8]}"
    admin.admin_create("Realm", {"RealmId": realm})
    with worker_connections(server, identify()) as conns:
        assert _on_every_worker(conns, get) == {"delivered"}
        admin.admin_associate("Client", signer.endpoint_id, "Realm", realm)
        admin.admin_disassociate("Client", signer.endpoint_id, "Realm", DEFAULT_REALM)
        assert _on_every_worker(conns, get) == {"E_KEY_NOT_FOUND"}  # not in its realm
        admin.admin_associate("Client", signer.endpoint_id, "Realm", DEFAULT_REALM,
                              rights=["Read"])  # Read: the value itself (issue 15.1)
        assert _on_every_worker(conns, get) == {"delivered"}


def test_a_new_wrapping_key_is_used_by_every_worker(server: ServerProcess, admin: KmsClient,
                                                    validator: ValidatingPlugin) -> None:
    signer, key_id = _signer_with_key(admin, server, validator)
    get = _signed_get(signer.key, key_id)
    with worker_connections(server, identify()) as conns:
        assert _on_every_worker(conns, get) == {"delivered"}
        with KmsClient(server.url, signing_key=signer.key, plugins=[validator]) as c:
            c.register_wrapping_values({"kek-1": bytes(range(32))})
        assert _on_every_worker(conns, get) == {"wrapped:kek-1"}
        with KmsClient(server.url, signing_key=signer.key, plugins=[validator]) as c:
            c.register_wrapping_values(retire=["kek-1"])
        assert _on_every_worker(conns, get) == {"delivered"}


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_a_locked_out_client_is_refused_by_every_worker(
        tmp_path: Path, validator: ValidatingPlugin) -> None:
    # locked at the third wrong password, and no backoff: the lock alone refuses
    with running_server(tmp_path / "data", security={
            "lock_after_failed_authentications": 3,
            "backoff_after_failed_authentications": 0}) as server, \
            KmsClient(server.url, *ADMIN, plugins=[validator]) as admin:
        name, password = f"lock-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
        client_id = admin.register_endpoint("Client", name, password=password)
        with KmsClient(server.url, name, password, plugins=[validator]) as c:
            key_id = c.create_key().key_id
        get = lambda: envelope(get_key(key_id), op="GetKey")  # noqa: E731
        with worker_connections(server, identify()) as conns:
            assert _on_every_worker(conns, get, _basic(name, password)) == {"delivered"}
            for _ in range(3):
                r = requests.post(server.url, data=get(), timeout=30,
                                  auth=(name, "wrong-pw-1"),
                                  headers={"Content-Type": "application/soap+xml;charset=UTF-8"})
                assert r.status_code in (400, 401, 403)
            assert admin.admin_get("Client", client_id)["State"] == "Locked"
            # the right password, remembered by each worker, no longer opens it
            assert _on_every_worker(conns, get, _basic(name, password)) == \
                {"E_INVALID_CREDENTIALS"}


def test_a_change_through_one_node_reaches_another(tmp_path: Path,
                                                   validator: ValidatingPlugin) -> None:
    """Two nodes (server processes with their own workers) on one store."""
    with running_server(tmp_path / "data") as first:
        second = ServerProcess(first.data_dir, log_name="second.stderr")
        second.start()
        try:
            with KmsClient(first.url, *ADMIN, plugins=[validator]) as admin:
                signer, key_id = _signer_with_key(admin, first, validator)
                get = _signed_get(signer.key, key_id)
                with worker_connections(second, identify()) as conns:
                    assert _on_every_worker(conns, get) == {"delivered"}
                    _edit(admin, signer.endpoint_id, State="Disabled")
                    assert _on_every_worker(conns, get) == {"E_INVALID_CREDENTIALS"}
        finally:
            assert second.stop() == 0, second.stderr_text()
