#!/usr/bin/env python3
"""Availability of kms-ws under slow and idle hostile connections (slowloris).

For each front (`kms-ws serve`, and the front it replaced as the baseline, in the same
run, on the same data) and each number of hostile connections (default 0, 50, 500):
hostile connections are opened and kept open, then legitimate GetKeys probe the server
for --seconds; printed: the share of probes answered (availability) and their p50/p99
latency (a failed probe counts as slower than any answered one), with how many hostile
connections were open on average and how often the server cut one off.

Hostile connections, in equal shares, each reconnecting as soon as the server closes it:
  head   sends part of a request's headers, then one more byte every --drip seconds
  body   sends whole headers announcing a 100 kB body, then one body byte per --drip
  idle   sends a valid request (GET ?wsdl), reads the answer, then stays silent
Probes: --probers threads, each opening a new connection for every GetKey (HTTP Basic,
as a device would), one probe per --interval seconds at most, each with --timeout.

Loopback only; every server, attacker process and connection started here ends before
exit; time and connection counts are bounded by the options.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import resource
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import alt_fronts
from _proc import LOOPBACK, BenchSetupError, bounded, free_port, serving
from _soap import SoapRequest
from kms_side import (
    CLIENT_NAME,
    CLIENT_PASSWORD,
    WORKERS,
    WSMAN_PATH,
    _cli,
    create_key,
    find_cli,
    getkey_request,
    serve_argv,
)

KINDS = ("head", "body", "idle")
MAX_HOSTILE = 2000
RECONNECT_PAUSE_S = 0.05  # after a hostile connection is cut, before it reconnects
READY_TIMEOUT_S = 60.0
FRONTS = {
    "baseline": "previous front (baseline)",
    "kms": "kms-ws serve",
    "granian": "granian (bench/alt_fronts)",
    "gevent": "gunicorn gevent (alt_fronts)",
}


# --------------------------------------------------------------------------
# Hostile connections (one asyncio process)
# --------------------------------------------------------------------------

def _request_head(port: int, extra: str = "") -> bytes:
    return (f"POST {WSMAN_PATH} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
            f"Content-Type: application/soap+xml;charset=UTF-8\r\n{extra}").encode()


async def _hostile(kind: str, port: int, drip: float, stop: asyncio.Event,
                   stats: dict[str, int]) -> None:
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            stats["open"] += 1
            try:
                await _misbehave(kind, port, drip, stop, reader, writer)
            finally:
                stats["open"] -= 1
            if not stop.is_set():
                stats["cut"] += 1
        except OSError:
            stats["refused"] += 1
        finally:
            if writer is not None:
                writer.close()
        await asyncio.sleep(RECONNECT_PAUSE_S)


async def _misbehave(kind: str, port: int, drip: float, stop: asyncio.Event,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Returns when the server closes the connection (or the run stops)."""
    if kind == "head":
        writer.write(_request_head(port) + b"X-Slow: ")
    elif kind == "body":
        writer.write(_request_head(port, "Content-Length: 100000\r\n\r\n") + b"<s:Envelope")
    else:
        writer.write(f"GET {WSMAN_PATH}?wsdl HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n\r\n"
                     .encode())
    await writer.drain()
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(reader.read(65536), drip)
        except TimeoutError:
            if kind != "idle":
                writer.write(b"x")
                await writer.drain()
            continue
        if not data:
            return


