"""What a reservation hands the admin: the vSphere settings of the devices it holds (the JSON download) and the
PowerCLI script that applies them. One builder for the reservation page, its downloads and the API."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string

from gpucatalog.catalog import load_catalog
from gpucatalog.profiles import ProfileNameError, parse_profile_name
from inventory.models import Gpu, GpuConsumer, Host, ResourceDomain
from inventory.occupancy import holding_consumers
from inventory.text import is_invisible, visible_text
from placement.engine import gpuset
from placement.engine.request import PlacementRequest
from placement.engine.result import candidate_link_text
from placement.engine.vgpu import start_text
from placement.models import Reservation
from placement.reservation_health import SCRIPT_OUT_OF_DATE, problems_of
from placement.selectors import NVLINK_KINDS, fabric_snapshot
from placement.vm_settings import large_bar_settings


@dataclass(frozen=True)
class Handout:
    settings: dict  # vsphere_settings plus problems, held and not_runnable
    powercli: str
    problems: list[str]
    held: bool
    not_runnable: list[str]
    numa_affinity: str

    @property
    def document(self) -> dict:
        """The JSON download: the settings and the script."""
        return {**self.settings, "powercli": self.powercli}


def reservation_handout(reservation: Reservation) -> Handout:
    """The settings and script of ``reservation`` (from ``selectors.reservations_with_status``, its host, vCenter
    and creator selected). A script made for an inventory that changed says so first; one that must not run as it
    is (released, expired, consumed, removed, out of date) starts with a ``throw``."""
    problems = problems_of(reservation)
    settings = vsphere_settings(reservation)
    settings["problems"] = problems
    held = getattr(reservation, "effective_status", reservation.status) == Reservation.Status.ACTIVE
    not_runnable = script_stop_reasons(reservation, problems)
    settings["held"] = held
    settings["not_runnable"] = not_runnable
    numa_affinity = settings["vm_settings"]["numa.nodeAffinity"]
    server, port = _server_of(reservation.vcenter.url) if reservation.vcenter_id else ("", None)
    powercli = render_to_string(
        "placement/reservation.ps1",
        {"r": reservation, "s": settings, "numa_affinity": numa_affinity,
         "ps": _powershell_values(settings, server, port)},
    )  # fmt: skip
    if problems:  # the script was made for an inventory that changed: it says so before anything runs
        warning = "".join(f"# {visible_text(p)}\n" for p in [*problems, SCRIPT_OUT_OF_DATE])
        powercli = f"# WARNING: this reservation needs attention.\n{warning}{powercli}"
    if not_runnable:  # run as it is, the script stops before touching anything; the reader removes the line
        powercli = f"throw {ps_quote(visible_text(' '.join(not_runnable)) + SCRIPT_THROW_TAIL)}\n{powercli}"
    return Handout(settings, powercli, problems, held, not_runnable, numa_affinity)


SCRIPT_THROW_TAIL = " (remove this line only to apply these settings anyway)"


def script_stop_reasons(reservation: Reservation, problems: list[str]) -> list[str]:
    """Why the reservation's PowerCLI script must not run as it is (it then starts with a ``throw``)."""
    reasons = []
    status = getattr(reservation, "effective_status", reservation.status)
    if status in (Reservation.Status.RELEASED, Reservation.Status.EXPIRED):
        reasons.append(f"Reservation #{reservation.pk} is {status}: its GPUs are no longer held for this VM.")
    elif status == Reservation.Status.CONSUMED:
        if reservation.close_reason:
            reasons.append(f"Reservation #{reservation.pk} is consumed: {reservation.close_reason}.")
        else:
            reasons.append(
                f"Reservation #{reservation.pk} is consumed: VM {reservation.vm_name} already holds its GPUs."
            )
    if reservation.vcenter_id is None:
        reasons.append(f"vCenter {reservation.vcenter_name or '(unknown)'} was removed from the advisor.")
    elif reservation.host_id is None:
        reasons.append(f"Host {reservation.host_name or '(unknown)'} was removed from the inventory.")
    if problems:
        reasons.append("The inventory changed under this reservation: the settings are out of date.")
    return reasons


