"""Encryption of provider API keys at rest (Fernet)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class KeyUnreadable(Exception):
    """The stored key cannot be decrypted (the encryption key changed)."""


def _fernet() -> Fernet:
    if settings.ENCRYPTION_KEY:
        return Fernet(settings.ENCRYPTION_KEY.encode())
    digest = hashlib.sha256(b"reviewer-api-keys:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    """Return the Fernet token of ``plaintext`` as text."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Return the plaintext; raises KeyUnreadable when the token does not decrypt."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise KeyUnreadable(
            "The stored API key cannot be decrypted: SECRET_KEY or ENCRYPTION_KEY changed. Enter the key again."
        ) from None
