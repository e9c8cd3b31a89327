"""An RFC 5424 syslog sink for audit events, over UDP (RFC 5426) or a Unix datagram
socket (/dev/log style). A send that fails is logged and never fails the request."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime
from threading import Lock
from urllib.parse import urlsplit

from .events import AuditEvent

log = logging.getLogger("kms_ws.audit.syslog")

FACILITY_LOG_AUDIT = 13  # RFC 5424 facility 13: log audit
SD_ID = "kmsws@32473"  # 32473: the documentation enterprise number (RFC 5612)
_SEVERITY = {"Success": 6, "Reported": 6, "Denied": 4, "Failed": 5}
_PARAMS = (("operation", "operation"), ("event", "event"), ("result", "result"),
           ("actor", "actor_id"), ("actorName", "actor_name"), ("key", "key_id"),
           ("pep", "pep_id"), ("count", "count"))


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    clean = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return clean or "-"


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def format_event(event: AuditEvent, hostname: str, app: str = "kms-ws",
                 procid: int | None = None) -> bytes:
    pri = FACILITY_LOG_AUDIT * 8 + _SEVERITY.get(event.result, 5)
    params = " ".join(f'{name}="{_sd_value(str(getattr(event, attr)))}"'
                      for name, attr in _PARAMS if getattr(event, attr) is not None)
    header = (f"<{pri}>1 {_timestamp(event.at)} {_header_token(hostname, 255)} "
              f"{_header_token(app, 48)} {procid or os.getpid()} "
              f"{_header_token(event.operation, 32)} [{SD_ID} {params}]")
    msg = event.message or ""
    return header.encode("utf-8") + (b" \xef\xbb\xbf" + msg.encode("utf-8") if msg else b"")


class SyslogSink:
    """`udp://host:port` or `unix:///path/to/socket`."""

    def __init__(self, address: str, hostname: str | None = None) -> None:
        url = urlsplit(address)
        self._target: tuple[str, int] | str
        if url.scheme == "udp" and url.hostname and url.port:
            family, self._target = socket.AF_INET6 if ":" in url.hostname else socket.AF_INET, \
                (url.hostname, url.port)
        elif url.scheme == "unix" and url.path:
            family, self._target = socket.AF_UNIX, url.path
        else:
            raise ValueError(f"audit_syslog must be udp://host:port or unix:///path, "
                             f"not {address!r}")
        self._family = family
        self._hostname = hostname or socket.gethostname()
        self._sock: socket.socket | None = None
        self._lock = Lock()
        self.address = address

    def send(self, event: AuditEvent) -> None:
        data = format_event(event, self._hostname)
        with self._lock:
            try:
                if self._sock is None:  # opened lazily: after the worker fork
                    self._sock = socket.socket(self._family, socket.SOCK_DGRAM)
                self._sock.sendto(data, self._target)
            except OSError as exc:
                log.error("audit event not sent to syslog %s: %s", self.address, exc)
                self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
