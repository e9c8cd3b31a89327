"""Issue 12.5 against real server processes: the backoff is shared by every worker
(through the store), and `kms-ws client unlock NAME --data-dir D` unlocks a client on
the data directory itself, with the server running or not."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from kms_ws.client import KmsClient, KmsFault
from kms_ws.service.operator import OPERATOR_ID, OPERATOR_NAME
from kms_ws.xmlns import KMS

from ..support.envelopes import envelope
from ..support.server import ADMIN, kms, running_server
from ..support.validating import ValidatingPlugin
from ..support.workers import exchange, worker_connections
from ..support.wsman import identify

pytestmark = pytest.mark.e2e


def _random_bytes() -> bytes:
    return envelope("<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes>"
                    "</kms:GetRandomBytes>", op="GetRandomBytes")


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _outcome(env) -> str:  # type: ignore[no-untyped-def]
    return env.findtext(f".//{{{KMS}}}ErrorCode") or "served"



def check_locked_out(url: str, name: str, validator: ValidatingPlugin, admin: KmsClient,
                     client_id: str) -> None:
    """Three wrong passwords lock the client (lock_after_failed_authentications 3)."""
    with KmsClient(url, name, "a-wrong-password", plugins=[validator]) as bad:
        for _ in range(3):
            with pytest.raises(KmsFault):
                bad.get_random_bytes(1)
    assert admin.admin_get("Client", client_id)["State"] == "Locked"

def test_the_backoff_is_shared_by_every_worker(tmp_path: Path,
                                               validator: ValidatingPlugin) -> None:
    with running_server(tmp_path / "data", workers=2, security={
            "backoff_after_failed_authentications": 3}) as srv:  # the default
        name, password = f"c-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
        with KmsClient(srv.url, *ADMIN, plugins=[validator]) as admin:
            admin.register_endpoint("Client", name, password=password)
        with worker_connections(srv, identify()) as conns:
            first = next(iter(conns.values()))
            for _ in range(3):  # on one worker only
                assert _outcome(exchange(first, _random_bytes(), _basic(name, "wrong-pw-1"))) \
                    == "E_INVALID_CREDENTIALS"
            # the right password, on every worker, is refused while the backoff runs
            assert {_outcome(exchange(conn, _random_bytes(), _basic(name, password)))
                    for conn in conns.values()} == {"E_INVALID_CREDENTIALS"}


def test_client_unlock_works_on_the_data_directory(tmp_path: Path,
                                                   validator: ValidatingPlugin) -> None:
    data = tmp_path / "data"
    name, password = f"c-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with (
        running_server(data, security={"lock_after_failed_authentications": 3,
                                       "backoff_after_failed_authentications": 3}) as srv,
        KmsClient(srv.url, *ADMIN, plugins=[validator]) as admin,
    ):
        client_id = admin.register_endpoint("Client", name, password=password)
        check_locked_out(srv.url, name, validator, admin, client_id)
        # while the server runs: every worker sees it at once
        done = kms("client", "unlock", name, "--data-dir", str(data))
        assert done.returncode == 0 and f"client {name} unlocked" in done.stdout
        assert admin.admin_get("Client", client_id)["State"] == "Active"
        with KmsClient(srv.url, name, password, plugins=[validator]) as good:
            assert len(good.get_random_bytes(4)) == 4
        events = [r["Event"] for r in admin.admin_audit(client_id=client_id)]
        assert "ClientLocked" in events
        # the unlock is the local operator's AdminEdit of the client
        unlocks = [(r["Operation"], r["Result"], r.get("ActorName"), r.get("Message"))
                   for r in admin.admin_audit(client_id=OPERATOR_ID)]
        assert ("AdminEdit", "Success", OPERATOR_NAME, f"Client {client_id}") in unlocks
        check_locked_out(srv.url, name, validator, admin, client_id)
    # the server stopped: the data directory alone
    done = kms("client", "unlock", name, "--data-dir", str(data))
    assert done.returncode == 0 and f"client {name} unlocked" in done.stdout
    listed = kms("client", "list", "--data-dir", str(data)).stdout
    assert any(name in line and "Active" in line for line in listed.splitlines())
    again = kms("client", "unlock", name, "--data-dir", str(data), check=False)
    assert again.returncode == 0 and "not locked" in again.stdout
    unknown = kms("client", "unlock", "no-such-client", "--data-dir", str(data), check=False)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().splitlines() == ["kms-ws: no client named 'no-such-client'"]
    # the offline unlocks (and the refusal of the unknown name) are chained audit records
    assert kms("audit", "verify", "--data-dir", str(data)).stdout.startswith(
        "audit chain intact")
