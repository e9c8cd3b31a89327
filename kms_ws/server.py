"""`kms-ws serve`: gunicorn, sync workers (one request per process at a time, one per core
is the sweet spot), HTTPS when given a certificate, graceful stop on SIGTERM."""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

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
            "worker_class": "sync",
            "timeout": 60,
            "graceful_timeout": 15,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "kms-ws",
            "limit_request_line": 8190,
            "limit_request_fields": 64,
            "ssl_context": _cached_ssl_context,
        }
        if c.tls_cert and c.tls_key:
            settings.update(certfile=str(c.tls_cert), keyfile=str(c.tls_key))
            if c.tls_client_ca:  # optional: clients without a certificate still connect
                settings.update(ca_certs=str(c.tls_client_ca), cert_reqs=ssl.CERT_OPTIONAL)
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        return create_app(self.kms_config)  # once per worker, after fork


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
    come and go; exactly one deliverer per server). It exits with its parent."""
    return subprocess.Popen([sys.executable, "-m", "kms_ws.cli", "deliver", "--data-dir",
                             str(config.data_dir)], stdin=subprocess.DEVNULL)
