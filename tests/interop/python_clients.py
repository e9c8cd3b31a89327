"""The Python clients of the interop tests: suds-community (SOAP 1.1) and zeep, each built
only from the served WSDL, over HTTPS, trusting the CA file it is given (suds through a
urllib HTTPS handler with an ssl context of that CA, zeep through a requests session that
verifies with it). Like the Java, C++, PHP and JavaScript clients beside them, each runs
every P1619.3 §6 client operation and returns what it saw (the same keys as their JSON); a
step that fails is reported with the toolkit's own exception ("step", "error")."""

from __future__ import annotations

import base64
import logging
import ssl
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
import suds
import suds.client
import suds.transport.http
import zeep
import zeep.exceptions
import zeep.transports

KMS = "urn:kms-ws:p1619.3:1"
OFFERED = ["operation:CreateKey", "operation:GetKey", "x-interop:unknown"]


@contextmanager
def _warnings_of(*loggers: str) -> Iterator[list[str]]:
    """Collects Python warnings and WARNING+ records of the toolkit's loggers."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.name}: {record.getMessage()}")

    keep = Keep(logging.WARNING)
    for name in loggers:
        logging.getLogger(name).addHandler(keep)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield seen
        seen.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(keep)


class _SudsHttps(suds.transport.http.HttpTransport):
    """suds' urllib transport, verifying HTTPS servers against `cafile` (and their name)."""

    def __init__(self, cafile: str) -> None:
        super().__init__()
        self._tls = ssl.create_default_context(cafile=cafile)

    def u2handlers(self) -> list[urllib.request.BaseHandler]:
        return [*super().u2handlers(), urllib.request.HTTPSHandler(context=self._tls)]


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _run(out: dict[str, Any], steps: Callable[[Callable[[str], None]], None]) -> dict[str, Any]:
    where = {"step": "start"}

    def step(name: str) -> None:
        where["step"] = name

    try:
        steps(step)
        where["step"] = "done"
    except Exception as exc:  # noqa: BLE001 - reported with the toolkit's own error
        out["error"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:2000]
    out["step"] = where["step"]
    return out


def run_suds(wsdl: str, cafile: str, port: str, user: str, password: str, tag: str,
             stored: bytes, missing: str) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def text(value: Any) -> str | None:  # suds answers with its own str subclass
        return None if value is None else str(value)

    def key(k: Any) -> dict[str, Any]:  # suds leaves base64Binary as its text
        return {"id": text(k.KeyId), "name": text(getattr(k, "FriendlyName", None)),
                "wrapping": text(k.KeyBlob.WrappingType), "length": int(k.KeyBlob.Length),
                "data_b64": text(k.KeyBlob.Data)}

    def steps(step: Callable[[str], None]) -> None:
        step("Client")
        with _warnings_of("suds") as seen:
            client = suds.client.Client(wsdl, cache=None, port=port,
                                        transport=_SudsHttps(cafile))
        if seen:
            out["warnings"] = seen
        svc = client.service

        step("Authenticate")
        session = svc.Authenticate(RequestType="Login", Credential={
            "CredentialType": "UsernamePassword",
            "UsernamePassword": {"Username": user, "Password": password}})
        token = text(session.Credential.SessionToken)
        out.update(client_id=text(session.ClientId), session_token=token)
        # From here on the session credential travels in the kms:Credential header.
        credential = client.factory.create(f"{{{KMS}}}Credential")
        credential.CredentialType = "Session"
        credential.SessionToken = token
        client.set_options(soapheaders=credential)

        step("GetServerCapabilities")
        out["capabilities"] = [text(c.Name)
                               for c in _listed(svc.GetServerCapabilities().Capability)]

        step("NegotiateCapabilities")
        got = svc.NegotiateCapabilities(Capabilities={"Capability": [{"Name": n} for n in OFFERED]})
        out["negotiated"] = [text(c.Name) for c in _listed(got.Capability)]

        step("CreateKey")
        created = svc.CreateKey(FriendlyName=f"{tag}-created", KeyLength=256)
        out["created"] = key(created)

        step("StoreKey")
        out["stored_id"] = text(svc.StoreKey(
            KeyBlob={"ProtocolVersion": 1, "WrappingType": "none", "Length": len(stored),
                     "Data": base64.b64encode(stored).decode()},
            FriendlyName=f"{tag}-stored").KeyId)

        step("GetKey by id")
        out["by_id"] = [key(k) for k in _listed(getattr(svc.GetKey(KeyId=created.KeyId),
                                                        "Key", None))]
        step("GetKey by name")
        out["by_name"] = [key(k) for k in _listed(getattr(
            svc.GetKey(FriendlyName=f"{tag}-stored"), "Key", None))]

        step("PushAuditMessage")
        pushed = svc.PushAuditMessage(AuditMessage=[{
            "KeyId": created.KeyId, "Event": "KeyUsed", "Message": f"{tag} used the key"}])
        out["audit"] = {"success": bool(pushed.Success), "accepted": int(pushed.Accepted)}

        step("GetRandomBytes")
        out["random_b64"] = text(svc.GetRandomBytes(NumberOfBytes=48))

        step("GetKey of a missing key")
        try:
            svc.GetKey(KeyId=missing)
            out["fault"] = "no fault"
        except suds.WebFault as fault:  # the typed detail, parsed by the WSDL's fault message
            out["fault"] = {"error_code": text(fault.fault.detail.KmsFault.ErrorCode),
                            "api": "WebFault.fault.detail.KmsFault.ErrorCode"}

    return _run(out, steps)


