"""Closed-loop load generator: N client processes, one connection each.

Standard library only: it also runs inside the PyKMIP venv.

Each worker process builds its own client from a picklable factory, reports
ready, waits for a common start time, warms up, then issues requests back to
back until the common end time, recording the latency of every request that
started inside the measured window. Every loop is bounded by time and count.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# A bound on requests per worker per cell, far above anything a loopback
# server reaches in a few seconds; it only guarantees the loop terminates.
MAX_REQUESTS_PER_WORKER = 5_000_000
# Give up on a worker after this many failures in a row (server gone).
MAX_CONSECUTIVE_ERRORS = 200
ERROR_SAMPLES = 5
SETUP_TIMEOUT_S = 90.0
START_DELAY_S = 0.2


class Client(Protocol):
    """One connection to a server; `request` returns None on success or an error text."""

    def request(self) -> str | None: ...

    def close(self) -> None: ...


ClientFactory = Callable[[], Client]


@dataclass
class CellResult:
    """Figures for one (server, client count) cell."""

    clients: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0  # CPU of the client processes in the measured window
    server_cpu_s: float | None = None  # ... and of the server's process group, if known

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def total(self) -> int:
        return self.ok + self.errors

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 1.0

    @property
    def cpu_ms_per_request(self) -> float:
        """Server plus client CPU per successful request: unlike req/s, not skewed by
        other load on the machine (what idle cores would sustain is cores / this)."""
        if self.server_cpu_s is None or not self.ok:
            return float("nan")
        return (self.server_cpu_s + self.client_cpu_s) / self.ok * 1000.0

    def percentile_ms(self, pct: float) -> float:
        """Nearest-rank percentile of successful request latencies."""
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        rank = min(len(ordered), max(1, math.ceil(pct / 100.0 * len(ordered))))
        return ordered[rank - 1]

    def to_json(self) -> dict[str, Any]:
        return {"clients": self.clients, "duration_s": self.duration_s,
                "latencies_ms": self.latencies_ms, "errors": self.errors,
                "error_samples": self.error_samples, "client_cpu_s": self.client_cpu_s,
                "server_cpu_s": self.server_cpu_s}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellResult:
        return cls(clients=int(data["clients"]), duration_s=float(data["duration_s"]),
                   latencies_ms=[float(x) for x in data["latencies_ms"]],
                   errors=int(data["errors"]),
                   error_samples=[str(x) for x in data["error_samples"]],
                   client_cpu_s=float(data["client_cpu_s"]),
                   server_cpu_s=None if data["server_cpu_s"] is None
                   else float(data["server_cpu_s"]))


@dataclass
class _WorkerReport:
    latencies_ms: list[float]
    errors: int
    error_samples: list[str]
    fatal: str | None = None
    cpu_s: float = 0.0


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the live processes of process group `pgid`: the
    nanosecond run time of each of their threads (schedstat), else user + system ticks."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        proc = f"/proc/{name}"
        try:
            with open(f"{proc}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            try:
                for task in os.listdir(f"{proc}/task"):
                    with open(f"{proc}/task/{task}/schedstat") as sched:
                        total += int(sched.read().split()[0]) / 1e9
            except (OSError, IndexError, ValueError):
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass  # the process has gone
    return total


def _sleep_until(wall_time: float) -> None:
    delay = wall_time - time.time()
    if delay > 0:
        time.sleep(delay)


def _drive(client: Client, until: float, record: _WorkerReport | None) -> None:
    """Issue requests until wall-clock `until`; record them if `record` is given."""
    consecutive_errors = 0
    for _ in range(MAX_REQUESTS_PER_WORKER):
        if time.time() >= until:
            return
        started = time.perf_counter()
        try:
            error = client.request()
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            error = f"{type(exc).__name__}: {exc}"
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        consecutive_errors = consecutive_errors + 1 if error else 0
        if record is not None:
            if error is None:
                record.latencies_ms.append(elapsed_ms)
            else:
                record.errors += 1
                if len(record.error_samples) < ERROR_SAMPLES:
                    record.error_samples.append(error[:300])
        if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
            raise RuntimeError(f"{consecutive_errors} consecutive errors, last: {error}")


def _worker(factory: ClientFactory, ready: Any, go: Any, start_at: Any,
            results: Any, warmup_s: float, duration_s: float) -> None:
    # Ctrl-C reaches the whole process group; the parent cleans up.
    with contextlib.suppress(KeyboardInterrupt):
        _work(factory, ready, go, start_at, results, warmup_s, duration_s)


def _work(factory: ClientFactory, ready: Any, go: Any, start_at: Any,
          results: Any, warmup_s: float, duration_s: float) -> None:
    report = _WorkerReport([], 0, [])
    try:
        client = factory()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        ready.put(f"client setup failed: {type(exc).__name__}: {exc}")
        return
    ready.put(None)
    try:
        if not go.wait(SETUP_TIMEOUT_S):
            return
        measure_from = start_at.value + warmup_s
        _sleep_until(start_at.value)
        _drive(client, measure_from, None)
        _sleep_until(measure_from)
        cpu_from = time.process_time()
        _drive(client, measure_from + duration_s, report)
        report.cpu_s = time.process_time() - cpu_from
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        report.fatal = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            client.close()
        finally:
            results.put(report)


def run_cell(factory: ClientFactory, clients: int, duration_s: float,
             warmup_s: float, server_group: int | None = None) -> CellResult:
    """Run `clients` worker processes against one server; merge their figures. With
    `server_group`, the CPU that process group uses in the measured window is recorded."""
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go, start_at = ctx.Event(), ctx.Value("d", 0.0)
    workers = [ctx.Process(target=_worker, daemon=True,
                           args=(factory, ready, go, start_at, results, warmup_s, duration_s))
               for _ in range(clients)]
    for proc in workers:
        proc.start()
    try:
        _await_ready(ready, workers)
        start_at.value = time.time() + START_DELAY_S
        go.set()
        server_cpu = _window_cpu(server_group, start_at.value + warmup_s, duration_s)
        reports = _collect(results, workers, START_DELAY_S + warmup_s + duration_s + 60)
    except BaseException:
        _reap(workers, grace_s=0.0)
        raise
    _reap(workers, grace_s=10.0)
    cell = _merge(reports, clients, duration_s)
    cell.server_cpu_s = server_cpu
    return cell


def _window_cpu(group: int | None, start: float, duration_s: float) -> float | None:
    """CPU seconds process group `group` uses from wall time `start` for `duration_s`."""
    if group is None:
        return None
    _sleep_until(start)
    before = group_cpu_s(group)
    _sleep_until(start + duration_s)
    return group_cpu_s(group) - before


def _next(q: Any, deadline: float, workers: list[Any], expected_alive: bool, what: str) -> Any:
    """Next message from `q`; fail early when workers died instead of waiting it out."""
    while time.monotonic() < deadline:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            pass
        dead = [p.exitcode for p in workers if p.exitcode is not None]
        if (expected_alive and dead) or len(dead) == len(workers):
            try:
                return q.get(timeout=1.0)  # a last message may still be in flight
            except queue.Empty:
                raise RuntimeError(f"load worker exited ({what}), exit codes {dead}") from None
    raise RuntimeError(f"load workers timed out ({what})")


def _await_ready(ready: Any, workers: list[Any]) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    for _ in workers:
        problem = _next(ready, deadline, workers, True, "connecting")
        if problem is not None:
            raise RuntimeError(problem)


def _collect(results: Any, workers: list[Any], timeout_s: float) -> list[_WorkerReport]:
    deadline = time.monotonic() + timeout_s
    reports = [_next(results, deadline, workers, False, "measuring") for _ in workers]
    fatal = [r.fatal for r in reports if r.fatal]
    if fatal:
        raise RuntimeError(f"load worker failed: {fatal[0]}")
    return reports


def _reap(workers: list[Any], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    for proc in workers:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


def _merge(reports: list[_WorkerReport], clients: int, duration_s: float) -> CellResult:
    cell = CellResult(clients=clients, duration_s=duration_s)
    for report in reports:
        cell.latencies_ms.extend(report.latencies_ms)
        cell.errors += report.errors
        cell.client_cpu_s += report.cpu_s
        room = ERROR_SAMPLES - len(cell.error_samples)
        cell.error_samples.extend(report.error_samples[:room])
    return cell
