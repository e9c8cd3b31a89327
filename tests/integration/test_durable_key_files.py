"""Key files reach the disk with their names: after a master key or the server's signing
key is created (or a master key destroyed), the file and then its directory are synced.
Checked by watching the real os.fsync calls (each still happens)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_ws.crypto import master_key
from kms_ws.security import certificates


@pytest.fixture()
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Path | None, set[str]]]]:
    """Each fsync in order: (the directory synced, the names in it then) or (None, {})
    for a file."""
    seen: list[tuple[Path | None, set[str]]] = []
    real = os.fsync

    def watching(fd: int) -> None:
        real(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            seen.append((path, set(os.listdir(path))))
        else:
            seen.append((None, set()))

    monkeypatch.setattr(os, "fsync", watching)
    yield seen


def test_a_new_master_key_file_and_its_name_are_synced(tmp_path: Path, synced) -> None:  # type: ignore[no-untyped-def]
    provider = master_key.FileProvider(tmp_path)
    first = provider.create()
    assert synced == [(None, set()), (tmp_path, {"master.key"})]
    synced.clear()
    second = provider.create()  # a rotation's new key
    assert synced == [(None, set()), (tmp_path, {"master.key", f"master-{second}.key"})]
    assert sorted(provider.key_ids()) == sorted([first, second])


def test_a_destroyed_master_key_is_gone_for_good(tmp_path: Path, synced) -> None:  # type: ignore[no-untyped-def]
    provider = master_key.FileProvider(tmp_path)
    provider.create()
    second = provider.create()
    synced.clear()
    provider.destroy(second)
    assert synced == [(None, set()), (tmp_path, {"master.key"})]


def test_the_server_signing_key_and_certificate_are_synced(tmp_path: Path, synced) -> None:  # type: ignore[no-untyped-def]
    certificates.create_server_key(tmp_path)
    key, cert = certificates.SERVER_KEY_FILE, certificates.SERVER_CERT_FILE
    assert synced == [(None, set()), (tmp_path, {key}), (None, set()), (tmp_path, {key, cert})]
    assert (tmp_path / key).stat().st_mode & 0o777 == 0o600
    assert certificates.load_server_key(tmp_path).cert is not None


def test_a_signing_key_left_without_its_certificate_gets_one(tmp_path: Path) -> None:
    """A crash between the two files: the next start completes the pair."""
    certificates.create_server_key(tmp_path)
    before = (tmp_path / certificates.SERVER_KEY_FILE).read_bytes()
    (tmp_path / certificates.SERVER_CERT_FILE).unlink()
    certificates.create_server_key(tmp_path)
    assert (tmp_path / certificates.SERVER_KEY_FILE).read_bytes() == before
    signing = certificates.load_server_key(tmp_path)
    assert signing.cert is not None and signing.cert.public_key() == signing.key.public_key()
