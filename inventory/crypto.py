"""Encryption at rest for vCenter passwords (Fernet; the first configured key encrypts, every key decrypts)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

UNREADABLE = "the stored vCenter password cannot be decrypted with the configured FIELD_ENCRYPTION_KEY"


class SecretDecryptionError(Exception):
    """The stored secret cannot be decrypted with any configured FIELD_ENCRYPTION_KEY."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(raw: str) -> str:
    return _fernet().encrypt(raw.encode()).decode()


def is_current(token: str) -> bool:
    """Whether the token was encrypted with the first configured key (the one new passwords get)."""
    try:
        Fernet(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(token: str) -> str:
    """The same secret encrypted with the first configured key, read with whichever configured key reads it."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(UNREADABLE) from None


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(UNREADABLE) from None
