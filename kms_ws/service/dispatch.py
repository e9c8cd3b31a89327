"""The dispatch table (operation name -> handler) and the service entry point that runs
one operation: authenticate the caller, open the unit of work, call the handler, audit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..audit.events import AuditEvent, emit
from ..crypto.master_key import MasterKey
from ..domain.errors import ActionNotSupported, InvalidCredentials, KmsError
from ..domain.model import Endpoint
from ..security.settings import SecuritySettings
from ..store.engine import Database
from ..store.repository import Repository
from . import audit, authentication, capabilities, endpoints, keys, random
from .admin import handlers as admin
from .context import RequestContext
from .messages import AuthenticateRequest, Credential, GetKeyResult, KeyResult, StoreKeyResult

log = logging.getLogger("kms_ws.service")

Handler = Callable[[RequestContext, Any], Any]


@dataclass(frozen=True)
class Operation:
    handler: Handler
    writes: bool  # runs in a write transaction
    audited: bool  # success is recorded in the audit table (writes only)


OPERATIONS: dict[str, Operation] = {
    "RegisterEndpoint": Operation(endpoints.register_endpoint, True, True),
    "Authenticate": Operation(authentication.authenticate, True, True),
    "NegotiateCapabilities": Operation(capabilities.negotiate_capabilities, False, False),
    "GetServerCapabilities": Operation(capabilities.get_server_capabilities, False, False),
    "CreateKey": Operation(keys.create_key, True, True),
    "StoreKey": Operation(keys.store_key, True, True),
    "GetKey": Operation(keys.get_key, False, False),
    "PushAuditMessage": Operation(audit.push_audit_message, True, False),
    "GetRandomBytes": Operation(random.get_random_bytes, False, False),
    "AdminCreate": Operation(admin.admin_create, True, True),
    "AdminGet": Operation(admin.admin_get, False, False),
    "AdminList": Operation(admin.admin_list, False, False),
    "AdminEdit": Operation(admin.admin_edit, True, True),
    "AdminDelete": Operation(admin.admin_delete, True, True),
    "AdminAssociate": Operation(admin.admin_associate, True, True),
    "AdminDisassociate": Operation(admin.admin_disassociate, True, True),
    "AdminAudit": Operation(admin.admin_audit, False, False),
    "AdminBindings": Operation(admin.admin_bindings, False, False),
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class KmsService:
    """Runs operations. One per process; per-request state lives in RequestContext."""

    def __init__(self, db: Database, master: MasterKey, settings: SecuritySettings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.master = master
        self.settings = settings
        self.clock = clock
        self.passwords = authentication.PasswordCache(settings.password_cache_seconds)

    def run(self, name: str, credential: Credential | None, request: Any,
            request_id: str) -> Any:
        op = OPERATIONS.get(name)
        if op is None:
            raise ActionNotSupported(f"no operation {name}")
        if isinstance(request, AuthenticateRequest) and request.request_type != "Logout" \
                and request.credential is not None:
            credential = request.credential  # Login/Validate the credential in the body
        now = self.clock()
        try:
            with self.db.transaction(write=op.writes) as conn:
                ctx = RequestContext(None, Repository(conn), now, request_id, self.settings,
                                     self.master)
                ctx.caller = authentication.authenticate_caller(ctx, credential, self.passwords)
                result = op.handler(ctx, request)
                if op.audited:
                    emit(_success(name, ctx.caller, now, result), ctx.repo)
        except InvalidCredentials as exc:
            self._auth_failed(name, credential, now, exc)
            raise
        except KmsError as exc:
            emit(AuditEvent(now, name, exc.error_code, "Denied" if exc.http_status in (401, 403)
                            else "Failed", message=exc.reason))
            raise
        if ctx.caller.failed_auth:
            with self.db.transaction(write=True) as conn:
                Repository(conn).reset_auth_failures(ctx.caller.endpoint_id)
        if isinstance(result, GetKeyResult):
            for key in result.keys:
                emit(AuditEvent(now, name, "KeyDelivered" if key.value is not None
                                else "KeyMetadata", "Success", ctx.caller.endpoint_id,
                                ctx.caller.name, key_id=key.key_id))
        return result

    def _auth_failed(self, name: str, credential: Credential | None, now: datetime,
                     exc: InvalidCredentials) -> None:
        with self.db.transaction(write=True) as conn:
            repo = Repository(conn)
            ep = repo.find_client(credential.username) if credential and credential.username \
                else None
            if ep is not None:
                repo.record_auth_failure(ep.endpoint_id,
                                         self.settings.lock_after_failed_authentications)
            emit(AuditEvent(now, name, "AuthenticationFailed", "Denied",
                            ep.endpoint_id if ep else None,
                            credential.username if credential else None,
                            message=exc.reason), repo)


def _success(name: str, caller: Endpoint, now: datetime, result: Any) -> AuditEvent:
    key_id = None
    if isinstance(result, KeyResult):
        key_id = result.key.key_id
    elif isinstance(result, StoreKeyResult):
        key_id = result.key_id
    return AuditEvent(now, name, name, "Success", caller.endpoint_id, caller.name, key_id=key_id)
