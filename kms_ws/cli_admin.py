"""`kms-ws admin <kind> add|show|list|edit|delete|associate|disassociate`, `kms-ws admin
audit`, `kms-ws admin bindings`: online administration with an administrator's
credential. Objects print as JSON documents (the schema's element names)."""

from __future__ import annotations

import argparse
import base64
import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import isodate

from .domain import ciphers, wrapping
from .domain.errors import KmsError
from .domain.model import PEP_AUTHENTICATION_POLICIES

Doc = dict[str, Any]

# CLI name -> (schema element, help)
KINDS: dict[str, tuple[str, str]] = {
    "key": ("Key", "keys: metadata, dates, life cycle (edit --state), destroy (delete)"),
    "template": ("KeyTemplate", "key templates (§4.3)"),
    "endpoint-type": ("EndpointType", "endpoint types and their capabilities (§4.4)"),
    "realm": ("Realm", "realms realm://domain/name (§4.5)"),
    "pep": ("Pep", "policy enforcement points (§4.6)"),
    "client": ("Client", "KMS clients: realms and rights, unlock/disable (§4.7)"),
    "client-group": ("ClientGroup", "client groups, static or dynamic (§4.10)"),
    "key-group": ("KeyGroup", "key groups, static or dynamic (§4.11)"),
    "assignment-policy": ("KeyAssignmentPolicy", "key-assignment policies (§5.1)"),
    "retention-policy": ("RetentionPolicy", "retention policies (§5.2)"),
    "wrapping-policy": ("WrappingPolicy", "wrapping policies (§5.3)"),
    "audit-policy": ("AuditPolicy", "audit policies (§5.4)"),
    "access-policy": ("AccessDistributionPolicy", "access/distribution policies (§5.5)"),
    "caching-policy": ("CachingPolicy", "caching policies (§5.6)"),
    "endpoint-type-rule": ("EndpointTypeRule", "rules mapping a registering client's or "
                           "PEP's CIM identity to its endpoint type (§4.4, §4.6)"),
}
_TARGETS = ("realm", "key", "template", "key-group", "client", "client-group", "pep",
            "endpoint-type")
_RIGHTS = ("Create", "Delete", "Edit", "Read", "Reference")


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"kms-ws: expected NAME=VALUE, got {text!r}")
    return name, value


def _json_value(v: Any) -> str:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (timedelta, isodate.Duration)):
        return str(isodate.duration_isoformat(v))  # xsd:duration, as the schema writes it
    return str(v)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_json_value))


# ---- documents from options -------------------------------------------------------------

def _fields(kind: str, ns: argparse.Namespace, doc: Doc) -> Doc:
    """Apply the options given to a document (new or fetched)."""
    a = _Opts(ns)
    name_field = "FriendlyName" if kind in ("KeyTemplate", "Key") else "Name"
    if a.name:
        doc["RealmId" if kind == "Realm" else name_field] = a.name
    if a.description is not None:
        doc["Description"] = a.description
    if a.attribute:
        box = "AttributeAssociations" if kind in ("Key", "KeyTemplate") else "Attributes"
        doc[box] = {"Attribute": [{"Name": n, "Value": v} for n, v in map(_pair, a.attribute)]}
    if a.capability:
        doc["Capabilities"] = {"Capability": [{"Name": c} for c in a.capability]}
    if a.state:
        doc["State"] = a.state
    for opt, field in (("cipher", "CipherType"), ("length", "KeyLength"), ("t_cached", "TCached"),
                       ("expire_after", "TExpiration"), ("disable_after", "TDisable"),
                       ("wrapping_type", "WrappingType"), ("wrapping_mode", "WrappingMode"),
                       ("generation", "Generation"), ("period", "Period"),
                       ("template_id", "TemplateId"), ("endpoint_type", "EndpointTypeId"),
                       ("t_expired", "TExpired"), ("t_disabled", "TDisabled"),
                       ("priority", "Priority")):
        if getattr(a, opt) is not None:
            doc[field] = str(getattr(a, opt))
    if a.admin is not None:
        doc["Administrator"] = a.admin
    if getattr(a, "km_server", None) is not None:
        doc["KmServer"] = a.km_server
    _lists(kind, a, doc)
    for name, value in map(_pair, a.set):
        doc[name] = value
    return doc


