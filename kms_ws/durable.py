"""Files that must survive a crash once they are written: master keys and the server's
signing key. fsync of a file makes its bytes durable but not its name: the directory
entry is the directory's data, so the directory is synced too, after the file is created
and after it is removed (POSIX; without it a crash can lose a new master key that already
seals stored keys, or bring back a destroyed one)."""

from __future__ import annotations

import os
from pathlib import Path


def create(path: Path, data: bytes, mode: int = 0o600) -> None:
    """A new file (never an existing one: FileExistsError) holding `data`, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """Make the names in directory `path` (files created, renamed or removed) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
