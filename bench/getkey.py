#!/usr/bin/env python3
"""Benchmark kms-ws GetKey against its stack's ceiling and against PyKMIP.

Rows, each measured at every client count (closed loop, one process per client):
  kms-ws GetKey  kms-ws served by `kms-ws serve` (gunicorn, 2 single-threaded workers)
  spyne echo     a trivial spyne SOAP 1.2 service served the same way, with
                 requests and responses sized like GetKey's: the ceiling
  PyKMIP Get     PyKMIP's server over TLS 1.2, ProxyKmipClient.get()
  signed GetKey  with --signed: the same kms-ws server, each request signed (WS-Security,
                 ECDSA P-256) by a client registered with a certificate, each signed
                 response verified by the client, as KmsClient does
  GetKey old front  with --baseline-front: GetKey again, the same application behind
                 the HTTP front kms-ws had before its buffering worker
                 (bench/baseline_front.py), measured right after the kms-ws row
Prints one table plus GetKey/echo and GetKey/PyKMIP throughput ratios (and with --signed,
signed/unsigned and signed/PyKMIP).
Loopback only; every server started here is stopped before exit.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from _load import CellResult, ClientFactory, run_cell
from _proc import LOOPBACK, BenchSetupError, bounded, free_port, run_bounded, serving
from _signed import SignedSoapClientFactory
from _soap import MESSAGE_ID_PLACEHOLDER, SoapClientFactory, SoapRequest, basic_auth, post_once
from kms_side import CLIENT_NAME, CLIENT_PASSWORD, envelope, kms_server
from pykmip_side import ensure_venv, make_pki, pykmip_server, run_pykmip_load

HERE = Path(__file__).resolve().parent
ECHO_WORKERS = 2
DEFAULT_RESPONSE_BYTES = 1536  # GetKey's response size when kms-ws can't be asked
TYPICAL_PORT = 40000  # a free port has 5 digits; only its length matters here
TARGET_VS_ECHO = 0.60
TARGET_VS_PYKMIP = 4.0
TARGET_SIGNED_VS_PYKMIP = 2.0
TARGET_VS_OLD_FRONT = 1.0  # the buffering front must not be slower than the one it replaced
RATIO_CLIENTS = 8
MAX_ERROR_RATE = 0.01
ROW_KMS, ROW_ECHO, ROW_PYKMIP = "kms-ws GetKey", "spyne echo", "PyKMIP Get"
ROW_SIGNED = "signed GetKey"
ROW_BASELINE = "GetKey old front"
ROW_KEYS = {"kms": ROW_KMS, "echo": ROW_ECHO, "pykmip": ROW_PYKMIP}
# The references run on Python 3.11 only (setup.cfg's bench extra installs them there alone):
# spyne 2.14 does not import on 3.12+, and PyKMIP 0.11 calls ssl.wrap_socket, removed in 3.12.
REFERENCE_PYTHON = (3, 11)
REFERENCE_PACKAGES = {ROW_ECHO: ("spyne", "spyne 2.14"), ROW_PYKMIP: ("kmip", "PyKMIP 0.11")}


@dataclass
class Sizes:
    """Bytes on the wire of one request body and its response body."""

    request: int
    response: int


@dataclass
class Row:
    label: str
    cells: dict[int, CellResult] = field(default_factory=dict)
    sizes: Sizes | None = None
    problem: str | None = None
    note: str | None = None


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def count_list(what: str, high: int) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated counts of `what`, each from 1 to `high`, sorted
    and without repeats."""
    def parse(text: str) -> list[int]:
        try:
            counts = sorted({int(part) for part in text.split(",") if part.strip()})
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
        if not counts or counts[0] < 1 or counts[-1] > high:
            raise argparse.ArgumentTypeError(f"{what} counts are between 1 and {high:,}")
        return counts
    return parse


