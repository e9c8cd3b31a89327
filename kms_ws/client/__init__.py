"""The zeep-based KmsClient, and the client/PEP-side unwrapping of delivered keys."""

from .kms_client import KmsClient, unreachable
from .listener import ClientServiceListener, SubscriptionEnded, UpdateNotice
from .pep import PepProver, PepSigner
from .signing import hmac_signing_key, load_signing_key
from .unwrap import Kek, KeyUnwrapError, PepBlob, PepUnwrapper, PrivateKeyHolder
from .values import Key, KmsFault, RemovedObject, UntrustedResponse, UpdatedObject

__all__ = ["ClientServiceListener", "Kek", "Key", "KeyUnwrapError", "KmsClient", "KmsFault",
           "PepBlob", "PepProver", "PepSigner", "PepUnwrapper", "PrivateKeyHolder", "RemovedObject",
           "SubscriptionEnded", "UntrustedResponse", "UpdateNotice", "UpdatedObject",
           "hmac_signing_key", "load_signing_key", "unreachable"]