def _lists(kind: str, a: _Opts, doc: Doc) -> None:
    if a.group_type:
        doc["Type"] = a.group_type
    selections = _selections(a)
    if (a.rule or selections) and kind in ("ClientGroup", "KeyGroup"):
        doc["Rule"] = [{"Attribute": n, "Pattern": p} for n, p in map(_pair, a.rule)] + \
            [{"Attribute": n, **rule} for n, rule in selections]
    if a.rule and kind == "CachingPolicy":
        rules = []
        for r in a.rule:
            parts = r.split(":")
            rule = {"CachingType": parts[0], "TCacheInterval": parts[1] if len(parts) > 1 else "0"}
            if len(parts) > 2:
                rule["Capability"] = parts[2]
            rules.append(rule)
        doc["Rule"] = rules
    if a.match:
        doc["Match"] = [{"Property": n, "Pattern": p} for n, p in map(_pair, a.match)]
    if selections and kind == "KeyAssignmentPolicy":
        doc["Condition"] = [{"Name": n, **rule} for n, rule in selections]
    if a.operation:
        doc["OperationType"] = a.operation
        doc.setdefault("EventType", ["Log"])
    if a.destination:
        doc["Destination"] = a.destination
        doc.setdefault("EventType", ["Log"])
    for opt, field in (("client", "Clients"), ("client_group", "ClientGroups"),
                       ("pep", "Peps"), ("km_server", "KmServers")):
        if getattr(a, "allow_" + opt):
            doc[field] = {"Id": getattr(a, "allow_" + opt)}


def _selections(a: _Opts) -> list[tuple[str, Doc]]:
    """§4.9 selection rules from --condition/--prefix/--glob/--range/--cidr NAME=..."""
    out: list[tuple[str, Doc]] = []
    for opt, field in (("condition", "Value"), ("prefix", "Prefix"), ("glob", "Glob"),
                       ("cidr", "Cidr")):
        out += [(n, {field: v}) for n, v in map(_pair, getattr(a, opt))]
    for name, bounds in map(_pair, a.range):
        low, sep, high = bounds.rpartition("..")
        if not sep:
            raise SystemExit(f"kms-ws: expected NAME=FROM..TO, got {name}={bounds!r}")
        out.append((name, {"Range": {"From": low, "To": high}}))
    return out


_LIST_OPTIONS = {"attribute", "capability", "rule", "operation", "destination", "condition",
                 "prefix", "glob", "range", "cidr", "match",
                 "allow_client", "allow_client_group", "allow_pep", "allow_km_server", "set"}


