"""The zeep-based KmsClient."""

from .kms_client import Key, KmsClient, KmsFault, UntrustedResponse
from .signing import hmac_signing_key, load_signing_key

__all__ = ["Key", "KmsClient", "KmsFault", "UntrustedResponse", "hmac_signing_key",
           "load_signing_key"]
