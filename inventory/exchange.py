"""The inventory JSON document (``inventory export`` / ``inventory import``, and the vcsim lab files).

Reading turns a document into an ``InventorySnapshot`` so imports go through the same apply step as a
vCenter sync; every problem is reported with the JSON path of the field and the reason.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from inventory.vsphere.snapshot import (
    ClusterSnap,
    DatacenterSnap,
    GraphicsInfoSnap,
    HostSnap,
    InventorySnapshot,
    NumaNodeSnap,
    PassthruInfoSnap,
    PciDeviceSnap,
    VmDeviceSnap,
    VmSnap,
)

SBDF_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
GRAPHICS_TYPES = {"direct", "sharedDirect", "shared", "basic"}
VGPU_MODES = {"sameSize", "mixedSize", "multiInstanceGpu"}
CONSUMER_KINDS = {"passthrough", "dynamic-passthrough", "vgpu", "mig", "device-group"}
POWER_STATES = {"poweredOn", "poweredOff", "suspended"}
CONNECTION_STATES = {"connected", "disconnected", "notResponding"}
POLICIES = {"performance", "consolidation", ""}
BRIDGE_CLASS = 0x0604
GPU_CLASS = 0x0302
NVIDIA = 0x10DE


class InventoryFileError(ValueError):
    """A field of an inventory document is missing or wrong; the message starts with its JSON path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _get(obj: dict, key: str, path: str, kind: type | tuple[type, ...], *, required: bool = True, default=None):
    if not isinstance(obj, dict):
        raise InventoryFileError(path, "must be an object")
    if key not in obj or obj[key] is None:
        if required:
            raise InventoryFileError(f"{path}.{key}", "missing")
        return default
    value = obj[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InventoryFileError(f"{path}.{key}", f"must be {names}, got {type(value).__name__}")
    return value


def _list(obj: dict, key: str, path: str, *, required: bool = False) -> list:
    return _get(obj, key, path, list, required=required, default=[])


def _hex(obj: dict, key: str, path: str, *, required: bool = True, default: int = 0) -> int:
    value = _get(obj, key, path, (str, int), required=required, default=default)
    if isinstance(value, int):
        number = value
    else:
        try:
            number = int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            raise InventoryFileError(f"{path}.{key}", f"{value!r} is not a hex id like 0x10de") from None
    if not 0 <= number <= 0xFFFF:
        raise InventoryFileError(f"{path}.{key}", f"{value!r} is outside 0x0000..0xffff")
    return number


def _sbdf(value: Any, path: str) -> str:
    if not isinstance(value, str) or not SBDF_RE.fullmatch(value.lower()):
        raise InventoryFileError(path, f"{value!r} is not a PCI address like 0000:3b:00.0")
    return value.lower()


def _choice(obj: dict, key: str, path: str, choices: set[str], default: str) -> str:
    value = _get(obj, key, path, str, required=False, default=default)
    if value not in choices:
        raise InventoryFileError(
            f"{path}.{key}", f"{value!r} is not one of {', '.join(sorted(c for c in choices if c))}"
        )
    return value


def _non_negative(obj: dict, key: str, path: str, default: int = 0) -> int:
    value = _get(obj, key, path, int, required=False, default=default)
    if value < 0:
        raise InventoryFileError(f"{path}.{key}", f"must not be negative, got {value}")
    return value


def _boot_time(obj: dict, path: str, power_state: str | None) -> datetime | None:
    """An object's optional ``boot_time``; a VM (``power_state`` given) has one only when powered on."""
    value = _get(obj, "boot_time", path, str, required=False)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InventoryFileError(
            f"{path}.boot_time", f"{value!r} is not an ISO 8601 time with a zone (2026-11-30T08:00:00Z)"
        )
    if power_state is not None and power_state != "poweredOn":
        raise InventoryFileError(f"{path}.boot_time", "only a poweredOn VM has a boot time")
    return when


def snapshot_from_document(doc: Any) -> InventorySnapshot:
    """Validate an inventory/lab document and return the snapshot it describes."""
    if not isinstance(doc, dict):
        raise InventoryFileError("$", "the document must be a JSON object")
    dc_name = _get(doc, "datacenter", "$", str, required=False, default="Datacenter")
    datacenter = DatacenterSnap(moref=f"datacenter:{dc_name}", name=dc_name)
    clusters: dict[str, ClusterSnap] = {}
    for i, c in enumerate(_list(doc, "clusters", "$")):
        name = _get(c, "name", f"$.clusters[{i}]", str)
        clusters[name] = ClusterSnap(moref=f"cluster:{name}", name=name, datacenter_moref=datacenter.moref)

    hosts_doc = _list(doc, "hosts", "$", required=True)
    vm_hosts: dict[str, str] = {}
    vm_paths: dict[str, str] = {}  # where each VM is first named by a GPU consumer
    vm_devices: dict[str, list[VmDeviceSnap]] = {}
    hosts: list[HostSnap] = []
    seen_hosts: set[str] = set()
    for hi, h in enumerate(hosts_doc):
        path = f"$.hosts[{hi}]"
        host = _host_from_document(h, path, clusters, vm_devices, vm_hosts, vm_paths)
        if host.name in seen_hosts:
            raise InventoryFileError(f"{path}.name", f"duplicate host {host.name!r}")
        seen_hosts.add(host.name)
        hosts.append(host)

    vms: list[VmSnap] = []
    declared: set[str] = set()
    for vi, v in enumerate(_list(doc, "vms", "$")):
        path = f"$.vms[{vi}]"
        name = _get(v, "name", path, str)
        if name in declared:
            raise InventoryFileError(f"{path}.name", f"duplicate VM {name!r}")
        declared.add(name)
        host_name = _get(v, "host", path, str, required=False)
        if host_name is not None and host_name not in seen_hosts:
            raise InventoryFileError(f"{path}.host", f"unknown host {host_name!r}")
        if name in vm_hosts and host_name is not None and vm_hosts[name] != host_name:
            raise InventoryFileError(
                f"{path}.host", f"{name!r} consumes GPUs on {vm_hosts[name]!r} but is declared on {host_name!r}"
            )
        memory = _non_negative(v, "memory_mb", path)
        reservation = _non_negative(v, "memory_reservation_mb", path)
        if reservation > memory:
            raise InventoryFileError(f"{path}.memory_reservation_mb", "exceeds memory_mb")
        power_state = _choice(v, "power_state", path, POWER_STATES, "poweredOn")
        vms.append(
            VmSnap(
                moref=f"vm:{name}",
                name=name,
                host_moref=f"host:{host_name or vm_hosts.get(name)}" if (host_name or name in vm_hosts) else None,
                power_state=power_state,
                vcpus=_non_negative(v, "cpus", path),
                memory_mb=memory,
                memory_reservation_mb=reservation,
                devices=tuple(vm_devices.get(name, ())),
                boot_time=_boot_time(v, path, power_state),
            )
        )
    undeclared = set(vm_hosts) - declared
    if "vms" in doc and undeclared:
        # With a VM list, a consumer naming no VM in it is a typo or a renamed VM: importing it would invent a
        # powered-on VM with no vCPUs or memory. Without a list, consumers are the only source of VMs.
        first = next(vm for vm in vm_paths if vm in undeclared)  # in document order
        raise InventoryFileError(f"{vm_paths[first]}.vm", f"VM {first!r} is not in $.vms")
    for name in sorted(undeclared):
        vms.append(
            VmSnap(
                moref=f"vm:{name}",
                name=name,
                host_moref=f"host:{vm_hosts[name]}",
                power_state="poweredOn",
                devices=tuple(vm_devices.get(name, ())),
            )
        )
    return InventorySnapshot(
        datacenters=[datacenter], clusters=list(clusters.values()), hosts=hosts, vms=vms, api_version="import"
    )


def _host_from_document(
    h: dict,
    path: str,
    clusters: dict[str, ClusterSnap],
    vm_devices: dict[str, list[VmDeviceSnap]],
    vm_hosts: dict[str, str],
    vm_paths: dict[str, str],
) -> HostSnap:
    name = _get(h, "name", path, str)
    cluster = _get(h, "cluster", path, str, required=False)
    if cluster is not None and cluster not in clusters:
        clusters[cluster] = ClusterSnap(
            moref=f"cluster:{cluster}",
            name=cluster,
            datacenter_moref=next(iter(clusters.values())).datacenter_moref if clusters else None,
        )
    cpu = _get(h, "cpu", path, dict, required=False, default={})
    pci: dict[str, PciDeviceSnap] = {}

    def add(dev: PciDeviceSnap, field_path: str) -> None:
        if dev.pci_id in pci:
            raise InventoryFileError(field_path, f"duplicate pci_id {dev.pci_id}")
        pci[dev.pci_id] = dev

    # Bridges have a fixed class and optional ids; other functions must state all three.
    for key, bridge in (("bridges", True), ("other_pci", False)):
        for i, item in enumerate(_list(h, key, path)):
            ip = f"{path}.{key}[{i}]"
            parent = _get(item, "parent", ip, str, required=False)
            add(
                PciDeviceSnap(
                    pci_id=_sbdf(_get(item, "pci_id", ip, str), f"{ip}.pci_id"),
                    class_id=BRIDGE_CLASS if bridge else _hex(item, "class_id", ip),
                    vendor_id=_hex(item, "vendor_id", ip, required=not bridge),
                    device_id=_hex(item, "device_id", ip, required=not bridge),
                    device_name=_get(item, "name", ip, str, required=False, default=""),
                    parent=_sbdf(parent, f"{ip}.parent") if parent else None,
                ),
                f"{ip}.pci_id",
            )

    numa_doc = _get(h, "numa_nodes", path, list, required=False)
    numa_nodes = None
    if numa_doc is not None:
        numa_nodes = []
        for ni, n in enumerate(numa_doc):
            np_ = f"{path}.numa_nodes[{ni}]"
            cpus = _list(n, "cpus", np_)
            if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cpus):
                raise InventoryFileError(f"{np_}.cpus", "must be a list of non-negative integers")
            numa_nodes.append(
                NumaNodeSnap(
                    node_id=_non_negative(n, "id", np_),
                    cpu_ids=tuple(cpus),
                    memory_mb=_get(n, "memory_mb", np_, int, required=False),
                    pci_ids=tuple(_sbdf(p, f"{np_}.pci_ids[{k}]") for k, p in enumerate(_list(n, "pci_ids", np_))),
                )
            )
        numa_nodes = tuple(numa_nodes)

    graphics, passthru, profiles, modules, device_types = [], [], {}, {}, {}
    for gi, g in enumerate(_list(h, "gpus", path)):
        gp = f"{path}.gpus[{gi}]"
        pci_id = _sbdf(_get(g, "pci_id", gp, str), f"{gp}.pci_id")
        pcie_path = [_sbdf(p, f"{gp}.pcie_path[{k}]") for k, p in enumerate(_list(g, "pcie_path", gp))]
        for k, bridge in enumerate(pcie_path):
            if bridge not in pci:
                raise InventoryFileError(f"{gp}.pcie_path[{k}]", f"bridge {bridge} is not in bridges")
            expected_parent = pcie_path[k - 1] if k else None
            if k and pci[bridge].parent != expected_parent:
                raise InventoryFileError(
                    f"{gp}.pcie_path[{k}]", f"bridge {bridge} has parent {pci[bridge].parent}, not {expected_parent}"
                )
        model = _get(g, "model", gp, str)
        memory_mb = _non_negative(g, "memory_mb", gp)
        add(
            PciDeviceSnap(
                pci_id=pci_id,
                class_id=GPU_CLASS,
                vendor_id=NVIDIA,
                device_id=_hex(g, "device_id", gp),
                vendor_name="NVIDIA Corporation",
                device_name=model,
                parent=pcie_path[-1] if pcie_path else None,
            ),
            f"{gp}.pci_id",
        )
        graphics_type = _choice(g, "graphics_type", gp, GRAPHICS_TYPES | {""}, "")
        vgpu_mode = _choice(g, "vgpu_mode", gp, VGPU_MODES | {""}, "")
        consumers = _list(g, "consumers", gp)
        vm_refs = []
        for ci, c in enumerate(consumers):
            cp = f"{gp}.consumers[{ci}]"
            vm = _get(c, "vm", cp, str)
            kind = _choice(c, "kind", cp, CONSUMER_KINDS, "vgpu")
            profile = _get(c, "profile", cp, str, required=kind in {"vgpu", "mig"})
            if vm_hosts.setdefault(vm, name) != name:
                raise InventoryFileError(f"{cp}.vm", f"{vm!r} already consumes GPUs on host {vm_hosts[vm]!r}")
            if kind in {"passthrough", "dynamic-passthrough"}:
                device = VmDeviceSnap(kind=kind, pci_id=pci_id)
            else:
                device = VmDeviceSnap(kind="vgpu" if kind != "device-group" else kind, profile=profile)
            vm_devices.setdefault(vm, []).append(device)
            vm_paths.setdefault(vm, cp)
            vm_refs.append(f"vm:{vm}")
        if graphics_type:
            graphics.append(
                GraphicsInfoSnap(
                    pci_id=pci_id,
                    device_name=model,
                    vendor_name="NVIDIA Corporation",
                    graphics_type=graphics_type,
                    vgpu_mode=vgpu_mode,
                    memory_kb=memory_mb * 1024,
                    vm_morefs=tuple(vm_refs),
                    mig_enabled=_get(g, "mig_enabled", gp, bool, required=False, default=False),
                )
            )
            device_types[pci_id] = graphics_type
        passthru.append(
            PassthruInfoSnap(
                pci_id=pci_id,
                enabled=graphics_type == "direct",
                active=graphics_type == "direct",
                capable=True,
                hardware_label=_get(g, "hardware_label", gp, str, required=False, default=""),
            )
        )
        gpu_profiles = _list(g, "profiles", gp)
        if not all(isinstance(p, str) for p in gpu_profiles):
            raise InventoryFileError(f"{gp}.profiles", "must be a list of vGPU type names")
        profiles[pci_id] = tuple(gpu_profiles)
        module = _get(g, "module_id", gp, int, required=False)
        if module is not None:
            if not 1 <= module <= 16:
                raise InventoryFileError(f"{gp}.module_id", f"must be 1..16, got {module}")
            modules[pci_id] = module
        if numa_nodes is not None and "numa_node" in g and g["numa_node"] is not None:
            node = _non_negative(g, "numa_node", gp)
            members = [n.node_id for n in numa_nodes if pci_id in n.pci_ids]
            if members != [node]:
                raise InventoryFileError(
                    f"{gp}.numa_node", f"is {node} but the GPU is listed in numa_nodes {members or 'none'}"
                )

    for pci_id, dev in pci.items():
        if dev.parent and dev.parent not in pci:
            raise InventoryFileError(f"{path}", f"PCI device {pci_id} has parent {dev.parent}, which is not listed")
    return HostSnap(
        moref=f"host:{name}",
        name=name,
        cluster_moref=f"cluster:{cluster}" if cluster else None,
        vendor=_get(h, "vendor", path, str, required=False, default=""),
        model=_get(h, "model", path, str, required=False, default=""),
        cpu_model=_get(h, "cpu_model", path, str, required=False, default=""),
        cpu_sockets=_non_negative(cpu, "sockets", f"{path}.cpu"),
        cpu_cores=_non_negative(cpu, "cores", f"{path}.cpu"),
        cpu_threads=_non_negative(cpu, "threads", f"{path}.cpu"),
        memory_mb=_non_negative(h, "memory_mb", path),
        connection_state=_choice(h, "connection_state", path, CONNECTION_STATES, "connected"),
        maintenance_mode=_get(h, "maintenance", path, bool, required=False, default=False),
        boot_time=_boot_time(h, path, None),
        api_version="import",
        assignment_policy=_choice(h, "assignment_policy", path, POLICIES, ""),
        default_graphics_type=_choice(h, "default_graphics_type", path, GRAPHICS_TYPES | {""}, ""),
        device_graphics_types=device_types,
        pci_devices=tuple(pci.values()),
        numa_nodes=numa_nodes,
        graphics=tuple(graphics),
        passthru=tuple(passthru),
        shared_gpu_types=tuple(sorted({p for ps in profiles.values() for p in ps})),
        gpu_profiles=profiles,
        module_ids=modules,
    )
