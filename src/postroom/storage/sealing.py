"""Secrets that must be kept usable (SES secret access keys: SigV4 needs the secret itself to
check a signature) are stored sealed: AES-256-GCM under a key that lives in a file of the data
directory (mode 0600), never in the database. A copy of the database alone reveals none of
them. Several nodes sharing one PostgreSQL need the same key file.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from postroom.core.errors import StorageError

KEY_FILE = "sealing.key"
_VERSION = "v1"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a sealing key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SecretBox:
        """The key in `data_dir/sealing.key`, created (0600) when missing."""
        path = Path(data_dir) / KEY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the sealing key {path}: {exc}") from None
        return cls(key)

    def seal(self, secret: str, context: str) -> str:
        """`secret` encrypted and bound to `context` (e.g. the access key id)."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), context.encode("utf-8"))
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, context: str) -> str:
        version, _, payload = sealed.partition(":")
        if version != _VERSION:
            raise StorageError("a sealed secret has an unknown format")
        try:
            raw = base64.b64decode(payload, validate=True)
            plain = self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8"))
        except (ValueError, InvalidTag):
            raise StorageError(
                "a sealed secret cannot be opened with this data directory's sealing.key"
            ) from None
        return plain.decode("utf-8")
