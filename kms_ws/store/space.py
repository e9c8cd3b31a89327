"""The free-space watermark: changes are refused before the disk fills.

Below `min_free_disk_mb` of free space on a file system the server writes to (the data
directory, a SQLite database elsewhere, the log file's directory), or while the log file
cannot be written for lack of space, `check` refuses with StorageFull. The service asks
only before operations that change something; reads (key deliveries included, whose
audit records use the reserve left below the watermark) go on. Free space is read per
check (one statvfs per file system, a few microseconds)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from ..domain.errors import StorageFull
from ..logs import writes_failing

log = logging.getLogger("kms_ws.errors")
MIB = 1024 * 1024


class SpaceGuard:
    def __init__(self, paths: Iterable[Path], min_free_bytes: int) -> None:
        self.paths = sorted({str(p) for p in paths})
        self.min_free = min_free_bytes
        self._warned = 0.0

    def free_bytes(self) -> dict[str, int]:
        out = {}
        for path in self.paths:
            try:
                st = os.statvfs(path)
            except OSError:
                continue  # not there (yet): nothing to measure
            out[path] = st.f_bavail * st.f_frsize
        return out

    def check(self) -> None:
        """Raise StorageFull below the watermark or while the log cannot be written."""
        if writes_failing():
            self._refuse("the log file cannot be written for lack of space: changes are "
                         "refused until space is freed; reads still work")
        if self.min_free <= 0:
            return
        for path, free in self.free_bytes().items():
            if free < self.min_free:
                self._refuse(f"free space on the server's storage ({free // MIB} MiB) is "
                             f"below its reserve of {self.min_free // MIB} MiB: changes are "
                             "refused until space is freed; reads still work", path)

    def _refuse(self, reason: str, path: str | None = None) -> None:
        self.report(reason + (f" ({path})" if path else ""))
        raise StorageFull(reason)

    def report(self, what: str) -> None:
        """Tell the operator, once a minute per process at most."""
        now = time.monotonic()
        if now - self._warned >= 60:
            self._warned = now
            log.warning("storage: %s", what)
