"""GET /healthz, /readyz and /metrics on a real `kms-ws serve` (docs/operations.md,
"Health and metrics"): probes answer without a credential and reveal nothing; /metrics is
off by default, loopback-only when on, and a real scrape — parsed by prometheus_client —
sums the counts of both workers."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kms_ws import __version__
from kms_ws.client import KmsClient, KmsFault

from ..support.clients import own_realm_client
from ..support.envelopes import create_key
from ..support.server import ADMIN, kms, running_server
from ..support.signing import register_signer, signed
from ..support.validating import ValidatingPlugin, post

pytestmark = pytest.mark.e2e
BODIES = {"/healthz": b"ok\n", "/readyz": b"ready\n"}


def _base(url: str) -> str:
    return url.removesuffix("/wsman")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _sum(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return sum(v for (n, ls), v in samples.items()
               if n == name and all((k, val) in ls for k, val in labels.items()))


def _log_pids(data_dir: Path, marker: str) -> set[str]:
    """The processes whose access lines (text format: time, pid, level, logger, message)
    contain `marker`."""
    pids = set()
    for line in (data_dir / "kms-ws.log").read_text().splitlines():
        if " kms_ws.access " in line and marker in line:
            pids.add(line.split()[2])
    return pids


def test_probes_answer_anyone_and_reveal_nothing(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as srv:
        base = _base(srv.url)
        for path, body in BODIES.items():
            r = requests.get(base + path, timeout=10)  # no credential
            assert (r.status_code, r.content) == (200, body)
            assert r.headers["Cache-Control"] == "no-store"
            everything = r.text + json.dumps(dict(r.headers))
            assert __version__ not in everything and str(srv.data_dir) not in everything
        assert requests.post(base + "/readyz", timeout=10).status_code == 405
        # off unless configured: as any unknown path
        r = requests.get(base + "/metrics", timeout=10)
        assert (r.status_code, r.content) == (404, b"not found\n")


def test_not_ready_below_the_free_space_watermark_says_why_only_in_the_log(
        tmp_path: Path) -> None:
    # a watermark no disk reaches (1 EiB): changes would be refused, so not ready
    with running_server(tmp_path / "data", config={"min_free_disk_mb": 2.0 ** 40}) as srv:
        base = _base(srv.url)
        r = requests.get(base + "/readyz", timeout=10)
        assert (r.status_code, r.content) == (503, b"not ready\n")
        assert dict(r.headers).keys() >= {"Content-Type", "Content-Length"}
        assert "MiB" not in r.text and str(srv.data_dir) not in r.text
        assert requests.get(base + "/healthz", timeout=10).content == b"ok\n"  # still up
        log = (srv.data_dir / "kms-ws.log").read_text()
        assert re.search(r"WARNING kms_ws\.errors not ready: free space on the server's "
                         r"storage \(\d+ MiB\) is below its reserve", log), log


def test_metrics_are_loopback_only_and_no_forwarded_header_changes_that(
        tmp_path: Path) -> None:
    """metrics_allow names who may scrape; the origin is the connection's peer (no proxy
    is trusted), so a client claiming an allowed address in X-Forwarded-For is refused."""
    config = {"metrics": True, "metrics_allow": ["192.0.2.7"]}
    with running_server(tmp_path / "data", config=config) as srv:
        url = _base(srv.url) + "/metrics"
        r = requests.get(url, timeout=10)
        assert (r.status_code, r.content) == (403, b"forbidden\n")
        r = requests.get(url, headers={"X-Forwarded-For": "192.0.2.7",
                                       "X-Forwarded-Proto": "https"}, timeout=10)
        assert (r.status_code, r.content) == (403, b"forbidden\n")


def test_a_scrape_sums_both_workers_and_shows_the_service(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", config={"metrics": True}, workers=2) as srv:
        base = _base(srv.url)
        # GetRandomBytes on fresh connections until both workers have answered some
        with own_realm_client(srv.url, "metrics") as (client, _, _):
            client.create_key("metrics-1")
            client.create_key("metrics-2")
        sent = 0
        while len(_log_pids(srv.data_dir, " GetRandomBytes 200 ")) < 2:
            assert sent < 400, "the two workers never both answered"
            with KmsClient(srv.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
                assert len(admin.get_random_bytes(8)) == 8
            sent += 1
        # two wrong passwords, two of a user that does not exist
        for user in (ADMIN[0], ADMIN[0], "nobody-" + uuid.uuid4().hex[:6],
                     "nobody-" + uuid.uuid4().hex[:6]):
            with KmsClient(srv.url, user, "wrong-password-1",
                           plugins=[ValidatingPlugin()]) as bad, \
                    pytest.raises(KmsFault) as caught:
                bad.get_random_bytes(8)
            assert caught.value.error_code == "E_INVALID_CREDENTIALS", caught.value
        # one signed message sent three times: two replays
        with KmsClient(srv.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
            signer = register_signer(admin)
        msg = signed(create_key("metrics-replayed"), "CreateKey", signer.key)
        answers = [post(srv.url, msg)[0].status_code for _ in range(3)]
        assert answers[0] == 200 and answers[1:] != [200, 200]

        r = requests.get(base + "/metrics", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        samples = _samples(r.text)

        served = _sum(samples, "kms_ws_requests_total", operation="GetRandomBytes", fault="")
        assert served == sent  # the counts of both workers, summed
        assert _sum(samples, "kms_ws_request_duration_seconds_count",
                    operation="GetRandomBytes") >= sent + 4
        assert _sum(samples, "kms_ws_requests_total", operation="GetRandomBytes",
                    fault="wsman:AccessDenied") == 4
        assert _sum(samples, "kms_ws_authentication_failures_total",
                    operation="GetRandomBytes", kind="invalid-credentials") == 4
        assert _sum(samples, "kms_ws_replay_refusals_total", operation="CreateKey") == 2
        assert _sum(samples, "kms_ws_keys", state="Active") == 3
        assert _sum(samples, "kms_ws_keys", state="Destroyed") == 0
        assert ("kms_ws_update_pending_deliveries", ()) in samples
        sealed = samples[("kms_ws_sealed_values", ())]
        assert sealed >= 3 and samples[("kms_ws_master_key_rotation_pending_values", ())] == 0

        # a rotation begun and paused: every sealed value still waits under the old key
        paused = kms("master-key", "rotate", "--data-dir", str(srv.data_dir),
                     "--max-batches", "0", check=False)
        assert paused.returncode == 3, paused.stdout + paused.stderr
        after = _samples(requests.get(base + "/metrics", timeout=10).text)
        assert after[("kms_ws_master_key_rotation_pending_values", ())] == sealed
        assert after[("kms_ws_sealed_values", ())] == sealed
        assert not re.search(r"admin|password|realm://|metrics-1", r.text)