_client_counts = count_list("client", 64)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=bounded(0.5, 600), default=5.0,
                        help="measured seconds per cell (default 5)")
    parser.add_argument("--warmup", type=bounded(0, 120), default=1.0,
                        help="unmeasured seconds per cell before measuring (default 1)")
    parser.add_argument("--clients", type=_client_counts, default=[1, RATIO_CLIENTS],
                        help="comma-separated concurrent client counts (default 1,8)")
    parser.add_argument("--signed", action="store_true",
                        help="also measure signed GetKey (signed request, signed "
                             "response verified) on the same server")
    parser.add_argument("--baseline-front", action="store_true",
                        help="also measure GetKey behind the previous HTTP front "
                             "(bench/baseline_front.py), after the kms-ws row")
    parser.add_argument("--rows", default="kms,echo,pykmip",
                        help="comma-separated subset of kms,echo,pykmip (default all)")
    parser.add_argument("--pykmip-python", choices=("auto", "current", "venv"), default="auto",
                        help="interpreter for PyKMIP: this one, bench/.venv-pykmip, or "
                             "this one falling back to the venv (default auto)")
    args = parser.parse_args(argv)
    rows = {r.strip() for r in args.rows.split(",") if r.strip()}
    if not rows or not rows <= ROW_KEYS.keys():
        parser.error(f"--rows takes a subset of {','.join(ROW_KEYS)}")
    args.rows = rows
    return args


# --------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------

def measure(factory: ClientFactory, args: argparse.Namespace, label: str,
            server_group: int) -> dict[int, CellResult]:
    cells: dict[int, CellResult] = {}
    for clients in args.clients:
        print(f"  {label}: {clients} client(s) ...", file=sys.stderr, flush=True)
        cells[clients] = run_cell(factory, clients, args.duration, args.warmup, server_group)
    return cells


def probe(spec: SoapRequest, what: str) -> Sizes:
    """One request that must succeed; returns its wire sizes."""
    status, payload = post_once(spec)
    if status != 200 or spec.expect not in payload:
        raise BenchSetupError(f"{what} probe: HTTP {status}: {payload[:500]!r}")
    return Sizes(len(spec.render()), len(payload))


def bench_baseline_front(args: argparse.Namespace, workdir: Path) -> Row:
    """GetKey behind the previous HTTP front: set up the same way, measured the same way."""
    with kms_server(workdir, front="baseline") as (spec, _, group):
        sizes = probe(spec, "GetKey (old front)")
        return Row(ROW_BASELINE, measure(SoapClientFactory(spec), args, ROW_BASELINE, group),
                   sizes)


