"""Map the property values of one ObjectContent into snapshot dataclasses.

Values are pyVmomi data objects (never managed objects read lazily). vSphere reports shorts signed, so PCI
ids above 0x7fff arrive negative; they are folded back into 0..0xffff here.

PCI addresses are checked here, once: one that is not an SBDF address (``0000:3b:00.0``) is dropped with a host
warning, so no later step (the database, the pages, the PowerCLI script) ever sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pyVmomi import vim

from inventory.vsphere.snapshot import (
    ClusterSnap,
    DatacenterSnap,
    GraphicsInfoSnap,
    HostSnap,
    NumaNodeSnap,
    PassthruInfoSnap,
    PciDeviceSnap,
    VmDeviceSnap,
    VmSnap,
    is_sbdf,
)

MB = 1024 * 1024


def u16(value: Any) -> int:
    return int(value or 0) & 0xFFFF


def _ref(obj: Any) -> str | None:
    return obj._moId if obj is not None else None


def _pci_id(value: Any) -> str:
    return str(value or "").strip().lower()


NOT_SBDF = "is not a PCI address like 0000:3b:00.0"


def _shown(value: Any) -> str:
    """A value vCenter sent, quoted with its control and invisible characters escaped, cut to 40 characters."""
    text = str(value)
    return repr(text[:40]) + ("..." if len(text) > 40 else "")


def _sbdf(value: Any, what: str, warnings: list[str] | None, outcome: str = "ignored") -> str | None:
    """``value`` as a normalized PCI address; None when it is empty or not an address (then ``what``, the field
    that held it, and ``outcome`` are warned in ``warnings``)."""
    pci_id = _pci_id(value)
    if not pci_id:
        return None
    if is_sbdf(pci_id):
        return pci_id
    if warnings is not None:
        warnings.append(f"{what} {_shown(value)} {NOT_SBDF}; {outcome}")
    return None


def _kept(items: Iterable[Any]) -> tuple:
    return tuple(item for item in items if item is not None)


def map_datacenter(ref: str, props: dict[str, Any]) -> DatacenterSnap:
    return DatacenterSnap(moref=ref, name=str(props.get("name") or ref))


def map_cluster(ref: str, props: dict[str, Any], datacenter: str | None) -> ClusterSnap:
    return ClusterSnap(moref=ref, name=str(props.get("name") or ref), datacenter_moref=datacenter)


def resolve_datacenters(parents: dict[str, str | None], datacenters: set[str]) -> dict[str, str]:
    """For each object, the datacenter above it, following parent links (loop-safe)."""
    resolved: dict[str, str] = {}
    for start in parents:
        seen, node = set(), parents.get(start)
        while node is not None and node not in seen:
            if node in datacenters:
                resolved[start] = node
                break
            seen.add(node)
            node = parents.get(node)
    return resolved


def map_pci_device(dev: Any, warnings: list[str] | None = None) -> PciDeviceSnap | None:
    """The device, or None when its id is not a PCI address (warned in ``warnings``: the device is skipped)."""
    name = (
        " ".join(str(getattr(dev, f, "") or "") for f in ("vendorName", "deviceName") if getattr(dev, f, None))
        or f"{u16(dev.vendorId):04x}:{u16(dev.deviceId):04x}"
    )
    pci_id = _sbdf(dev.id, f"PCI device {name}: id (hardware.pciDevice.id)", warnings, "the device is skipped")
    if pci_id is None:
        if warnings is not None and not _pci_id(dev.id):
            warnings.append(f"PCI device {name}: vCenter reported no id (hardware.pciDevice.id); the device is skipped")
        return None
    parent = _sbdf(
        getattr(dev, "parentBridge", None),
        f"PCI device {pci_id}: parent bridge (parentBridge)",
        warnings,
        "its parent link is dropped",
    )
    return PciDeviceSnap(
        pci_id=pci_id,
        class_id=u16(dev.classId),
        vendor_id=u16(dev.vendorId),
        device_id=u16(dev.deviceId),
        subvendor_id=u16(getattr(dev, "subVendorId", 0)),
        subdevice_id=u16(getattr(dev, "subDeviceId", 0)),
        vendor_name=str(getattr(dev, "vendorName", "") or ""),
        device_name=str(getattr(dev, "deviceName", "") or ""),
        parent=parent,
    )


def map_numa(numa_info: Any, warnings: list[str] | None = None) -> tuple[NumaNodeSnap, ...] | None:
    if numa_info is None or not getattr(numa_info, "numaNode", None):
        return None
    nodes = []
    for node in numa_info.numaNode:
        # memorySize (API 8.0) is the node's memory; memoryRangeLength, deprecated since, holds the same value there
        length = getattr(node, "memorySize", None) or getattr(node, "memoryRangeLength", None)
        nodes.append(
            NumaNodeSnap(
                node_id=int(node.typeId),
                cpu_ids=tuple(sorted(int(c) for c in (node.cpuID or []))),
                memory_mb=int(length) // MB if length else None,
                pci_ids=_kept(
                    _sbdf(raw, f"NUMA node {int(node.typeId)}: PCI id (pciId)", warnings)
                    for raw in (getattr(node, "pciId", None) or [])
                ),
            )
        )
    return tuple(sorted(nodes, key=lambda n: n.node_id))


def map_graphics_info(info: Any, warnings: list[str] | None = None) -> GraphicsInfoSnap | None:
    """The GPU's graphics entry, or None when its PCI id is not an address (warned in ``warnings``)."""
    what = f"graphics entry {_shown(info.deviceName or '')}: PCI id (config.graphicsInfo.pciId)"
    pci_id = _sbdf(info.pciId, what, warnings, "the entry is skipped")
    if pci_id is None:
        return None
    return GraphicsInfoSnap(
        pci_id=pci_id,
        device_name=str(info.deviceName or ""),
        vendor_name=str(info.vendorName or ""),
        graphics_type=str(info.graphicsType or ""),
        vgpu_mode=str(getattr(info, "vgpuMode", None) or ""),
        memory_kb=int(info.memorySizeInKB or 0),
        vm_morefs=tuple(vm._moId for vm in (info.vm or [])),
    )


