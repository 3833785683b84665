"""The files the inventory pages and API hand out (a host's drawing) and their headers."""

from __future__ import annotations

import re

from django.utils.http import content_disposition_header

from inventory import fabric, occupancy
from inventory.models import Host
from inventory.occupancy import UNAVAILABLE
from inventory.topology.svg import render_host_svg

_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def svg_disposition(host: Host) -> str:
    """``Content-Disposition`` of a host's drawing, named by host and vCenter (host names repeat across vCenters):
    names come from vCenter and may hold quotes, line breaks or bidi controls, so the file name keeps letters,
    digits, dots, dashes and underscores only."""
    stem = _UNSAFE_IN_FILENAME.sub("_", host.name).strip("._")[:100] or "host"
    vcenter = _UNSAFE_IN_FILENAME.sub("_", host.vcenter.name).strip("._")[:60] or "vcenter"
    return content_disposition_header(False, f"{stem}-{vcenter}-topology.svg")


def _svg_occupancy(gpus: list) -> tuple[dict[str, str], dict[str, str]]:
    """GPU pci id -> the VMs using it, and GPU pci id -> the VMs of the reservations holding it (the drawing
    shows a reserved GPU in its own style)."""
    used: dict[str, str] = {}
    reserved: dict[str, str] = {}
    for gpu in gpus:
        if gpu.consumers:
            used[gpu.pci_id] = ", ".join(c.vm_name for c in gpu.consumers)
        if gpu.reservations:
            reserved[gpu.pci_id] = ", ".join(r.vm_name for r in gpu.reservations)
    return used, reserved


def host_svg(host: Host, gpus: list | None = None) -> str:
    """The host's fabric drawing with its GPUs' consumers and reservations: one for the page, its download and the
    API's ``?format=svg``."""
    result, hw = fabric.current_fabric(host)
    if gpus is None:
        gpus = occupancy.host_gpu_details(host=host)
    used, reserved = _svg_occupancy(gpus)
    off_host = occupancy.host_unavailable_reason(host)
    why = f"the host is {off_host}" if off_host else ""
    unavailable = {g.pci_id: why or g.unavailable_reason for g in gpus if g.state == UNAVAILABLE}
    return render_host_svg(
        result, hw, occupancy=used, reserved=reserved, unavailable=unavailable, vcenter=host.vcenter.name
    )
