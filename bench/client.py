#!/usr/bin/env python3
"""Benchmark the client side of a key fetch: KmsClient.get_key on its fast path and on
its zeep path, against PyKMIP's ProxyKmipClient.get, in one run.

Rows, each at every client count (closed loop, one process per client, default 1 and 4):
  KmsClient fast   KmsClient(...).get_key(key_id): prebuilt envelope, http.client
                   keep-alive, lxml; the signed response verified against the pinned
                   server certificate
  KmsClient zeep   the same call with fast_path=False: zeep and requests, verified alike
  PyKMIP Get       PyKMIP 0.11's ProxyKmipClient.get(uid) against PyKMIP's server (TLS 1.2,
                   client certificates), as bench/getkey.py runs it; Python 3.11 only
Each cell prints req/s, p50 latency and the client CPU per call: the process CPU time of
the client processes in the measured window over the calls they completed. The fast
path's CPU per call at 1 client is compared with its target (<= 0.5 ms): PASS or MISS.
Loopback only; every server started here is stopped before exit.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _load import CellResult, run_cell
from _proc import BenchSetupError, bounded
from getkey import REFERENCE_PYTHON, _client_counts, bench_pykmip
from kms_side import CLIENT_NAME, CLIENT_PASSWORD, kms_server

from kms_ws.client import KmsClient
from kms_ws.security.certificates import SERVER_CERT_FILE

TARGET_CPU_MS = 0.5
KEY_BYTES = 32
ROW_FAST, ROW_ZEEP, ROW_PYKMIP = "KmsClient fast", "KmsClient zeep", "PyKMIP Get"
ROW_KEYS = {"fast": ROW_FAST, "zeep": ROW_ZEEP, "pykmip": ROW_PYKMIP}


@dataclass(frozen=True)
class GetKeyFactory:
    """Picklable: what a load process needs to make its KmsClient."""

    url: str
    server_cert: str
    key_id: str
    fast_path: bool

    def __call__(self) -> GetKeyClient:
        return GetKeyClient(self)


class GetKeyClient:
    def __init__(self, f: GetKeyFactory) -> None:
        self._key_id = f.key_id
        self._client = KmsClient(f.url, CLIENT_NAME, CLIENT_PASSWORD,
                                 server_cert=f.server_cert, fast_path=f.fast_path)

    def request(self) -> str | None:
        key = self._client.get_key(self._key_id)
        if key.value is None or len(key.value) != KEY_BYTES:
            return f"unexpected key: {key!r}"
        return None

    def close(self) -> None:
        self._client.close()


@dataclass
class Row:
    label: str
    cells: dict[int, CellResult] = field(default_factory=dict)
    problem: str | None = None
    note: str | None = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=bounded(0.2, 600), default=5.0,
                        help="measured seconds per cell (default 5)")
    parser.add_argument("--warmup", type=bounded(0, 120), default=1.0,
                        help="unmeasured seconds per cell before measuring (default 1)")
    parser.add_argument("--clients", type=_client_counts, default=[1, 4],
                        help="comma-separated client process counts (default 1,4)")
    parser.add_argument("--rows", default="fast,zeep,pykmip",
                        help="comma-separated subset of fast,zeep,pykmip (default all)")
    parser.add_argument("--pykmip-python", choices=("auto", "current", "venv"), default="auto",
                        help="interpreter for PyKMIP, as in bench/getkey.py (default auto)")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if not rows or not set(rows) <= ROW_KEYS.keys():
        parser.error(f"--rows takes a subset of {','.join(ROW_KEYS)}")
    args.rows = rows
    return args


def measure(label: str, factory: GetKeyFactory, args: argparse.Namespace,
            group: int) -> Row:
    row = Row(label)
    for n in args.clients:
        print(f"  {label}: {n} client(s) ...", file=sys.stderr, flush=True)
        row.cells[n] = run_cell(factory, n, args.duration, args.warmup, group)
    return row


def bench_kms(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Both KmsClient rows against one `kms-ws serve` (2 workers, HTTP Basic over loopback)."""
    with kms_server(workdir) as (spec, _, group):
        url = f"http://{spec.host}:{spec.port}{spec.path}"
        cert = str(workdir / "data" / SERVER_CERT_FILE)
        with KmsClient(url, CLIENT_NAME, CLIENT_PASSWORD, server_cert=cert) as c:
            key_id = c.create_key(friendly_name="client-bench").key_id
        return [measure(ROW_KEYS[r], GetKeyFactory(url, cert, key_id, r == "fast"), args, group)
                for r in args.rows if r in ("fast", "zeep")]


