"""A private, throw-away PostgreSQL cluster for the tests that run the store on
PostgreSQL: initdb into a fresh temporary directory, one postmaster on 127.0.0.1 and a
free port (its socket directory in that temporary directory too), a fresh database per
test. fsync is off: nothing in it needs to survive the test run.

The server binaries come from $KMS_WS_PG_BINDIR, the PATH, `pg_config --bindir` or
Debian's versioned directory (the `postgresql` package; .ci/run installs it). Missing
binaries FAIL the tests that need them: CI installs PostgreSQL, and a skip would hide a
store that no longer works on it. initdb and postgres refuse to run as root: as root they
run as the `postgres` system user (made by the Debian package), which owns the directory.
The postmaster gets SIGQUIT when the test run ends, however it ends (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import ctypes
import fcntl
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

SUPERUSER = "kms"  # the cluster's bootstrap role, whoever runs it


class PostgresMissing(RuntimeError):
    pass


def server_bindir() -> Path:
    """The directory holding initdb and postgres."""
    candidates = [os.environ.get("KMS_WS_PG_BINDIR", "")]
    candidates.append(os.path.dirname(shutil.which("initdb") or ""))
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    # Debian/Ubuntu keep the server binaries out of the PATH, one directory per version
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    for directory in candidates:
        if directory and all((Path(directory) / exe).is_file() for exe in ("initdb", "postgres")):
            return Path(directory)
    raise PostgresMissing(
        "PostgreSQL server binaries (initdb, postgres) not found: install the "
        "`postgresql` package (Debian) or set KMS_WS_PG_BINDIR")


PREFIX = "kms-ws-pg-"


def _hold(root: Path) -> Any:
    """An exclusive lock on root/.held for as long as this process lives."""
    held = open(root / ".held", "w")  # noqa: SIM115 - held (locked) until the process ends
    fcntl.flock(held, fcntl.LOCK_EX)
    return held


def _remove_abandoned() -> None:
    """Directories of clusters whose test run was killed (their postmaster died with it):
    nobody holds their lock any more."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            with open(root / ".held") as held:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # alive (locked), or not ours
        shutil.rmtree(root, ignore_errors=True)


def _die_with_the_tests() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG


class PostgresCluster:
    """initdb + postmaster in a temporary directory; `url(db)` names a database in it."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self._as: dict[str, object] = {}
        owner = None
        if os.geteuid() == 0:  # initdb/postgres refuse root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresMissing("running as root and there is no `postgres` user "
                                      "to run the PostgreSQL server as") from None
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        _remove_abandoned()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._held = _hold(self.root)  # released when this process ends, however it ends
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    def _run(self, *args: str) -> None:
        done = subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True,
                              text=True, timeout=120, cwd=self.root, **self._as)  # type: ignore[call-overload]
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        self.log = open(self.root / "postgres.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off",
             "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root,
            start_new_session=True, preexec_fn=_die_with_the_tests, **self._as)  # type: ignore[call-overload]
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + self.log_text())
            try:
                psycopg.connect(self._dsn("postgres"), connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("postgres did not come up: " + self.log_text()) from None
                time.sleep(0.1)

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        name = f"kms_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def log_text(self) -> str:
        return (self.root / "postgres.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects the clients
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        self._held.close()


_shared: PostgresCluster | None = None


def shared_cluster() -> PostgresCluster:
    """The test run's one cluster, started on first need (stop_shared_cluster at the end)."""
    global _shared
    if _shared is None:
        cluster = PostgresCluster()
        cluster.start()
        _shared = cluster
    return _shared


def stop_shared_cluster() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


def whole_suite_on_postgres() -> bool:
    """KMS_WS_TEST_STORE=postgresql: every test server's store is a fresh PostgreSQL
    database of the shared cluster (a developer's check; CI runs tests/e2e/test_postgresql.py)."""
    return os.environ.get("KMS_WS_TEST_STORE", "sqlite") == "postgresql"
