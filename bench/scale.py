#!/usr/bin/env python3
"""Scale figures for an N-key store (benchmark, not a test), each beside its baseline
measured in the same run, in one table:

  start-up      `kms-ws serve` (2 workers) until GET /readyz answers 200, and the peak RSS
                of its process tree; baseline: the same on an empty store
  rotation      `kms-ws master-key rotate` of every value while the server serves: values
                re-sealed per second and the rotation's peak RSS; GetKey p99 (one client,
                closed loop) during the rotation; baseline: GetKey p99 on the idle server
  backup        `kms-ws backup` of the store while the server serves: seconds, MB/s, peak
                RSS; baselines: a plain file copy and SQLite's online backup of the same
                database file, each in its own process
  fan-out       one key change (CreateKey) raising §6.11 UpdatePending for every WS-Eventing
                subscription, each with its own NotifyTo path on a loopback receiver:
                seconds until every subscriber has acknowledged, server CPU per
                notification and the peak RSS of the server's tree; baseline: the same
                with --baseline-subscribers (100)

The store is filled straight through SQL (bench/bulk_load.py), each key with its own
value sealed under the store's master key; subscribers (one client each, with the Read
right) and their subscriptions through the store layer. The server is driven only through
its CLI and its SOAP endpoint. Loopback only; everything lives in a temporary directory,
and every process started here is stopped before exit.

    python bench/scale.py                      # N = 1,000,000, 1,000 and 10,000 subscribers
    python bench/scale.py --keys 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kms_ws, whatever is installed
CLI = [sys.executable, "-m", "kms_ws.cli"]

from _load import group_cpu_s  # noqa: E402
from _proc import LOOPBACK, BenchSetupError, ServerProcess, free_port, tail, wait_until  # noqa: E402
from _soap import SoapClient, SoapRequest, basic_auth, get_status, post_once  # noqa: E402
from bulk_load import load  # noqa: E402
from getkey import count_list  # noqa: E402
from kms_side import CLIENT_NAME, CLIENT_PASSWORD, envelope, getkey_request  # noqa: E402

from kms_ws.app import init_data_dir  # noqa: E402
from kms_ws.config import load as load_config  # noqa: E402
from kms_ws.crypto import sealing  # noqa: E402
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind  # noqa: E402
from kms_ws.domain.realms import Right  # noqa: E402
from kms_ws.domain.records import Subscription  # noqa: E402
from kms_ws.service.dispatch import utcnow  # noqa: E402
from kms_ws.service.ws_messages import DeliveryMode  # noqa: E402
from kms_ws.xmlns import KMS, SOAP, WSA, action  # noqa: E402

REALM = "realm://localhost/default"
WORKERS = 2
READY_TIMEOUT_S = 300.0
CLI_TIMEOUT_S = 3600.0
MAX_GETKEYS = 10_000_000  # bounds the GetKey loop; time ends it long before
SUBSCRIBERS_PER_TRANSACTION = 1000

ROW_START = "start-up until /readyz, s"
ROW_START_MEM = "start-up: server tree peak RSS, MB"
ROW_ROTATE = "rotation: values re-sealed per s"
ROW_ROTATE_P99 = "rotation: GetKey p99 during, ms"
ROW_BACKUP = "backup: kms-ws backup, s"
ROW_BACKUP_RATE = "backup: kms-ws backup, MB/s"
ROW_FAN = "fan-out to {n:,}: s until all notified"
ROW_FAN_CPU = "fan-out to {n:,}: server CPU ms/notification"
ROW_FAN_MEM = "fan-out to {n:,}: server tree peak RSS, MB"


@dataclass
class Figure:
    row: str
    value: float
    baseline: float | None
    baseline_what: str
    rss_mb: float | None = None  # the measured thing's peak RSS, when it is its own process
    base_rss_mb: float | None = None


# --------------------------------------------------------------------------
# Processes: the server's tree, one-shot commands
# --------------------------------------------------------------------------

def _group_pids(pgid: int) -> list[str]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(name)
        except (OSError, IndexError, ValueError):
            pass  # gone
    return pids


def tree_peak_rss_mb(pgid: int) -> float:
    """Sum of the peak RSS (VmHWM) of the live processes of group `pgid` (the server's
    arbiter, its workers and its deliverer)."""
    total = 0
    for pid in _group_pids(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1024


def _settled(pgid: int) -> bool:
    """The group used under 2 % of a core over 0.5 s: done starting (the deliverer builds
    its validators after the workers answer)."""
    before = group_cpu_s(pgid)
    time.sleep(0.5)
    return group_cpu_s(pgid) - before < 0.01


@dataclass(frozen=True)
class Ran:
    seconds: float
    cpu_s: float
    peak_rss_mb: float
    output: str


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak RSS (VmHWM) so far; None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    return None


def run_measured(argv: Sequence[str], timeout: float, what: str) -> Ran:
    """Run a command in its own process group; its wall time, CPU (wait4's rusage) and
    peak RSS: its VmHWM, read every 10 ms while it runs (wait4's ru_maxrss would not do:
    on Linux it starts from the forking parent's, this benchmark's, high-water mark). The
    group is killed on timeout or interruption."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        started, peak = time.perf_counter(), 0.0
        try:
            while True:
                peak = max(peak, peak_rss_mb(proc.pid) or 0.0)
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - started > timeout:
                    raise BenchSetupError(f"{what}: timed out after {timeout:.0f}s")
                time.sleep(0.01)
        except BaseException:
            _kill_group(proc.pid)
            raise
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BenchSetupError(f"{what} failed (exit {proc.returncode}): {output[-2000:]}")
    return Ran(seconds, usage.ru_utime + usage.ru_stime, peak, output)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)


