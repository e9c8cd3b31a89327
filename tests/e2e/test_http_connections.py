"""Connections to `kms-ws serve`: one connection (TCP, or TLS with its handshake) carries
a client's requests one after another, and connections that send nothing, stop part-way
or drip their request do not keep the workers from serving others; a request that does
not arrive whole in time is cut off."""

from __future__ import annotations

import base64
import http.client
import os
import select
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from kms_ws.client import KmsClient
from kms_ws.xmlns import KMS, SOAP, WSA

from ..support.envelopes import create_key, envelope, get_key
from ..support.pki import server_cert
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import CT, ValidatingPlugin

pytestmark = pytest.mark.e2e
K = f"{{{KMS}}}"
S = f"{{{SOAP}}}"
BASIC = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()


def _call(conn: http.client.HTTPConnection, body: str, op: str) -> etree._Element:
    """One SOAP request on `conn`; the connection must stay open after the answer."""
    message = envelope(body, op=op)
    validate_envelope(message)
    conn.request("POST", "/wsman", message, {"Content-Type": CT, "Authorization": BASIC})
    response = conn.getresponse()
    payload = response.read()
    assert response.status == 200, payload[:300]
    assert (response.getheader("Connection") or "").lower() != "close"
    return validate_envelope(payload)


def _sockets_used(conn: http.client.HTTPConnection) -> set[int]:
    """CreateKey, then GetKey of it three times on `conn`: the sockets that carried them
    (http.client opens a new one only when the server closed the last; each is held, so
    no two share an id)."""
    created = _call(conn, create_key("kept-alive"), "CreateKey")
    held = [conn.sock]
    key_id = created.findtext(f".//{K}KeyId")
    for _ in range(3):
        got = _call(conn, get_key(key_id or ""), "GetKey")
        assert got.findtext(f".//{K}KeyId") == key_id
        held.append(conn.sock)
    return {id(sock) for sock in held}


def test_a_connection_carries_many_requests(server: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        assert len(_sockets_used(conn)) == 1
    finally:
        conn.close()


def test_one_tls_handshake_serves_many_requests(tmp_path: Path) -> None:
    cert, key = server_cert(tmp_path)
    with running_server(tmp_path / "data", workers=1, tls=(cert, key)) as srv:
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=context,
                                           timeout=30)
        try:
            assert len(_sockets_used(conn)) == 1
        finally:
            conn.close()


def test_silent_connections_do_not_hold_the_workers(tmp_path: Path,
                                                    validator: ValidatingPlugin) -> None:
    """More connections than workers that send nothing (a stalled device, a port scan)
    while a client is served."""
    with running_server(tmp_path / "data", workers=2) as srv:
        silent = [socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                  for _ in range(4)]
        try:
            with KmsClient(srv.url, *ADMIN, plugins=[validator], timeout=10) as c:
                created = c.create_key(friendly_name="served")
                assert c.get_key(created.key_id).value == created.value
        finally:
            for sock in silent:
                sock.close()


