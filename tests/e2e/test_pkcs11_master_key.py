"""A server whose master key lives in a real SoftHSM2 token: keys are sealed in the token,
no master key file exists, and an online rotation moves every key to a new token key and
destroys the old one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kms_ws.client import KmsClient

from ..support import softhsm
from ..support.server import ADMIN, ServerProcess, kms

pytestmark = pytest.mark.e2e


@pytest.mark.needs("softhsm2")
def test_server_on_a_softhsm_master_key_rotates_online(tmp_path: Path, monkeypatch) -> None:
    module = softhsm.module_path()
    monkeypatch.setenv("SOFTHSM2_CONF", "")  # restored after the test
    softhsm.configure(tmp_path / "hsm")
    label = softhsm.new_token()
    monkeypatch.setenv("KMS_WS_PKCS11_PIN", softhsm.PIN)
    data = tmp_path / "data"
    data.mkdir()
    (data / "kms-ws.json").write_text(json.dumps({"master_key": {
        "provider": "pkcs11", "module": module, "token_label": label}}))
    srv = ServerProcess(data)
    srv.bootstrap()
    assert not list(data.glob("master*.key"))  # nothing of the master key on disk
    first = kms("master-key", "status", "--data-dir", str(data)).stdout.split()[3]
    srv.start()
    try:
        with KmsClient(srv.url, *ADMIN) as c:
            keys = {k.key_id: k.value for k in (c.create_key() for _ in range(20))}
            rotated = kms("master-key", "rotate", "--data-dir", str(data), "--batch-size", "6")
            # 20 keys and the audit chain's key (sealed in the token too)
            assert "re-sealed 21/21" in rotated.stdout and f"retired {first}" in rotated.stdout
            keys.update({k.key_id: k.value for k in (c.create_key() for _ in range(5))})
            for key_id, value in keys.items():
                assert c.get_key(key_id).value == value
    finally:
        assert srv.stop() == 0, srv.stderr_text()
    listed = subprocess.run(["softhsm2-util", "--show-slots"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    assert label in listed
    status = kms("master-key", "status", "--data-dir", str(data)).stdout
    assert first not in status and "pending re-seal: 0" in status
    monkeypatch.setenv("KMS_WS_PKCS11_PIN", "wrong-pin")
    r = kms("master-key", "status", "--data-dir", str(data), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr and label in r.stderr