def kms(*args: str, stdin: str = "") -> str:
    proc = subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=CLI_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise BenchSetupError(f"kms-ws {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


class Server:
    """`kms-ws serve` on a data directory, timed from launch until /readyz answers."""

    def __init__(self, data: Path, log: Path) -> None:
        self.port = free_port()
        self.process = ServerProcess(
            "kms-ws serve",
            [*CLI, "serve", "--data-dir", str(data), "--host", LOOPBACK, "--port",
             str(self.port), "--workers", str(WORKERS), "--allow-basic-over-http"],
            log, cwd=ROOT)
        self.ready_s = 0.0

    def __enter__(self) -> Server:
        started = time.perf_counter()
        self.process.__enter__()
        try:
            def ready() -> bool:
                self.process.ensure_alive()
                return get_status(LOOPBACK, self.port, "/readyz") == 200
            wait_until(ready, READY_TIMEOUT_S, "/readyz", interval=0.02)
            self.ready_s = time.perf_counter() - started
            wait_until(lambda: _settled(self.group), 120, "the server to finish starting")
        except BaseException:
            self.process.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    @property
    def group(self) -> int:
        return self.process.group

    def request(self, operation: str, body: str, expect: str) -> bytes:
        spec = SoapRequest(host=LOOPBACK, port=self.port, path="/wsman",
                           body=envelope(self.port, operation, body), expect=expect.encode(),
                           authorization=basic_auth(CLIENT_NAME, CLIENT_PASSWORD))
        status, payload = post_once(spec)
        if status != 200 or spec.expect not in payload:
            raise BenchSetupError(f"{operation}: HTTP {status}: {payload[:500]!r}")
        return payload

    def create_key(self) -> str:
        payload = self.request("CreateKey", "<kms:CreateKey><kms:FriendlyName>scale-"
                               f"{uuid.uuid4().hex[:12]}</kms:FriendlyName></kms:CreateKey>",
                               "CreateKeyResponse")
        found = re.search(rb"<kms:KeyId>([^<]+)</kms:KeyId>", payload)
        if found is None:
            raise BenchSetupError(f"CreateKey: no KeyId in {payload[:500]!r}")
        return found.group(1).decode()


# --------------------------------------------------------------------------
# The store: keys, subscribers
# --------------------------------------------------------------------------

def new_data_dir(path: Path) -> None:
    kms("init", "--data-dir", str(path))
    kms("client", "add", CLIENT_NAME, "--admin", "--password-stdin", "--data-dir", str(path),
        stdin=CLIENT_PASSWORD + "\n")


def fill(data: Path, n: int) -> None:
    """N keys, each a fresh 256-bit value sealed under the store's current master key."""
    db, keyring = init_data_dir(load_config(data))
    try:
        with db.unit_of_work() as uow:
            current = uow.sealed.current_master_key_id()
        aead = keyring.aead_for(current)
    finally:
        db.dispose()
    assert current is not None

    def seal(key_id: str) -> bytes:
        return sealing.seal_with(aead, sealing.key_aad(key_id, 1), os.urandom(32))

    load(data, n, REALM, seal=seal, master_key_id=current)


def add_subscribers(data: Path, first: int, last: int, receiver_port: int) -> None:
    """Subscribers first..last-1: a client each with the Read right in the keys' realm,
    subscribed to Keys updates with NotifyTo http://127.0.0.1:<receiver>/n/<i>."""
    db, _ = init_data_dir(load_config(data))
    try:
        for start in range(first, last, SUBSCRIBERS_PER_TRANSACTION):
            now = utcnow()
            with db.unit_of_work(write=True) as uow:
                for i in range(start, min(last, start + SUBSCRIBERS_PER_TRANSACTION)):
                    ep = Endpoint(str(uuid.uuid4()), EndpointKind.CLIENT, f"scale-sub-{i}",
                                  ClientState.ACTIVE, CredentialType.USERNAME_PASSWORD, 1,
                                  realms=(REALM,), grants={REALM: frozenset({Right.READ})})
                    uow.endpoints.insert_endpoint(ep, now)
                    uow.subscriptions.insert_subscription(Subscription(
                        f"uuid:{uuid.uuid4()}", ep.endpoint_id,
                        f"http://{LOOPBACK}:{receiver_port}/n/{i}",
                        DeliveryMode.PUSH_WITH_ACK.value, "Keys", None,
                        now + timedelta(days=1), LOOPBACK, None, (REALM,)), now)
    finally:
        db.dispose()


# --------------------------------------------------------------------------
# The subscribers' receiver: one process, one NotifyTo path per subscriber
# --------------------------------------------------------------------------

_TOKEN = re.compile(rb'Token Type="([A-Za-z]+)">(\d+)<')
_RESPONSE = (
    f"<?xml version='1.0' encoding='UTF-8'?>"
    f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}" xmlns:kms="{KMS}"><s:Header>'
    f"<wsa:Action>{action('UpdatePendingResponse')}</wsa:Action></s:Header><s:Body>"
    "<kms:UpdatePendingResponse><kms:UpdateVersioningTokens>"
    '<kms:Token Type="{type}">{token}</kms:Token>'
    "</kms:UpdateVersioningTokens></kms:UpdatePendingResponse></s:Body></s:Envelope>")


