"""Master keys: online rotation under load (bounded), interrupted and resumed rotation,
retirement of the old key only when unused, and the passphrase-protected key file."""

from __future__ import annotations

import json
import random
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kms_ws.client import KmsClient

from ..support.server import ADMIN, ServerProcess, kms
from ..support.signing import register_hmac

pytestmark = pytest.mark.e2e


def _key_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("master*.key"))


def _status(data_dir: Path) -> str:
    return kms("master-key", "status", "--data-dir", str(data_dir)).stdout


@pytest.fixture()
def fresh_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    srv = ServerProcess(tmp_path / "data")
    srv.bootstrap()
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.stderr_text()


def _all_open(url: str, expected: dict[str, bytes]) -> None:
    with KmsClient(url, *ADMIN) as c:
        for key_id, value in expected.items():
            assert c.get_key(key_id).value == value, key_id


def test_rotation_under_load_loses_no_key(fresh_server: ServerProcess) -> None:
    expected: dict[str, bytes] = {}
    with KmsClient(fresh_server.url, *ADMIN) as c:
        for i in range(60):
            k = c.create_key(friendly_name=f"before-{i}")
            expected[k.key_id] = k.value or b""
    old = _key_files(fresh_server.data_dir)
    old_id = _status(fresh_server.data_dir).split()[3]
    assert len(old) == 1 and old_id in old[0].read_text()
    lock, errors = threading.Lock(), []

    def load(seed: int) -> None:  # bounded: 25 CreateKey + 25 GetKey per thread
        rnd = random.Random(seed)
        try:
            with KmsClient(fresh_server.url, *ADMIN) as c:
                for i in range(25):
                    k = c.create_key(friendly_name=f"during-{seed}-{i}")
                    with lock:
                        expected[k.key_id] = k.value or b""
                        pick = rnd.choice(list(expected.items()))
                    assert c.get_key(pick[0]).value == pick[1]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    rotate = subprocess.Popen(
        [sys.executable, "-m", "kms_ws.cli", "master-key", "rotate", "--data-dir",
         str(fresh_server.data_dir), "--batch-size", "7", "--throttle-ms", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    out, err = rotate.communicate(timeout=120)
    assert rotate.returncode == 0, err
    assert not errors, errors
    assert "re-sealed 7/" in out and f"retired {old_id}" in out
    assert "pending re-seal: 0" in _status(fresh_server.data_dir)
    files = _key_files(fresh_server.data_dir)
    assert len(files) == 1 and files[0] not in old  # the old master key is gone
    assert len(expected) == 160
    _all_open(fresh_server.url, expected)


def test_interrupted_rotation_resumes(fresh_server: ServerProcess) -> None:
    expected: dict[str, bytes] = {}
    with KmsClient(fresh_server.url, *ADMIN) as c:
        hmac_secret = secrets.token_bytes(32)  # sealed under the master key too
        hmac_name, hmac_key = register_hmac(c, hmac_secret)
        for i in range(40):
            k = c.create_key(friendly_name=f"k-{i}")
            expected[k.key_id] = k.value or b""
    d = str(fresh_server.data_dir)
    paused = kms("master-key", "rotate", "--data-dir", d, "--batch-size", "5",
                 "--max-batches", "2", check=False)
    # 40 keys + 1 HMAC secret + the audit chain's key
    assert paused.returncode == 3 and "32 left" in paused.stdout
    assert len(_key_files(fresh_server.data_dir)) == 2  # the old key still seals 32 values
    _all_open(fresh_server.url, expected)  # keys under either master key open meanwhile
    # Killed mid-way (no clean-up at all): the batches it committed are kept.
    proc = subprocess.Popen(
        [sys.executable, "-m", "kms_ws.cli", "master-key", "rotate", "--data-dir", d,
         "--batch-size", "2", "--throttle-ms", "2000"], stdout=subprocess.PIPE,
        text=True)  # slow enough that the kill below always lands mid-way, even under load
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("resuming rotation")
    assert proc.stdout.readline().startswith("re-sealed 2/")
    second = kms("master-key", "rotate", "--data-dir", d, check=False)
    assert second.returncode == 1 and "another master-key rotation" in second.stderr
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    pending = int(_status(fresh_server.data_dir).rsplit("pending re-seal: ", 1)[1])
    assert 0 < pending <= 30
    done = kms("master-key", "rotate", "--data-dir", d)
    assert done.stdout.startswith("resuming") and "done:" in done.stdout
    assert len(_key_files(fresh_server.data_dir)) == 1
    _all_open(fresh_server.url, expected)
    with KmsClient(fresh_server.url, signing_key=hmac_key) as signed_client:  # re-sealed too
        assert len(signed_client.create_key(friendly_name=hmac_name).value or b"") == 32


def test_passphrase_protected_master_key(tmp_path: Path, monkeypatch) -> None:
    d = str(tmp_path / "data")
    monkeypatch.setenv("KMS_WS_MASTER_PASSPHRASE", "correct horse battery staple")
    kms("init", "--data-dir", d)
    doc = json.loads((tmp_path / "data" / "master.key").read_text())
    assert doc["version"] == 2 and "key" not in doc and doc["kdf"]["n"] >= 2**15
    assert (tmp_path / "data" / "master.key").stat().st_mode & 0o077 == 0
    assert "current master key" in _status(tmp_path / "data")
    monkeypatch.setenv("KMS_WS_MASTER_PASSPHRASE", "wrong passphrase")
    r = kms("master-key", "status", "--data-dir", d, check=False)
    assert r.returncode == 1 and "wrong passphrase" in r.stderr and "Traceback" not in r.stderr
    monkeypatch.delenv("KMS_WS_MASTER_PASSPHRASE")
    r = kms("master-key", "status", "--data-dir", d, check=False)
    assert r.returncode == 1 and "passphrase-protected" in r.stderr
