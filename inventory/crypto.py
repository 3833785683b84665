"""Encryption at rest for vCenter passwords (Fernet; the first configured key encrypts, every key decrypts)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretDecryptionError(Exception):
    """The stored secret cannot be decrypted with any configured FIELD_ENCRYPTION_KEY."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(raw: str) -> str:
    return _fernet().encrypt(raw.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            "the stored vCenter password cannot be decrypted with the configured FIELD_ENCRYPTION_KEY"
        ) from None
