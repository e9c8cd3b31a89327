"""Other HTTP fronts tried for kms-ws (bench/slowloris.py --fronts granian,gevent;
bench/README.md says what they showed). Optional: `pip install granian gevent`.

Each serves the same application (`kms_ws.app.create_app`, once per worker process, HTTP
Basic allowed over loopback HTTP) from the data directory named by KMS_WS_BENCH_DATA_DIR:

  granian  Granian's WSGI interface (Rust, hyper/tokio): N workers, one blocking thread
           each, its own HTTP/1 header read timeout. It cannot give the application the
           TLS client certificate, so kms-ws could not log clients in by certificate.
  gevent   gunicorn's gevent worker: one greenlet per connection (the application then
           runs interleaved with itself in each process).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from _proc import LOOPBACK

from kms_ws.app import create_app
from kms_ws.config import load

DATA_DIR_ENV = "KMS_WS_BENCH_DATA_DIR"
HERE = Path(__file__).resolve().parent


def kms_app() -> Any:
    """The WSGI application of the data directory in KMS_WS_BENCH_DATA_DIR."""
    cfg = load(Path(os.environ[DATA_DIR_ENV]))
    return create_app(replace(cfg, security=replace(cfg.security, allow_basic_over_http=True)))


def argv(front: str, data_dir: Path, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    """Command line and environment of `front` serving `data_dir` on `port`."""
    env = {**os.environ, DATA_DIR_ENV: str(data_dir),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE),
                                                       os.environ.get("PYTHONPATH")]))}
    if front == "granian":
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", LOOPBACK,
                "--port", str(port), "--workers", str(workers), "--blocking-threads", "1",
                "--http1-header-read-timeout", "10000", "--log-level", "warning",
                "--factory", "alt_fronts:kms_app"], env
    if front == "gevent":
        return [sys.executable, "-m", "gunicorn", "--worker-class", "gevent", "--workers",
                str(workers), "--bind", f"{LOOPBACK}:{port}", "--keep-alive", "5",
                "--timeout", "60", "alt_fronts:kms_app()"], env
    raise ValueError(f"unknown front {front!r}")