async def _attack(count: int, kinds: Sequence[str], port: int, drip: float, stop_flag: Any,
                  shared: Any) -> None:
    stop = asyncio.Event()
    stats = {"open": 0, "cut": 0, "refused": 0}
    tasks = [asyncio.create_task(_hostile(kinds[i % len(kinds)], port, drip, stop, stats))
             for i in range(count)]
    while not stop_flag.is_set():
        shared["open"].value, shared["cut"].value = stats["open"], stats["cut"]
        shared["refused"].value = stats["refused"]
        await asyncio.sleep(0.05)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def attacker(count: int, kinds: Sequence[str], port: int, drip: float, stop_flag: Any,
             shared: Any) -> None:
    """The hostile connections' process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    asyncio.run(_attack(count, kinds, port, drip, stop_flag, shared))


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise BenchSetupError(f"{needed} file descriptors needed, the hard limit is {hard} "
                              "(raise it: ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# --------------------------------------------------------------------------
# Probes (threads of this process)
# --------------------------------------------------------------------------

@dataclass
class Probes:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def attempts(self) -> int:
        return len(self.latencies_ms) + self.failures

    @property
    def availability(self) -> float:
        return len(self.latencies_ms) / self.attempts if self.attempts else float("nan")

    def percentile_ms(self, pct: float) -> float:
        """Nearest rank over every probe; a failed probe ranks above any answered one."""
        if not self.attempts:
            return float("nan")
        rank = min(self.attempts, max(1, math.ceil(pct / 100.0 * self.attempts)))
        ordered = sorted(self.latencies_ms)
        return ordered[rank - 1] if rank <= len(ordered) else math.inf


def probe_once(spec: SoapRequest, timeout: float) -> str | None:
    """One GetKey on a new connection; None when answered, else what went wrong."""
    body = spec.render()
    head = (f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in spec.headers().items())
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((spec.host, spec.port), timeout=timeout) as sock:
            sock.sendall(head + body)
            answer = b""
            while True:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not answer.startswith(b"HTTP/1.1 200 ") or spec.expect not in answer:
        return f"answer {answer[:80]!r}"
    return None


def run_probes(spec: SoapRequest, probers: int, interval: float, seconds: float,
               timeout: float) -> Probes:
    probes = Probes()
    end = time.monotonic() + seconds

    def prober(offset: float) -> None:
        next_at = time.monotonic() + offset
        while True:
            now = time.monotonic()
            if next_at > now:
                time.sleep(next_at - now)
            if time.monotonic() >= end:
                return
            started = time.perf_counter()
            error = probe_once(spec, timeout)
            elapsed = (time.perf_counter() - started) * 1000.0
            with probes.lock:
                if error is None:
                    probes.latencies_ms.append(elapsed)
                else:
                    probes.failures += 1
                    if len(probes.samples) < 3:
                        probes.samples.append(error[:160])
            next_at = max(next_at + interval, time.monotonic())

    threads = [threading.Thread(target=prober, args=(i * interval / probers,), daemon=True)
               for i in range(probers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + timeout + 5)
    return probes


# --------------------------------------------------------------------------
# Cells and fronts
# --------------------------------------------------------------------------

@dataclass
class Cell:
    front: str
    hostile: int
    probes: Probes
    open_avg: float
    cut: int


def measure_cell(front: str, spec: SoapRequest, count: int,
                 args: argparse.Namespace) -> Cell:
    ctx = mp.get_context("spawn")
    stop_flag = ctx.Event()
    shared = {k: ctx.Value("i", 0) for k in ("open", "cut", "refused")}
    proc = None
    if count:
        proc = ctx.Process(target=attacker, args=(count, args.kinds, spec.port, args.drip,
                                                  stop_flag, shared), daemon=True)
        proc.start()
    try:
        ramp_end = time.monotonic() + args.ramp
        while time.monotonic() < ramp_end:
            time.sleep(0.1)
            if proc is not None and not proc.is_alive():
                raise BenchSetupError("the attacker process ended early")
        samples: list[int] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.25):
                samples.append(shared["open"].value)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cut_before = shared["cut"].value
        probes = run_probes(spec, args.probers, args.interval, args.seconds, args.timeout)
        sampling.set()
        sampler.join(5)
        cut = shared["cut"].value - cut_before
    finally:
        stop_flag.set()
        if proc is not None:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    open_avg = sum(samples) / len(samples) if samples else 0.0
    return Cell(front, count, probes, open_avg, cut)


def bench_front(front: str, cli: list[str], data_dir: Path, workdir: Path,
                key_id: str | None, args: argparse.Namespace) -> tuple[list[Cell], str]:
    port = free_port()
    if front in ("baseline", "kms"):
        argv, env = serve_argv(cli, data_dir, port, front), None
    else:
        argv, env = alt_fronts.argv(front, data_dir, port, WORKERS)
    with serving(FRONTS[front], argv, workdir / f"{front}.log",
                 f"http://{LOOPBACK}:{port}{WSMAN_PATH}?wsdl", cwd=workdir,
                 timeout=READY_TIMEOUT_S, env=env) as server:
        key_id = key_id or create_key(port)
        spec = getkey_request(port, key_id)
        if probe_once(spec, args.timeout) is not None:
            raise BenchSetupError(f"{FRONTS[front]}: GetKey does not answer")
        cells = []
        for count in args.counts:
            print(f"  {FRONTS[front]}: {count} hostile connections ...", file=sys.stderr,
                  flush=True)
            cells.append(measure_cell(front, spec, count, args))
            server.ensure_alive()
    return cells, key_id


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _ms(value: float, timeout: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f">{1000 * timeout:.0f}" if math.isinf(value) else f"{value:.1f}"


def render(cells: Sequence[Cell], targets: tuple[float, float], timeout: float) -> str:
    head = (f"{'front':28} {'hostile':>7} | {'probes':>6} {'avail %':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} | {'open avg':>8} {'cut off':>7}")
    lines = [head, "-" * len(head)]
    for c in cells:
        p = c.probes
        lines.append(f"{FRONTS[c.front]:28} {c.hostile:>7} | {p.attempts:>6} "
                     f"{100 * p.availability:>8.2f} {_ms(p.percentile_ms(50), timeout):>8} "
                     f"{_ms(p.percentile_ms(99), timeout):>8} | {c.open_avg:>8.0f} {c.cut:>7}")
    lines.append("")
    avail, p99 = targets
    for c in cells:
        if c.front != "kms" or c.hostile != max(x.hostile for x in cells):
            continue
        ok = c.probes.availability >= avail and c.probes.percentile_ms(99) < p99
        lines.append(f"target at {c.hostile} hostile: availability >= {100 * avail:.0f} % "
                     f"and p99 < {p99:.0f} ms: {'PASS' if ok else 'MISS'}")
        base = next((b for b in cells if b.front == "baseline" and b.hostile == c.hostile),
                    None)
        if base is not None and base.probes.attempts and c.probes.attempts:
            lines.append(f"availability vs the baseline at {c.hostile}: "
                         f"{100 * c.probes.availability:.2f} % vs "
                         f"{100 * base.probes.availability:.2f} %")
    for c in cells:
        if c.probes.samples:
            lines.append(f"{FRONTS[c.front]} at {c.hostile}: failed probes, e.g. "
                         + "; ".join(c.probes.samples))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not counts or min(counts) < 0 or max(counts) > MAX_HOSTILE:
        raise argparse.ArgumentTypeError(f"counts between 0 and {MAX_HOSTILE}")
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", type=_counts, default=[0, 50, 500],
                   help="hostile connection counts (default 0,50,500)")
    p.add_argument("--fronts", default="baseline,kms",
                   help="comma-separated subset of baseline,kms,granian,gevent (default "
                        "baseline,kms; granian and gevent: bench/alt_fronts.py)")
    p.add_argument("--seconds", type=bounded(1, 300), default=10.0,
                   help="probing seconds per cell (default 10)")
    p.add_argument("--ramp", type=bounded(0, 60), default=3.0,
                   help="seconds the hostile connections get before probing (default 3)")
    p.add_argument("--kinds", default=",".join(KINDS),
                   help=f"hostile kinds, shared equally (default {','.join(KINDS)})")
    p.add_argument("--drip", type=bounded(0.1, 30), default=1.0,
                   help="seconds between a hostile connection's bytes (default 1)")
    p.add_argument("--probers", type=int, choices=range(1, 17), default=4,
                   metavar="1..16", help="probe threads (default 4)")
    p.add_argument("--interval", type=bounded(0.01, 10), default=0.1,
                   help="seconds between a probe thread's GetKeys (default 0.1)")
    p.add_argument("--timeout", type=bounded(0.5, 60), default=5.0,
                   help="seconds a probe waits for its answer (default 5)")
    args = p.parse_args(argv)
    fronts = [f.strip() for f in args.fronts.split(",") if f.strip()]
    if not fronts or not set(fronts) <= FRONTS.keys():
        p.error(f"--fronts takes a subset of {','.join(FRONTS)}")
    args.fronts = fronts
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or not set(kinds) <= set(KINDS):
        p.error(f"--kinds takes a subset of {','.join(KINDS)}")
    args.kinds = kinds
    return args


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    raise_fd_limit(max(args.counts) + 64 * args.probers + 256)
    load = os.getloadavg()
    print(f"slowloris: {WORKERS} workers, hostile kinds {','.join(args.kinds)}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs", flush=True)
    cells: list[Cell] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kms-slowloris-") as tmp:
            workdir = Path(tmp)
            cli = find_cli()
            data_dir = workdir / "data"
            _cli(cli, ["init", "--data-dir", str(data_dir)], workdir)
            _cli(cli, ["client", "add", CLIENT_NAME, "--password-stdin", "--data-dir",
                       str(data_dir)], workdir, stdin=CLIENT_PASSWORD)
            key_id = None
            for front in args.fronts:
                print(f"{FRONTS[front]}:", file=sys.stderr, flush=True)
                got, key_id = bench_front(front, cli, data_dir, workdir, key_id, args)
                cells += got
    except BenchSetupError as exc:
        print(f"slowloris: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("slowloris: interrupted", file=sys.stderr)
        return 130
    print(render(cells, (0.99, 100.0), args.timeout))
    end = os.getloadavg()
    print(f"load average at the end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