def _receiver(port: int) -> None:
    """Answer every UpdatePending with the token it carries (acknowledged); remember per
    path the highest token and when it arrived. GET /status?above=T: how many paths have
    a token above T, and when the last of them arrived (time.time())."""
    seen: dict[bytes, tuple[int, float]] = {}

    def answer(method: bytes, path: bytes, body: bytes) -> tuple[bytes, bytes]:
        if method == b"GET" and path.startswith(b"/status?above="):
            above = int(path.split(b"=", 1)[1])
            times = [at for token, at in seen.values() if token > above]
            return b"application/json", json.dumps(
                {"count": len(times), "last": max(times, default=0.0),
                 "max": max((token for token, _ in seen.values()), default=0)}).encode()
        found = _TOKEN.search(body)
        if method != b"POST" or found is None:
            return b"text/plain", b"?"
        token = int(found.group(2))
        if token > seen.get(path, (-1, 0.0))[0]:
            seen[path] = (token, time.time())
        return b"application/soap+xml;charset=UTF-8", _RESPONSE.format(
            type=found.group(1).decode(), token=token).encode()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path = lines[0].split(b" ")[:2]
                length = next((int(v) for k, _, v in (line.partition(b":") for line in lines)
                               if k.strip().lower() == b"content-length"), 0)
                body = await reader.readexactly(length) if length else b""
                ctype, payload = answer(method, path, body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype +
                             b"\r\nContent-Length: " + str(len(payload)).encode() +
                             b"\r\n\r\n" + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, LOOPBACK, port)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    asyncio.run(main())


def receiver_status(port: int, above: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/status?above={above}",
                                timeout=10) as r:
        return dict(json.loads(r.read()))


# --------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------

def getkey_latencies(spec: SoapRequest, until: Callable[[], bool]) -> list[float]:
    """One client, closed loop, until `until()`: the latency (ms) of each GetKey."""
    client, latencies = SoapClient(spec), []
    try:
        for _ in range(MAX_GETKEYS):
            if until():
                break
            started = time.perf_counter()
            error = client.request()
            if error is not None:
                raise BenchSetupError(f"GetKey: {error}")
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)] if ordered else float("nan")


