"""CPU cost of one WS-Security signature, each way, in process: kms-ws's profile
(kms_ws.security.wssecurity) next to signxml doing the same XML-Signature work, in one run.

Four operations, on a GetKey request (~1 KB; header blocks wsa:To, Action, MessageID)
and a GetKeyResponse (~4 KB signed; To, Action, MessageID, RelatesTo):
  request-sign     parse the unsigned envelope, add the signed wsse:Security (Body,
                   Timestamp and one reference per header block), serialise
  request-verify   parse the signed bytes, verify every reference, check that the header
                   blocks the server acts on are covered, take the verified Body
  response-sign    as request-sign, for the response
  response-verify  as request-verify, with the blocks a client acts on
Same P-256 key and certificate, exclusive c14n, SHA-256 digests, ECDSA-SHA256 for both.
kms-ws parses with its hardened parser and also checks positions, ids and the Timestamp
window; signxml's side builds the same Security header and Timestamp with lxml, signs
with XMLSigner (detached, the same references) and verifies with XMLVerifier.

Prints µs of CPU (time.process_time) per operation: the median of --rounds rounds, each
the mean of --n operations, kms-ws and signxml interleaved round by round.

    python bench/wssecurity.py [--rounds 7] [--n 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import SignatureConfiguration, SignatureReference, XMLSigner, XMLVerifier, methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from kms_ws.client.signing import RESPONSE_HEADERS
from kms_ws.security import wssecurity
from kms_ws.security import xml as secure_xml
from kms_ws.security.certificates import self_signed
from kms_ws.security.settings import SecuritySettings
from kms_ws.wsman import addressing
from kms_ws.xmlns import DS, KMS, SOAP, WSA, WSSE, WSU

SETTINGS = SecuritySettings()
EXC = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
KEY_ID = str(uuid.uuid4())


def _head(to: str, action: str, relates: str = "") -> str:
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}" xmlns:kms="{KMS}"><s:Header>'
            f"<wsa:To>{to}</wsa:To><wsa:Action>{KMS}/{action}</wsa:Action>"
            f"<wsa:MessageID>uuid:{uuid.uuid4()}</wsa:MessageID>{relates}</s:Header>")


REQUEST = (_head("http://127.0.0.1:5985/wsman", "GetKey")
           + f"<s:Body><kms:GetKey><kms:KeyId>{KEY_ID}</kms:KeyId></kms:GetKey></s:Body>"
           "</s:Envelope>").encode()
RESPONSE = (_head(WSA + "/role/anonymous", "GetKeyResponse",
                  f"<wsa:RelatesTo>uuid:{uuid.uuid4()}</wsa:RelatesTo>")
            + "<s:Body><kms:GetKeyResponse><kms:Key>"
            f"<kms:KeyId>{KEY_ID}</kms:KeyId><kms:State>Active</kms:State>"
            "<kms:TCached>3600</kms:TCached><kms:CipherType>2.16.840.1.101.3.4.1.46"
            "</kms:CipherType><kms:KeyBlob><kms:ProtocolVersion>1</kms:ProtocolVersion>"
            "<kms:WrappingType>none</kms:WrappingType><kms:Length>32</kms:Length>"
            "<kms:Data>B75FarYGsCatqhEph4XYkWoBoB3laxHiwiPHPL3MnLU=</kms:Data></kms:KeyBlob>"
            "<kms:Version>1</kms:Version><kms:EditDateTime>2026-11-27T01:27:34.633799Z"
            "</kms:EditDateTime><kms:RealmAssociations><kms:RealmAssociation><kms:Realm>"
            "realm://localhost/default</kms:Realm></kms:RealmAssociation>"
            "</kms:RealmAssociations><kms:Source><kms:Kind>Kms</kms:Kind></kms:Source>"
            "</kms:Key></kms:GetKeyResponse></s:Body></s:Envelope>").encode()
# What the receiver of each message acts on (must be signed); the sender's mustUnderstand.
ACTED_ON = {REQUEST: addressing.ACTED_ON, RESPONSE: RESPONSE_HEADERS}
MUST_UNDERSTAND = {REQUEST: True, RESPONSE: False}
# Body, Timestamp and each header block
REFERENCES = {msg: 2 + len(etree.fromstring(msg)[0]) for msg in (REQUEST, RESPONSE)}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Ours:
    def __init__(self, key: wssecurity.SigningKey) -> None:
        self.key = key
        self.verification = wssecurity.VerificationKey("bench", key.cert)

    def sign(self, unsigned: bytes) -> bytes:
        env = etree.fromstring(unsigned)
        wssecurity.sign(env, self.key, now=utcnow(), ttl_seconds=300,
                        must_understand=MUST_UNDERSTAND[unsigned])
        return etree.tostring(env)

    def verify(self, unsigned: bytes, signed: bytes) -> etree._Element:
        root = secure_xml.parse(signed, SETTINGS)
        verified = wssecurity.verify(root, lambda ref: self.verification, SETTINGS, utcnow())
        wssecurity.require_signed(verified, ACTED_ON[unsigned])
        return verified.body


class Signxml:
    """The same header, Timestamp and references, signed and verified by signxml."""

    def __init__(self, key: wssecurity.SigningKey) -> None:
        self.key = key
        self.signer = XMLSigner(method=methods.detached,
                                signature_algorithm=SignatureMethod.ECDSA_SHA256,
                                digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=EXC)

    def sign(self, unsigned: bytes) -> bytes:
        env = etree.fromstring(unsigned)
        header, body = env.find(f"{{{SOAP}}}Header"), env.find(f"{{{SOAP}}}Body")
        sec = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
        token = etree.SubElement(sec, f"{{{WSSE}}}BinarySecurityToken",
                                 ValueType=wssecurity.X509V3, EncodingType=wssecurity.BASE64)
        token.text = self.key.token
        ts = etree.SubElement(sec, f"{{{WSU}}}Timestamp")
        now = utcnow()
        etree.SubElement(ts, f"{{{WSU}}}Created").text = now.isoformat() + "Z"
        etree.SubElement(ts, f"{{{WSU}}}Expires").text = \
            (now + timedelta(seconds=300)).isoformat() + "Z"
        blocks = [h for h in header if h is not sec]
        refs = []
        for el in [body, ts, *blocks]:
            el.set(f"{{{WSU}}}Id", f"{etree.QName(el).localname}-{uuid.uuid4().hex}")
            refs.append(SignatureReference("#" + el.get(f"{{{WSU}}}Id"), c14n_method=EXC))
        token.set(f"{{{WSU}}}Id", "X509-" + uuid.uuid4().hex)
        ki = etree.Element(f"{{{DS}}}KeyInfo")
        ref = etree.SubElement(etree.SubElement(ki, f"{{{WSSE}}}SecurityTokenReference"),
                               f"{{{WSSE}}}Reference", ValueType=wssecurity.X509V3)
        ref.set("URI", "#" + token.get(f"{{{WSU}}}Id"))
        sec.append(self.signer.sign(env, key=self.key.key, reference_uri=refs, key_info=ki))
        return etree.tostring(env)

    def verify(self, unsigned: bytes, signed: bytes) -> etree._Element:
        config = SignatureConfiguration(location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/",
                                        expect_references=REFERENCES[unsigned],
                                        ignore_ambiguous_key_info=True)
        results = XMLVerifier().verify(signed, x509_cert=self.key.cert, expect_config=config)
        return results[0].signed_xml


def cpu_us(fn: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=200, help="operations per round")
    args = ap.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    signing = wssecurity.SigningKey(key, self_signed(key, "bench"))
    sides = {"kms-ws": Ours(signing), "signxml": Signxml(signing)}
    cases: list[tuple[str, str, Callable[[], object]]] = []
    for msg, name in ((REQUEST, "request"), (RESPONSE, "response")):
        for side, impl in sides.items():
            signed = impl.sign(msg)
            for checker in sides.values():  # each verifies what the other signs
                checker.verify(msg, signed)
            cases.append((f"{name}-sign", side, lambda i=impl, m=msg: i.sign(m)))
            cases.append((f"{name}-verify", side,
                          lambda i=impl, m=msg, s=signed: i.verify(m, s)))
    samples: dict[tuple[str, str], list[float]] = {(op, side): [] for op, side, _ in cases}
    for fn in (c[2] for c in cases):
        fn()  # warm up
    for _ in range(args.rounds):
        for op, side, fn in cases:
            samples[(op, side)].append(cpu_us(fn, args.n))
    load = os.getloadavg()[0]
    print(f"WS-Security sign/verify, µs CPU per operation (median of {args.rounds} rounds "
          f"of {args.n}; load average {load:.2f} at the end)")
    print(f"{'operation':<18}{'kms-ws':>10}{'signxml':>10}{'signxml/kms-ws':>17}")
    for op in ("request-sign", "request-verify", "response-sign", "response-verify"):
        ours = statistics.median(samples[(op, "kms-ws")])
        theirs = statistics.median(samples[(op, "signxml")])
        print(f"{op:<18}{ours:>10.0f}{theirs:>10.0f}{theirs / ours:>16.1f}x")


if __name__ == "__main__":
    main()
