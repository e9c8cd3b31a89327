"""A real kms-ws server process on a free loopback port, for e2e tests."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from .postgres import shared_cluster, whole_suite_on_postgres

ADMIN = ("admin", "admin-password-1")


def kms(*args: str, stdin: str | None = None, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the kms-ws command line (this interpreter's installed package), without a
    controlling terminal, as in CI: nothing can prompt on the terminal pytest runs in."""
    return subprocess.run([sys.executable, "-m", "kms_ws.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=cwd, check=check,
                          start_new_session=True)


def _stop_with_the_tests() -> None:
    """In the server's process, before it starts: SIGTERM it when the process that started
    it ends, so a test run killed by a signal leaves no server behind (Linux prctl
    PR_SET_PDEATHSIG; elsewhere the fixtures' normal stop is all there is)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, security: dict | None = None, workers: int = 2,
                 tls: tuple[Path, Path] | None = None, config: dict | None = None,
                 tls_ca: Path | None = None, log_name: str = "serve.stderr") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.workers = workers
        self.tls = tls
        self.tls_ca = tls_ca or (tls[0] if tls else None)  # what verifies the server
        self.log_name = log_name  # another node on the same data directory logs elsewhere
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/wsman"
        self.proc: subprocess.Popen[bytes] | None = None
        # Tests talk HTTP Basic over loopback: the explicit local-use opt-in. Every test
        # calls from 127.0.0.1, and many as the one administrator: one test's wrong
        # passwords would bar the next test's right ones, so the backoff is off unless a
        # test turns it on (tests/security/test_authentication_limits proves it in process,
        # test_lockout_e2e across workers). Settings a test wrote to kms-ws.json itself
        # are kept.
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "kms-ws.json"
        doc = json.loads(path.read_text()) if path.exists() else {}
        doc.update(config or {})
        if "database_url" not in doc and whole_suite_on_postgres():
            doc["database_url"] = shared_cluster().create_database()
        doc["security"] = {"allow_basic_over_http": True,
                           "backoff_after_failed_authentications": 0,
                           "source_backoff_after_failed_authentications": 0,
                           **doc.get("security", {}), **(security or {})}
        path.write_text(json.dumps(doc))

    def bootstrap(self) -> None:
        kms("init", "--data-dir", str(self.data_dir))
        kms("client", "add", ADMIN[0], "--admin", "--password-stdin", "--data-dir",
            str(self.data_dir), stdin=ADMIN[1] + "\n")

    def start(self) -> None:
        args = [sys.executable, "-m", "kms_ws.cli", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--workers", str(self.workers)]
        if self.tls:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self.stderr = open(self.data_dir / self.log_name, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     start_new_session=True, preexec_fn=_stop_with_the_tests)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.stderr_text())
            try:
                r = requests.get(self.url + "?wsdl", timeout=1,
                                 verify=str(self.tls_ca) if self.tls_ca else True)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not come up: " + self.stderr_text())

    def stop(self) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=10)
        self.stderr.close()
        return code

    def stderr_text(self) -> str:
        return (self.data_dir / self.log_name).read_text(errors="replace")


@contextmanager
def running_server(data_dir: Path, **options: object) -> Iterator[ServerProcess]:
    """A bootstrapped server started on `data_dir` (ServerProcess options), stopped after;
    it must stop cleanly (exit status 0)."""
    srv = ServerProcess(data_dir, **options)  # type: ignore[arg-type]
    srv.bootstrap()
    srv.start()
    try:
        yield srv
    finally:
        status = srv.stop()
    assert status == 0, srv.stderr_text()
