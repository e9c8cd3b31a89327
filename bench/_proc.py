"""Start, wait for and stop the server processes a benchmark run owns."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"


class BenchSetupError(RuntimeError):
    """A server or fixture the benchmark needs could not be brought up."""


def bounded(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number between low and high."""
    def parse(text: str) -> float:
        value = float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value
    return parse


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.1) -> None:
    """Poll `check` until it returns True; raise BenchSetupError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise BenchSetupError(f"timed out after {timeout:.0f}s waiting for {what}")


def tail(path: Path, limit: int = 2000) -> str:
    """Last `limit` characters of a log file, for error messages."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def run_bounded(argv: Sequence[str], timeout: float, what: str, *,
                stdin: str = "", cwd: Path | None = None) -> str:
    """Run a command in its own process group; return its stdout.

    The whole group is killed on timeout, on error and on interruption, so no
    grandchild (e.g. a load worker) outlives the call.
    """
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchSetupError(f"{what}: timed out after {timeout:.0f}s") from None
    finally:
        _kill_group(proc)
    if proc.returncode != 0:
        raise BenchSetupError(f"{what} failed (exit {proc.returncode}):\n"
                              f"{err[-2000:]}{out[-500:]}")
    return out


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired, ValueError, OSError):
        proc.communicate(timeout=5)


class ServerProcess:
    """A server started in its own process group, stopped (group-wide) on exit.

    Output goes to `log_path`. Stopping sends `stop_signal` to the group, waits
    up to `grace` seconds, then SIGKILLs the group. Only the group this object
    created is ever signalled.
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 stop_signal: int = signal.SIGTERM, grace: float = 15.0) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                start_new_session=True)
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def group(self) -> int:
        """The server's process group (its pid: it leads a new session)."""
        if self._proc is None:
            raise BenchSetupError(f"{self.name} is not running")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure_alive(self) -> None:
        if not self.alive():
            raise BenchSetupError(
                f"{self.name} exited early; log tail:\n{tail(self.log_path)}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._signal_group(proc.pid, self.stop_signal)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.grace)
        # Leftover children (workers, helper processes) go with the group.
        self._signal_group(proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(pgid, sig)


@contextmanager
def serving(name: str, argv: Sequence[str], log_path: Path, probe_url: str, *,
            cwd: Path | None = None, timeout: float = 60.0,
            env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A ServerProcess, yielded once GET `probe_url` answers 200."""
    with ServerProcess(name, argv, log_path, cwd=cwd, env=env) as server:
        def ready() -> bool:
            server.ensure_alive()
            try:
                with urllib.request.urlopen(probe_url, timeout=1) as response:
                    return response.status == 200
            except (OSError, urllib.error.URLError):
                return False

        wait_until(ready, timeout, f"{name} to answer GET {probe_url}")
        yield server
