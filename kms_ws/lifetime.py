"""Helper processes that must not outlive the process that started them (the delivery
child of `kms-ws serve`)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Have this process get SIGTERM when its parent `parent` ends (Linux
    PR_SET_PDEATHSIG; elsewhere the caller's own polling of getppid() is all there is),
    then check the parent is still there: it may have ended before the signal was asked
    for, and this process would then run on under another parent. Exits if so."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if os.getppid() != parent:
        raise SystemExit(0)