def bench_kms(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """GetKey, and with --signed signed GetKey, against one server."""
    with kms_server(workdir, signed=args.signed) as (spec, signer, group):
        sizes = probe(spec, "GetKey")
        rows = [Row(ROW_KMS, measure(SoapClientFactory(spec), args, ROW_KMS, group), sizes)]
        if signer is not None:
            factory = SignedSoapClientFactory(spec, signer.key_pem, signer.cert_pem,
                                              signer.server_cert_pem)
            probe_client = factory()
            request_bytes = len(probe_client.render())
            error = probe_client.request()
            probe_client.close()
            if error is not None:
                raise BenchSetupError(f"signed GetKey probe: {error}")
            rows.append(Row(ROW_SIGNED, measure(factory, args, ROW_SIGNED, group),
                            Sizes(request_bytes, sizes.response)))
        return rows


def estimated_getkey_sizes() -> Sizes:
    """GetKey sizes to imitate when kms-ws itself is not measured."""
    body = f"<kms:GetKey><kms:KeyId>{'0' * 36}</kms:KeyId></kms:GetKey>"
    request = envelope(TYPICAL_PORT, "GetKey", body).replace(MESSAGE_ID_PLACEHOLDER,
                                                             f"uuid:{'0' * 36}")
    return Sizes(len(request), DEFAULT_RESPONSE_BYTES)


def _echo_spec(port: int, payload: str, response_size: int) -> SoapRequest:
    from echo_app import NAMESPACE as ECHO_NS  # noqa: PLC0415 - spyne: only the parent needs it

    body = (f'<e:Echo xmlns:e="{ECHO_NS}"><e:Payload>{payload}</e:Payload>'
            f"<e:ResponseSize>{response_size}</e:ResponseSize></e:Echo>")
    # Same envelope, headers and Basic auth as GetKey; spyne ignores the WS-A headers.
    return SoapRequest(host=LOOPBACK, port=port, path="/wsman",
                       body=envelope(port, "Echo", body), expect=b"EchoResponse",
                       authorization=basic_auth(CLIENT_NAME, CLIENT_PASSWORD))


def calibrated_echo(port: int, sizes: Sizes) -> SoapRequest:
    """An echo request/response pair of (about) the GetKey sizes."""
    bare = _echo_spec(port, "", 0)
    payload = "k" * max(sizes.request - len(bare.render()), 1)
    status, body = post_once(_echo_spec(port, payload, 0))
    if status != 200:
        raise BenchSetupError(f"echo probe: HTTP {status}: {body[:500]!r}")
    overhead = len(body) - len(payload)
    return _echo_spec(port, payload, max(sizes.response - overhead, len(payload)))


def reference_unavailable(row: str, python: tuple[int, int],
                          installed: Callable[[str], bool]) -> str | None:
    """Why a reference row cannot run under this interpreter (None: it can), in words
    that say what to do."""
    module, name = REFERENCE_PACKAGES[row]
    version = ".".join(map(str, python))
    if python > REFERENCE_PYTHON:
        return (f"{name} does not run on Python {version} (3.11 only): run this benchmark "
                f"with Python 3.11 after `pip install -e '.[bench]'`, or leave the row out "
                f"(--rows)")
    if not installed(module):
        return f"{name} is not installed: `pip install -e '.[bench]'`"
    return None


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _require_reference(row: str) -> None:
    why = reference_unavailable(row, (sys.version_info.major, sys.version_info.minor),
                                _installed)
    if why is not None:
        raise BenchSetupError(why)


def bench_echo(args: argparse.Namespace, workdir: Path, sizes: Sizes) -> Row:
    _require_reference(ROW_ECHO)
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--worker-class",
            "kms_ws.http_worker.BufferingWorker",
            "--workers", str(ECHO_WORKERS), "--bind", f"{LOOPBACK}:{port}",
            "--pythonpath", str(HERE), "echo_app:application"]
    with serving("the spyne echo", argv, workdir / "echo.log",
                 f"http://{LOOPBACK}:{port}/wsman?wsdl", cwd=workdir) as server:
        spec = calibrated_echo(port, sizes)
        echo_sizes = probe(spec, "echo")
        return Row(ROW_ECHO, measure(SoapClientFactory(spec), args, ROW_ECHO, server.group),
                   echo_sizes)


def _sqlalchemy_version(python: str) -> str:
    try:
        out = run_bounded([python, "-c", "import sqlalchemy; print(sqlalchemy.__version__)"],
                          60.0, "SQLAlchemy version")
    except BenchSetupError:
        return "?"
    return out.strip() or "?"


def _pykmip_row(args: argparse.Namespace, workdir: Path, python: str) -> Row:
    pki = make_pki(workdir / "pki")
    port = free_port()
    print(f"  {ROW_PYKMIP}: starting server under {python}", file=sys.stderr, flush=True)
    with pykmip_server(python, pki, port, workdir / "server") as (uid, group):
        cells = run_pykmip_load(python, pki, port, uid, args.clients, args.duration,
                                args.warmup, workdir, group)
    note = f"PyKMIP ran under {python} (SQLAlchemy {_sqlalchemy_version(python)})"
    return Row(ROW_PYKMIP, cells, note=note)