def run_pykmip(args: argparse.Namespace, workdir: Path) -> Row:
    if sys.version_info[:2] > REFERENCE_PYTHON:
        return Row(ROW_PYKMIP, problem=f"PyKMIP 0.11 runs on Python 3.11 only, this is "
                   f"{sys.version_info.major}.{sys.version_info.minor}: row skipped")
    print(f"{ROW_PYKMIP}:", file=sys.stderr, flush=True)
    try:
        got = bench_pykmip(args, workdir)
    except (BenchSetupError, RuntimeError, OSError) as exc:
        return Row(ROW_PYKMIP, problem=str(exc).splitlines()[0] if str(exc) else repr(exc))
    return Row(ROW_PYKMIP, got.cells, got.problem, got.note)


def _fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def client_cpu_ms(cell: CellResult) -> float:
    return cell.client_cpu_s / cell.ok * 1000.0 if cell.ok else float("nan")


CELL = " | {:>8} {:>8} {:>12}"


def render(rows: Sequence[Row], clients: Sequence[int]) -> str:
    head1 = f"{'':16}" + "".join(f" | {'clients=' + str(n):^30}" for n in clients)
    head2 = f"{'row':16}" + CELL.format("req/s", "p50 ms", "client CPU") * len(clients)
    lines = [head1, head2, "-" * len(head2)]
    for row in rows:
        line = f"{row.label:16}"
        for n in clients:
            cell = row.cells.get(n)
            line += CELL.format("n/a", "n/a", "n/a") if cell is None else CELL.format(
                _fmt(cell.rps, 0), _fmt(cell.percentile_ms(50), 2),
                _fmt(client_cpu_ms(cell), 3) + " ms")
        lines.append(line)
    return "\n".join(lines)


def verdicts(rows: Sequence[Row], clients: Sequence[int]) -> list[str]:
    cells = {row.label: row.cells for row in rows}
    lines = []
    fast = cells.get(ROW_FAST, {})
    if fast:
        n = min(fast)
        cpu = client_cpu_ms(fast[n])
        verdict = "PASS" if cpu <= TARGET_CPU_MS else "MISS"
        lines.append(f"KmsClient fast GetKey client CPU per call at {n} client(s): "
                     f"{_fmt(cpu, 3)} ms (target <= {TARGET_CPU_MS} ms)  {verdict}")
    for other in (ROW_ZEEP, ROW_PYKMIP):
        for n in clients:
            a, b = fast.get(n), cells.get(other, {}).get(n)
            if a is not None and b is not None and a.ok and b.ok:
                lines.append(f"fast / {other} at {n} client(s): {a.rps / b.rps:.2f}x req/s, "
                             f"{client_cpu_ms(a) / client_cpu_ms(b):.2f}x the client CPU "
                             "per call")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="kms-ws-client-bench-") as tmp:
        root = Path(tmp)
        if {"fast", "zeep"} & set(args.rows):
            print("KmsClient:", file=sys.stderr, flush=True)
            (root / "kms").mkdir()
            try:
                rows += bench_kms(args, root / "kms")
            except (BenchSetupError, RuntimeError, OSError) as exc:
                rows += [Row(ROW_KEYS[r], problem=str(exc).splitlines()[0])
                         for r in args.rows if r != "pykmip"]
        if "pykmip" in args.rows:
            (root / "pykmip").mkdir()
            rows.append(run_pykmip(args, root / "pykmip"))
    print()
    print(f"Client benchmark (GetKey of one 32-byte key): {args.duration:g}s per cell after "
          f"{args.warmup:g}s warm-up, one process per client, {os.cpu_count()} CPUs, "
          f"1-min load average before start {load_before:.2f}")
    print()
    print(render(rows, args.clients))
    print()
    for line in verdicts(rows, args.clients):
        print(line)
    print("client CPU: process CPU time of the client processes in the measured window / "
          "calls completed (the server's CPU is not in it)")
    errors = False
    for row in rows:
        if row.note:
            print(row.note)
        if row.problem:
            print(f"{row.label} not measured: {row.problem}")
        for n, cell in sorted(row.cells.items()):
            if cell.errors:
                errors = True
                print(f"FAIL: {row.label} clients={n}: {cell.errors} errors of {cell.total}: "
                      f"{cell.error_samples[:1]}")
    print(f"(total {time.monotonic() - started:.0f}s)")
    skipped_ok = all(r.problem is None or "Python 3.11 only" in r.problem for r in rows)
    return 0 if skipped_ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