def run_zeep(wsdl: str, cafile: str, service: str, port: str, user: str, password: str,
             tag: str, stored: bytes, missing: str) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def key(k: Any) -> dict[str, Any]:
        return {"id": k.KeyId, "name": k.FriendlyName, "wrapping": k.KeyBlob.WrappingType,
                "length": k.KeyBlob.Length, "data_b64": base64.b64encode(k.KeyBlob.Data).decode()}

    def steps(step: Callable[[str], None]) -> None:
        step("Client")
        with _warnings_of("zeep") as seen:
            session = requests.Session()
            session.verify = cafile
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE of the environment override a
            # session's verify: the CA given is the only one trusted, whatever the machine says
            session.trust_env = False
            client = zeep.Client(wsdl, transport=zeep.transports.Transport(session=session))
            svc = client.bind(service, port)
        if seen:
            out["warnings"] = seen

        step("Authenticate")
        session = svc.Authenticate(RequestType="Login", Credential={
            "CredentialType": "UsernamePassword",
            "UsernamePassword": {"Username": user, "Password": password}})
        token = session.Credential.SessionToken
        out.update(client_id=session.ClientId, session_token=token)
        # From here on the session credential travels in the kms:Credential header.
        credential = client.get_element(f"{{{KMS}}}Credential")
        client.set_default_soapheaders([credential(CredentialType="Session",
                                                   SessionToken=token)])

        step("GetServerCapabilities")
        # zeep returns the one child of a response (here the Capability list) itself
        out["capabilities"] = [c.Name for c in svc.GetServerCapabilities()]

        step("NegotiateCapabilities")
        got = svc.NegotiateCapabilities(Capabilities={"Capability": [{"Name": n} for n in OFFERED]})
        out["negotiated"] = [c.Name for c in got]

        step("CreateKey")
        created = svc.CreateKey(FriendlyName=f"{tag}-created", KeyLength=256)
        out["created"] = key(created)

        step("StoreKey")
        out["stored_id"] = svc.StoreKey(
            KeyBlob={"ProtocolVersion": 1, "WrappingType": "none", "Length": len(stored),
                     "Data": stored}, FriendlyName=f"{tag}-stored").KeyId

        step("GetKey by id")
        out["by_id"] = [key(k) for k in svc.GetKey(KeyId=created.KeyId).Key]
        step("GetKey by name")
        out["by_name"] = [key(k) for k in svc.GetKey(FriendlyName=f"{tag}-stored").Key]

        step("PushAuditMessage")
        pushed = svc.PushAuditMessage(AuditMessage=[{
            "KeyId": created.KeyId, "Event": "KeyUsed", "Message": f"{tag} used the key"}])
        out["audit"] = {"success": pushed.Success, "accepted": pushed.Accepted}

        step("GetRandomBytes")
        out["random_b64"] = base64.b64encode(svc.GetRandomBytes(NumberOfBytes=48)).decode()

        step("GetKey of a missing key")
        try:
            svc.GetKey(KeyId=missing)
            out["fault"] = "no fault"
        except zeep.exceptions.Fault as fault:
            # zeep hands the Detail over as XML; the WSDL's element type reads it.
            kms_fault = client.get_element(f"{{{KMS}}}KmsFault")
            entry = fault.detail.find(f"{{{KMS}}}KmsFault") if fault.detail is not None else None
            out["fault"] = {"error": f"zeep Fault without kms:KmsFault: {fault}"} if entry is None \
                else {"error_code": kms_fault.parse(entry, client.wsdl.types).ErrorCode,
                      "api": "Fault.detail parsed by client.get_element('kms:KmsFault')"}

    return _run(out, steps)
