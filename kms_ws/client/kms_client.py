"""KmsClient: one snake_case method per §6 operation, plain Python values in and out.

    client = KmsClient("http://127.0.0.1:5985/wsman", "alice", "secret")
    key = client.create_key(friendly_name="tape-0001")
    assert client.get_key(key.key_id).value == key.value

Faults raise KmsFault (subcode, reason, error code, request id, HTTP status).

Responses are signed by the server (Body, Timestamp, every header block); the client
verifies each one and uses only what was signed (UntrustedResponse when it is unsigned,
forged, stale, leaves out or repeats a header block the client acts on, or answers
another request or action; a fault the server signed without reading the request, such
as wsman:EncodingLimit for an oversize one, raises as that KmsFault). Pass `server_cert` (the
server's `server-signing.pem`, or its PEM bytes) to pin it; without it the client fetches
`GET /wsman?signing-cert` once over its own connection — trust on first use, as strong as
that connection (use HTTPS). `signing_key` (load_signing_key / hmac_signing_key) signs
every request (WS-Security): the signer is then the caller, no password needed.

The calls applications make in loops (get_key, create_key, store_key, get_random_bytes,
push_audit_messages) take a fast path (kms_ws.client.fast_path: prebuilt envelopes, lxml,
one kept-alive http.client connection) with the same verification, faults and results;
`fast_path=False` sends them through zeep like every other call (so does a client whose
environment names an HTTP proxy for the server).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from requests.auth import HTTPBasicAuth
from requests.utils import select_proxy
from zeep import Client, Settings
from zeep.exceptions import Fault, TransportError
from zeep.transports import Transport

from ..codec import documents
from ..domain.errors import KmsError
from ..resources import wsdl_dir
from ..security.wssecurity import SigningKey
from ..security.xml import text_of
from ..soap.faults import fault_of
from ..xmlns import KMS
from .addressing import AddressingPlugin
from .connection import HttpConnection
from .fast_path import FastPath, Proof, base64_of, child
from .listener import ClientServiceListener, StatusHandler, UpdateHandler
from .pep import PepProver
from .signing import SignaturePlugin
from .unwrap import BlobFields, Kek, PrivateKeyHolder, Unwrapper
from .values import (
    Key,
    KmsFault,
    RemovedObject,
    UntrustedResponse,
    UpdatedObject,
    fault_from,
    key_from_element,
    key_metadata,
    many,
    one,
    plain,
    removed_from_element,
)
from .wsman import KEY_URI, PUSH_WITH_ACK, UPDATE_PAGE, WsManChannel

_BINDING = f"{{{KMS}}}KmsSoap12Binding"
DataSets = Mapping[str, str] | Iterable[tuple[str, str]]

T = TypeVar("T")


class _Session(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE override a session's own `verify` (psf/requests
    #3829): the CA the caller named must win, or TLS verification silently changes."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        if verify is None:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


class KmsClient:
    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 *, verify: bool | str = True, cert: str | tuple[str, str] | None = None,
                 timeout: float = 30, plugins: Sequence[Any] = (),
                 signing_key: SigningKey | None = None,
                 server_cert: str | bytes | None = None, verify_responses: bool = True,
                 wrapping_keys: Iterable[Kek | PrivateKeyHolder] = (),
                 fast_path: bool = True) -> None:
        """wrapping_keys: this client's KEKs / private keys (with their WrappingKeyIds),
        to open the keys the server delivers wrapped. fast_path: see the module doc."""
        self.url = url
        self._unwrapper = Unwrapper(wrapping_keys)
        session = _Session()
        session.verify = verify
        if cert is not None:
            session.cert = cert
        if username is not None:
            # UTF-8 as RFC 7617 asks (requests would send str credentials as Latin-1)
            session.auth = HTTPBasicAuth(username.encode("utf-8"),
                                         (password or "").encode("utf-8"))
        self._http = session
        self._addressing = AddressingPlugin(url)
        self._signature = SignaturePlugin(self._addressing, signing_key, verify_responses)
        if server_cert is not None:
            pem = server_cert if isinstance(server_cert, bytes) else Path(server_cert).read_bytes()
            self._signature.server_cert = x509.load_pem_x509_certificate(pem)
        self._zeep = Client(str(wsdl_dir() / "kms.wsdl"),
                            transport=Transport(session=session, timeout=timeout,
                                                operation_timeout=timeout),
                            settings=Settings(strict=True, xml_huge_tree=False),
                            plugins=[self._addressing, self._signature, *plugins])
        self._service = self._zeep.create_service(_BINDING, url)
        self._types = self._zeep.type_factory("ns0")
        self._wsman = WsManChannel(url, session, timeout, [self._signature, *plugins],
                                   KmsFault, self._session_header, self._message_id)
        proxied = select_proxy(url, session.merge_environment_settings(
            url, {}, None, None, None)["proxies"])
        self._fast = FastPath(url, HttpConnection(url, session, timeout, cert),
                              self._addressing, self._signature, plugins, self._authorization
                              ) if fast_path and not proxied else None

    # ---- sessions ---------------------------------------------------------------------
    def authenticate(self, request_type: str = "Login") -> str | None:
        """Login: open a session; later requests carry it instead of the password.
        Validate: check the credential. Returns the client id."""
        res = self._call("Authenticate", RequestType=request_type)
        if res.Credential is not None and res.Credential.SessionToken:
            self._addressing.session_token = res.Credential.SessionToken
            self._http.auth = None
        client_id: str | None = res.ClientId
        return client_id

    login = authenticate

    def logout(self) -> None:
        token = self._addressing.session_token
        if token is None:
            return
        self._call("Authenticate", RequestType="Logout",
                   Credential={"CredentialType": "Session", "SessionToken": token})
        self._addressing.session_token = None

    # ---- operations ---------------------------------------------------------------------
    def register_endpoint(self, kind: str, name: str, *, password: str | None = None,
                          capabilities: Sequence[str] = (), description: str | None = None,
                          pep_attributes: DataSets | None = None,
                          realms: Sequence[str] | Mapping[str, Sequence[str]] = (),
                          certificate: bytes | None = None,
                          symmetric_key: bytes | None = None,
                          wrapping_values: Mapping[str, bytes | x509.Certificate] | None = None,
                          endpoint_type_id: str | None = None,
                          cim_identity: Mapping[str, Mapping[str, str | int]] | None = None
                          ) -> str:
        """One credential: a password, an X.509 certificate (PEM or DER; the endpoint
        then signs its requests, or authenticates with TLS) or an HMAC secret.
        realms: realm URIs, or {realm URI: its rights there} (a client: every right when
        none are named; a PEP: its registering client's own).
        wrapping_values: the endpoint's wrapping keys {WrappingKeyId: KEK or certificate}.
        cim_identity: §4.6 {"PhysicalElement"|"SoftwareIdentity": {property: value}}, which
        the administrators' EndpointTypeRules map to the endpoint's type (endpoint_type_id:
        the type asked for instead)."""
        cred = _new_credential(name, password, certificate, symmetric_key)
        res = self._call(
            "RegisterEndpoint", Kind=kind, Name=name, Description=description,
            EndpointTypeId=endpoint_type_id,
            Capabilities=_caps(capabilities) if capabilities else None, Credential=cred,
            PepAttributes={"Attribute": _pairs(pep_attributes)} if pep_attributes else None,
            RealmAssociations=_realm_associations(realms),
            WrappingValues=_wrapping_values(wrapping_values) if wrapping_values else None,
            CimIdentity=dict(cim_identity) if cim_identity else None)
        return str(res.EndpointId)

    def register_wrapping_values(self, values: Mapping[str, bytes | x509.Certificate] | None =
                                 None, *, endpoint_id: str | None = None,
                                 retire: Sequence[str] = ()) -> list[str]:
        """Register wrapping keys {WrappingKeyId: KEK bytes or certificate} for this client
        (or a PEP it is associated with) and retire others; returns the ids now held,
        newest first. KEKs are never returned by the server."""
        res = self._call("RegisterWrappingValues", EndpointId=endpoint_id,
                         WrappingValues=_wrapping_values(values) if values else None,
                         Retire=list(retire) or None)
        return [w.WrappingKeyId for w in (res.WrappingKey or [])]

    def negotiate_capabilities(self, capabilities: Sequence[str]) -> list[str]:
        return _cap_names(self._call("NegotiateCapabilities", Capabilities=_caps(capabilities)))

    def get_server_capabilities(self) -> list[str]:
        return _cap_names(self._call("GetServerCapabilities"))

    def create_key(self, friendly_name: str | None = None, template: str | None = None,
                   datasets: DataSets | None = None, length: int | None = 256,
                   cipher_type: str | None = None, pep_id: str | None = None,
                   attributes: Mapping[str, str] | None = None,
                   description: str | None = None, wrapping_type: str | None = None,
                   pep_proof: PepProver | None = None, realms: Sequence[str] = ()) -> Key:
        """pep_proof: the PEP's prover (PepSigner), when the PEP authenticates itself.
        realms: the realms the key goes into (Create needed in each); none: the caller's
        one default realm (a caller that may create in several must name them)."""
        tpl: dict[str, Any] = {}
        if template is not None:  # the template decides cipher and length
            tpl = {"TemplateId": template} if _is_guid(template) else {"TemplateName": template}
            length = None
        args = dict(FriendlyName=friendly_name, **tpl, CipherType=cipher_type,
                    KeyLength=length, DataSets=_datasets(datasets), PepId=pep_id,
                    AttributeAssociations=_attrs(attributes), Description=description,
                    WrappingType=wrapping_type, RealmAssociations=_realm_associations(realms))
        if self._fast is not None:
            res = self._fast_call("CreateKey", args, pep_proof, pep_id, None)
            return key_from_element(child(res, "Key"), self._unwrapper)
        return self._key(self._call("CreateKey", **args, _pep=(pep_proof, pep_id, None)))

    def store_key(self, value: bytes, friendly_name: str | None = None,
                  datasets: DataSets | None = None, cipher_type: str | None = None,
                  pep_id: str | None = None, attributes: Mapping[str, str] | None = None,
                  description: str | None = None, wrapping_type: str = "none",
                  wrapping_key_id: str | None = None,
                  pep_proof: PepProver | None = None, realms: Sequence[str] = ()) -> str:
        """wrapping_type (a KEK type): the key travels wrapped under this client's KEK
        `wrapping_key_id` (one of its wrapping_keys, registered with the server).
        realms: as for create_key."""
        args = dict(KeyBlob=self._unwrapper.blob_for_server(value, wrapping_type,
                                                            wrapping_key_id),
                    FriendlyName=friendly_name, CipherType=cipher_type,
                    DataSets=_datasets(datasets), PepId=pep_id,
                    AttributeAssociations=_attrs(attributes), Description=description,
                    RealmAssociations=_realm_associations(realms))
        if self._fast is not None:
            res = self._fast_call("StoreKey", args, pep_proof, pep_id, None)
            return text_of(child(res, "KeyId"))
        return str(self._call("StoreKey", **args, _pep=(pep_proof, pep_id, None)).KeyId)

    def get_key(self, key_id: str | None = None, friendly_name: str | None = None,
                datasets: DataSets | None = None, *, attributes: Mapping[str, str] | None = None,
                usage: str | None = None, pep_id: str | None = None,
                template_id: str | None = None, wrapping_type: str | None = None,
                pep_proof: PepProver | None = None) -> Key:
        """One key: by id, by friendly name (plus reference attributes), or by data sets.
        pep_proof: the PEP's prover (PepSigner), when the PEP authenticates itself; the key
        then arrives double wrapped, its inner layer for the PEP only."""
        if key_id is not None:
            sel: dict[str, Any] = {"KeyId": key_id}
        elif friendly_name is not None:
            sel = {"FriendlyName": friendly_name, "AttributeAssociations": _attrs(attributes)}
        elif datasets is not None:
            sel = {"DataSets": _datasets(datasets), "TemplateId": template_id}
        else:
            raise ValueError("get_key needs key_id, friendly_name or datasets")
        args = dict(sel, PepId=pep_id, Usage=usage, WrappingType=wrapping_type)
        if self._fast is not None:
            res = self._fast_call("GetKey", args, pep_proof, pep_id, key_id)
            return key_from_element(child(res, "Key"), self._unwrapper)
        return self._key(self._call("GetKey", **args, _pep=(pep_proof, pep_id, key_id)).Key[0])

    def find_keys(self, attributes: Mapping[str, str] | None = None,
                  altered_since: datetime | None = None, *, usage: str | None = None,
                  max_keys: int = 100) -> tuple[list[Key], bool]:
        """Keys by ANDed attribute match, or every key altered since a time; returns
        (keys, more). Keys the caller may not use now come without a value."""
        sel: dict[str, Any] = ({"MatchAttributes": _attrs(attributes)} if attributes
                               else {"AlteredSince": altered_since})
        res = self._call("GetKey", **sel, Usage=usage, MaxKeys=max_keys)
        return [self._key(k) for k in (res.Key or [])], bool(res.More)

    def keys_for_decryption(self, datasets: DataSets, *, pep_id: str | None = None,
                            template_id: str | None = None, max_keys: int = 100,
                            wrapping_type: str | None = None,
                            pep_proof: PepProver | None = None) -> tuple[list[Key], bool]:
        """GetKey by data sets for Decrypt with AllBoundKeys: every key that protected the
        data (bound to all the data sets), newest first; returns (keys, more). Needs Read
        in the keys' realms; keys that cannot be delivered now come without a value."""
        res = self._call("GetKey", DataSets=_datasets(datasets), TemplateId=template_id,
                         AllBoundKeys=True, PepId=pep_id, Usage="Decrypt", MaxKeys=max_keys,
                         WrappingType=wrapping_type, _pep=(pep_proof, pep_id, None))
        return [self._key(k) for k in (res.Key or [])], bool(res.More)

    def get_bindings(self, dataset: tuple[str, str] | None = None, *,
                     key_id: str | None = None,
                     max_records: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Which keys protected a data set (NAME, VALUE), or which data sets a key
        protected: the bindings reported to the server (KeyId, DataSet, ReportedBy, Time),
        newest first, of keys in realms where this client holds Read; returns (bindings,
        more)."""
        if (dataset is None) == (key_id is None):
            raise ValueError("get_bindings needs a dataset or a key_id")
        sel: dict[str, Any] = {"KeyId": key_id} if key_id else \
            {"DataSet": {"Name": dataset[0], "Value": dataset[1]}}  # type: ignore[index]
        res = self._call("GetBindings", **sel, MaxRecords=max_records)
        return [plain(b) for b in (res.Binding or [])], bool(res.More)

    def get_key_if_altered(self, key_id: str, since_version: int) -> Key | None:
        res = self._call("GetKey", KeyId=key_id, IfAlteredSinceVersion=since_version)
        return self._key(res.Key[0]) if res.Key else None

    def push_audit_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Each message: event (required), key_id, pep_id, time, message."""
        items = [{"KeyId": m.get("key_id"), "PepId": m.get("pep_id"), "Event": m["event"],
                  "Time": m.get("time"), "Message": m.get("message")} for m in messages]
        if not items:
            raise ValueError("push_audit_messages needs at least one message")
        if self._fast is not None:
            res = self._fast_call("PushAuditMessage", {"AuditMessage": items})
            return int(text_of(child(res, "Accepted")))
        return int(self._call("PushAuditMessage", AuditMessage=items).Accepted)

    def get_random_bytes(self, n: int) -> bytes:
        if self._fast is not None:
            return base64_of(child(self._fast_call("GetRandomBytes", {"NumberOfBytes": n}),
                                   "RandomBytes"))
        return bytes(self._call("GetRandomBytes", NumberOfBytes=n))

    # ---- administration (an administrator's credential) ---------------------------------
    # Objects are plain dicts keyed by their schema element names (see schemas/kms.xsd):
    #   c.admin_create("RetentionPolicy", {"Name": "90d", "TExpiration": "P90D"})
    def admin_create(self, kind: str, obj: Mapping[str, Any], password: str | None = None,
                     *, certificate: bytes | None = None,
                     symmetric_key: bytes | None = None) -> dict[str, Any]:
        """password: a new Client's. certificate (PEM or DER) / symmetric_key (HMAC
        secret): a new Client's or PEP's signing credential (a PEP's becomes its
        AuthenticationPolicy)."""
        cred = _new_credential(obj.get("Name"), password, certificate, symmetric_key)
        return one(self._call("AdminCreate", **{kind: dict(obj)}, Credential=cred), kind)

    def admin_get(self, kind: str, ref: str) -> dict[str, Any]:
        return one(self._call("AdminGet", Kind=kind, Id=ref), kind)

    def admin_list(self, kind: str, altered_since: datetime | None = None,
                   max_items: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        res = self._call("AdminList", Kind=kind, AlteredSince=altered_since, MaxItems=max_items)
        return many(res, kind), bool(getattr(res, "More", None))

    def admin_edit(self, kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        return one(self._call("AdminEdit", **{kind: dict(obj)}), kind)

    def admin_delete(self, kind: str, ref: str,
                     version: int | None = None) -> dict[str, Any] | None:
        """None when the object was removed; else what was kept (a tombstone)."""
        res = self._call("AdminDelete", Kind=kind, Id=ref, Version=version)
        return None if getattr(res, "Removed", None) else one(res, kind)

    def admin_associate(self, kind: str, ref: str, target_kind: str, target_ref: str,
                        rights: Sequence[str] = ()) -> dict[str, Any]:
        return one(self._call("AdminAssociate", Kind=kind, Id=ref,
                               Target={"Kind": target_kind, "Id": target_ref},
                               Right=list(rights) or None), kind)

    def admin_disassociate(self, kind: str, ref: str, target_kind: str,
                           target_ref: str) -> dict[str, Any]:
        return one(self._call("AdminDisassociate", Kind=kind, Id=ref,
                               Target={"Kind": target_kind, "Id": target_ref}), kind)

    def admin_audit(self, key_id: str | None = None, client_id: str | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    max_records: int | None = None) -> list[dict[str, Any]]:
        res = self._call("AdminAudit", KeyId=key_id, ClientId=client_id, From=since, To=until,
                         MaxRecords=max_records)
        return [plain(r) for r in (res or [])]

    def admin_bindings(self, key_id: str | None = None,
                       dataset: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Which data sets a key protected, or which keys protected a data set."""
        sel: dict[str, Any] = {"KeyId": key_id} if key_id else \
            {"DataSet": {"Name": dataset[0], "Value": dataset[1]}} if dataset else {}
        res = self._call("AdminBindings", **sel)
        return [plain(b) for b in (res.Binding or [])]

    # ---- WS-Management ------------------------------------------------------------------
    def identify(self) -> dict[str, str]:
        """wsmid:Identify: ProtocolVersion, ProductVendor, ProductVersion."""
        return self._ws(self._wsman.identify)

    def get_key_metadata(self, key_id: str, *, include_value: bool = False) -> Key:
        """WS-Transfer Get on the Key resource: metadata, and the value when asked for and
        the caller may receive it."""
        options = {"IncludeKeyValue": "true"} if include_value else None
        return key_from_element(self._ws(self._wsman.get, KEY_URI, {"KeyId": key_id}, options),
                                self._unwrapper)

    def get_update_list(self, update_type: str = "AllKeys",
                        tokens: Mapping[str, int] | None = None, *, pep_id: str | None = None,
                        max_elements: int = UPDATE_PAGE, pep_proof: PepProver | None = None
                        ) -> Generator[Key | UpdatedObject | RemovedObject, None,
                                       dict[str, int]]:
        """§6.12 GetUpdateList: yields the keys changed since `tokens` (None or 0: all of
        them) — or, for a custom type ("Policies", "RetentionPolicy", "KeyGroup", ...),
        UpdatedObject(kind, document), and RemovedObject(kind, object_id, removed_at) for
        one deleted since — and returns the new UpdateVersioningTokens, for the next call:

            tokens = yield from client.get_update_list(tokens=tokens)

        max_elements: items per page (Enumerate and each Pull); the default is the most a
        kms-ws server sends in one. pep_proof: the PEP's prover (PepSigner) for a list
        scoped to a PEP that authenticates itself; it proves the Enumerate, the Pulls
        continue under it.
        """
        it = self._wsman.update_list(update_type, dict(tokens or {}), pep_id, max_elements,
                                     pep_proof)
        while True:
            try:
                el = self._ws(next, it)
            except StopIteration as stop:
                return dict(stop.value)
            if el.tag == f"{{{KMS}}}Key":
                yield key_from_element(el, self._unwrapper)
            elif el.tag == f"{{{KMS}}}RemovedObject":
                yield removed_from_element(el)
            else:
                yield UpdatedObject(etree.QName(el).localname, documents.decode(el))

    def subscribe(self, notify_to: str, update_type: str = "AllKeys", *,
                  pep_id: str | None = None, expires: str | None = None,
                  mode: str = PUSH_WITH_ACK, end_to: str | None = None,
                  announce_end: bool = True, pep_proof: PepProver | None = None) -> str:
        """WS-Eventing Subscribe to §6.11 UpdatePending at `notify_to` (a
        ClientServiceListener's url); returns the subscription identifier. The server
        sends SubscriptionEnd, when it ends the subscription, to `end_to` (default: the
        notify_to address; announce_end=False: no EndTo, no SubscriptionEnd). pep_proof:
        the PEP's prover, for a subscription scoped to a PEP that authenticates itself."""
        end = (end_to or notify_to) if announce_end else None
        return self._ws(self._wsman.subscribe, notify_to, update_type, pep_id, expires, mode,
                        end, pep_proof)

    def listener(self, on_update: UpdateHandler, status: StatusHandler | None = None,
                 **options: Any) -> ClientServiceListener:
        """A ClientServiceListener that verifies the server's calls against the server
        certificate this client trusts for responses (verify_responses=False: it does not
        verify either). options: host, port, inspect, on_end."""
        self._trust()
        verify = self._signature.verify_responses
        return ClientServiceListener(on_update, status, server_cert=self._signature.server_cert
                                     if verify else None, verify_requests=verify, **options)

    def unsubscribe(self, subscription_id: str) -> None:
        self._ws(self._wsman.subscription_call, "Unsubscribe", subscription_id)

    def renew_subscription(self, subscription_id: str) -> None:
        self._ws(self._wsman.subscription_call, "Renew", subscription_id)

    def get_endpoint_status(self, subscription_id: str, *, locale: str | None = None,
                            target_of_interest: str | None = None) -> dict[str, Any]:
        """§6.10 (administrators): the server asks the subscribed endpoint for its status."""
        res = self._call("GetEndpointStatus", SubscriptionId=subscription_id, Locale=locale,
                         TargetOfInterest=target_of_interest)
        status = {k: getattr(res, k) for k in ("EndpointId", "Locale", "OperatingMode",
                                               "KeysInUse", "RekeyStatus")
                  if getattr(res, k, None) is not None}
        status["Status"] = {a.Name: a.Value for a in (res.Status.Attribute if res.Status
                                                      else [])}
        return status

    def _message_id(self, message_id: str, action: str) -> None:
        """What a signed response must answer (RelatesTo, Action)."""
        self._addressing.last_message_id = message_id
        self._addressing.last_action = action

    def _session_header(self, header: Any) -> None:
        token = self._addressing.session_token
        if token:
            cred = etree.SubElement(header, f"{{{KMS}}}Credential")
            etree.SubElement(cred, f"{{{KMS}}}CredentialType").text = "Session"
            etree.SubElement(cred, f"{{{KMS}}}SessionToken").text = token

    # ---- plumbing -----------------------------------------------------------------------
    def _key(self, k: Any) -> Key:
        key = key_metadata(k)
        blob = k.KeyBlob
        if blob is not None:
            key.wrapping_type = blob.WrappingType
            key.value, key.pep_blob = self._unwrapper.open_key(BlobFields(
                key.key_id, blob.WrappingType, blob.WrappingKeyId, blob.InnerWrappingType,
                blob.InnerWrappingKeyId, int(blob.Length), bytes(blob.Data),
                bytes(blob.CheckValue) if blob.CheckValue is not None else None))
        return key

    def _trust(self) -> None:
        if self._signature.verify_responses and self._signature.server_cert is None:
            self._signature.server_cert = self._fetch_server_cert()

    def _ws(self, fn: Callable[..., T], *args: Any) -> T:
        """A WS-Management request: responses verified as for the §6 operations."""
        self._trust()
        try:
            return fn(*args)
        except KmsError as exc:  # raised by the signature plugin on a response
            raise _untrusted(exc) from None

    def _fast_call(self, op: str, args: Mapping[str, Any], prover: PepProver | None = None,
                   pep_id: str | None = None, key_id: str | None = None) -> etree._Element:
        """_call on the fast path: the response's Body element."""
        assert self._fast is not None
        self._trust()
        proof: Proof | None = None
        if prover is not None:
            if pep_id is None:
                raise ValueError("a PEP proof goes with a request for a PEP (pep_id)")
            proof = lambda mid: prover.prove(op, pep_id, key_id, mid)  # noqa: E731
        try:
            return self._fast.call(op, args, proof)
        except KmsError as exc:  # raised by the signature plugin on a response
            raise _untrusted(exc) from None

    def _authorization(self) -> str | None:
        """The HTTP Basic header of the session's credentials (none once logged in)."""
        auth = self._http.auth
        if not isinstance(auth, HTTPBasicAuth):
            return None
        user, password = auth.username, auth.password
        return "Basic " + base64.b64encode(_utf8(user) + b":" + _utf8(password)).decode()

    def _call(self, op: str, **kwargs: Any) -> Any:
        """_pep=(the PEP's prover, PepId, KeyId): the request carries the PEP's proof."""
        prover, pep_id, key_id = kwargs.pop("_pep", (None, None, None))
        args = {k: v for k, v in kwargs.items() if v is not None}
        self._trust()
        if prover is not None:
            if pep_id is None:
                raise ValueError("a PEP proof goes with a request for a PEP (pep_id)")
            self._addressing.pep_proof = lambda mid: prover.prove(op, pep_id, key_id, mid)
        try:
            return getattr(self._service, op)(**args)
        except KmsError as exc:  # raised by the signature plugin on a response
            raise _untrusted(exc) from None
        except Fault as fault:
            raise fault_from(fault) from None
        except TransportError as exc:
            raise KmsFault(None, f"HTTP {exc.status_code}", http_status=exc.status_code) from None
        finally:
            self._addressing.pep_proof = None

    def _fetch_server_cert(self) -> x509.Certificate:
        try:
            r = self._http.get(self.url + "?signing-cert", timeout=30)
        except requests.RequestException as exc:
            raise KmsFault(None, unreachable(self.url, exc) + " (fetching its signing "
                           "certificate)") from None
        if r.status_code != 200:
            raise KmsFault(None, f"HTTP {r.status_code} fetching the server's signing "
                           "certificate", http_status=r.status_code)
        return x509.load_pem_x509_certificate(r.content)

    def close(self) -> None:
        self._http.close()
        if self._fast is not None:
            self._fast.close()

    def __enter__(self) -> KmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unreachable(url: str, exc: requests.RequestException) -> str:
    """One line saying why the server at `url` could not be talked to."""
    why = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError):
        why += ": the server's TLS certificate did not verify" \
            if "CERTIFICATE_VERIFY_FAILED" in str(exc) else ": the TLS handshake failed"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        why += ": nothing answers there; is the server running, is the URL right?"
    return f"the server at {url} cannot be reached ({why})"


def _untrusted(exc: KmsError) -> UntrustedResponse:
    return UntrustedResponse(fault_of(exc).subcode, exc.reason, exc.error_code)


def _utf8(v: str | bytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode("utf-8")


def _is_guid(v: str) -> bool:
    try:
        return str(uuid.UUID(v)) == v.lower()
    except ValueError:
        return False


def _wrapping_values(values: Mapping[str, bytes | x509.Certificate]) -> dict[str, Any]:
    items = []
    for kid, v in values.items():
        if isinstance(v, x509.Certificate):
            items.append({"WrappingKeyId": kid,
                          "Certificate": v.public_bytes(serialization.Encoding.DER)})
        else:
            items.append({"WrappingKeyId": kid, "SymmetricKey": bytes(v)})
    return {"WrappingValue": items}


def _realm_associations(realms: Sequence[str] | Mapping[str, Sequence[str]]
                        ) -> dict[str, Any] | None:
    if not realms:
        return None
    if isinstance(realms, Mapping):
        return {"RealmAssociation": [{"Realm": r, **({"Right": list(g)} if g else {})}
                                     for r, g in realms.items()]}
    return {"RealmAssociation": [{"Realm": r} for r in realms]}


def _cap_names(res: Any) -> list[str]:
    # zeep unwraps a response of one element: here the list of Capability elements.
    items = res if isinstance(res, list) else (getattr(res, "Capability", None) or [])
    return [c.Name for c in items]


def _caps(names: Sequence[str]) -> dict[str, Any]:
    return {"Capability": [{"Name": n} for n in names]}


def _pairs(values: DataSets | None) -> list[dict[str, str]]:
    items = values.items() if isinstance(values, Mapping) else (values or [])
    return [{"Name": n, "Value": v} for n, v in items]


def _datasets(values: DataSets | None) -> dict[str, Any] | None:
    return {"DataSet": _pairs(values)} if values else None


def _attrs(values: Mapping[str, str] | None) -> dict[str, Any] | None:
    return {"Attribute": _pairs(values)} if values else None


def _new_credential(name: str | None, password: str | None, certificate: bytes | None,
                    symmetric_key: bytes | None) -> dict[str, Any] | None:
    """A new endpoint's kms:Credential: its password, or its certificate or HMAC secret
    (the last one given wins)."""
    cred: dict[str, Any] | None = None
    if password is not None:
        cred = {"CredentialType": "UsernamePassword",
                "UsernamePassword": {"Username": name, "Password": password}}
    for ctype, value in (("AsymmetricKey", certificate), ("SymmetricKey", symmetric_key)):
        if value is not None:
            cred = {"CredentialType": ctype,
                    "CredentialValue": [{"Length": len(value), "Value": value}]}
    return cred
