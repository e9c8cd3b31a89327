"""A worker opens the new master key while a rotation's end destroys the old one.

`kms-ws master-key rotate` ends by destroying the older master keys: each file is
overwritten with zeros, synced, then unlinked. A server worker that had not opened the new
key yet (its first GetKey of a re-sealed value) opened it by reading every master-key file
of the data directory, the one being destroyed too, and failed (GetKey: HTTP 500) when it
read the zeros. Found by bench/scale.py (GetKey during a rotation); here the moment is
made exact: the old file overwritten, not yet unlinked, as FileProvider.destroy leaves it
between its two steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_ws.crypto import master_key


def _mid_destroy(path: Path) -> None:
    """What FileProvider.destroy has done before it unlinks: the file is all zeros."""
    path.write_bytes(b"\0" * path.stat().st_size)


def test_the_new_master_key_opens_while_the_old_one_is_being_destroyed(tmp_path: Path) -> None:
    rotation = master_key.FileProvider(tmp_path)
    old = rotation.create()
    new = rotation.create()
    sealed = rotation.open(new).encrypt(bytes(12), b"a key value", b"aad")
    _mid_destroy(tmp_path / master_key.FILE_NAME)

    worker = master_key.FileProvider(tmp_path)  # another process, new key not opened yet
    assert worker.open(new).decrypt(bytes(12), sealed, b"aad") == b"a key value"
    with pytest.raises(master_key.MasterKeyError, match="unreadable"):
        worker.open(old)  # the one being destroyed is not made up


def test_the_first_master_key_opens_while_a_later_one_is_being_destroyed(
        tmp_path: Path) -> None:
    rotation = master_key.FileProvider(tmp_path)
    first = rotation.create()
    later = rotation.create()
    sealed = rotation.open(first).encrypt(bytes(12), b"a key value", b"aad")
    _mid_destroy(tmp_path / f"master-{later}.key")

    worker = master_key.FileProvider(tmp_path)
    assert worker.open(first).decrypt(bytes(12), sealed, b"aad") == b"a key value"


def test_a_master_key_file_under_another_keys_name_is_not_taken_for_it(
        tmp_path: Path) -> None:
    provider = master_key.FileProvider(tmp_path)
    provider.create()
    second = provider.create()
    third = provider.create()
    (tmp_path / f"master-{third}.key").unlink()
    (tmp_path / f"master-{second}.key").rename(tmp_path / f"master-{third}.key")
    with pytest.raises(master_key.MasterKeyError):
        provider.open(third)  # the file named for it holds another key
    assert provider.open(second) is not None  # found by its content, as before
