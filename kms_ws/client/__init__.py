"""The zeep-based KmsClient."""

from .kms_client import Key, KmsClient, KmsFault

__all__ = ["Key", "KmsClient", "KmsFault"]
