"""Master keys in a PKCS#11 token (checked with SoftHSM2 and python-pkcs11): AES-256 keys
generated in the token (TOKEN, SENSITIVE, not EXTRACTABLE), labelled
`kms-ws-master-<id>`; sealing runs AES-GCM inside the token, so the master key never
leaves it. The token is found by its label (slot ids are not stable); the user PIN comes
from an environment variable (default KMS_WS_PKCS11_PIN).

PKCS#11 libraries are not fork-safe and SoftHSM crashes on concurrent sessions: this
provider opens the library lazily in the process that uses it (after gunicorn's fork),
re-opens it when the process id changes, and serialises every token call with a lock.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

from cryptography.exceptions import InvalidTag

from .master_key import MasterKeyError

LABEL_PREFIX = "kms-ws-master-"
DEFAULT_PIN_ENV = "KMS_WS_PKCS11_PIN"


class Pkcs11Provider:
    name = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        self.module, self.token_label = module, token_label
        self._pin = pin
        self._lock = threading.RLock()
        self._pid: int | None = None
        self._session: Any = None
        self._keys: dict[str, Any] = {}

    @classmethod
    def from_options(cls, opts: dict[str, Any]) -> Pkcs11Provider:
        unknown = set(opts) - {"module", "token_label", "pin_env"}
        if unknown or "module" not in opts or "token_label" not in opts:
            raise MasterKeyError("the pkcs11 master key provider takes module, token_label "
                                 f"and pin_env (unknown: {sorted(unknown)})")
        env = opts.get("pin_env", DEFAULT_PIN_ENV)
        pin = os.environ.get(env)
        if not pin:
            raise MasterKeyError(f"set {env} to the PKCS#11 user PIN of token "
                                 f"{opts['token_label']!r}")
        return cls(str(opts["module"]), str(opts["token_label"]), pin)

    def _open(self) -> Any:
        """The session of this process (opened on first use, after any fork)."""
        import pkcs11  # noqa: PLC0415 - a native extension (~30 ms); only a PKCS#11 master-key store loads it
        if self._pid != os.getpid():
            try:
                token = pkcs11.lib(self.module).get_token(token_label=self.token_label)
                self._session = token.open(user_pin=self._pin, rw=True)
                self._keys = {}
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                raise MasterKeyError("the PKCS#11 token is already logged in by this "
                                     "process") from None
            except (pkcs11.exceptions.PKCS11Error, RuntimeError) as exc:
                raise MasterKeyError(f"PKCS#11 token {self.token_label!r} via {self.module}: "
                                     f"{type(exc).__name__}") from None
            self._pid = os.getpid()
        return self._session

    def _key(self, key_id: str) -> Any:
        from pkcs11 import Attribute, ObjectClass  # noqa: PLC0415 - as in _open
        session = self._open()
        if key_id not in self._keys:
            found = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                              Attribute.LABEL: LABEL_PREFIX + key_id}))
            if len(found) != 1:
                raise MasterKeyError(f"master key {key_id} is not in PKCS#11 token "
                                     f"{self.token_label!r}")
            self._keys[key_id] = found[0]
        return self._keys[key_id]

    def key_ids(self) -> list[str]:
        from pkcs11 import Attribute, ObjectClass  # noqa: PLC0415 - as in _open
        with self._lock:
            labels = [o[Attribute.LABEL] for o in self._open().get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY})]
        return sorted(label[len(LABEL_PREFIX):] for label in labels
                      if label.startswith(LABEL_PREFIX))

    def create(self) -> str:
        from pkcs11 import Attribute, KeyType  # noqa: PLC0415 - as in _open
        key_id = str(uuid.uuid4())
        with self._lock:
            self._open().generate_key(KeyType.AES, 256, label=LABEL_PREFIX + key_id, store=True,
                                      template={Attribute.SENSITIVE: True,
                                                Attribute.EXTRACTABLE: False})
        return key_id

    def open(self, key_id: str) -> TokenAead:
        with self._lock:
            self._key(key_id)  # it exists now
        return TokenAead(self, key_id)

    def destroy(self, key_id: str) -> None:
        with self._lock:
            self._key(key_id).destroy()
            self._keys.pop(key_id, None)

    def gcm(self, key_id: str, encrypt: bool, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        import pkcs11  # noqa: PLC0415 - as in _open
        from pkcs11 import Mechanism  # noqa: PLC0415 - as in _open
        with self._lock:
            key = self._key(key_id)
            param = pkcs11.GCMParams(nonce, aad, 128)
            if encrypt:
                return bytes(key.encrypt(data, mechanism=Mechanism.AES_GCM,
                                         mechanism_param=param))
            try:
                return bytes(key.decrypt(data, mechanism=Mechanism.AES_GCM,
                                         mechanism_param=param))
            except pkcs11.exceptions.GeneralError:  # SoftHSM's answer to a bad tag
                raise InvalidTag() from None


class TokenAead:
    """AESGCM's interface over a key that stays in the token."""

    def __init__(self, provider: Pkcs11Provider, key_id: str) -> None:
        self.provider, self.key_id = provider, key_id

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self.provider.gcm(self.key_id, True, nonce, data, associated_data or b"")

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self.provider.gcm(self.key_id, False, nonce, data, associated_data or b"")
