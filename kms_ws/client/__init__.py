"""The zeep-based KmsClient."""

from .kms_client import Key, KmsClient, KmsFault, UntrustedResponse
from .listener import ClientServiceListener, UpdateNotice
from .signing import hmac_signing_key, load_signing_key

__all__ = ["ClientServiceListener", "Key", "KmsClient", "KmsFault", "UntrustedResponse",
           "UpdateNotice", "hmac_signing_key", "load_signing_key"]
