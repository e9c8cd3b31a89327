"""The command line as a new user drives it: init, client add, serve, and client commands."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from ..support.server import ADMIN, ServerProcess, kms

pytestmark = pytest.mark.e2e


def _online(server: ServerProcess, *args: str, stdin: str = ADMIN[1] + "\n"):  # type: ignore[no-untyped-def]
    return kms(*args, "--url", server.url, "--user", ADMIN[0], "--password-stdin", stdin=stdin)


def test_cli_create_get_store_random(server: ServerProcess) -> None:
    created = json.loads(_online(server, "create-key", "--name", "cli-key", "--dataset",
                                 "volume=C001", "--show-value").stdout)
    assert created["state"] == "Active" and len(base64.b64decode(created["value_b64"])) == 32
    got = json.loads(_online(server, "get-key", created["key_id"], "--show-value").stdout)
    assert got["value_b64"] == created["value_b64"]
    by_ds = json.loads(_online(server, "get-key", "--dataset", "volume=C001").stdout)
    assert by_ds["key_id"] == created["key_id"] and "value_b64" not in by_ds
    value = secrets.token_bytes(32)
    key_id = _online(server, "store-key", "--hex", value.hex(), "--name", "cli-stored").stdout
    got = json.loads(_online(server, "get-key", key_id.strip(), "--show-value").stdout)
    assert base64.b64decode(got["value_b64"]) == value
    rnd = _online(server, "random", "16", "--hex").stdout.strip()
    assert len(bytes.fromhex(rnd)) == 16


def test_cli_reports_faults(server: ServerProcess) -> None:
    res = kms("get-key", "00000000-0000-4000-8000-000000000000", "--url", server.url, "--user",
              ADMIN[0], "--password-stdin", stdin=ADMIN[1] + "\n", check=False)
    assert res.returncode == 1 and "kms:NotFound" in res.stderr and "Traceback" not in res.stderr


def test_client_add_refuses_duplicates_and_short_passwords(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = str(tmp_path / "d")
    assert kms("client", "add", "bob", "--password-stdin", "--data-dir", d,
               stdin="long-password\n").stdout.strip()
    again = kms("client", "add", "bob", "--password-stdin", "--data-dir", d,
                stdin="long-password\n", check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    short = kms("client", "add", "carol", "--password-stdin", "--data-dir", d, stdin="short\n",
                check=False)
    assert short.returncode != 0 and "8 characters" in short.stderr
    listing = kms("client", "list", "--data-dir", d).stdout
    assert "bob" in listing and "carol" not in listing


def test_help_explains_every_command() -> None:
    out = kms("--help").stdout
    for command in ("init", "serve", "client", "template", "create-key", "get-key", "store-key",
                    "random", "wsdl", "audit"):
        assert command in out
        assert kms(*command.split(), "--help").returncode == 0


def test_master_key_file_is_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "d"
    kms("init", "--data-dir", str(d))
    assert (d / "master.key").stat().st_mode & 0o777 == 0o600
    (d / "master.key").chmod(0o644)
    srv = ServerProcess(d, workers=1)
    with pytest.raises(RuntimeError, match="readable by others"):
        srv.start()


@pytest.mark.parametrize(("doc", "message"), [
    ('{"trusted_proxy": ["10.0.0.1"]}', "unknown settings: trusted_proxy"),
    ('{"trusted_proxies": ["10.0.0.300"]}', "trusted_proxies: '10.0.0.300'"),
    ('{"trusted_proxies": "10.0.0.1"}', "trusted_proxies is a list"),
    ('{"security": {"allow_basic_over_htp": true}}', "allow_basic_over_htp"),
    ('{"port": 5985,}', "kms-ws.json"),
])
def test_a_bad_config_file_is_one_clear_line(tmp_path, doc, message) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir()
    (data / "kms-ws.json").write_text(doc)
    res = kms("init", "--data-dir", str(data), check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("kms-ws: ") and res.stderr.count("\n") == 1
    assert message in res.stderr and str(data / "kms-ws.json") in res.stderr
    assert not (data / "master.key").exists()
