"""GetUpdateList over WS-Enumeration at 1k, 100k and 1M keys (benchmark, not a test).

For each store size: a real server (`kms-ws serve`, 2 workers) over a bulk-loaded store
(bench/bulk_load.py; dummy sealed blobs, benchmark data only). Measures the time of a
Pull of 100 items at the start, middle and end of the change sequence (a GetUpdateList
token places the cursor), keys/s streamed by one client pulling 100 at a time and 1000
at a time (KmsClient.get_update_list's default page), and the peak RSS of the server's
processes. The 1k store is the baseline: Pull time at every size is compared with it
(target <= 1.5x), as is peak memory (target: flat).

The client runs on the same cores as the server, one request at a time, and parses every
response (as any consumer must). Wall-clock figures move with whatever else the machine
runs, so the CPU time of the server's processes and of the client is measured too: keys
per CPU-second is what the stream would reach on otherwise idle cores. The load average
is printed before and after.

    python bench/enumerate.py            # 1k, 100k, 1M
    python bench/enumerate.py --sizes 1000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's kms_ws, whatever is installed
CLI = [sys.executable, "-m", "kms_ws.cli"]

from _proc import free_port, run_bounded, serving, wait_until  # noqa: E402
from bulk_load import load  # noqa: E402

from kms_ws.client import KmsFault  # noqa: E402
from kms_ws.client.wsman import KEY_URI, NSMAP, WsManChannel, update_filter  # noqa: E402
from kms_ws.xmlns import SOAP, WSEN, WSMAN  # noqa: E402

ADMIN = ("bench-admin", "bench-admin-password")
REALM = "realm://localhost/default"
PAGE = 100
SAMPLES = 30
STREAM = 50_000
_N, _W, _S = f"{{{WSEN}}}", f"{{{WSMAN}}}", f"{{{SOAP}}}"


def kms(*args: str, stdin: str = "") -> None:
    run_bounded([*CLI, *args], 120, f"kms-ws {args[0]}", stdin=stdin, cwd=ROOT)


def _server_procs(data: Path) -> list[Path]:
    """/proc entries of the processes serving `data` (master, workers, deliverer)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"{data}\0" in (proc / "cmdline").read_text():
                found.append(proc)  # an argument ends at NUL: d1000 is not d1000000
        except OSError:
            pass
    return found


def peak_rss_mb(data: Path) -> float:
    """Largest VmHWM among the processes serving `data`."""
    peak = 0
    for proc in _server_procs(data):
        try:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak / 1024


def server_cpu_s(data: Path) -> float:
    """CPU seconds used so far by the processes serving `data`: the nanosecond run time of
    each of their threads (schedstat), or user + system clock ticks where it is missing."""
    total = 0.0
    for proc in _server_procs(data):
        try:
            total += sum(int((task / "schedstat").read_text().split()[0])
                         for task in (proc / "task").iterdir()) / 1e9
        except (OSError, IndexError, ValueError):
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass  # the process has gone
    return total


def _quiet(data: Path) -> bool:
    """The server's processes (the deliverer builds its schema validator after the workers
    answer) use under 2% of a core over 0.5 s: its start-up is not counted as a Pull's."""
    before = server_cpu_s(data)
    time.sleep(0.5)
    return server_cpu_s(data) - before < 0.01


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def channel(url: str) -> WsManChannel:
    s = requests.Session()
    s.auth = ADMIN
    return WsManChannel(url, s, 60, (), KmsFault, lambda h: None)


def enumerate_from(ch: WsManChannel, token: int) -> str:
    enum = etree.Element(_N + "Enumerate", nsmap=NSMAP)
    enum.append(update_filter("AllKeys", {"AllKeys": token}, None))
    env = ch.call(f"{WSEN}/Enumerate", enum, KEY_URI)
    return env.findtext(f"{_S}Body/{_N}EnumerateResponse/{_N}EnumerationContext") or ""


def pull(ch: WsManChannel, context: str, page: int = PAGE) -> tuple[str | None, int]:
    body = etree.Element(_N + "Pull", nsmap=NSMAP)
    etree.SubElement(body, _N + "EnumerationContext").text = context
    etree.SubElement(body, _N + "MaxElements").text = str(page)
    env = ch.call(f"{WSEN}/Pull", body, KEY_URI)
    res = env.find(f"{_S}Body/{_N}PullResponse")
    items = res.find(_N + "Items")
    return res.findtext(_N + "EnumerationContext"), 0 if items is None else len(items)


def pull_times(ch: WsManChannel, data: Path, token: int) -> tuple[float, float]:
    """(median ms, mean server CPU ms) of Pulls of 100 items: up to SAMPLES from `token`,
    again from `token` (a small store ends sooner) until there are SAMPLES of them."""
    times: list[float] = []
    cpu = 0.0
    for _ in range(SAMPLES):  # bounded: every round adds at least one Pull
        context: str | None = enumerate_from(ch, token)
        before = server_cpu_s(data)
        while len(times) < SAMPLES and context:
            t = time.perf_counter()
            context, n = pull(ch, context)
            times.append((time.perf_counter() - t) * 1000)
            if n == 0:
                break
        cpu += server_cpu_s(data) - before
        if len(times) >= SAMPLES:
            break
    return statistics.median(times), cpu * 1000 / len(times)