def _stall(port: int, kind: str) -> socket.socket:
    """A connection that stopped inside its request headers ("head"), inside its body
    ("body"), or that sent a request, read the answer and stays idle ("idle")."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if kind == "head":
        sock.sendall(b"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Ty")
    elif kind == "body":
        sock.sendall(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                     "Content-Length: 900\r\n\r\n<s:Envelope".encode())
    else:
        sock.sendall(b"GET /wsman?wsdl HTTP/1.1\r\nHost: kms\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")
    return sock


def test_many_stalled_connections_do_not_keep_a_request_from_being_served(
        tmp_path: Path, validator: ValidatingPlugin) -> None:
    """One worker; 120 connections idle after an answer, stopped in their headers or in
    their bodies, opened before the client and still open while it is served."""
    with running_server(tmp_path / "data", workers=1) as srv:
        stalled = [_stall(srv.port, kind) for kind in ("idle", "head", "body") for _ in range(40)]
        try:
            with KmsClient(srv.url, *ADMIN, plugins=[validator], timeout=30) as c:
                for n in range(3):
                    created = c.create_key(friendly_name=f"served {n}")
                    assert c.get_key(created.key_id).value == created.value
        finally:
            for sock in stalled:
                sock.close()


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    answer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk


def test_a_client_that_stops_mid_request_is_cut_off(tmp_path: Path,
                                                   validator: ValidatingPlugin) -> None:
    """One client stops inside its request headers, another inside its body: at the
    request deadline the first connection is closed with nothing answered, the second
    gets a fault, and meanwhile other clients are served."""
    with running_server(tmp_path / "data", workers=1) as srv:
        in_head, in_body = _stall(srv.port, "head"), _stall(srv.port, "body")
        try:
            with KmsClient(srv.url, *ADMIN, plugins=[validator], timeout=30) as c:
                created = c.create_key(friendly_name="served during the stalls")
                assert c.get_key(created.key_id).value == created.value
            assert _answer(in_head) == b""  # closed, nothing answered
            head, _, payload = _answer(in_body).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 ")
            fault = validate_envelope(payload)
            assert fault.findtext(f".//{S}Subcode/{S}Value") == "wsman:SchemaValidationError"
            assert fault.findtext(f".//{S}Reason/{S}Text") == "the message did not arrive in full"
        finally:
            in_head.close()
            in_body.close()


def test_a_drip_fed_body_is_cut_off_though_it_keeps_coming(tmp_path: Path) -> None:
    """A body that keeps arriving, one byte at a time, is still cut off: a request has
    one deadline for all of it, not one per read."""
    with running_server(tmp_path / "data", workers=1) as srv:
        sock = _stall(srv.port, "body")
        try:
            sent = len("<s:Envelope")
            while sent < 900 and not select.select([sock], [], [], 0.5)[0]:
                sock.sendall(b" ")  # half a second apart: the body would take 7 minutes
                sent += 1
            assert sent < 900
            head, _, payload = _answer(sock).partition(b"\r\n\r\n")
            fault = validate_envelope(payload)
            assert fault.findtext(f".//{S}Reason/{S}Text") == "the message did not arrive in full"
        finally:
            sock.close()


def test_expect_100_continue_and_pipelined_requests(server: ServerProcess) -> None:
    """A client that waits for 100 Continue before its body (as .NET clients and curl do)
    gets it; two requests written at once are answered in order on one connection."""
    message = envelope(create_key("continued"), op="CreateKey")
    validate_envelope(message)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                     f"Authorization: {BASIC}\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {len(message)}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(message)
        reader = sock.makefile("rb")
        created = _read_response(reader)
        key_id = created.findtext(f".//{K}KeyId") or ""
        one = envelope(get_key(key_id), op="GetKey")
        two = envelope(get_key(key_id), op="GetKey")
        sock.sendall(b"".join(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                              f"Authorization: {BASIC}\r\nContent-Length: {len(m)}\r\n\r\n"
                              .encode() + m for m in (one, two)))
        relates = [_read_response(reader).findtext(f".//{{{WSA}}}RelatesTo") for _ in range(2)]
        sent = [etree.fromstring(m).findtext(f".//{{{WSA}}}MessageID") for m in (one, two)]
        assert relates == sent


def _read_response(reader: Any) -> etree._Element:
    status = reader.readline()
    assert status.startswith(b"HTTP/1.1 200 "), status
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return validate_envelope(reader.read(length))


def test_what_the_front_will_not_buffer_is_refused_at_once(server: ServerProcess) -> None:
    """A body declared larger than max_message_bytes is refused before it is sent (the
    front never buffers it); over-long headers and a request that is not HTTP get their
    HTTP error; each connection is then closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                     f"Authorization: {BASIC}\r\nContent-Length: {512 * 1024 + 1}\r\n\r\n"
                     "<s:Envelope".encode())
        head, _, payload = _answer(sock).partition(b"\r\n\r\n")
        assert b"\r\nConnection: close" in head
        fault = validate_envelope(payload)
        assert fault.findtext(f".//{S}Subcode/{S}Value") == "wsman:EncodingLimit"
        assert fault.findtext(f".//{K}ErrorCode") == "E_ENCODING_LIMIT"
    for request, status in ((b"POST /wsman HTTP/1.1\r\nHost: kms\r\n" +
                             b"X-Padding: " + b"p" * 40_000 + b"\r\n\r\n", b"431"),
                            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request)
            assert _answer(sock).startswith(b"HTTP/1.1 " + status + b" ")


def test_a_request_under_way_at_sigterm_is_answered(tmp_path: Path) -> None:
    """SIGTERM stops the server gracefully: a request whose body is still arriving (the
    server has read its headers: it said 100 Continue) is answered and its connection
    closed, new connections are refused, then the server exits cleanly."""
    srv = ServerProcess(tmp_path / "data", workers=1)
    srv.bootstrap()
    srv.start()
    assert srv.proc is not None
    message = envelope(create_key("at-sigterm"), op="CreateKey")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                     f"Authorization: {BASIC}\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {len(message)}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        os.kill(srv.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # stopping: new connections are refused
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
            except (ConnectionRefusedError, ConnectionResetError):
                break
        else:
            raise AssertionError("the server still accepts connections after SIGTERM")
        sock.sendall(message)
        head, _, payload = _answer(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close" in head
    assert validate_envelope(payload).findtext(f".//{K}KeyId")
    assert srv.proc.wait(timeout=60) == 0, srv.stderr_text()
    srv.stderr.close()


def test_a_chunked_request_body_is_read_whole(server: ServerProcess) -> None:
    """Transfer-Encoding: chunked (as some SOAP stacks send large messages), in chunks
    written one by one: the application gets the whole body."""
    message = envelope(create_key("chunked"), op="CreateKey")
    validate_envelope(message)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST /wsman HTTP/1.1\r\nHost: kms\r\nContent-Type: {CT}\r\n"
                     f"Authorization: {BASIC}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        for start in range(0, len(message), 200):
            part = message[start:start + 200]
            sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        created = _read_response(sock.makefile("rb"))
    assert created.findtext(f".//{K}FriendlyName") == "chunked"
