"""Access key pairs for the SES-compatible API, per project.

An access key id (`AKPR` and 16 capitals and digits, public) and a secret access key (40
characters, shown once when created). AWS Signature Version 4 derives its signing key from the
secret itself, so the secret is kept, sealed (storage/sealing.py: AES-GCM under the data
directory's key, bound to the key id); a copy of the database alone does not reveal it.

`secret_for` answers the SigV4 check: the key's project and secret.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.platform import PlatformStore
from postroom.core.sending import SendingStore, SesKey
from postroom.storage.sealing import SecretBox

PREFIX = "AKPR"
_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class IssuedSesKey:
    key: SesKey
    secret: str = field(repr=False)


class SesKeyService:
    def __init__(
        self, platform: PlatformStore, store: SendingStore, box: SecretBox, clock: Clock
    ) -> None:
        self._platform = platform
        self._store = store
        self._box = box
        self._clock = clock

    def create(self, project_id: str) -> IssuedSesKey:
        self._platform.get_project(project_id)
        key_id = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)  # 40 characters
        key = SesKey(key_id, project_id, self._box.seal(secret, key_id), self._clock.now())
        self._store.add_ses_key(key)
        return IssuedSesKey(key, secret)

    def list(self, project_id: str) -> list[SesKey]:
        self._platform.get_project(project_id)
        return self._store.list_ses_keys(project_id)

    def delete(self, project_id: str, key_id: str) -> None:
        if not key_id.startswith(PREFIX):
            raise InvalidInput(f"{key_id!r} is not an SES access key id", "key_id")
        self._store.delete_ses_key(project_id, key_id)

    def secret_for(self, key_id: str) -> tuple[str, str] | None:
        """(project, secret) of an access key; None when unknown. Blocking: one store read,
        so that a deleted key stops working at once, on every node."""
        if not (key_id.startswith(PREFIX) and len(key_id) == 20 and key_id.isalnum()):
            return None
        try:
            key = self._store.ses_key(key_id)
        except NotFound:
            return None
        return key.project_id, self._box.open(key.sealed_secret, key.id)
