"""Server configuration: data directory, listener, database, security settings.

Read from `<data-dir>/kms-ws.json` when present (keys: host, port, workers, database_url,
tls_cert, tls_key, tls_client_ca, trusted_proxies, log_file, log_level, log_format,
metrics, metrics_allow, audit_syslog, audit_head_seconds, min_free_disk_mb,
database_max_mb, notify_* (notify_ca_file a path), security: {...SecuritySettings
fields}); command-line options override the file. A file that cannot be read, or names
an unknown or invalid setting, is a ConfigError naming the file and the setting.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import types
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from .security import forwarded
from .security.settings import SecuritySettings
from .store.urls import sqlite_url

CONFIG_FILE = "kms-ws.json"
DEFAULT_DATA_DIR = Path("kms-data")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5985
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
MAX_NOTIFY_CONCURRENCY = 256


@dataclass(frozen=True)
class Config:
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 2
    database_url: str | None = None  # default: SQLite in the data directory
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # request client certificates issued by this CA
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For/-Proto headers
    # are believed; from anyone else they are ignored. Empty: no proxy is trusted.
    trusted_proxies: tuple[str, ...] = ()
    log_file: Path | None = None  # default: <data-dir>/kms-ws.log
    log_level: str = "INFO"  # DEBUG (every probe too), INFO (every request), WARNING, ERROR
    log_format: str = "text"  # or "json": one JSON object per line
    # GET /metrics (Prometheus text format): off unless true; then only for the origin
    # addresses in metrics_allow (addresses or CIDR networks; default loopback).
    metrics: bool = False
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Audit events to syslog (RFC 5424): "udp://host:port" or "unix:///dev/log". The
    # deliverer also sends the audit chain's head there every audit_head_seconds (when it
    # moved): the anchor `kms-ws audit verify --anchor` checks the chain against.
    audit_syslog: str | None = None
    audit_head_seconds: float = 300.0
    # Changes are refused (reads go on) while a file system the server writes to has less
    # free space than this (store/space.py). 0: no watermark.
    min_free_disk_mb: float = 256.0
    # SQLite only: the database file may not grow beyond this (a write past it is refused
    # as on a full disk). None: no bound.
    database_max_mb: float | None = None
    security: SecuritySettings = field(default_factory=SecuritySettings)
    # §6.11 UpdatePending delivery: first retry after notify_retry_seconds, doubling up to
    # notify_retry_max_seconds until the subscriber acknowledges; the delivery process
    # looks for due notifications every notify_poll_seconds.
    notify_retry_seconds: float = 2.0
    notify_retry_max_seconds: float = 300.0
    notify_poll_seconds: float = 0.5
    notify_timeout_seconds: float = 10.0
    # Calls to subscribers' listeners in flight at once (one thread each): a listener
    # that never answers holds one of them until notify_timeout_seconds, not the others.
    notify_concurrency: int = 16
    # Delivery gives up when UpdatePending has failed (no valid answer) for this long
    # without a break: the subscription ends with SubscriptionEnd DeliveryFailure to its
    # EndTo. 0: never (until the subscription expires). A SubscriptionEnd the EndTo does
    # not take is retried like UpdatePending, for this long after it was queued.
    notify_give_up_seconds: float = 86400.0
    # §6.12 removals (deleted objects, lost visibility) are kept this long, then forgotten
    # by the deliverer; a GetUpdateList from a token older than one forgotten is refused
    # (E_RESYNC_REQUIRED: list again from 0). 0: kept for ever.
    removal_horizon_seconds: float = 30 * 86400.0
    # CA certificates (PEM file) that verify https NotifyTo / EndTo listeners; default:
    # the public CAs of the certifi bundle.
    notify_ca_file: Path | None = None
    # Master-key provider: {"provider": "file"} (default; passphrase from the environment
    # variable named by "passphrase_env", default KMS_WS_MASTER_PASSPHRASE, when set) or
    # {"provider": "pkcs11", "module": PATH, "token_label": LABEL, "pin_env": VAR}.
    master_key: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        forwarded.networks(self.trusted_proxies)  # ValueError names a bad entry
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level is one of {', '.join(LOG_LEVELS)}, not "
                             f"{self.log_level!r}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format is one of {', '.join(LOG_FORMATS)}, not "
                             f"{self.log_format!r}")
        if not isinstance(self.metrics, bool):
            raise ValueError("metrics is true or false")
        for entry in self.metrics_allow:
            try:
                ipaddress.ip_network(str(entry), strict=False)
            except ValueError:
                raise ValueError(f"metrics_allow: {entry!r} is not an IP address or CIDR "
                                 "network") from None
        if self.audit_head_seconds <= 0 or self.min_free_disk_mb < 0 or \
                (self.database_max_mb is not None and self.database_max_mb <= 0):
            raise ValueError("audit_head_seconds > 0, min_free_disk_mb >= 0 and "
                             "database_max_mb > 0 (or null)")
        if self.removal_horizon_seconds < 0:
            raise ValueError("removal_horizon_seconds >= 0")
        if not 1 <= self.notify_concurrency <= MAX_NOTIFY_CONCURRENCY:
            raise ValueError(f"notify_concurrency is a whole number from 1 to "
                             f"{MAX_NOTIFY_CONCURRENCY}, not {self.notify_concurrency!r}")

    @property
    def db_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir.resolve())

    @property
    def log_path(self) -> Path:
        return self.log_file or self.data_dir / "kms-ws.log"

    def with_overrides(self, **values: Any) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


class ConfigError(Exception):
    """The configuration file is unreadable or names an unknown or invalid setting."""


def load(data_dir: Path) -> Config:
    path = data_dir / CONFIG_FILE
    cfg = Config(data_dir=data_dir)
    if not path.exists():
        return cfg
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise ValueError("the file holds no JSON object")
        check_settings(Config, doc, "")
        check_settings(SecuritySettings, doc.get("security", {}), "security.")
        security = SecuritySettings.from_mapping(doc.pop("security", {}))
        for key in ("tls_cert", "tls_key", "tls_client_ca", "log_file", "notify_ca_file"):
            if doc.get(key):
                doc[key] = Path(doc[key])
        for key in ("trusted_proxies", "metrics_allow"):
            if key in doc:
                if not isinstance(doc[key], list):
                    raise ValueError(f"{key} is a list of addresses or CIDR networks")
                doc[key] = tuple(doc[key])
        return replace(cfg, security=security, **doc)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


# Settings given as a JSON object although their field is a tuple of pairs.
_OBJECT_SETTINGS = frozenset({"require_signature_realms"})


def check_settings(cls: type, values: dict[str, Any], prefix: str) -> None:
    """Every key of `values` names a field of the dataclass `cls`, with a JSON value of
    its type; else a ValueError naming the key, the closest known one and all of them."""
    known = sorted(f.name for f in fields(cls) if f.name != "data_dir")
    hints = get_type_hints(cls)
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            group = prefix[:-1] + " " if prefix else ""
            raise ValueError(f"unknown settings: {prefix}{key}"
                             + (f" (did you mean {prefix}{close[0]}?)" if close else "")
                             + f"; known {group}settings: {', '.join(known)}")
        accepted = _json_types(hints[key]) + ((dict,) if key in _OBJECT_SETTINGS else ())
        if not isinstance(value, accepted) or (isinstance(value, bool) and
                                               bool not in accepted):
            names = sorted({_JSON_NAMES[t] for t in accepted
                            if not (t is int and float in accepted)})
            raise ValueError(f"{prefix}{key} is {' or '.join(names)}, not "
                             f"{json.dumps(value)}")


_JSON_NAMES = {bool: "true/false", int: "a whole number", float: "a number", str: "a string",
               list: "a list", dict: "an object", type(None): "null"}


def _json_types(hint: Any) -> tuple[type, ...]:
    """The Python types json.loads gives for a field of this type."""
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(t for arg in get_args(hint) for t in _json_types(arg))
    origin = get_origin(hint) or hint
    if origin is float:
        return (int, float)
    if origin in (tuple, list):
        return (list,)
    if origin is Path:
        return (str,)
    if origin in (bool, int, str, dict, type(None)):
        return (origin,)
    return (dict,)  # a nested settings object
