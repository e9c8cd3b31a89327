"""Table definitions (SQLAlchemy Core). Portable SQL only: SQLite and PostgreSQL.

Times are naive UTC DateTime columns; ids are canonical UUID strings. Every change to a
key or endpoint takes a number from `changes`, the one store-wide change sequence.
"""

from __future__ import annotations

from sqlalchemy import (
                        Boolean,
                        Column,
                        DateTime,
                        ForeignKey,
                        Index,
                        Integer,
                        LargeBinary,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        false,
)

from .bounds import bound_strings

metadata = MetaData()

GUID = String(36)

meta = Table(
    "kms_meta", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

changes = Table(
    "changes", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("object_kind", String(32), nullable=False),
    Column("object_id", GUID, nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime, nullable=False),
)

endpoints = Table(
    "endpoints", metadata,
    Column("id", GUID, primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("credential_type", String(32), nullable=False),
    Column("password_hash", String(256)),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("owner_id", GUID, ForeignKey("endpoints.id")),
    Column("endpoint_type_id", GUID),
    Column("description", Text),
    Column("failed_auth", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("edit_datetime", DateTime, nullable=False),
    Column("change_seq", Integer, nullable=False),
    # schema 8: a PEP's §4.6 AUTHENTICATION_POLICY (None / AsymmetricKey / SymmetricKey)
    Column("authentication_policy", String(32)),
    # schema 15: when failed authentications locked the client (the lockout runs from
    # here; domain.backoff)
    Column("locked_at", DateTime),
    UniqueConstraint("kind", "name", name="uq_endpoint_kind_name"),
)

# Release 0.1 only: replaced by realm_grants (schema 2), which carries rights.
endpoint_realms = Table(
    "endpoint_realms", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("realm", String(512), primary_key=True),
)

endpoint_capabilities = Table(
    "endpoint_capabilities", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(256), primary_key=True),
)

endpoint_attributes = Table(
    "endpoint_attributes", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("value", Text, nullable=False),
)

# schema 20: the CIM identity (§4.6) an endpoint presented at registration, one row per
# property (Class/Property, domain.endpoint_type_rules.PROPERTIES)
endpoint_identity = Table(
    "endpoint_identity", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("property", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

templates = Table(
    "key_templates", metadata,
    Column("id", GUID, primary_key=True),
    Column("friendly_name", String(256), nullable=False, unique=True),
    Column("cipher_type", String(128), nullable=False),
    Column("length_bits", Integer, nullable=False),
    Column("t_cached", Integer, nullable=False),
    Column("description", Text),
    Column("version", Integer, nullable=False),
    Column("edit_datetime", DateTime, nullable=False),
    # schema 9: its place on the change sequence (GetUpdateList of type KeyTemplate)
    Column("change_seq", Integer),
    Index("ix_key_templates_change_seq", "change_seq"),
)

template_attributes = Table(
    "key_template_attributes", metadata,
    Column("template_id", GUID, ForeignKey("key_templates.id", ondelete="CASCADE"),
           primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

template_realms = Table(
    "key_template_realms", metadata,
    Column("template_id", GUID, ForeignKey("key_templates.id", ondelete="CASCADE"),
           primary_key=True),
    Column("realm", String(512), primary_key=True),
)

keys = Table(
    "keys", metadata,
    Column("id", GUID, primary_key=True),
    Column("friendly_name", String(256), index=True),
    Column("state", String(16), nullable=False),
    Column("cipher_type", String(128), nullable=False),
    Column("length_bits", Integer, nullable=False),
    Column("t_expired", DateTime),
    Column("t_disabled", DateTime),
    Column("t_cached", Integer, nullable=False),
    Column("description", Text),
    Column("source_kind", String(8), nullable=False),
    Column("source_id", GUID),
    Column("template_id", GUID, ForeignKey("key_templates.id")),
    Column("pep_id", GUID, ForeignKey("endpoints.id")),
    Column("sealed_value", LargeBinary),
    Column("master_key_id", GUID),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("edit_datetime", DateTime, nullable=False),
    Column("change_seq", Integer, nullable=False),
    # schema 10: the key's realms on its own row ("\n"-joined, sorted; key_realms stays the
    # index by realm), so a page of GetUpdateList reads them, and filters by them, with
    # the key instead of probing key_realms twice per key. Written with key_realms, always.
    Column("realms", Text),
    # schema 10: which of key_attributes (1), dataset_bindings (2) and extensions (4) hold
    # rows of the key (NULL: not known, look), so a page looks up only the keys that have any
    Column("facets", Integer),
    # schema 17: when T_EXPIRED or T_DISABLED next changes the key's effective state (NULL:
    # none ahead); the deliverer claims a due one once (SqlKeys.claim_transition) and gives
    # the key a new place on the change sequence
    Column("next_transition_at", DateTime),
    Index("ix_keys_edit_datetime", "edit_datetime", "id"),
    Index("ix_keys_next_transition_at", "next_transition_at"),
    Index("ix_keys_change_seq", "change_seq"),
)

key_attributes = Table(
    "key_attributes", metadata,
    Column("key_id", GUID, ForeignKey("keys.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_key_attributes_name_value", "name", "value"),
)

key_realms = Table(
    "key_realms", metadata,
    Column("key_id", GUID, ForeignKey("keys.id", ondelete="CASCADE"), primary_key=True),
    Column("realm", String(512), primary_key=True),
    Index("ix_key_realms_realm", "realm"),
)

# Every data-set binding reported to the KMS (§5.1): which keys protected which data.
dataset_bindings = Table(
    "dataset_bindings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", GUID, ForeignKey("keys.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("value", Text, nullable=False),
    Column("sizeof_value", Integer),
    Column("reported_by", GUID),
    Column("at", DateTime, nullable=False),
    Index("ix_dataset_bindings_name_value", "name", "value"),
    Index("ix_dataset_bindings_key", "key_id"),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor_id", GUID),
    Column("actor_name", String(256)),
    Column("operation", String(64), nullable=False),
    Column("event", String(256), nullable=False),
    Column("result", String(32), nullable=False),
    Column("key_id", GUID),
    Column("pep_id", GUID),
    Column("reported_at", DateTime),
    Column("message", Text),
    # schema 14: the record's place in the audit chain (1, 2, ...; NULL for records older
    # than the chain) and its MAC (hex HMAC-SHA256 over the place, the previous record's
    # MAC and the content; kms_ws/audit/chain.py). Records are never changed once written.
    Column("chain_seq", Integer),
    Column("mac", String(64)),
    # schema 15: how many events the record stands for (aggregated refusals of
    # unauthenticated requests, service.refusals); None: one
    Column("count", Integer),
    Index("ix_audit_key", "key_id", "at"),
    Index("ix_audit_actor", "actor_id", "at"),
    Index("ix_audit_at", "at"),
    Index("ix_audit_chain_seq", "chain_seq", unique=True),
)

# Schema 14: the audit chain's one row ("audit"): where it starts (records with an id up to
# started_after are older than the chain and not covered), its MAC key (random, sealed
# under the master key like a key value and re-sealed by master-key rotation), and its
# head — the last record's place and MAC with a tag (HMAC under the chain key), so
# records removed from the end are noticed. Updated with every record, in its transaction.
AUDIT_CHAIN = "audit"  # the name of the store's one audit chain (its row in audit_chain)

audit_chain = Table(
    "audit_chain", metadata,
    Column("name", String(16), primary_key=True),
    Column("started_after", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("sealed_key", LargeBinary),
    Column("master_key_id", GUID),
    Column("seq", Integer, nullable=False),
    Column("mac", String(64)),
    Column("tag", String(64)),
)

# Schema 14: each client's PushAuditMessage use in the current quota minute (shared by
# every worker and node through the store), and how many of its calls were refused then.
audit_quota = Table(
    "audit_quota", metadata,
    Column("endpoint_id", GUID, primary_key=True),
    Column("window_start", DateTime, nullable=False),
    Column("messages", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
)


# ---- schema 2: realms with rights, the administered objects, associations, use ----------

# §4.5: what an endpoint or administrator may do in a realm (comma-separated rights).
realm_grants = Table(
    "realm_grants", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("realm", String(512), primary_key=True),
    Column("rights", String(64), nullable=False),
    Index("ix_realm_grants_realm", "realm"),
)

# Realms, endpoint types, client/key groups and the six policies: one row each, the
# object's attributes as a JSON document (its schema element's fields).
objects = Table(
    "objects", metadata,
    Column("kind", String(32), primary_key=True),
    Column("id", GUID, primary_key=True),
    # schema 12: 512 (was 256): a Realm's name is its RealmUri, up to 512 characters
    Column("name", String(512)),
    Column("state", String(16)),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("edit_datetime", DateTime, nullable=False),
    Column("change_seq", Integer, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("kind", "name", name="uq_objects_kind_name"),
    Index("ix_objects_kind_state", "kind", "state"),
    Index("ix_objects_change_seq", "change_seq"),  # schema 9: custom update types (§6.12)
)

object_realms = Table(
    "object_realms", metadata,
    Column("kind", String(32), primary_key=True),
    Column("id", GUID, primary_key=True),
    Column("realm", String(512), primary_key=True),
    Index("ix_object_realms_realm", "realm"),
)

# Schema 11: a removal of an object of a custom update type (§6.12; key templates too)
# takes a place on the change sequence, so GetUpdateList tells a client that lists that
# type after its token that the object is gone. The realms are those the object was in
# when it was removed: who may learn of the removal. A re-created id takes a later place.
removals = Table(
    "removals", metadata,
    Column("change_seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("object_id", GUID, nullable=False),
    Column("removed_at", DateTime, nullable=False),
    Index("ix_removals_kind_change_seq", "kind", "change_seq"),
)

removal_realms = Table(
    "removal_realms", metadata,
    Column("change_seq", Integer, primary_key=True, autoincrement=False),
    Column("realm", String(512), primary_key=True),
    # schema 18: a realm the object stayed in when it left others (kept): a reader with
    # Read there still sees the object, so it is not told of this removal
    Column("kept", Boolean, nullable=False, server_default=false()),
    Index("ix_removal_realms_realm", "realm"),
)

# Schema 18: a removal for one reader only — an endpoint that lost the Read right in the
# realms an object is in (§6.12 "lost visibility"): only it learns of this removal.
removal_readers = Table(
    "removal_readers", metadata,
    Column("change_seq", Integer, primary_key=True, autoincrement=False),
    Column("endpoint_id", GUID, nullable=False),
    Index("ix_removal_readers_endpoint_id", "endpoint_id", "change_seq"),
)

# Policy -> object, group -> member, PEP -> client: (kind, id) is associated with
# (target_kind, target_id).
associations = Table(
    "associations", metadata,
    Column("kind", String(32), primary_key=True),
    Column("id", GUID, primary_key=True),
    Column("target_kind", String(32), primary_key=True),
    Column("target_id", GUID, primary_key=True),
    Index("ix_associations_target", "target_kind", "target_id"),
)

# USE_BY_CLIENTS / USE_BY_PEPS (§4.1): who received a key. Does not version the key.
key_use = Table(
    "key_use", metadata,
    Column("key_id", GUID, ForeignKey("keys.id", ondelete="CASCADE"), primary_key=True),
    Column("endpoint_id", GUID, primary_key=True),
    Column("endpoint_kind", String(8), nullable=False),
    Column("first_at", DateTime, nullable=False),
)


# ---- schema 3: message security ------------------------------------------------------

# The credential an endpoint proves by signing (§4.7 AsymmetricKey / SymmetricKey): its
# X.509 certificate (DER, looked up by SHA-256 fingerprint), or an HMAC secret sealed
# under the master key like a key value.
endpoint_credentials = Table(
    "endpoint_credentials", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("credential_type", String(32), nullable=False),
    Column("certificate", LargeBinary),
    Column("cert_sha256", String(64), unique=True),
    Column("sealed_secret", LargeBinary),
    Column("master_key_id", GUID),
)

# Signed messages seen, shared by every worker and node: a second INSERT of the same
# (signer, digest of the signed content) is a replay. Rows expire when the message would
# no longer be accepted anyway.
seen_messages = Table(
    "seen_messages", metadata,
    Column("signer_id", GUID, primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_seen_messages_expires", "expires_at"),
)

# ---- schema 4: WS-Eventing subscriptions and pending §6.11 UpdatePending notifications ----
subscriptions = Table(
    "subscriptions", metadata,
    Column("id", String(64), primary_key=True),
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("notify_to", String(2048), nullable=False),  # service/notify_to.MAX_ADDRESS
    Column("mode", String(256), nullable=False),
    Column("update_type", String(64), nullable=False),
    Column("pep_id", GUID),
    Column("expires_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    # schema 7: the address the subscription came from (NotifyTo is re-checked against it)
    Column("origin", String(64)),
    # schema 9: where SubscriptionEnd goes (wse:EndTo; none: not sent), and the realms the
    # subscriber could read when it subscribed (JSON list): without the Read right in any
    # of them it can no longer be served and its subscription ends
    Column("end_to", String(2048)),
    Column("realms", Text),
    Index("ix_subscriptions_endpoint", "endpoint_id"),
)

# One row per subscription with an unacknowledged change: the token (change_seq) it must
# reach, how often delivery was tried, and when to try next (backoff).
pending_updates = Table(
    "pending_updates", metadata,
    Column("subscription_id", String(64), ForeignKey("subscriptions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("token", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    # schema 9: since when delivery has failed without a break (None: the last attempt
    # reached the subscriber); delivery gives up after notify_give_up_seconds
    Column("failing_since", DateTime),
    Index("ix_pending_updates_due", "next_attempt_at"),
)

# schema 9: WS-Eventing SubscriptionEnd messages to send, written in the transaction that
# ends a subscription (the subscription row is gone by then) and sent by the deliverer.
subscription_ends = Table(
    "subscription_ends", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", String(64), nullable=False),
    Column("end_to", String(2048), nullable=False),
    Column("origin", String(64)),
    Column("status", String(128), nullable=False),
    Column("reason", String(512), nullable=False),
    Column("at", DateTime, nullable=False),
    # schema 18: retried with UpdatePending's backoff until sent or given up (at +
    # notify_give_up_seconds); None: due (queued before schema 18, or not tried yet)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime),
)

# §4.6/§4.7 WRAPPING_VALUES (schema 5): the wrapping keys of clients and PEPs. A symmetric
# KEK is sealed under the master key like a key value; a certificate is stored as DER.
wrapping_keys = Table(
    "wrapping_keys", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("key_id", String(256), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("sealed_value", LargeBinary),
    Column("master_key_id", GUID),
    Column("certificate", LargeBinary),
    Column("not_after", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("ordinal", Integer, nullable=False),
    # schema 21: who registered it (§4.5 Reference: a Reference-only caller's key goes only
    # under a PEP wrapping key registered by an administrator or by an endpoint holding
    # Read on the key; service.key_delivery). NULL: registered before schema 21 (unknown),
    # or the registrant was deleted — never qualifies but through registered_by_admin.
    Column("registered_by", GUID, ForeignKey("endpoints.id", ondelete="SET NULL")),
    Column("registered_by_admin", Boolean, nullable=False, server_default=false()),
    Index("ix_wrapping_keys_master", "master_key_id"),
)

# §5.5 (schema 6): clients an administrator registered as KM servers. A KM server is
# admitted only by an access policy's KmServers list, never by its Clients list.
km_servers = Table(
    "km_servers", metadata,
    Column("endpoint_id", GUID, ForeignKey("endpoints.id", ondelete="CASCADE"),
           primary_key=True),
)

# §4.1/§4.3 VENDOR_SPECIFIC_EXTENSIONS ("v") and APPLICATION_EXTENSIONS ("p") of keys and
# key templates (schema 6): named values. Keys are never deleted (tombstones); a template's
# rows go with it (admin_queries.delete_template).
extensions = Table(
    "extensions", metadata,
    Column("owner_kind", String(16), primary_key=True),
    Column("owner_id", GUID, primary_key=True),
    Column("section", String(1), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)


# ---- schema 15: failed authentications (issue 12) --------------------------------------

# The failures counted against one user name or one source address (domain.backoff),
# shared by every worker and node. key: SHA-256 (hex) of "name\0<user name>" or
# "source\0<address>", so user names of any length and unknown ones take one short row.
auth_strikes = Table(
    "auth_strikes", metadata,
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_at", DateTime, nullable=False),
    Column("barred_until", DateTime),
    Index("ix_auth_strikes_last_at", "last_at"),
)

# Refusals of unauthenticated requests being counted (service.refusals): one row per
# source, reason and interval; its first refusal was recorded in the audit table at once,
# the rest is recorded when the interval closes and the row goes.
refusal_tallies = Table(
    "refusal_tallies", metadata,
    Column("source", String(64), primary_key=True),
    Column("reason", String(64), primary_key=True),
    Column("started_at", DateTime, primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("last_at", DateTime, nullable=False),
    Column("detail", Text, nullable=False),  # JSON: names tried (a bounded sample), why
    Index("ix_refusal_tallies_started", "started_at"),
)


# Every String(n) column refuses longer values before they reach the database (bounds.py).
bound_strings(metadata)
