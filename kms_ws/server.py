"""`kms-ws serve`: gunicorn, one worker process per core, each running one request at a
time (kms_ws.http_worker: gthread's event loop serving requests on its own thread;
connections are kept alive between requests, so a client pays for the TCP and TLS
handshakes once, not per request), HTTPS when given a certificate, graceful stop on
SIGTERM."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread

from .app import create_app, init_data_dir, prepare_store
from .crypto.master_key import MasterKeyError
from .store.repository import Repository
from .config import Config
from .logs import configure_logging


class KmsServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config) -> None:
        self.kms_config = config
        super().__init__()

    def load_config(self) -> None:
        c = self.kms_config
        settings: dict[str, Any] = {
            "bind": [f"[{c.host}]:{c.port}" if ":" in c.host else f"{c.host}:{c.port}"],
            "workers": c.workers,
            # One request at a time per process, on the thread that also accepts and
            # holds idle connections (the application is not shared between threads).
            "worker_class": "kms_ws.http_worker.OneThreadWorker",
            "threads": 1,
            "keepalive": KEEPALIVE_SECONDS,
            "timeout": 60,
            "graceful_timeout": 15,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "kms-ws",
            "limit_request_line": 8190,
            "limit_request_fields": 64,
            "ssl_context": _cached_ssl_context,
            # The scheme and peer address come from the socket; forwarded headers are
            # the application's to weigh (trusted_proxies), never gunicorn's.
            "forwarded_allow_ips": "",
        }
        if c.tls_cert and c.tls_key:
            settings.update(certfile=str(c.tls_cert), keyfile=str(c.tls_key))
            if c.tls_client_ca:  # optional: clients without a certificate still connect
                settings.update(ca_certs=str(c.tls_client_ca), cert_reqs=ssl.CERT_OPTIONAL)
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        return one_segment(create_app(self.kms_config))  # once per worker, after fork


KEEPALIVE_SECONDS = 5  # how long an idle client connection is held open
# How long gthread waits for the rest of a request body the application left unread
# before it reuses the connection (its default is 5 s).
gthread.DEFAULT_WORKER_DATA_TIMEOUT = 0.2


def one_segment(app: Any) -> Any:
    """gunicorn sends a response's headers and its body in two writes; with the socket
    corked until the body is written they leave together, and the client is woken once
    instead of twice (Linux's TCP_CORK; elsewhere the application is served as is)."""
    cork = getattr(socket, "TCP_CORK", None)
    if cork is None:
        return app

    def corked(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = app(environ, start_response)
        sock = environ.get("gunicorn.socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, cork, 1)  # type: ignore[union-attr]
        except (AttributeError, OSError):
            return body  # not a TCP socket
        return _Uncorking(body, sock)
    return corked


class _Uncorking:
    """The response body; closing it (after the server wrote it) uncorks the socket."""

    def __init__(self, body: Iterable[bytes], sock: socket.socket) -> None:
        self.body, self.sock = body, sock

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        except OSError:
            pass  # the client has gone
        finally:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()


_SSL: dict[str, ssl.SSLContext] = {}


def _cached_ssl_context(_conf: Any, default_factory: Any) -> ssl.SSLContext:
    """gunicorn builds an SSLContext per connection by default; build one per worker."""
    if "ctx" not in _SSL:
        ctx = default_factory()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _SSL["ctx"] = ctx
    return _SSL["ctx"]


def serve(config: Config) -> None:
    configure_logging(config.log_path)
    # A file master key is created here on first start; a PKCS#11 token is not touched
    # before gunicorn forks (each worker opens it), so it needs 'kms-ws init' first.
    if config.master_key.get("provider", "file") == "file":
        db, _ = init_data_dir(config)
    else:
        db = prepare_store(config)
        with db.transaction() as conn:
            if Repository(conn).current_master_key_id() is None:
                raise MasterKeyError("no master key in the token yet: run 'kms-ws init' first")
    db.dispose()
    scheme = "https" if config.tls_cert else "http"
    logging.getLogger("kms_ws").warning("kms-ws serving %s://%s:%d/wsman with %d workers, data in %s",
                                        scheme, config.host, config.port, config.workers,
                                        config.data_dir)
    delivery = start_delivery(config)
    try:
        KmsServer(config).run()
    finally:
        delivery.terminate()
        try:
            delivery.wait(timeout=10)
        except subprocess.TimeoutExpired:
            delivery.kill()


def start_delivery(config: Config) -> subprocess.Popen[bytes]:
    """The §6.11 UpdatePending delivery loop, as one small child process (gunicorn workers
    come and go; exactly one deliverer per server). It ends with this process, even one
    killed while the child is still starting (`kms_ws.lifetime`)."""
    return subprocess.Popen([sys.executable, "-m", "kms_ws.cli", "deliver", "--data-dir",
                             str(config.data_dir), "--parent", str(os.getpid())],
                            stdin=subprocess.DEVNULL)
