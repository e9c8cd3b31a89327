"""One kept-alive HTTP connection to each worker process of a running server (Linux):
a test sends each request on every worker, whatever the kernel's choice of acceptor.

A connection's worker is the process holding the server side of its TCP socket (the
inode /proc/net/tcp lists for the pair of ports, among the /proc/<pid>/fd links of the
server's child processes)."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lxml import etree

from .schema_check import validate_envelope
from .server import ServerProcess
from .validating import CT

MAX_CONNECTIONS = 64  # connections opened at most to find every worker


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == server_port and \
                    int(remote.rsplit(":", 1)[1], 16) == client_port:
                return inode
    return None


def _owner(pids: list[int], inode: str) -> int | None:
    link = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                    return pid
            except OSError:
                continue
    return None


def exchange(conn: http.client.HTTPConnection, body: bytes,
             headers: dict[str, str] | None = None) -> etree._Element:
    """POST a (valid) request on this connection; the validated response envelope."""
    validate_envelope(body)
    conn.request("POST", "/wsman", body=body, headers={"Content-Type": CT, **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    assert resp.getheader("Content-Type", "").startswith("application/soap+xml"), data[:300]
    return validate_envelope(data)


@contextmanager
def worker_connections(server: ServerProcess, probe: bytes) -> Iterator[
        dict[int, http.client.HTTPConnection]]:
    """{worker pid: a connection it serves} for every worker. `probe`: a request any
    worker answers (it makes the worker accept the connection)."""
    assert server.proc is not None
    workers = _children(server.proc.pid)
    kept: dict[int, http.client.HTTPConnection] = {}
    opened: list[http.client.HTTPConnection] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            if len(kept) == server.workers:
                break
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            opened.append(conn)
            exchange(conn, probe)
            inode = _server_socket_inode(server.port, conn.sock.getsockname()[1])
            owner = _owner(workers, inode) if inode else None
            if owner is not None and owner not in kept:
                kept[owner] = conn
        assert len(kept) == server.workers, f"reached {len(kept)} of {server.workers} workers"
        yield kept
    finally:
        for conn in opened:
            conn.close()