def stream(ch: WsManChannel, data: Path, total: int, token: int,
           page: int = PAGE) -> tuple[float, float]:
    """(keys/s by the wall clock, keys per CPU-second of server and client together).
    A store smaller than `total` is enumerated again from `token` until `total` keys came."""
    got, t = 0, time.perf_counter()
    cpu = server_cpu_s(data) + time.process_time()
    while got < total:
        context: str | None = enumerate_from(ch, token)
        while context and got < total:
            context, n = pull(ch, context, page)
            got += n
    wall = time.perf_counter() - t
    return got / wall, got / max(server_cpu_s(data) + time.process_time() - cpu, 1e-9)


def run_size(n: int, work: Path) -> dict[str, float]:
    data = work / f"d{n}"
    data.mkdir(parents=True)
    # loopback only: HTTP Basic without TLS, as the other benchmarks do
    (data / "kms-ws.json").write_text(json.dumps({"security": {"allow_basic_over_http": True}}))
    kms("init", "--data-dir", str(data))
    kms("client", "add", ADMIN[0], "--admin", "--password-stdin", "--data-dir", str(data),
        stdin=ADMIN[1] + "\n")
    t = time.perf_counter()
    load(data, n, REALM)
    load_s = time.perf_counter() - t
    port = free_port()
    argv = [*CLI, "serve", "--data-dir", str(data), "--port", str(port), "--workers", "2"]
    url = f"http://127.0.0.1:{port}/wsman"
    with serving("kms-ws serve", argv, work / f"serve-{n}.log", url + "?wsdl", cwd=ROOT):
        wait_until(lambda: _quiet(data), 60, "the server's processes to finish starting")
        ch = channel(url)
        pull_times(ch, data, 0)  # warm up both workers' caches and connections
        first = 1  # the bootstrap client took change 1
        res = {"load_s": load_s}
        for where, token in (("start", first), ("middle", first + n // 2),
                             ("end", first + n - min(SAMPLES * PAGE, n // 4))):
            res[where], res[where + "_cpu"] = pull_times(ch, data, token)
        res["keys_per_s"], res["cpu_keys_per_s"] = stream(ch, data, STREAM, first + n // 4)
        res["keys_per_s_1000"], res["cpu_keys_per_s_1000"] = stream(
            ch, data, STREAM, first + n // 4, 1000)
        res["peak_mb"] = peak_rss_mb(data)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    args = p.parse_args()
    results = {}
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="kms-bench-enum-") as tmp:
        for n in args.sizes:
            results[n] = run_size(n, Path(tmp))
            print(f"  {n:>9,} keys loaded in {results[n]['load_s']:.1f}s", file=sys.stderr)
    base = results[args.sizes[0]]
    print(f"GetUpdateList / WS-Enumeration: Pull of {PAGE} items (median of {SAMPLES}), "
          f"2 workers, {os.cpu_count()} cores; load average {load_before} before, "
          f"{load_average()} after")
    print(f"{'keys':>10} {'start ms':>9} {'middle ms':>10} {'end ms':>8} {'worst/base':>11}"
          f" {'keys/s':>9} {'@1000/pull':>11} {'peak MB':>8} {'mem/base':>9}")
    for n, r in results.items():
        worst = max(r["start"], r["middle"], r["end"]) / max(base["start"], base["middle"],
                                                             base["end"])
        print(f"{n:>10,} {r['start']:>9.2f} {r['middle']:>10.2f} {r['end']:>8.2f} "
              f"{worst:>10.2f}x {r['keys_per_s']:>9,.0f} {r['keys_per_s_1000']:>11,.0f} "
              f"{r['peak_mb']:>8.1f} "
              f"{r['peak_mb'] / base['peak_mb']:>8.2f}x")
    print("CPU time (not skewed by other load): server CPU ms per Pull of 100, keys per "
          "CPU-second (server processes + client)")
    print(f"{'keys':>10} {'start':>7} {'middle':>7} {'end':>7} {'worst/base':>11} "
          f"{'keys/s':>9} {'@1000/pull':>11}")
    worst_cpu = max(base["start_cpu"], base["middle_cpu"], base["end_cpu"])
    for n, r in results.items():
        worst = max(r["start_cpu"], r["middle_cpu"], r["end_cpu"]) / worst_cpu
        print(f"{n:>10,} {r['start_cpu']:>7.2f} {r['middle_cpu']:>7.2f} {r['end_cpu']:>7.2f} "
              f"{worst:>10.2f}x {r['cpu_keys_per_s']:>9,.0f} "
              f"{r['cpu_keys_per_s_1000']:>11,.0f}")
    ok_speed = all(max(r["keys_per_s"], r["keys_per_s_1000"]) >= 20_000
                   for r in results.values())
    last = results[args.sizes[-1]]
    ok_flat = max(last["start"], last["middle"], last["end"]) <= 1.5 * max(
        base["start"], base["middle"], base["end"])
    print(f"targets: >= 20,000 keys/s: {'met' if ok_speed else 'NOT met'}; "
          f"Pull at {args.sizes[-1]:,} within 1.5x of {args.sizes[0]:,}: "
          f"{'met' if ok_flat else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