class _Opts:
    """Options of one kind's parser; those it does not have read as absent."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self._ns = ns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ns, name, [] if name in _LIST_OPTIONS else None)


def _realms(a: argparse.Namespace, doc: Doc) -> None:
    rights = getattr(a, "right", None)  # clients and PEPs only
    if a.realm:
        doc["RealmAssociations"] = {"RealmAssociation": [
            {"Realm": r, **({"Right": rights} if rights else {})} for r in a.realm]}


# ---- commands ----------------------------------------------------------------------------

def cmd_add(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    kind = KINDS[a.kind][0]
    doc = _fields(kind, a, {})
    _realms(a, doc)
    if kind == "KeyTemplate":
        _template_cipher(doc)
    values: dict[str, bytes] = _pep_values(a) if kind == "Pep" else {}
    with connect(a) as c:  # reads the administrator's password first
        password = None
        if kind == "Client":
            if not a.client_password_stdin:
                raise SystemExit("kms-ws: give the new client's password with "
                                 "--client-password-stdin")
            password = sys.stdin.readline().rstrip("\r\n")
        if kind == "Pep":  # the owner by name: its id (AdminGet takes a client's name)
            doc["ClientAssociations"] = {"Id": [c.admin_get("Client", a.owner)["ClientId"]]}
            doc.setdefault("PepId", str(uuid.uuid4()))  # the schema asks for one
        _print(c.admin_create(kind, doc, password=password, **values))
    return 0


def _pep_add_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("name", help="the PEP's name (unique among PEPs)")
    sp.add_argument("--client", dest="owner", required=True, metavar="CLIENT",
                    help="the client it is registered for (id or name): it receives keys "
                    "for the PEP (associate more clients later)")


def _pep_values(ns: argparse.Namespace) -> dict[str, bytes]:
    """A new PEP's AUTHENTICATION_VALUES, from --authentication-policy and
    --authentication-values-file (none: its client vouches for it)."""
    a = _Opts(ns)
    policy, path = a.authentication_policy, a.authentication_values_file
    if path and policy in (None, "None"):
        raise SystemExit("kms-ws: --authentication-values-file goes with "
                         "--authentication-policy AsymmetricKey or SymmetricKey")
    if policy not in (None, "None") and not path:
        raise SystemExit(f"kms-ws: --authentication-policy {policy} needs its "
                         "--authentication-values-file")
    if not path:
        return {}
    value = Path(path).read_bytes()
    return {"certificate": value} if policy == "AsymmetricKey" else {"symmetric_key": value}


def _template_cipher(doc: Doc) -> None:
    """A new template's cipher and length when not given, as the server (and the offline
    `template add`) chooses them: AES-256-GCM, or the usual cipher of --length."""
    try:
        oid, bits = ciphers.resolve(doc.get("CipherType"),
                                    int(doc["KeyLength"]) if "KeyLength" in doc else None)
    except KmsError as exc:
        raise SystemExit(f"kms-ws: {exc.reason}") from None
    except ValueError:
        raise SystemExit(f"kms-ws: KeyLength {doc['KeyLength']!r} is no number of bits") \
            from None
    doc.setdefault("CipherType", oid)
    doc.setdefault("KeyLength", str(bits))


def cmd_show(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    with connect(a) as c:
        _print(c.admin_get(KINDS[a.kind][0], a.ref))
    return 0


def cmd_list(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    since = a.altered_since
    with connect(a) as c:
        items, more = c.admin_list(KINDS[a.kind][0], altered_since=since, max_items=a.max)
    _print({"items": items, "more": more})
    return 0


def cmd_edit(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    kind = KINDS[a.kind][0]
    with connect(a) as c:
        doc = c.admin_get(kind, a.ref)
        if a.version is not None:
            doc["Version"] = a.version  # the edit is refused if the object moved on
        if kind in ("Client", "Pep"):
            _credential_fields(kind, a, doc)
        _print(c.admin_edit(kind, _fields(kind, a, doc)))
    return 0


def cmd_delete(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    with connect(a) as c:
        kept = c.admin_delete(KINDS[a.kind][0], a.ref, version=a.version)
    _print({"removed": True} if kept is None else kept)
    return 0


def _target(a: argparse.Namespace) -> tuple[str, str]:
    given = [(t, getattr(a, "to_" + t.replace("-", "_"))) for t in _TARGETS
             if getattr(a, "to_" + t.replace("-", "_"))]
    if len(given) != 1:
        raise SystemExit("kms-ws: name exactly one target (--realm, --key, --client, ...)")
    return KINDS[given[0][0]][0], given[0][1]


def cmd_associate(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    target_kind, target = _target(a)
    with connect(a) as c:
        _print(c.admin_associate(KINDS[a.kind][0], a.ref, target_kind, target,
                                 getattr(a, "right", None) or ()))
    return 0


def utc_time(text: str) -> datetime:
    """An ISO 8601 time option (`2026-01-31T12:00:00Z`); a bad one is argparse's one-line
    usage error, never a traceback."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)") from None