def rotation(server: Server, data: Path, idle_s: float) -> list[Figure]:
    spec = getkey_request(server.port, server.create_key())
    deadline = time.monotonic() + idle_s
    idle = getkey_latencies(spec, lambda: time.monotonic() >= deadline)
    during: list[float] = []
    done = threading.Event()
    failure: list[BaseException] = []

    def load_while_rotating() -> None:
        try:
            during.extend(getkey_latencies(spec, done.is_set))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    loader = threading.Thread(target=load_while_rotating, daemon=True)
    loader.start()
    try:
        ran = run_measured([*CLI, "master-key", "rotate", "--data-dir", str(data)],
                           CLI_TIMEOUT_S, "kms-ws master-key rotate")
    finally:
        done.set()
        loader.join(60)
    if failure:
        raise failure[0]
    found = re.search(r"done: (\d+) value", ran.output)
    if found is None:
        raise BenchSetupError(f"master-key rotate: unexpected output {ran.output[-500:]!r}")
    values = int(found.group(1))
    print(f"  rotation: {values:,} values in {ran.seconds:.1f}s ({ran.cpu_s:.1f} CPU s); "
          f"GetKey: {len(idle):,} idle, {len(during):,} during", file=sys.stderr)
    return [Figure(ROW_ROTATE, values / ran.seconds, None, "", ran.peak_rss_mb),
            Figure(ROW_ROTATE_P99, p99(during), p99(idle), "GetKey p99 on the idle server")]


COPY = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])"
ONLINE = ("import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect("
          "sys.argv[2]); s.backup(d, pages=-1); d.close(); s.close()")


def backup(data: Path, work: Path) -> list[Figure]:
    db_file = data / "kms.db"
    with sqlite3.connect(db_file) as con:  # the same bytes for every copy: no WAL left
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    mb = db_file.stat().st_size / 1e6
    ran = {}
    for name, argv in (("copy", [sys.executable, "-c", COPY]),
                       ("online", [sys.executable, "-c", ONLINE]),
                       ("kms-ws", [*CLI, "backup", "--data-dir", str(data)])):
        out = work / f"backup-{name}"
        ran[name] = run_measured([*argv, *(
            [str(db_file), str(out)] if name != "kms-ws" else [str(out)])],
            CLI_TIMEOUT_S, f"backup ({name})")
        out.unlink()
    print(f"  backup of {mb:,.1f} MB: copy {ran['copy'].seconds:.2f}s, SQLite online "
          f"{ran['online'].seconds:.2f}s, kms-ws backup {ran['kms-ws'].seconds:.2f}s",
          file=sys.stderr)
    k, c, o = ran["kms-ws"], ran["copy"], ran["online"]
    return [Figure(ROW_BACKUP, k.seconds, o.seconds, "SQLite online backup, own process",
                   k.peak_rss_mb, o.peak_rss_mb),
            Figure(ROW_BACKUP, k.seconds, c.seconds, "plain file copy, own process",
                   k.peak_rss_mb, c.peak_rss_mb),
            Figure(ROW_BACKUP_RATE, mb / k.seconds, mb / o.seconds,
                   f"SQLite online backup ({mb:,.1f} MB database)")]


@dataclass(frozen=True)
class FanOut:
    seconds: float
    request_s: float
    cpu_ms_per_notification: float
    tree_rss_mb: float


def fan_out(server: Server, receiver_port: int, subscribers: int, timeout: float) -> FanOut:
    """One CreateKey; wait until every subscriber's path got its UpdatePending."""
    above = int(receiver_status(receiver_port, 0)["max"])
    cpu_before, started = group_cpu_s(server.group), time.time()
    server.create_key()
    request_s = time.time() - started
    status: dict[str, float] = {}

    def all_notified() -> bool:
        server.process.ensure_alive()
        status.update(receiver_status(receiver_port, above))
        return status["count"] >= subscribers

    wait_until(all_notified, timeout, f"{subscribers} subscribers to be notified", 0.05)
    cpu = group_cpu_s(server.group) - cpu_before
    return FanOut(status["last"] - started, request_s, cpu * 1000 / subscribers,
                  tree_peak_rss_mb(server.group))


def fan_outs(server: Server, data: Path, receiver_port: int, baseline: int,
             sizes: Sequence[int], timeout_per_1000: float) -> list[Figure]:
    add_subscribers(data, 0, baseline, receiver_port)
    fan_out(server, receiver_port, baseline, 120)  # warm-up: workers, deliverer, connection
    base = fan_out(server, receiver_port, baseline, 120)
    figures, have = [], baseline
    what = f"fan-out to {baseline:,}"
    for n in sizes:
        add_subscribers(data, have, n, receiver_port)
        have = n
        got = fan_out(server, receiver_port, n, 120 + timeout_per_1000 * n / 1000)
        print(f"  fan-out to {n:,}: {got.seconds:.1f}s (the CreateKey itself "
              f"{got.request_s:.2f}s; baseline {base.seconds:.2f}s, CreateKey "
              f"{base.request_s:.2f}s)", file=sys.stderr)
        figures += [Figure(ROW_FAN.format(n=n), got.seconds, base.seconds, what),
                    Figure(ROW_FAN_CPU.format(n=n), got.cpu_ms_per_notification,
                           base.cpu_ms_per_notification, what),
                    Figure(ROW_FAN_MEM.format(n=n), got.tree_rss_mb, base.tree_rss_mb,
                           what)]
    return figures


