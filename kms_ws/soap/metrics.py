"""GET /metrics: Prometheus text format (prometheus_client), across the gunicorn workers.

Off by default (`metrics` in kms-ws.json). On, it answers only the addresses of
`metrics_allow` (default: loopback), the request's origin as kms_ws.security.forwarded
sees it (a trusted proxy's client, never a header from anyone else); to anyone else
403. It shows counts, durations and states only: no names, ids, addresses or key bytes.

Each worker counts its own requests; the counts of every worker are summed at a scrape
through prometheus_client's multiprocess mode: the server's parent makes a private
directory (`start_multiprocess`, fresh at each start, removed at the end), the workers
forked from it write their values there, and a worker that exits is marked dead
(`worker_exited`). The store's figures (keys by state, pending UpdatePending deliveries,
master-key rotation progress) are read by the worker that answers the scrape.

The service counts its refusals through its own port (service.monitoring.Observer);
`PrometheusMonitor` implements it here, at the edge."""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from ..domain.errors import ErrorKind, InternalError, KmsError
from ..service.monitoring import Status
from . import faults

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128")
errlog = logging.getLogger("kms_ws.errors")


def start_multiprocess() -> Path:
    """In the server's parent, before the workers fork: a fresh private directory (0700)
    for every worker's values, and prometheus_client switched to it."""
    path = Path(tempfile.mkdtemp(prefix="kms-ws-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.get_value_class()  # chosen at import, before the variable
    return path


def stop_multiprocess(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """A worker is gone (gunicorn's child_exit hook): its live values no longer count."""
    multiprocess.mark_process_dead(pid)


def fault_label(exc: Exception) -> str:
    """The fault subcode a request was answered with (an envelope fault: its code)."""
    if isinstance(exc, faults.SoapFault):
        return "s:" + exc.code
    if isinstance(exc, KmsError):
        return faults.fault_of(exc).subcode
    return faults.fault_of(InternalError("")).subcode


class Allowed:
    """The addresses that may scrape."""

    def __init__(self, allow: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(a, strict=False) for a in allow)

    def __contains__(self, addr: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(addr or "")
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


class PrometheusMonitor:
    """The request counters and latency histograms of the SOAP edge, the service's
    Observer, and the exposition of a scrape."""

    def __init__(self, status: Callable[[], Status], allow: Iterable[str] = DEFAULT_ALLOW
                 ) -> None:
        self.allowed = Allowed(allow)
        self._status = status
        # Without the multiprocess directory (an application built outside `serve`),
        # this process's own registry.
        self._own = None if os.environ.get(MULTIPROC_ENV) else CollectorRegistry()
        reg = self._own
        self.requests = Counter(
            "kms_ws_requests", "SOAP requests answered, by operation and fault subcode "
            "(empty: answered without a fault)", ["operation", "fault"], registry=reg)
        self.latency = Histogram(
            "kms_ws_request_duration_seconds", "Time to answer a SOAP request, by operation",
            ["operation"], registry=reg)
        self.auth_failures = Counter(
            "kms_ws_authentication_failures", "Requests refused because their credential "
            "did not authenticate, by operation and kind", ["operation", "kind"],
            registry=reg)
        self.replays = Counter(
            "kms_ws_replay_refusals", "Signed messages or PEP proofs refused as replays, "
            "by operation", ["operation"], registry=reg)
        if self._own is not None:
            self._own.register(_StoreCollector(status))

    # the SOAP edge
    def request(self, operation: str, fault: str, seconds: float) -> None:
        self.requests.labels(operation, fault).inc()
        self.latency.labels(operation).observe(seconds)

    # service.monitoring.Observer
    def authentication_failed(self, operation: str, kind: ErrorKind) -> None:
        self.auth_failures.labels(operation, kind.value).inc()

    def replay_refused(self, operation: str) -> None:
        self.replays.labels(operation).inc()

    def exposition(self) -> bytes:
        if self._own is not None:
            return generate_latest(self._own)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_StoreCollector(self._status))
        return generate_latest(registry)


class _StoreCollector:
    """The store's figures, read at each scrape."""

    def __init__(self, status: Callable[[], Status]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        try:
            st = self._status()
        except Exception:  # noqa: BLE001 - the scrape still shows the request counts
            errlog.exception("metrics: the store's figures could not be read")
            return
        keys = GaugeMetricFamily("kms_ws_keys", "Keys, by state", labels=["state"])
        for state, n in sorted(st.keys_by_state.items()):
            keys.add_metric([state], n)
        yield keys
        yield GaugeMetricFamily("kms_ws_update_pending_deliveries", "UpdatePending "
                                "notifications (6.11) not yet acknowledged by their "
                                "subscriber", value=st.pending_deliveries)
        yield GaugeMetricFamily("kms_ws_sealed_values", "Values sealed under a master key "
                                "(keys, KEKs, signing secrets, audit keys)",
                                value=st.sealed_values)
        yield GaugeMetricFamily("kms_ws_master_key_rotation_pending_values", "Sealed values "
                                "still under an older master key (0: no rotation under way)",
                                value=st.rotation_pending)
