"""Headers of the files the inventory pages and API hand out."""

from __future__ import annotations

import re

from django.utils.http import content_disposition_header

_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def svg_disposition(host_name: str) -> str:
    """``Content-Disposition`` of a host's drawing: names come from vCenter and may hold quotes, line breaks or
    bidi controls, so the file name keeps letters, digits, dots, dashes and underscores only."""
    stem = _UNSAFE_IN_FILENAME.sub("_", host_name).strip("._")[:100] or "host"
    return content_disposition_header(False, f"{stem}-topology.svg")
