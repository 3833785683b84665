"""Checks shared by every path that stores a vCenter (model, page form, admin, API, ``manage.py vcenter``).

The rules live next to the connection code (``inventory.vsphere.connection``), which applies the same ones when it
connects; these wrap them as Django validators so each path reports them on the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from inventory.vsphere.checks import ca_file_problem, sdk_url_problem


def validate_vcenter_url(value: str) -> None:
    """An https:// SDK URL whose host is a short or dotted name, an IPv4 or a bracketed IPv6 address."""
    if problem := sdk_url_problem(value):
        raise ValidationError(problem, code="invalid")


def validate_ca_file(value: str) -> None:
    """A CA bundle this process can read and load as PEM certificates, as the connection will load it; with
    ``VCENTER_CA_DIR`` set, only a file under that folder (checked before the file is read, so the answer for a
    path elsewhere never tells whether it exists)."""
    if not value:
        return
    folder = settings.VCENTER_CA_DIR
    if folder and not _inside(value, folder):
        raise ValidationError(f"must be a file under {folder} (VCENTER_CA_DIR)", code="invalid")
    if problem := ca_file_problem(value):
        raise ValidationError(problem, code="invalid")


def _inside(path: str, folder: str) -> bool:
    try:
        real, root = os.path.realpath(path), os.path.realpath(folder)
        return real != root and os.path.commonpath([real, root]) == root
    except ValueError:  # a NUL byte, or paths that cannot be compared
        return False


# What a vCenter edit that moves the password to another server must include (``same_server``).
NEW_SERVER_REASON = "required when the URL changes: the stored password is only sent to the server it was entered for"
# The same for edits that change how that server is recognised (``password_needed``).
TLS_OFF_REASON = (
    "required when TLS verification is turned off: the stored password is only sent to a server verified as it was "
    "when the password was entered"
)
NEW_CA_REASON = (
    "required when the CA file changes: the stored password is only sent to a server verified as it was when the "
    "password was entered"
)


def _server(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number
        return None
    return parts.scheme.lower(), (parts.hostname or "").rstrip("."), port


def same_server(a: str, b: str) -> bool:
    """Whether two vCenter URLs reach the same server: same scheme, host (any case) and port; the path may differ.

    A stored password may follow a URL only to the same server: anyone allowed to edit a vCenter could otherwise
    point it at a server of theirs and have the next connection test or sync send them the password.
    """
    if a == b:
        return True
    server = _server(a)
    return server is not None and server == _server(b)


def password_needed(*, url: str, verify_tls: bool, ca_file: str, changes: Mapping[str, object]) -> str | None:
    """Why an edit of a vCenter whose stored settings are (url, verify_tls, ca_file) must carry the password again,
    or None. Anyone allowed to edit a vCenter could otherwise have the stored password sent to a server of theirs:
    by moving the URL, or, with control of DNS or the network path, by turning verification off or trusting a CA
    of theirs. Dropping a pinned CA file for the system's trust store counts as a change of CA: it trusts every public
    CA for that name. Turning verification on needs nothing."""
    if "url" in changes and not same_server(url, str(changes["url"] or "")):
        return NEW_SERVER_REASON
    if verify_tls and "verify_tls" in changes and not changes["verify_tls"]:
        return TLS_OFF_REASON
    new_ca = str(changes.get("ca_file") or "")
    if "ca_file" in changes and new_ca != (ca_file or ""):
        return NEW_CA_REASON
    return None