def cmd_disassociate(a: argparse.Namespace,
                     connect: Callable[[argparse.Namespace], Any]) -> int:
    target_kind, target = _target(a)
    with connect(a) as c:
        _print(c.admin_disassociate(KINDS[a.kind][0], a.ref, target_kind, target))
    return 0


def cmd_audit(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    with connect(a) as c:
        _print(c.admin_audit(key_id=a.key, client_id=a.client, since=a.since,
                             until=a.until, max_records=a.max))
    return 0


def cmd_bindings(a: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    if bool(a.key) == bool(a.dataset):
        raise SystemExit("kms-ws: give --key KEY_ID or --dataset NAME=VALUE")
    with connect(a) as c:
        _print(c.admin_bindings(key_id=a.key, dataset=_pair(a.dataset) if a.dataset else None))
    return 0


# ---- parser ------------------------------------------------------------------------------

_OPTIONS: dict[str, tuple[str, ...]] = {
    "Key": ("name", "description", "attribute", "state", "t_cached", "dates"),
    "KeyTemplate": ("name", "description", "attribute", "cipher", "t_cached"),
    "EndpointType": ("name", "description", "capability"),
    "Realm": ("name", "description"),
    "Pep": ("attribute", "endpoint_type", "pep_auth"),
    "Client": ("name", "attribute", "capability", "endpoint_type", "state", "admin",
               "credentials"),
    "ClientGroup": ("name", "group"),
    "KeyGroup": ("name", "group"),
    "KeyAssignmentPolicy": ("name", "description", "state", "assignment"),
    "RetentionPolicy": ("name", "description", "state", "retention"),
    "WrappingPolicy": ("name", "description", "state", "wrapping"),
    "AuditPolicy": ("name", "description", "state", "audit"),
    "AccessDistributionPolicy": ("name", "description", "state", "access"),
    "CachingPolicy": ("name", "description", "state", "caching"),
    "EndpointTypeRule": ("name", "description", "endpoint_type", "type_rule"),
}


def _field_options(sp: argparse.ArgumentParser, kind: str, adding: bool) -> None:
    want = _OPTIONS[kind]
    add = sp.add_argument
    if "name" in want:
        label = {"Realm": "realm URI realm://domain/name", "Key": "friendly name",
                 "KeyTemplate": "friendly name (unique)"}.get(kind, "name (unique)")
        if adding:
            add("name", help=label)
        elif kind != "Realm":
            add("--name", help="new " + label)
    if "description" in want:
        add("--description")
    if "attribute" in want:
        add("--attribute", action="append", default=[], metavar="NAME=VALUE",
            help="attribute (repeatable; replaces the list)" +
            (" - PEP names are pep://domain/context/name" if kind == "Pep" else ""))
    if "capability" in want:
        add("--capability", action="append", default=[], help="capability name (repeatable)")
    if "endpoint_type" in want:
        add("--endpoint-type", help="EndpointTypeId")
    if "state" in want and not adding:
        states = {"Key": ("Active", "Disabled", "Compromised", "Destroyed"),
                  "Client": ("Active", "Disabled")}.get(
            kind, ("Assigned", "Enforcing", "Disabled"))
        add("--state", choices=states, help="Key: life-cycle action; Client: Active unlocks "
            "or enables, Disabled disables; policy: Enforcing applies it")
    if "admin" in want:
        add("--admin", action=argparse.BooleanOptionalAction, default=None,
            help="an administrator")
        add("--km-server", action=argparse.BooleanOptionalAction, default=None,
            help="a peer KM server (admitted only by access policies' KmServers)")
    _policy_options(sp, want)
    if not adding:
        _credential_options(sp, want)
    elif "pep_auth" in want:
        add("--authentication-policy", choices=PEP_AUTHENTICATION_POLICIES,
            help="what the PEP proves itself with (default None: its client vouches)")
        add("--authentication-values-file", metavar="FILE",
            help="its AUTHENTICATION_VALUES: a certificate (PEM/DER, AsymmetricKey) or an "
            "HMAC secret (raw bytes, >= 32, SymmetricKey)")
    add("--set", action="append", default=[], metavar="FIELD=VALUE",
        help="set any other schema field by its element name")


def _credential_options(sp: argparse.ArgumentParser, want: tuple[str, ...]) -> None:
    add = sp.add_argument
    if "credentials" in want:
        add("--credential-file", metavar="FILE", help="the client's new password (UTF-8 text; "
            "a final newline is dropped), SymmetricKey secret (raw bytes, >= 32) or "
            "AsymmetricKey certificate (PEM or DER): its old one and its sessions stop "
            "working at once")
        add("--remove-credentials", action="store_true",
            help="remove the client's password or secret: it authenticates with nothing")
    if "pep_auth" in want:
        add("--authentication-policy", choices=PEP_AUTHENTICATION_POLICIES,
            help="what the PEP must prove itself with on requests made for it")
        add("--authentication-values-file", metavar="FILE",
            help="its new AUTHENTICATION_VALUES: a certificate (PEM/DER, AsymmetricKey) or "
            "an HMAC secret (raw bytes, >= 32, SymmetricKey)")
        add("--remove-authentication-values", action="store_true",
            help="remove them (a PEP whose policy needs them then gets no key)")


def _credential_fields(kind: str, ns: argparse.Namespace, doc: Doc) -> None:
    """Credential tuples from files: {Length, Value (base64)} (never printed)."""
    a = _Opts(ns)
    field, path, remove = ("Credentials", a.credential_file, a.remove_credentials) \
        if kind == "Client" else ("AuthenticationValues", a.authentication_values_file,
                                  a.remove_authentication_values)
    if kind == "Pep" and a.authentication_policy:
        doc["AuthenticationPolicy"] = a.authentication_policy
    if path and remove:
        raise SystemExit("kms-ws: give a credential file or remove the credential, not both")
    if remove:
        doc[field] = {}
    elif path:
        value = Path(path).read_bytes()
        if doc.get("CredentialType") == "UsernamePassword" and value.endswith(b"\n"):
            value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
        doc[field] = {"CredentialValue": [{"Length": len(value),
                                           "Value": base64.b64encode(value).decode()}]}


def _policy_options(sp: argparse.ArgumentParser, want: tuple[str, ...]) -> None:
    add = sp.add_argument
    if "t_cached" in want:
        add("--t-cached", type=int, help="seconds a key may be cached")
    if "dates" in want:
        add("--t-expired", help="UTC time: no new encryption after it")
        add("--t-disabled", help="UTC time: not delivered after it")
    if "cipher" in want:
        add("--cipher", help="cipher OID (a new template: default AES-256-GCM, or the usual "
            "cipher of --length)")
        add("--length", type=int, help="key length in bits")
    if "group" in want:
        add("--type", dest="group_type", choices=("Static", "Dynamic"))
        add("--rule", action="append", default=[], metavar="ATTRIBUTE=REGEX",
            help="dynamic membership rule (repeatable, all must match)")
        _selection_options(add, "dynamic membership rule: ATTRIBUTE")
    if "retention" in want:
        add("--expire-after", metavar="DURATION", help="T_EXPIRATION, e.g. P90D")
        add("--disable-after", metavar="DURATION", help="T_DISABLE, e.g. P7Y")
    if "wrapping" in want:
        add("--wrapping-type", choices=tuple(wrapping.POLICY_TYPES),
            help="WRAPPING_TYPE (Signature is not offered: no wrapping mode of this server "
                 "signs a key blob)")
        add("--wrapping-mode", help="a KeyBlob WrappingType, e.g. aes-key-wrap")
    if "audit" in want:
        add("--operation", action="append", default=[], help="operation to record, or *")
        add("--destination", action="append", default=[], choices=("Local", "Syslog"))
    if "access" in want:
        for opt, what in (("client", "ClientId"), ("client-group", "GroupId"),
                          ("pep", "PepId"), ("km-server", "KM server's ClientId")):
            add(f"--allow-{opt}", action="append", default=[], metavar=what.upper(),
                help=f"may receive the keys ({what}; repeatable)")
    if "caching" in want:
        add("--rule", action="append", default=[], metavar="TYPE:SECONDS[:CAPABILITY]",
            help="NoCache|Memory|Persistent, interval, capability it applies to")
    if "type_rule" in want:
        add("--priority", type=int, help="the lowest priority of the rules that hold wins "
            "(0..1000000)")
        add("--match", action="append", default=[], metavar="PROPERTY=REGEX",
            help="CIM property (e.g. PhysicalElement/Manufacturer) and the regular expression "
            "its whole value must match (repeatable, all must hold; replaces the list)")
    if "assignment" in want:
        _selection_options(add, "condition: the data-set attribute NAME")
        add("--generation", choices=("PerDataSet", "PerPeriod", "Shared"))
        add("--period", metavar="DURATION", help="PerPeriod: e.g. P30D")
        add("--template-id", help="template new keys are created from")


def _selection_options(add: Callable[..., Any], what: str) -> None:
    """§4.9 selection rules (repeatable, all must match; each replaces the list)."""
    add("--condition", action="append", default=[], metavar="NAME=VALUE",
        help=f"{what} equals VALUE")
    add("--prefix", action="append", default=[], metavar="NAME=PREFIX",
        help=f"{what} starts with PREFIX")
    add("--glob", action="append", default=[], metavar="NAME=GLOB",
        help=f"{what} matches the shell-style GLOB (* ? [seq], case-sensitive)")
    add("--range", action="append", default=[], metavar="NAME=FROM..TO",
        help=f"{what} is in FROM..TO: numbers (0..4294967296) or same-shape ids "
        "(A00000..A09999)")
    add("--cidr", action="append", default=[], metavar="NAME=NETWORK",
        help=f"{what} is an address in NETWORK (10.1.0.0/16, 2001:db8::/32)")


StoreKeyParts = tuple[Callable[[argparse.ArgumentParser], None],
                      Callable[[argparse.Namespace], int]]


def add_admin_parser(sub: Any, online: Callable[[argparse.ArgumentParser], None],
                     connect: Callable[[argparse.Namespace], Any],
                     store_key: StoreKeyParts) -> None:
    """store_key: StoreKey's options and command (`store-key`): `admin key add` runs it,
    the administered Key having no AdminCreate (keys are made by CreateKey and StoreKey,
    §4.1.3, which the draft scopes to clients and the KM console alike)."""
    admin = sub.add_parser("admin", help="administer every object and policy (online)",
                           description="Administration with an administrator's credential "
                           "(--user, --password-stdin). Objects: " + ", ".join(KINDS) + ".")
    asub = admin.add_subparsers(dest="admin_kind", required=True, metavar="OBJECT")

    def run(fn: Callable[..., int]) -> Callable[[argparse.Namespace], int]:
        return lambda a: fn(a, connect)

    for name, (kind, text) in KINDS.items():
        _kind_parser(asub, name, kind, text, online, run, store_key)
    _query_parsers(asub, online, run)


def _kind_parser(asub: Any, name: str, kind: str, text: str,
                 online: Callable[[argparse.ArgumentParser], None],
                 run: Callable[[Callable[..., int]], Callable[[argparse.Namespace], int]],
                 store_key: StoreKeyParts) -> None:
    kp = asub.add_parser(name, help=text, description=text)
    ksub = kp.add_subparsers(dest="admin_action", required=True, metavar="ACTION")
    endpoint = kind in ("Client", "Pep")  # what holds rights in a realm
    if kind == "Key":
        sp = ksub.add_parser("add", help="store a key value (StoreKey with your credential: "
                             "a Key has no AdminCreate)")
        online(sp)
        store_key[0](sp)
        sp.set_defaults(func=store_key[1], kind=name)
    else:
        sp = ksub.add_parser("add", help=f"create a {kind}")
        online(sp)
        if kind == "Pep":
            _pep_add_options(sp)
        _field_options(sp, kind, True)
        sp.add_argument("--realm", action="append", default=[],
                        help="realm URI to put it in (repeatable)")
        if endpoint:
            sp.add_argument("--right", action="append", default=[], choices=_RIGHTS,
                            help="its right in each --realm (repeatable; default: all)")
        if kind == "Client":
            sp.add_argument("--client-password-stdin", action="store_true",
                            help="the new client's password: next line of standard input")
        sp.set_defaults(func=run(cmd_add), kind=name)
    sp = ksub.add_parser("show", help=f"show one {kind}")
    online(sp)
    sp.add_argument("ref", help="id" + ("" if kind in ("Key", "Pep") else " or name"))
    sp.set_defaults(func=run(cmd_show), kind=name)
    sp = ksub.add_parser("list", help=f"list {kind} objects you may read")
    online(sp)
    sp.add_argument("--altered-since", type=utc_time, help="UTC time")
    sp.add_argument("--max", type=int, help="at most this many (1..1000)")
    sp.set_defaults(func=run(cmd_list), kind=name)
    sp = ksub.add_parser("edit", help=f"change a {kind} (versioned)")
    online(sp)
    sp.add_argument("ref")
    _field_options(sp, kind, False)
    sp.add_argument("--version", type=int,
                    help="refuse the edit unless the object is at this version")
    sp.set_defaults(func=run(cmd_edit), kind=name)
    sp = ksub.add_parser("delete", help="destroy the key (tombstone kept)" if kind == "Key"
                         else f"delete a {kind}")
    online(sp)
    sp.add_argument("ref")
    sp.add_argument("--version", type=int, help="refuse unless at this version")
    sp.set_defaults(func=run(cmd_delete), kind=name)
    for action, fn in (("associate", cmd_associate), ("disassociate", cmd_disassociate)):
        sp = ksub.add_parser(action, help=f"{action} with a realm or another object")
        online(sp)
        sp.add_argument("ref")
        for t in _TARGETS:
            sp.add_argument(f"--{t}", dest="to_" + t.replace("-", "_"),
                            metavar=KINDS[t][0].upper())
        if endpoint:
            sp.add_argument("--right", action="append", default=[], choices=_RIGHTS,
                            help="with --realm: its rights there (repeatable; default: all)")
        sp.set_defaults(func=run(fn), kind=name)


def _query_parsers(asub: Any, online: Callable[[argparse.ArgumentParser], None],
                   run: Callable[[Callable[..., int]], Callable[[argparse.Namespace], int]]
                   ) -> None:
    sp = asub.add_parser("audit", help="audit records by key, client and time")
    online(sp)
    sp.add_argument("--key", help="KeyId")
    sp.add_argument("--client", help="ClientId (the actor)")
    sp.add_argument("--since", type=utc_time, help="UTC time (inclusive)")
    sp.add_argument("--until", type=utc_time, help="UTC time (exclusive)")
    sp.add_argument("--max", type=int, help="at most this many records (1..1000)")
    sp.set_defaults(func=run(cmd_audit))
    sp = asub.add_parser("bindings", help="data-set bindings: keys of a data set, data sets "
                         "of a key")
    online(sp)
    sp.add_argument("--key", help="KeyId: which data sets it protected")
    sp.add_argument("--dataset", metavar="NAME=VALUE", help="which keys protected it")
    sp.set_defaults(func=run(cmd_bindings))
