"""Logging: one line per request (kms_ws.access), audit lines (kms_ws.audit), errors with
traces (kms_ws.errors), to stderr and to the log file. No secrets are ever logged: the
code logs ids, names, operations and results, never key bytes, passwords or tokens."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"


def configure_logging(log_file: Path | None, level: int = logging.INFO) -> None:
    root = logging.getLogger("kms_ws")
    root.setLevel(level)
    root.handlers.clear()
    fmt = logging.Formatter(_FORMAT)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # Names, ids and operations of every request: the owner's alone, like the store
        # (a configured device or pipe, such as /dev/stderr, is left as it is).
        if not log_file.exists() or log_file.is_file():
            os.close(os.open(log_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
            os.chmod(log_file, 0o600)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.propagate = False
