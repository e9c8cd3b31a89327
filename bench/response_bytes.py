#!/usr/bin/env python3
"""The size of a GetKey response, and of its parts: one kms-ws server (as
bench/getkey.py sets it up), one GetKey over HTTP Basic ("plain") and one signed by a
registered client ("signed"); every response is signed by the server. Prints the bytes
of the whole response, of its wsse:Security header and of its kms:Key element.
--show prints the plain response too. Loopback only; the server is stopped before exit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _signed import SignedSoapClientFactory
from _soap import post_once
from kms_side import kms_server
from lxml import etree

from kms_ws.xmlns import KMS, WSSE


def parts(response: bytes) -> tuple[int, int, int]:
    """(response, Security header, Key element) sizes in bytes, as sent."""
    root = etree.fromstring(response)
    security = root.find(f".//{{{WSSE}}}Security")
    key = root.find(f".//{{{KMS}}}Key")
    if security is None or key is None:
        raise SystemExit(f"not a signed GetKey response: {response[:300]!r}")
    # each part's serialisation as it stands in the response (its own declarations aside)
    return (len(response), len(etree.tostring(security)), len(etree.tostring(key)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="print the plain response")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kms-bytes-") as tmp, \
            kms_server(Path(tmp), signed=True) as (spec, signer, _group):
        assert signer is not None
        status, plain = post_once(spec)
        if status != 200:
            raise SystemExit(f"GetKey: HTTP {status}: {plain[:300]!r}")
        client = SignedSoapClientFactory(spec, signer.key_pem, signer.cert_pem,
                                         signer.server_cert_pem)()
        try:
            signed = client.exchange()
        finally:
            client.close()
    print(f"{'GetKey response':<24}{'bytes':>8}{'Security':>10}{'Key':>8}")
    for name, data in (("plain (HTTP Basic)", plain), ("signed request", signed)):
        total, security, key = parts(data)
        print(f"{name:<24}{total:>8}{security:>10}{key:>8}")
    if args.show:
        sys.stdout.write(plain.decode() + "\n")


if __name__ == "__main__":
    main()
