"""The logs of a real `kms-ws serve` (docs/operations.md, "Logs"): the level and the JSON
lines format from the command line or the config file, the startup line at INFO with the
absolute data path and the URL, the shutdown line, the data directory made 0700 by a first
`serve`, and no password, token, secret or key bytes in any line of a session that uses
them."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from kms_ws.client import KmsClient, KmsFault

from ..support.server import ADMIN, ServerProcess, free_port, kms
from ..support.signing import hmac_signing_key
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 30


@contextmanager
def serving(cwd: Path, *options: str, data_dir: str = "data") -> Iterator[str]:
    """`kms-ws serve --data-dir DATA OPTIONS` run from `cwd`, as an operator runs it (the
    port P in DATA's config file, or `--port P` when DATA does not exist yet); yields the
    base URL once it answers, stops it with SIGTERM after (exit 0)."""
    port = free_port()
    config = cwd / data_dir / "kms-ws.json"
    if config.parent.exists():  # the port in the config file: the command as documented
        doc = json.loads(config.read_text()) if config.exists() else {}
        config.write_text(json.dumps({**doc, "port": port}))
    else:  # a first start makes the directory
        options = ("--port", str(port), *options)
    err = open(cwd / "serve.stderr", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "kms_ws.cli", "serve", "--data-dir",
                             data_dir, *options], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            assert proc.poll() is None, (cwd / "serve.stderr").read_text()
            assert time.monotonic() < deadline, (cwd / "serve.stderr").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/wsman?wsdl", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        err.close()
    assert code == 0, (cwd / "serve.stderr").read_text()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_a_first_serve_makes_the_data_directory_0700_and_says_where_it_serves(
        tmp_path: Path) -> None:
    """No `init` first: `serve` makes the data directory (relative here), the owner's
    alone, and its first line names its absolute path and the URL, at INFO."""
    with serving(tmp_path) as base:
        data = tmp_path / "data"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        requests.get(base + "/healthz", timeout=10)
    port = base.rsplit(":", 1)[1]
    for lines in (_lines(data / "kms-ws.log"), _lines(tmp_path / "serve.stderr")):
        starts = [x for x in lines if " INFO kms_ws kms-ws " in x and " serving " in x]
        assert len(starts) == 1, lines
        assert f"serving http://127.0.0.1:{port}/wsman with 2 workers, data in {data}, " \
            "metrics off" in starts[0]
        stops = [x for x in lines if x.endswith(" INFO kms_ws kms-ws stopped")]
        assert len(stops) == 1 and lines.index(stops[0]) > lines.index(starts[0]), lines
    # the server's own process says both, once
    assert starts[0].split()[2] == stops[0].split()[2]
    # INFO: each request (probes only at DEBUG)
    log = (data / "kms-ws.log").read_text()
    assert " /healthz " not in log


def test_json_lines_and_the_level_from_the_command_line(tmp_path: Path) -> None:
    kms("init", "--data-dir", str(tmp_path / "data"))
    # as docs/operations.md shows it
    with serving(tmp_path, "--log-level", "debug", "--log-format", "json") as base:
        requests.get(base + "/healthz", timeout=10)
        requests.get(base + "/wsman?wsdl", timeout=10)
    for path in (tmp_path / "data" / "kms-ws.log", tmp_path / "serve.stderr"):
        docs = [json.loads(line) for line in _lines(path)]  # every line is one object
        assert docs and all(set(d) >= {"time", "pid", "level", "logger", "message"}
                            for d in docs)
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["time"])
                   for d in docs)
        messages = [(d["level"], d["logger"], d["message"]) for d in docs]
        assert any(level == "INFO" and m.startswith("kms-ws ") and " serving " in m
                   and str(tmp_path / "data") in m for level, _, m in messages), messages
        assert ("INFO", "kms_ws", "kms-ws stopped") in messages
        assert any(level == "DEBUG" and logger == "kms_ws.access" and " GET /healthz " in m
                   for level, logger, m in messages), messages
        assert any(level == "INFO" and " GET /wsman " in m for level, _, m in messages)


def test_the_level_and_format_from_the_config_file_and_the_command_line_wins(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    kms("init", "--data-dir", str(data))
    (data / "kms-ws.json").write_text(json.dumps({"log_level": "WARNING",
                                                  "log_format": "json"}))
    with serving(tmp_path) as base:
        requests.get(base + "/wsman?wsdl", timeout=10)
    assert _lines(data / "kms-ws.log") == []  # nothing at WARNING or above happened
    with serving(tmp_path, "--log-level", "INFO") as base:
        requests.get(base + "/wsman?wsdl", timeout=10)
    docs = [json.loads(line) for line in _lines(data / "kms-ws.log")]
    assert any(" GET /wsman " in d["message"] for d in docs)
    assert {d["level"] for d in docs} == {"INFO"}


@pytest.mark.parametrize("doc,named", [({"log_level": "LOUD"}, "log_level"),
                                       ({"log_format": "xml"}, "log_format"),
                                       ({"metrics_allow": ["somewhere"]}, "metrics_allow")])
def test_a_bad_log_or_metrics_setting_is_one_clear_line(tmp_path: Path, doc: dict,  # type: ignore[type-arg]
                                                       named: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "kms-ws.json").write_text(json.dumps(doc))
    r = kms("serve", "--data-dir", str(data), "--port", str(free_port()), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("kms-ws: ") and named in r.stderr and \
        str(data / "kms-ws.json") in r.stderr, r.stderr


def test_no_password_token_secret_or_key_bytes_reach_a_log(tmp_path: Path) -> None:
    """A session at DEBUG that sends passwords, opens a session token, signs with an HMAC
    secret, stores and reads key values: none of them is in any line, in any encoding."""
    srv = ServerProcess(tmp_path / "data", log_name="serve.stderr")
    srv.bootstrap()
    (srv.data_dir / "kms-ws.json").write_text(json.dumps(
        {**json.loads((srv.data_dir / "kms-ws.json").read_text()), "log_level": "DEBUG"}))
    srv.start()
    password, secret, stored = f"pw-{secrets.token_hex(12)}", secrets.token_bytes(32), \
        secrets.token_bytes(32)
    seen: list[bytes] = [password.encode(), ADMIN[1].encode(), secret, stored]
    try:
        requests.get(srv.url.removesuffix("/wsman") + "/readyz", timeout=10)  # a DEBUG line
        with KmsClient(srv.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
            admin.register_endpoint("Client", "logged-user", password=password)
            admin.register_endpoint("Client", "logged-hmac", symmetric_key=secret)
        with KmsClient(srv.url, "logged-user", password,
                       plugins=[ValidatingPlugin()]) as user:
            user.login()
            token = user._addressing.session_token
            assert token
            seen.append(token.encode())
            key_id = user.store_key(stored, "logged-stored")
            made = user.create_key("logged-made")
            assert made.value is not None
            seen.append(made.value)
            assert user.get_key(key_id).value == stored
            user.logout()
        with KmsClient(srv.url, "logged-user", "wrong-" + password,
                       plugins=[ValidatingPlugin()]) as wrong, \
                pytest.raises(KmsFault):  # the refusal is logged
            wrong.get_random_bytes(8)
        with KmsClient(srv.url, plugins=[ValidatingPlugin()],
                       signing_key=hmac_signing_key("logged-hmac", secret)) as signer:
            assert signer.create_key("logged-signed").value is not None
    finally:
        assert srv.stop() == 0
    logs = (srv.data_dir / "kms-ws.log").read_bytes() + srv.stderr_text().encode()
    assert b" DEBUG kms_ws.access " in logs  # the most the server logs
    for value in seen:
        for form in (value, base64.b64encode(value), value.hex().encode(),
                     value.hex().upper().encode()):
            assert form not in logs, f"{form[:12]!r}... is in the log"
