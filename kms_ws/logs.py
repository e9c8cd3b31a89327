"""Logging: one line per request (kms_ws.access), audit lines (kms_ws.audit), errors with
traces (kms_ws.errors), to stderr and to the log file. No secrets are ever logged: the
code logs ids, names, operations and results, never key bytes, passwords or tokens.

Several processes (gunicorn workers, the deliverer) append to one log file, so kms-ws
does not rotate it itself (each process would rotate on its own): an external rotator
(logrotate) moves or truncates it, and every process notices a moved file before its next
line and opens a new one at the configured path (0600), without a signal. A log file
that cannot be written for lack of space is reported once per episode (not a trace per
line), and `writes_failing()` tells the server, which then refuses changes.

Lines are text (time, pid, level, logger, message) or, with the `json` format, one JSON
object per line with the same fields (and `exc` for a trace)."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import time
from io import TextIOWrapper
from logging.handlers import WatchedFileHandler
from pathlib import Path

_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class LogFile(WatchedFileHandler):
    """Appends to the log file; reopens it (created 0600) when it was moved or removed,
    as logrotate's `create` does; `copytruncate` works too (the file is opened for
    appending, so lines go to its new end)."""

    failing_since: float | None = None  # the last write failed for lack of space

    def _open(self) -> TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        self._failed = False
        try:
            self.reopenIfNeeded()  # (WatchedFileHandler.emit would let its errors out)
        except OSError:
            self.handleError(record)
            return
        logging.FileHandler.emit(self, record)  # a failure comes back through handleError
        if not self._failed and LogFile.failing_since is not None:
            LogFile.failing_since = None
            sys.stderr.write(f"kms-ws: the log file {self.baseFilename} is written again\n")

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed = True
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            if LogFile.failing_since is None:
                LogFile.failing_since = time.monotonic()
                sys.stderr.write(f"kms-ws: the log file {self.baseFilename} cannot be "
                                 f"written ({os.strerror(exc.errno)}): its lines are lost "
                                 "and changes are refused until there is space\n")
            return
        super().handleError(record)


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), pid, level, logger, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "pid": record.process, "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def writes_failing() -> bool:
    """The log file could not be written for lack of space (this process's last line)."""
    return LogFile.failing_since is not None


def configure_logging(log_file: Path | None, level: str = "INFO", fmt_name: str = "text"
                      ) -> None:
    """level: a logging level name (DEBUG, INFO, WARNING, ERROR); fmt_name: text or json."""
    root = logging.getLogger("kms_ws")
    root.setLevel(level)
    root.handlers.clear()
    fmt = JsonLines() if fmt_name == "json" else logging.Formatter(_FORMAT)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Names, ids and operations of every request: the owner's alone, like the store
        # (a configured device or pipe, such as /dev/stderr, is left as it is).
        if not log_file.exists() or log_file.is_file():
            os.close(os.open(log_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
            os.chmod(log_file, 0o600)
        fh = LogFile(log_file)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.propagate = False