# PowerShell ends a single-quoted string at any of these, so each is doubled inside one
_PS_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted string literal (every quote inside is doubled; nothing is interpolated)."""
    text = str(value)
    for quote in _PS_QUOTES:
        text = text.replace(quote, quote * 2)
    return f"'{text}'"


def ps_comment(value: str) -> str:
    """``ps_quote`` for a comment line: control and invisible characters shown as escapes (a line break would
    end the comment and run the rest of the name as code)."""
    return ps_quote(visible_text(value))


def _server_of(url: str) -> tuple[str, int | None]:
    """(host name, port when not 443) of a vCenter URL: Connect-VIServer needs -Port for another port, and two
    vCenters on one address differ only by it."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # stored URLs are validated; an old row may not be
        port = None
    return parts.hostname or "", port if port not in (None, 443) else None


def _powershell_values(settings: dict, server: str, port: int | None = None) -> dict:
    """Every value the PowerCLI template prints, made safe for where it goes: ``ps_quote`` in code, ``ps_comment`` /
    ``visible_text`` in comments, numbers as numbers. The template prints nothing else (a raw PCI id once ended a
    comment line and ran the rest as code). ``server`` is the vCenter's host name as ``Connect-VIServer`` shows it.
    A ``*_note`` is a comment line put above the code line holding that name when the name has invisible or control
    characters (the code must match vCenter's name exactly, so it keeps them; the note shows them escaped)."""
    reservation, host = settings["reservation"], settings["host"]
    pci_ids = [d["pci_id"] for d in settings["devices"]]
    large_bar = settings["large_bar"] or {}
    vm_settings = settings["vm_settings"]
    return {
        "reservation_id": _number(reservation["id"]),
        "vm": ps_quote(reservation["vm_name"]),
        "vm_note": invisible_note("VM name", reservation["vm_name"]),
        "host": ps_quote(host["name"]),
        "host_note": invisible_note("host name", host["name"]),
        "vm_comment": ps_comment(reservation["vm_name"]),
        "host_comment": ps_comment(host["name"]),
        "vcenter_comment": ps_comment(host["vcenter"]),
        "server": ps_quote(server),
        # Connect-VIServer -Port, and the session that matches it, for a vCenter not on 443
        "port_comment": f" -Port {_number(port)}" if port else "",
        "port_match": f" -and $_.Port -eq {_number(port)}" if port else "",
        "server_label": ps_quote(f"{server}:{port}" if port else server),
        "server_note": invisible_note("vCenter address", server, lines=2),
        "server_comment": ps_comment(server),
        "pci_ids": ", ".join(ps_quote(p) for p in pci_ids),
        "pci_ids_note": invisible_note("PCI address list", ", ".join(pci_ids)),
        "pci_list": visible_text(", ".join(pci_ids)),
        "device_count": _number(len(pci_ids)),
        "device_group": ps_quote(settings.get("device_group") or ""),
        "device_group_note": invisible_note("device group name", settings.get("device_group") or ""),
        "device_group_comment": ps_comment(settings.get("device_group") or ""),
        "nvlink_group_comment": ps_comment(settings.get("nvlink_group") or ""),
        "profile_comment": ps_comment(next((d["profile"] or "" for d in settings["devices"]), "")),
        "gpu_memory_gb": _number(large_bar.get("gpu_memory_gb")),
        "mmio_size_gb": ps_quote(_number(large_bar.get("mmio_size_gb"))),
        "memory_reservation_gb": _number(vm_settings.get("memory_reservation_gb")),
        "numa_affinity": ps_quote(vm_settings["numa.nodeAffinity"]),
        "numa_comment": visible_text(settings.get("numa_note") or ""),
        "devices": [
            {
                "pci_comment": visible_text(d["pci_id"]),
                "vendor_id": _hex_literal(d["vendor_id"]),
                "device_id": _hex_literal(d["device_id"]),
                "profile_ps": ps_quote(d["profile"] or ""),
                "profile_note": invisible_note("vGPU profile", d["profile"] or ""),
                "hardware_label_ps": ps_quote(d["hardware_label"]),
                "hardware_label_note": invisible_note("hardware label", d["hardware_label"]),
                "mig_slot": _number(d["mig_slot"]),
                "placement_gb": _number(d["placement_gb"]),
                "placement": visible_text(d["placement"] or ""),
            }
            for d in settings["devices"]
        ],
    }


