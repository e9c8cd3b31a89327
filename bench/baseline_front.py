#!/usr/bin/env python3
"""The HTTP front kms-ws served with before the buffering worker (kept here, frozen, as
the baseline of bench/slowloris.py and `bench/getkey.py --baseline-front`).

gunicorn with a gthread worker of one thread serving each request on the event loop's
own thread: a request is read with blocking reads (a 10 s socket timeout per read), so a
connection that stops part-way through its headers or body holds its worker; responses
corked into one TCP segment. Same application (`kms_ws.app.create_app`, once per worker
after the fork), same settings as `kms-ws serve` had; no delivery child, plain HTTP.

    python bench/baseline_front.py --data-dir D --port P [--workers 2]
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from collections.abc import Iterable, Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread

from kms_ws.app import create_app
from kms_ws.config import Config, load
from kms_ws.logs import configure_logging

KEEPALIVE_SECONDS = 5
STALL_SECONDS = 10
_STALL = struct.pack("ll", STALL_SECONDS, 0)
gthread.DEFAULT_WORKER_DATA_TIMEOUT = 0.2


class OneThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    def enqueue_req(self, conn: gthread.TConn) -> None:
        if not conn.initialized:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _STALL)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _STALL)
        done: futures.Future[object] = futures.Future()
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            done.set_result(gthread._DEFER)
        else:
            done.set_result(self.handle(conn))
        self.finish_request(conn, done)


def one_segment(app: Any) -> Any:
    def corked(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = app(environ, start_response)
        sock = environ.get("gunicorn.socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)  # type: ignore[union-attr]
        except (AttributeError, OSError):
            return body
        return _Uncorking(body, sock)
    return corked


class _Uncorking:
    def __init__(self, body: Iterable[bytes], sock: socket.socket) -> None:
        self.body, self.sock = body, sock

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        except OSError:
            pass
        finally:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()


class BaselineServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config) -> None:
        self.kms_config = config
        super().__init__()

    def load_config(self) -> None:
        c = self.kms_config
        settings: dict[str, Any] = {
            "bind": [f"{c.host}:{c.port}"], "workers": c.workers,
            "worker_class": f"{__name__}.OneThreadWorker", "threads": 1,
            "keepalive": KEEPALIVE_SECONDS, "timeout": 60, "graceful_timeout": 15,
            "accesslog": None, "errorlog": "-", "loglevel": "warning",
            "proc_name": "kms-ws-baseline", "limit_request_line": 8190,
            "limit_request_fields": 64,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        return one_segment(create_app(self.kms_config))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    cfg = load(Path(args.data_dir)).with_overrides(host=args.host, port=args.port,
                                                   workers=args.workers)
    cfg = replace(cfg, security=replace(cfg.security, allow_basic_over_http=True))
    configure_logging(cfg.log_path)
    BaselineServer(cfg).run()
    return 0


if __name__ == "__main__":
    sys.argv[0] = "baseline_front"
    sys.exit(main())