# --------------------------------------------------------------------------
# Command line, table
# --------------------------------------------------------------------------

def _positive(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}")
        return value
    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=_positive(1, 100_000_000), default=1_000_000,
                   help="keys in the store (default 1,000,000)")
    p.add_argument("--subscribers", type=count_list("subscriber", 100_000), default=[1_000, 10_000],
                   help="comma-separated subscriber counts for the fan-out (default "
                        "1000,10000)")
    p.add_argument("--baseline-subscribers", type=_positive(1, 100_000), default=100,
                   help="the fan-out's baseline subscriber count (default 100)")
    p.add_argument("--idle-seconds", type=float, default=10.0,
                   help="seconds of GetKey on the idle server, the p99 baseline (default 10)")
    p.add_argument("--fanout-timeout", type=float, default=60.0,
                   help="seconds allowed per 1,000 subscribers (beyond 120) before a "
                        "fan-out counts as failed (default 60)")
    args = p.parse_args(argv)
    if args.subscribers[0] <= args.baseline_subscribers:
        p.error("--subscribers must all exceed --baseline-subscribers")
    if not 0.5 <= args.idle_seconds <= 600:
        p.error("--idle-seconds is between 0.5 and 600")
    return args


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}" if abs(x) < 1 else f"{x:,.2f}"


def print_table(n: int, figures: list[Figure], load_before: str) -> None:
    print(f"kms-ws scale figures, N = {n:,} keys; {os.cpu_count()} cores, {WORKERS} workers; "
          f"load average {load_before} before, {load_average()} after")
    print(f"{'row':<46} {'value':>10} {'baseline':>10} {'ratio':>7} {'RSS MB':>8} "
          f"{'base RSS':>8}  baseline is")
    for f in figures:
        ratio = f"{f.value / f.baseline:.2f}x" if f.baseline else "-"
        print(f"{f.row:<46} {_num(f.value):>10} {_num(f.baseline):>10} {ratio:>7} "
              f"{_num(f.rss_mb):>8} {_num(f.base_rss_mb):>8}  {f.baseline_what or '-'}")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace, work: Path) -> list[Figure]:
    empty, data = work / "empty", work / "data"
    new_data_dir(empty)
    with Server(empty, work / "serve-empty.log") as server:
        empty_s, empty_mb = server.ready_s, tree_peak_rss_mb(server.group)
    shutil.rmtree(empty)
    new_data_dir(data)
    started = time.perf_counter()
    fill(data, args.keys)
    print(f"  {args.keys:,} keys loaded in {time.perf_counter() - started:.1f}s",
          file=sys.stderr)
    figures = []
    ctx = mp.get_context("spawn")
    receiver_port = free_port()
    receiver = ctx.Process(target=_receiver, args=(receiver_port,), daemon=True)
    receiver.start()
    try:
        wait_until(lambda: get_status(LOOPBACK, receiver_port, "/status?above=0") == 200,
                   60, "the subscribers' receiver")
        with Server(data, work / "serve.log") as server:
            try:
                figures += [
                    Figure(ROW_START, server.ready_s, empty_s, "an empty store"),
                    Figure(ROW_START_MEM, tree_peak_rss_mb(server.group), empty_mb,
                           "an empty store")]
                figures += rotation(server, data, args.idle_seconds)
                figures += backup(data, work)
                figures += fan_outs(server, data, receiver_port, args.baseline_subscribers,
                                    args.subscribers, args.fanout_timeout)
            except BenchSetupError as exc:
                raise BenchSetupError(f"{exc}\nserver log tail:\n{tail(work / 'serve.log')}"
                                      ) from None
    finally:
        receiver.terminate()
        receiver.join(10)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    load_before = load_average()
    try:
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="kms-bench-scale-")))
            figures = run(args, work)
    except BenchSetupError as exc:
        print(f"scale: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print_table(args.keys, figures, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