def invisible_note(what: str, value: str, *, lines: int = 1) -> str:
    """A comment line for above a code line whose ``what`` holds invisible or control characters (a bidi override
    shows the rest of the line reversed in an editor), with the value escaped; "" for a plain value."""
    if not any(is_invisible(ch) for ch in str(value)):
        return ""
    where = "the next line" if lines == 1 else f"the next {lines} lines"
    return (
        f"# NOTE: the {what} on {where} holds invisible or control characters, kept because it must match "
        f"vCenter exactly; escaped, it is {ps_comment(value)}\n"
    )


def _number(value) -> str:
    """An integer as PowerShell reads it; "" for None (the template prints it only when it is set)."""
    return "" if value is None else str(int(value))


def _hex_literal(value: str | None) -> str:
    """A PCI vendor or device id (``0x10de``) as a PowerShell number literal; ``$null`` when unknown."""
    return "$null" if value is None else f"0x{int(value, 16):04x}"


BACKINGS = {
    "passthrough": "VirtualPCIPassthroughDeviceBackingInfo",
    "dynamic-passthrough": "VirtualPCIPassthroughDynamicBackingInfo",
    "vgpu": "VirtualPCIPassthroughVmiopBackingInfo",
    "mig": "VirtualPCIPassthroughVmiopBackingInfo",
    "device-group": "VirtualPCIPassthroughVmiopBackingInfo",
}
GROUP_KINDS = (*NVLINK_KINDS, ResourceDomain.Kind.PCIE_SWITCH)


def _dynamic_match_nodes(host: Host, items) -> list[int | None]:
    """The NUMA nodes (None: unknown) of the host's GPUs that vSphere could give a Dynamic DirectPath VM with
    backings like these reserved ones: no VM holds them now (the advisor's reservations do not bind vSphere), and
    they match the backing: the same vendor and device id and, where the backing names one, the same label."""
    gpus = [item.gpu for item in items if item.gpu is not None]
    nodes: set[int | None] = {g.pci_device.numa_node.node_id if g.pci_device.numa_node else None for g in gpus}
    held_by_vm = GpuConsumer.objects.filter(holding_consumers(), gpu=OuterRef("pk"))
    for vendor_id, device_id, label in {
        (g.pci_device.vendor_id, g.pci_device.device_id, g.hardware_label) for g in gpus
    }:
        matching = Gpu.objects.filter(
            host=host, stale=False, pci_device__vendor_id=vendor_id, pci_device__device_id=device_id
        ).exclude(Exists(held_by_vm))
        if label:
            matching = matching.filter(hardware_label=label)
        nodes.update(matching.values_list("pci_device__numa_node__node_id", flat=True))
    return sorted(nodes, key=lambda n: (n is None, n or 0))


def _dynamic_numa_note(items, nodes: list[int | None]) -> str:
    label = next((i.gpu.hardware_label for i in items if i.gpu is not None and i.gpu.hardware_label), "")
    where = ", ".join("unknown" if n is None else str(n) for n in nodes)
    matching = f"with hardware label {label!r}" if label else "of this vendor and device id"
    return (
        f"no NUMA affinity is set: vSphere gives a Dynamic DirectPath VM any free GPU {matching} at power-on, and "
        f"this host now has such GPUs free on NUMA nodes {where}, so the VM's GPU may sit on another node than the "
        "predicted one. To pin it, give the GPUs of one node a hardware label of their own and plan with that label"
    )


