"""What one collection of a vCenter returns, as plain dataclasses (no Django, no pyVmomi objects).

The collector maps every ObjectContent into these; ``inventory import`` builds the same from a JSON file, so
both paths share one apply step (``inventory.services.apply_snapshot``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

# A PCI address as vSphere writes it (segment:bus:device.function, lower case): 0000:3b:00.0
SBDF_RE = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")


def is_sbdf(value: str) -> bool:
    """``value`` is a lower-case PCI address like ``0000:3b:00.0`` (nothing before or after it, not even a line
    break: ``$`` would allow one)."""
    return SBDF_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class PciDeviceSnap:
    pci_id: str
    class_id: int
    vendor_id: int
    device_id: int
    subvendor_id: int = 0
    subdevice_id: int = 0
    vendor_name: str = ""
    device_name: str = ""
    parent: str | None = None  # parentBridge SBDF


@dataclass(frozen=True)
class NumaNodeSnap:
    node_id: int
    cpu_ids: tuple[int, ...] = ()
    memory_mb: int | None = None
    pci_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphicsInfoSnap:
    pci_id: str
    device_name: str = ""
    vendor_name: str = ""
    graphics_type: str = ""
    vgpu_mode: str = ""  # API 8.0.3+; "" when the vCenter does not report it
    memory_kb: int = 0
    vm_morefs: tuple[str, ...] = ()
    mig_enabled: bool | None = None  # only imports state it; vSphere tells through vgpuMode and profiles


@dataclass(frozen=True)
class PassthruInfoSnap:
    pci_id: str
    enabled: bool = False
    active: bool = False
    capable: bool = False
    hardware_label: str = ""


@dataclass(frozen=True)
class HostSnap:
    moref: str
    name: str
    cluster_moref: str | None = None
    vendor: str = ""
    model: str = ""
    cpu_model: str = ""
    cpu_sockets: int = 0
    cpu_cores: int = 0
    cpu_threads: int = 0
    memory_mb: int = 0
    connection_state: str = "connected"
    maintenance_mode: bool = False
    # runtime.bootTime: MIG GPU instances no VM holds (imported from nvidia-smi) do not outlive a host boot
    boot_time: datetime | None = None
    api_version: str = ""
    assignment_policy: str = ""
    default_graphics_type: str = ""
    device_graphics_types: dict[str, str] = field(default_factory=dict)  # graphicsConfig.deviceType
    pci_devices: tuple[PciDeviceSnap, ...] = ()
    numa_nodes: tuple[NumaNodeSnap, ...] | None = None  # None: the host reported no numaInfo
    graphics: tuple[GraphicsInfoSnap, ...] = ()
    passthru: tuple[PassthruInfoSnap, ...] = ()
    shared_gpu_types: tuple[str, ...] = ()  # config.sharedPassthruGpuTypes
    gpu_profiles: dict[str, tuple[str, ...]] | None = None  # per GPU, from imports; None: derive per board
    module_ids: dict[str, int] = field(default_factory=dict)  # HGX module ids, from imports
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VmDeviceSnap:
    kind: str  # vgpu | passthrough | dynamic-passthrough (vgpu splits into vgpu/mig by profile later)
    profile: str | None = None
    pci_id: str | None = None  # static backing id, or the dynamic backing's assignedId


@dataclass(frozen=True)
class VmSnap:
    moref: str
    name: str
    host_moref: str | None = None
    power_state: str = "poweredOff"
    vcpus: int = 0
    memory_mb: int = 0
    memory_reservation_mb: int = 0
    devices: tuple[VmDeviceSnap, ...] = ()
    # runtime.bootTime: vGPU placement IDs and MIG instances are chosen at power-on, so a new boot time
    # invalidates offsets imported from nvidia-smi for the earlier one
    boot_time: datetime | None = None


@dataclass(frozen=True)
class ClusterSnap:
    moref: str
    name: str
    datacenter_moref: str | None = None


@dataclass(frozen=True)
class DatacenterSnap:
    moref: str
    name: str


@dataclass
class InventorySnapshot:
    datacenters: list[DatacenterSnap] = field(default_factory=list)
    clusters: list[ClusterSnap] = field(default_factory=list)
    hosts: list[HostSnap] = field(default_factory=list)
    vms: list[VmSnap] = field(default_factory=list)
    round_trips: int = 0
    api_version: str = ""
    instance_uuid: str = ""  # ServiceContent.about.instanceUuid; empty for an imported document
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        gpus = sum(1 for h in self.hosts for d in h.pci_devices if is_gpu(d))
        return {
            "datacenters": len(self.datacenters),
            "clusters": len(self.clusters),
            "hosts": len(self.hosts),
            "gpus": gpus,
            "vms": len(self.vms),
        }


NVIDIA_VENDOR_ID = 0x10DE
GPU_CLASS_IDS = (0x0300, 0x0302)


def is_gpu(device: PciDeviceSnap) -> bool:
    """An NVIDIA display/3D controller function (class 0x0300 or 0x0302)."""
    return device.vendor_id == NVIDIA_VENDOR_ID and device.class_id in GPU_CLASS_IDS
