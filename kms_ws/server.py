"""`kms-ws serve`: gunicorn's arbiter with N worker processes (one per core) of kms-ws's
buffering worker (kms_ws.http_worker: one event loop per process holding any number of
slow or idle connections, each request handed to the application only once it has
arrived in full, one request at a time; connections kept alive between requests),
HTTPS when given a certificate, graceful stop on SIGTERM, and the one delivery child."""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import ssl
import subprocess
import sys
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from . import __version__
from .app import create_app, init_data_dir, prepare_store
from .config import Config
from .crypto.master_key import MasterKeyError
from .http_worker import BufferingWorker
from .logs import configure_logging
from .soap import metrics


class KmsServer(BaseApplication):
    def __init__(self, config: Config) -> None:
        self.kms_config = config
        # what kms_ws.http_worker buffers of a request body at most (the application
        # refuses anything longer, unread)
        self.max_body_bytes = config.security.max_message_bytes
        super().__init__()

    def load_config(self) -> None:
        c = self.kms_config
        settings: dict[str, Any] = {
            "bind": [f"[{c.host}]:{c.port}" if ":" in c.host else f"{c.host}:{c.port}"],
            "workers": c.workers,
            "worker_class": BufferingWorker,
            "worker_connections": MAX_CONNECTIONS,
            "timeout": 60,  # a request running longer gets its worker replaced
            "graceful_timeout": 15,
            "accesslog": None,  # the application logs each request (kms_ws.access)
            "errorlog": "-",
            "logger_class": _GunicornLog,  # its warnings in kms-ws's lines and log file
            "loglevel": "warning",
            "proc_name": "kms-ws",
            "ssl_context": _tls_1_2_or_later,
            # The scheme and peer address come from the socket; forwarded headers are
            # the application's to weigh (trusted_proxies), never gunicorn's.
            "forwarded_allow_ips": "",
        }
        if c.metrics:  # every worker's values in the directory serve() made
            settings["child_exit"] = _worker_exited
        if c.tls_cert and c.tls_key:
            settings.update(certfile=str(c.tls_cert), keyfile=str(c.tls_key))
            if c.tls_client_ca:  # optional: clients without a certificate still connect
                settings.update(ca_certs=str(c.tls_client_ca), cert_reqs=ssl.CERT_OPTIONAL)
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        return create_app(self.kms_config)  # once per worker, after fork


MAX_CONNECTIONS = 1024  # per worker process; past that the longest waiter is dropped


class _GunicornLog(glogging.Logger):
    """gunicorn's own lines (a worker that timed out, was killed, failed to boot) go where
    and as kms-ws's go: the log file and stderr, text or JSON (kms_ws.logs)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        for handler in logging.getLogger("kms_ws").handlers:
            self.error_log.addHandler(handler)
        self.error_log.propagate = False


def _worker_exited(_arbiter: Any, worker: Any) -> None:
    metrics.worker_exited(worker.pid)


def _tls_1_2_or_later(_conf: Any, default_factory: Any) -> ssl.SSLContext:
    """gunicorn's context (certificate, client CA, verify mode), TLS 1.2 at least."""
    ctx: ssl.SSLContext = default_factory()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _raise_open_file_limit() -> None:
    """Room for every worker's connections (the soft limit, up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class CannotListen(Exception):
    """The listen address cannot be bound (the port is taken, the address is not ours)."""


def check_listen(config: Config) -> None:
    """Bind the listen address once, as gunicorn will (SO_REUSEADDR), before anything
    says the server is serving: a taken port is one clear line, not gunicorn's retries."""
    if not 0 < config.port < 65536:
        raise CannotListen(f"port {config.port} is not a TCP port (1 to 65535)")
    try:
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except (OSError, OverflowError) as exc:
        hint = ": another process listens there (choose a port with --port or \"port\" in " \
            "kms-ws.json)" if getattr(exc, "errno", None) == errno.EADDRINUSE else ""
        raise CannotListen(f"cannot listen on {config.host}:{config.port}: "
                           f"{getattr(exc, 'strerror', None) or exc}{hint}") from None


def serve(config: Config) -> None:
    check_listen(config)
    # the owner's alone from the first start (the log file may be created in it next)
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    configure_logging(config.log_path, config.log_level, config.log_format)
    log = logging.getLogger("kms_ws")
    # A file master key is created here on first start; a PKCS#11 token is not touched
    # before gunicorn forks (each worker opens it), so it needs 'kms-ws init' first.
    if config.master_key.get("provider", "file") == "file":
        db, _ = init_data_dir(config)
    else:
        db = prepare_store(config)
        with db.unit_of_work() as uow:
            if uow.sealed.current_master_key_id() is None:
                raise MasterKeyError("no master key in the token yet: run 'kms-ws init' first")
    db.dispose()
    _raise_open_file_limit()
    scheme = "https" if config.tls_cert else "http"
    host = f"[{config.host}]" if ":" in config.host else config.host
    log.info("kms-ws %s serving %s://%s:%d/wsman with %d workers, data in %s, metrics %s",
             __version__, scheme, host, config.port, config.workers,
             config.data_dir.resolve(), "on" if config.metrics else "off")
    multiproc = metrics.start_multiprocess() if config.metrics else None
    delivery = start_delivery(config)
    arbiter = os.getpid()
    try:
        KmsServer(config).run()
    finally:
        # a worker leaves through here too (gunicorn ends a forked worker with SystemExit):
        # only the server's own process stops the deliverer and says it stopped
        if os.getpid() == arbiter:
            delivery.terminate()
            try:
                delivery.wait(timeout=10)
            except subprocess.TimeoutExpired:
                delivery.kill()
            if multiproc is not None:
                metrics.stop_multiprocess(multiproc)
            log.info("kms-ws stopped")


def start_delivery(config: Config) -> subprocess.Popen[bytes]:
    """The §6.11 UpdatePending delivery loop, as one small child process (gunicorn workers
    come and go; exactly one deliverer per server). It ends with this process, even one
    killed while the child is still starting (`kms_ws.lifetime`)."""
    return subprocess.Popen([sys.executable, "-m", "kms_ws.cli", "deliver", "--data-dir",
                             str(config.data_dir), "--parent", str(os.getpid()),
                             "--log-level", config.log_level, "--log-format",
                             config.log_format],
                            stdin=subprocess.DEVNULL)