def vsphere_settings(reservation: Reservation) -> dict:
    """The devices a reservation holds and what the admin sets in vSphere for them (also the JSON download)."""
    host = reservation.host
    request = reservation.request or {}
    candidate = reservation.candidate or {}
    consumption = request.get("consumption") or "passthrough"
    items = list(reservation.items.select_related("gpu__pci_device__numa_node").order_by("pci_id"))
    index_of = {g.get("pci_id"): g.get("index") for g in candidate.get("gpus", [])}
    devices = []
    for item in items:
        if item.gpu is None:  # removed from the inventory with its host (the reservation is history)
            devices.append(_removed_device(item, index_of))
            continue
        gpu, pci = item.gpu, item.gpu.pci_device
        device = {
            "pci_id": pci.pci_id,
            "index": index_of.get(pci.pci_id),
            "model": gpu.model,
            "board": gpu.board,
            "vendor_id": f"0x{pci.vendor_id:04x}",
            "device_id": f"0x{pci.device_id:04x}",
            "hardware_label": gpu.hardware_label,
            "numa_node": pci.numa_node.node_id if pci.numa_node else None,
            "kind": item.kind,
            "profile": item.profile,
            "placement_gb": item.placement_gb,
            "placement": start_words(gpu.board, item.profile, item.placement_gb),
            "mig_slot": item.mig_slot,
            "backing": BACKINGS.get(item.kind, BACKINGS["vgpu"]),
        }
        if item.kind == "passthrough":
            device["backing_settings"] = {"id": pci.pci_id}
        elif item.kind == "dynamic-passthrough":
            device["backing_settings"] = {
                "allowedDevice": [{"vendorId": pci.vendor_id, "deviceId": pci.device_id}],
                "customLabel": gpu.hardware_label,
            }
        else:
            device["backing_settings"] = {"vgpu": item.profile}
        devices.append(device)
    numa_nodes = candidate.get("numa_nodes") or sorted({d["numa_node"] for d in devices if d["numa_node"] is not None})
    affinity = ",".join(str(n) for n in numa_nodes)
    numa_note = ""
    if consumption == "dynamic-passthrough" and host is not None and affinity:
        spread = _dynamic_match_nodes(host, items)
        if not set(spread) <= set(numa_nodes):
            # vSphere hands a Dynamic DirectPath VM any free matching device at power-on: an affinity for the
            # predicted GPUs' node would put the VM across sockets from the GPU it may get
            affinity, numa_note = "", _dynamic_numa_note(items, spread)
    memory_mb = int(request.get("memory_mb") or 0)
    large_bar = large_bar_settings((item.kind, _framebuffer_mb(item.gpu)) for item in items if item.gpu)
    domain = _shared_domain(host, [i.gpu_id for i in items if i.gpu_id]) if host else None
    cluster = host.cluster if host else None
    nvlink_group = _nvlink_device_group(request)
    group = _device_group_name(consumption, request, domain, nvlink_group, len(devices))
    bottleneck, interconnect, planned_bottleneck = _bottleneck_now(reservation, candidate)
    return {
        "reservation": {
            "id": reservation.pk,
            "vm_name": reservation.vm_name,
            "status": getattr(reservation, "effective_status", reservation.status),
            "created": reservation.created.isoformat(),
            "expires_at": reservation.expires_at.isoformat(),
            "closed_at": reservation.closed_at.isoformat() if reservation.closed_at else None,
            "created_by": reservation.created_by.username if reservation.created_by else None,
        },
        "host": {
            "id": reservation.host_id,
            "name": host.name if host else reservation.host_name,
            "moref": (host.moref or None) if host else None,
            "vcenter": host.vcenter.name if host else reservation.vcenter_name,
            "datacenter": cluster.datacenter.name if cluster and cluster.datacenter else None,
            "cluster": cluster.name if cluster else None,
            "cluster_id": cluster.pk if cluster else None,
            "cluster_moref": (cluster.moref or None) if cluster else None,
        },
        "vcenter": vcenter_identity(reservation),
        "consumption": consumption,
        "devices": devices,
        "numa_nodes": numa_nodes,
        "vm_settings": {
            "numa.nodeAffinity": affinity,
            "memory_reservation": "full: reserve all guest memory (memoryReservationLockedToMax)",
            "memory_mb_planned": memory_mb or None,
            "memory_reservation_gb": math.ceil(memory_mb / 1024) if memory_mb else None,
            "vcpus_planned": int(request.get("vcpus") or 0) or None,
            **(large_bar.vm_settings() if large_bar else {}),
        },
        "large_bar": (
            {"gpu_memory_gb": large_bar.gpu_memory_gb, "mmio_size_gb": large_bar.mmio_size_gb} if large_bar else None
        ),
        "numa_note": numa_note,
        "device_group": group,
        "device_group_note": _device_group_note(consumption, domain, len(devices), request, group),
        "nvlink_group": nvlink_group,
        "domain": domain,
        "bottleneck": bottleneck,
        "planned_bottleneck": planned_bottleneck,
        "interconnect": interconnect,
        "explanation": candidate.get("explanation", []),
        "reseated": _reseated(candidate),
        "request": request,
    }