def map_passthru(info: Any, warnings: list[str] | None = None) -> PassthruInfoSnap | None:
    """The device's passthrough state, or None when its PCI id is not an address (warned in ``warnings``)."""
    what = "passthrough entry: PCI id (config.pciPassthruInfo.id)"
    pci_id = _sbdf(info.id, what, warnings, "the entry is skipped")
    if pci_id is None:
        return None
    return PassthruInfoSnap(
        pci_id=pci_id,
        enabled=bool(info.passthruEnabled),
        active=bool(info.passthruActive),
        capable=bool(info.passthruCapable),
        hardware_label=str(getattr(info, "hardwareLabel", None) or ""),
    )


def map_host(ref: str, props: dict[str, Any], clusters: set[str]) -> HostSnap:
    warnings: list[str] = []
    hw = props.get("summary.hardware")
    parent = _ref(props.get("parent"))
    gconfig = props.get("config.graphicsConfig")
    device_types: dict[str, str] = {}
    if gconfig is not None:
        for dt in gconfig.deviceType or []:
            what = "graphics setting: PCI id (config.graphicsConfig.deviceType.deviceId)"
            if device_id := _sbdf(dt.deviceId, what, warnings, "the setting is skipped"):
                device_types[device_id] = str(dt.graphicsType or "")
    numa = map_numa(props.get("hardware.numaInfo"), warnings)
    if numa is None:
        warnings.append("the host reports no NUMA information (hardware.numaInfo); GPU NUMA nodes are unknown")
    return HostSnap(
        moref=ref,
        name=str(props.get("name") or ref),
        cluster_moref=parent if parent in clusters else None,
        vendor=str(getattr(hw, "vendor", "") or ""),
        model=str(getattr(hw, "model", "") or ""),
        cpu_model=str(getattr(hw, "cpuModel", "") or ""),
        cpu_sockets=int(getattr(hw, "numCpuPkgs", 0) or 0),
        cpu_cores=int(getattr(hw, "numCpuCores", 0) or 0),
        cpu_threads=int(getattr(hw, "numCpuThreads", 0) or 0),
        memory_mb=int(getattr(hw, "memorySize", 0) or 0) // MB,
        connection_state=str(props.get("runtime.connectionState") or "connected"),
        maintenance_mode=bool(props.get("runtime.inMaintenanceMode")),
        boot_time=_boot_time(props.get("runtime.bootTime")),
        api_version=str(props.get("config.product.apiVersion") or ""),
        assignment_policy=str(getattr(gconfig, "sharedPassthruAssignmentPolicy", "") or ""),
        default_graphics_type=str(getattr(gconfig, "hostDefaultGraphicsType", "") or ""),
        device_graphics_types=device_types,
        pci_devices=_kept(map_pci_device(d, warnings) for d in (props.get("hardware.pciDevice") or [])),
        numa_nodes=numa,
        graphics=_kept(map_graphics_info(g, warnings) for g in (props.get("config.graphicsInfo") or [])),
        passthru=_kept(map_passthru(p, warnings) for p in (props.get("config.pciPassthruInfo") or [])),
        shared_gpu_types=tuple(sorted({str(t) for t in (props.get("config.sharedPassthruGpuTypes") or [])})),
        warnings=tuple(warnings),
    )


def map_vm_device(device: Any) -> VmDeviceSnap | None:
    if not isinstance(device, vim.vm.device.VirtualPCIPassthrough):
        return None
    backing = device.backing
    if isinstance(backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo):
        return VmDeviceSnap(kind="vgpu", profile=str(backing.vgpu or "") or None)
    if isinstance(backing, vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo):
        # a backing id that is not an address matches no GPU: the device counts as one with no known GPU
        return VmDeviceSnap(kind="passthrough", pci_id=_sbdf(backing.id, "", None))
    if isinstance(backing, vim.vm.device.VirtualPCIPassthrough.DynamicBackingInfo):
        return VmDeviceSnap(kind="dynamic-passthrough", pci_id=_sbdf(backing.assignedId, "", None))
    dvx = getattr(vim.vm.device.VirtualPCIPassthrough, "DvxBackingInfo", None)
    if dvx is not None and isinstance(backing, dvx):
        return VmDeviceSnap(kind="device-group", profile=str(getattr(backing, "deviceClass", "") or "") or None)
    return None


def map_vm(ref: str, props: dict[str, Any]) -> VmSnap:
    devices = tuple(d for d in (map_vm_device(x) for x in (props.get("config.hardware.device") or [])) if d)
    reservation = props.get("config.memoryAllocation.reservation")
    return VmSnap(
        moref=ref,
        name=str(props.get("name") or ref),
        host_moref=_ref(props.get("runtime.host")),
        power_state=str(props.get("runtime.powerState") or "poweredOff"),
        vcpus=int(props.get("config.hardware.numCPU") or 0),
        memory_mb=int(props.get("config.hardware.memoryMB") or 0),
        memory_reservation_mb=max(int(reservation or 0), 0),
        devices=devices,
        boot_time=_boot_time(props.get("runtime.bootTime")),
    )


def _boot_time(value: Any) -> datetime | None:
    """An aware datetime, or None (powered off, or an answer without a usable time)."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