def bench_pykmip(args: argparse.Namespace, workdir: Path) -> Row:
    if sys.version_info[:2] > REFERENCE_PYTHON:  # the fallback venv would be this Python too
        _require_reference(ROW_PYKMIP)
    if args.pykmip_python in ("auto", "current"):
        try:
            return _pykmip_row(args, workdir / "current", sys.executable)
        except BenchSetupError as exc:
            if args.pykmip_python == "current":
                raise
            print(f"  PyKMIP failed under {sys.executable}, retrying in "
                  f"bench/.venv-pykmip: {exc}", file=sys.stderr, flush=True)
    python = ensure_venv(workdir / "venv.log")
    return _pykmip_row(args, workdir / "venv", str(python))


def _summary(exc: BaseException) -> str:
    """One line for the table footer: the error's first and last lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def run_rows_of(label: str, action: Callable[[], list[Row]]) -> list[Row]:
    """run_row for an action measuring several rows on one server."""
    got: list[Row] = []

    def first() -> Row:
        got.extend(action())
        return got[0]
    row = run_row(label, first)
    return got if got else [row]


def run_row(label: str, action: Callable[[], Row]) -> Row:
    print(f"{label}:", file=sys.stderr, flush=True)
    try:
        return action()
    except (BenchSetupError, RuntimeError, OSError) as exc:
        print(f"  {label} not measured: {exc}", file=sys.stderr, flush=True)
        return Row(label, problem=_summary(exc))


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


CELL = " | {:>8} {:>8} {:>8} {:>8}"


def render_table(rows: Sequence[Row], clients: Sequence[int]) -> str:
    head1 = f"{'':16}" + "".join(f" | {'clients=' + str(n):^35}" for n in clients)
    head2 = f"{'row':16}" + CELL.format("req/s", "p50 ms", "p99 ms", "CPU ms") * len(clients)
    lines = [head1, head2, "-" * len(head2)]
    for row in rows:
        line = f"{row.label:16}"
        for n in clients:
            cell = row.cells.get(n)
            if cell is None:
                line += CELL.format("n/a", "n/a", "n/a", "n/a")
            else:
                line += CELL.format(_fmt(cell.rps, 0), _fmt(cell.percentile_ms(50), 2),
                                    _fmt(cell.percentile_ms(99), 2),
                                    _fmt(cell.cpu_ms_per_request, 2))
        lines.append(line)
    return "\n".join(lines)


def _cell(rows: Sequence[Row], label: str, clients: int) -> CellResult | None:
    for row in rows:
        if row.label == label and clients in row.cells and row.cells[clients].ok:
            return row.cells[clients]
    return None


def _ratios(ours: CellResult, theirs: CellResult) -> tuple[float, float]:
    """Throughput ratio, and the same by CPU per request (requests per CPU-second)."""
    return ours.rps / theirs.rps, theirs.cpu_ms_per_request / ours.cpu_ms_per_request


def render_ratios(rows: Sequence[Row], clients: int, signed: bool = False,
                  baseline: bool = False) -> str:
    lines = []
    pairs: list[tuple[str, str, str, float | None]] = [
        ("GetKey/echo", ROW_KMS, ROW_ECHO, TARGET_VS_ECHO),
        ("GetKey/PyKMIP", ROW_KMS, ROW_PYKMIP, TARGET_VS_PYKMIP)]
    if baseline:
        pairs.append(("GetKey/GetKey old front", ROW_KMS, ROW_BASELINE, TARGET_VS_OLD_FRONT))
    if signed:
        pairs += [("signed/unsigned GetKey", ROW_SIGNED, ROW_KMS, None),
                  ("signed GetKey/PyKMIP", ROW_SIGNED, ROW_PYKMIP, TARGET_SIGNED_VS_PYKMIP)]
    for short, mine, other, target in pairs:
        name = f"{short} at {clients} clients"
        ours, theirs = _cell(rows, mine, clients), _cell(rows, other, clients)
        goal = "(the cost of signatures)" if target is None else f"(target >= {target:.2f})"
        if ours is None or theirs is None:
            lines.append(f"{name:36} {'n/a':>6}  {goal}"
                         + ("" if target is None else "  MISS (not measured)"))
            continue
        ratio, by_cpu = _ratios(ours, theirs)
        verdict = "" if target is None else "  " + ("PASS" if ratio >= target else "MISS")
        lines.append(f"{name:36} {ratio:6.2f}  by CPU {_fmt(by_cpu, 2):>5}  {goal}{verdict}")
    return "\n".join(lines)


def error_report(rows: Sequence[Row]) -> tuple[list[str], bool]:
    """Lines describing failed requests; True if some cell exceeded the error budget."""
    lines, over = [], False
    for row in rows:
        for n, cell in sorted(row.cells.items()):
            if not cell.errors:
                continue
            bad = cell.error_rate > MAX_ERROR_RATE
            over = over or bad
            lines.append(f"{'FAIL' if bad else 'warn'}: {row.label} clients={n}: "
                         f"{cell.errors} errors of {cell.total} ({cell.error_rate:.2%})")
            lines.extend(f"    {sample}" for sample in cell.error_samples)
    return lines, over


def _sizes_line(rows: Sequence[Row]) -> str | None:
    parts = [f"{row.label} {row.sizes.request}/{row.sizes.response}"
             for row in rows if row.sizes is not None]
    return "request/response bytes: " + ", ".join(parts) if parts else None


def print_report(args: argparse.Namespace, rows: Sequence[Row], load_before: float) -> int:
    """Print the table, ratios, notes and errors; return the exit status."""
    ratio_clients = RATIO_CLIENTS if RATIO_CLIENTS in args.clients else max(args.clients)
    print()
    print(f"kms-ws GetKey benchmark: {args.duration:g}s per cell after {args.warmup:g}s "
          f"warm-up, one process per client, {LOOPBACK}, {os.cpu_count()} CPUs, "
          f"1-min load average before start {load_before:.2f}")
    print()
    print(render_table(rows, args.clients))
    print()
    print(render_ratios(rows, ratio_clients, args.signed, args.baseline_front))
    print("CPU ms: server and client CPU per request in the measured window; 'by CPU' is "
          "the ratio of requests per CPU-second, which load from other programs does not "
          "skew")
    sizes_line = _sizes_line(rows)
    notes = [sizes_line] if sizes_line else []
    notes += [row.note for row in rows if row.note]
    notes += [f"{row.label} not measured: {row.problem}" for row in rows if row.problem]
    errors, over_budget = error_report(rows)
    for line in [*notes, *errors]:
        print(line)
    if over_budget:
        print(f"FAIL: more than {MAX_ERROR_RATE:.0%} of requests failed in some cell; "
              "the figures above are not valid")
    return 1 if over_budget or any(row.problem for row in rows) else 0


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_rows(args: argparse.Namespace, root: Path) -> list[Row]:
    """Measure the selected rows one after another (one server up at a time)."""
    rows: list[Row] = []
    getkey_sizes: Sizes | None = None
    if "kms" in args.rows:
        rows.extend(run_rows_of(ROW_KMS, lambda: bench_kms(args, _mkdir(root / "kms"))))
        getkey_sizes = rows[0].sizes
        if args.baseline_front:
            rows.append(run_row(ROW_BASELINE, lambda: bench_baseline_front(
                args, _mkdir(root / "baseline"))))
    if "echo" in args.rows:
        target = getkey_sizes or estimated_getkey_sizes()
        rows.append(run_row(ROW_ECHO, lambda: bench_echo(args, _mkdir(root / "echo"), target)))
        if getkey_sizes is None:
            rows[-1].note = (f"echo sized like an estimated GetKey "
                             f"({target.request}/{target.response} bytes)")
    if "pykmip" in args.rows:
        rows.append(run_row(ROW_PYKMIP, lambda: bench_pykmip(args, _mkdir(root / "pykmip"))))
    return rows


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="kms-ws-bench-") as tmp:
            rows = run_rows(args, Path(tmp))
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files removed", file=sys.stderr)
        return 130
    status = print_report(args, rows, load_before)
    print(f"(total {time.monotonic() - started:.0f}s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