def _bottleneck_now(reservation: Reservation, candidate: dict) -> tuple[dict | None, str | None, dict | None]:
    """(bottleneck, its words, the planned bottleneck when that differs) of an active reservation's GPUs as its
    host's fabric links them now: an nvidia-smi capture, a link override or a sync since the plan may have changed
    it, and the settings then say what the GPUs have, beside the shared domain (read now too). A reservation no
    longer active keeps the plan's figure, as its settings are kept as planned."""
    planned, words = candidate.get("bottleneck"), candidate.get("interconnect")
    pci_ids = [g.get("pci_id") for g in candidate.get("gpus", [])]
    if not planned or reservation.host_id is None or not reservation.is_active or len(pci_ids) < 2:
        return planned, words, None
    fabric = fabric_snapshot(host_ids=[reservation.host_id])
    host = next((h for h in fabric.hosts if h.host_id == reservation.host_id), None)
    if host is None:
        return planned, words, None
    topo, order = gpuset.topology_for(host)
    if not set(pci_ids) <= set(order):
        return planned, words, None
    mask = gpuset.mask_of(order, pci_ids)
    gbps = round(topo.ring(mask), 1)
    now = {"label": topo.label_of_bottleneck(mask, gbps), "gbps": gbps}
    if now == planned:
        return planned, words, None
    return now, candidate_link_text(now["label"], gbps), planned


def _reseated(candidate: dict) -> dict | None:
    """Where a vGPU, MIG or device-group hold was predicted before a sync re-seated it (``placement.reseat``), and
    its NUMA nodes then when the move changed them (settings taken before name the old numa.nodeAffinity)."""
    if not candidate.get("reseated_from"):
        return None
    return {"from": list(candidate["reseated_from"]), "numa_nodes_before": candidate.get("reseated_numa_from")}


def vcenter_identity(reservation: Reservation) -> dict:
    """The reservation's vCenter as Terraform's vSphere provider and Ansible's vmware_guest are pointed at it: its
    name in the advisor, its SDK URL, server and port (from the stored URL: never a user name or password) and its
    instance UUID as its last sync recorded it. What the inventory does not hold is null (an imported vCenter has no
    server or UUID; a removed one only its name)."""
    vcenter = reservation.vcenter if reservation.vcenter_id else None
    server = port = url = None
    if vcenter is not None and vcenter.url:
        parts = urlsplit(vcenter.url)
        try:
            explicit = parts.port
        except ValueError:  # stored URLs are validated; an old row may not be
            explicit = None
        # ".invalid" never resolves (RFC 2606): the placeholder an imported vCenter is registered with
        if parts.hostname and not parts.hostname.rstrip(".").endswith(".invalid"):
            server = parts.hostname
            port = explicit or 443
            shown = f"[{server}]" if ":" in server else server  # an IPv6 literal
            url = f"{parts.scheme}://{shown}{f':{explicit}' if explicit else ''}{parts.path}"  # no userinfo
    return {
        "id": reservation.vcenter_id,
        "name": vcenter.name if vcenter is not None else (reservation.vcenter_name or None),
        "url": url,
        "server": server,
        "port": port,
        "instance_uuid": (vcenter.instance_uuid or None) if vcenter is not None else None,
    }


def start_words(board_key: str, profile: str, start: int | None) -> str | None:
    """A mixed-size start in words: "placement ID 40 GB" where NVIDIA publishes the board's placement IDs, else the
    offset marked as assumed (``vgpu.start_text``); None without a start."""
    if start is None:
        return None
    try:
        size = parse_profile_name(profile or "").framebuffer_gb
    except ProfileNameError:
        return f"offset {start} GB"
    return start_text(load_catalog().boards.get(board_key or ""), size, start)


def _removed_device(item, index_of: dict) -> dict:
    """A device whose GPU row was removed from the inventory: what the reservation itself kept."""
    return {
        "pci_id": item.pci_id,
        "index": index_of.get(item.pci_id),
        "model": None,  # unknown: the GPU row went with its host ("removed" says so)
        "board": "",
        "vendor_id": None,
        "device_id": None,
        "hardware_label": "",
        "numa_node": None,
        "kind": item.kind,
        "profile": item.profile,
        "placement_gb": item.placement_gb,
        "placement": start_words("", item.profile, item.placement_gb),
        "mig_slot": item.mig_slot,
        "backing": BACKINGS.get(item.kind, BACKINGS["vgpu"]),
        "backing_settings": {"id": item.pci_id} if item.kind == "passthrough" else {"vgpu": item.profile},
        "removed": True,
    }


