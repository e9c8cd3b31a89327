"""The local operator: whoever runs an offline command on the data directory (`kms-ws
client add`, `kms-ws client unlock`). Offline commands run the online operations'
handlers (AdminCreate, AdminGet, AdminEdit) through KmsService.run_as_operator with this
caller: the same rules, the same unit of work, the same audit records, chained like
every record, naming this actor. No client exists before the first is added, so the
operator is no registered endpoint: it holds every right in the realms the command
concerns, and naming a realm for a new client makes it (the offline bootstrap, as
`ensure_realm_in` says)."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.model import ClientState, CredentialType, Endpoint, EndpointKind
from ..domain.realms import ALL_RIGHTS, check_realm_uri
from .admin.realm import ensure_realm_in
from .context import RequestContext, Transport

OPERATOR_NAME = "kms-ws cli (offline)"
# the actor id of its audit records (no endpoint has it)
OPERATOR_ID = "00000000-0000-0000-0000-000000000000"
# No network is crossed: a secret comes from the operator's terminal (a private channel).
OPERATOR_TRANSPORT = Transport(secure=True, loopback=True)


@dataclass(frozen=True)
class LocalOperator:
    """realms: made when missing (a new client's realms); client: the name of the client
    the command acts on (the operator holds every right in its realms)."""

    realms: tuple[str, ...] = ()
    client: str | None = None

    def __post_init__(self) -> None:
        for realm in self.realms:
            check_realm_uri(realm)  # refused before anything is opened

    def caller(self, ctx: RequestContext) -> Endpoint:
        """The operator as the caller of this unit of work."""
        realms = [ensure_realm_in(ctx.uow, r, ctx.now) for r in self.realms]
        found = ctx.uow.endpoints.find_client(self.client) if self.client is not None else None
        if found is not None:
            realms += found.realms
        return Endpoint(endpoint_id=OPERATOR_ID, kind=EndpointKind.CLIENT, name=OPERATOR_NAME,
                        state=ClientState.ACTIVE,
                        credential_type=CredentialType.USERNAME_PASSWORD, version=1,
                        grants={r: ALL_RIGHTS for r in realms}, is_admin=True)