def _framebuffer_mb(gpu) -> int:
    """The GPU's memory as vCenter reports it, else its board's (a passthrough GPU vCenter says little about)."""
    if gpu.framebuffer_mb:
        return gpu.framebuffer_mb
    board = load_catalog().boards.get(gpu.board or "")
    return board.framebuffer_gb * 1024 if board else 0


def _nvlink_device_group(request: dict) -> str | None:
    """The vendor device group keeping the request's vGPUs on one NVLink domain (``Nvidia:2@<profile>%NVLink``)."""
    try:
        return PlacementRequest(
            gpus_per_vm=int(request.get("gpus_per_vm") or 1),
            consumption=request.get("consumption") or "passthrough",
            profile=request.get("profile"),
        ).nvlink_device_group()
    except (ProfileNameError, TypeError, ValueError):
        return None


def _device_group_name(
    consumption: str, request: dict, domain: dict | None, nvlink_group: str | None, devices: int
) -> str | None:
    """The vendor name of the device group a device-group reservation adds: the request's own when it gave one,
    else ``Nvidia:N@<profile>%NVLink`` for a set on one NVLink/NVSwitch domain,
    ``Nvidia:N@<profile>`` otherwise."""
    if consumption != "device-group":
        return None
    profile = request.get("profile") or ""
    if "@" in profile:
        return profile
    if nvlink_group and domain and domain["kind"] in NVLINK_KINDS:
        return nvlink_group
    return f"Nvidia:{devices}@{profile}" if profile else None


def _device_group_note(
    consumption: str, domain: dict | None, devices: int, request: dict | None = None, group: str | None = None
) -> str:
    request = request or {}
    if consumption == "device-group":
        where = f" on {domain['name']}" if domain else ""
        if "@" in (request.get("profile") or ""):
            return f"vendor device group named by the request; vSphere places its {devices} vGPUs as one unit{where}"
        if group and group.endswith("%NVLink"):
            return (
                f"the vendor's name for {devices} x {request.get('profile')} on NVLink, not read from vCenter: the "
                f"inventory does not store the host's device group list, vendorDeviceGroupInfo; vSphere places its "
                f"vGPUs as one unit{where}"
            )
        return (
            f"{devices} x {request.get('profile')} as one vendor device group; these GPUs share no NVLink domain, so "
            "the group gets no NVLink P2P"
        )
    if consumption == "vgpu" and devices > 1:
        nvlink = _nvlink_device_group(request)
        instead = f"; for NVLink plan consumption device-group instead (vendor device group {nvlink})" if nvlink else ""
        return f"none: these {devices} vGPUs are added one by one and get no NVLink P2P{instead}"
    if devices == 1:
        return "not needed for a single GPU"
    if consumption == "passthrough":
        what = "static DirectPath I/O names each device, so no device group is used; the GPUs share"
        return what if domain else "static DirectPath I/O names each device, so no device group is used"
    if domain:
        return (
            "the inventory does not store vSphere device group names (vendorDeviceGroupInfo); "
            "the advisor's own domain of these GPUs is shown instead"
        )
    return "these GPUs share no NVLink, NVSwitch or PCIe-switch domain that a device group could keep together"


def _shared_domain(host: Host, gpu_ids: list[int]) -> dict | None:
    """The smallest active NVLink/NVSwitch/PCIe-switch domain of the host holding every reserved GPU."""
    if not gpu_ids:
        return None
    wanted = set(gpu_ids)
    best = None
    for domain in ResourceDomain.objects.filter(host=host, active=True, kind__in=GROUP_KINDS).prefetch_related(
        "members"
    ):
        members = {m.pk for m in domain.members.all()}
        if wanted <= members and (best is None or len(members) < best[0]):
            best = (len(members), domain)
    if best is None:
        return None
    domain = best[1]
    return {"domain_id": domain.domain_id, "kind": domain.kind, "name": domain.name, "size": best[0],
            "exact": best[0] == len(wanted)}  # fmt: skip
